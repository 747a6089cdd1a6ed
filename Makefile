# Two commands on a fresh machine (see README): `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint unit controlplane pulumi clean

$(BIN)/portico: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/portico

# Plan the examples offline, then run portals to Ready on a local control plane.
demo: install
	bash scripts/demo.sh

lint: install
	$(BIN)/ruff check operator tests stacks
	$(BIN)/ruff format --check operator tests stacks
	$(BIN)/mypy

# The whole suite, control-plane and pulumi tiers included: binaries are built
# (or reused from ~/.cache/portico) first, and a missing tier is a failure, not a skip.
test: install lint
	bash .ci/install-system-packages
	$(BIN)/portico dev build --with-pulumi
	PORTICO_REQUIRE_CONTROLPLANE=1 $(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit

controlplane: install
	$(BIN)/portico dev build
	PORTICO_REQUIRE_CONTROLPLANE=1 $(BIN)/pytest -m controlplane

# Only the stacks through the real Pulumi engine (builds it once, ~20 min cold).
pulumi: install
	$(BIN)/portico dev build --with-pulumi
	PORTICO_REQUIRE_CONTROLPLANE=1 $(BIN)/pytest -m pulumi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
