# Two commands on a fresh machine (see README): `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo demo-real test lint unit controlplane realnode bench pulumi clean

# The images' constraints pin the venv too: the tests run what the images install.
$(BIN)/portico: pyproject.toml runtime/pyproject.toml standin/pyproject.toml devtools/pyproject.toml operator/constraints.txt runtime/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e ./runtime -e ./standin -e ./devtools \
		--constraint operator/constraints.txt --constraint runtime/constraints.txt
	touch $@

# Checkov (tests/unit/test_checkov.py) in a virtualenv of its own: its pins differ from
# the images' (packaging, python-dateutil), so it cannot share theirs.
CHECKOV := $(VENV)/checkov
$(CHECKOV)/bin/checkov: tests/checkov-constraints.txt
	$(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV)/bin/pip install --quiet checkov --constraint tests/checkov-constraints.txt
	touch $@

install: $(BIN)/portico $(CHECKOV)/bin/checkov

# Plan the examples offline, then run portals to Ready on a local control plane.
demo: install
	bash scripts/demo.sh

# The demo's portals in real pods behind Traefik, one on HTTPS on its custom domain; needs root.
demo-real: install
	bash .ci/install-system-packages
	bash scripts/demo-real.sh

lint: install
	$(BIN)/ruff check operator runtime standin devtools tests stacks bench
	$(BIN)/ruff format --check operator runtime standin devtools tests stacks bench
	$(BIN)/mypy

# The whole suite, every tier included: binaries (the Pulumi engine too) and image
# archives are built (or reused from ~/.cache/portico) first — the images' Debian and
# PyPI downloads beside the Go builds — and a missing tier is a failure, not a skip.
test: install lint
	bash .ci/install-system-packages
	$(BIN)/portico dev images > .images.log 2>&1 & images=$$!; \
	$(BIN)/portico dev build --with-pulumi; built=$$?; \
	wait $$images; imaged=$$?; cat .images.log; rm -f .images.log; \
	test $$built -eq 0 && test $$imaged -eq 0
	@# Two pytest processes at once: the control-plane tier (mostly waiting on the API
	@# server) beside every other tier. Each must pass; exit 5 (nothing collected) fails.
	@# The unit tier runs in a random order (pytest-randomly; the seed is printed): no
	@# test may depend on another having run first.
	PORTICO_REQUIRE_CONTROLPLANE=1 PORTICO_REQUIRE_IMAGES=1 \
	$(BIN)/pytest -p no:cacheprovider tests/controlplane > .controlplane.log 2>&1 & cp=$$!; \
	PORTICO_REQUIRE_CONTROLPLANE=1 PORTICO_REQUIRE_IMAGES=1 \
	$(BIN)/pytest -p no:cacheprovider -p randomly tests/unit && \
	PORTICO_REQUIRE_CONTROLPLANE=1 PORTICO_REQUIRE_IMAGES=1 \
	$(BIN)/pytest -p no:cacheprovider --ignore=tests/controlplane --ignore=tests/unit; rest=$$?; \
	wait $$cp; planes=$$?; cat .controlplane.log; rm -f .controlplane.log; \
	echo "tiers: others exit $$rest, control plane exit $$planes"; \
	test $$rest -eq 0 && test $$planes -eq 0

unit: install
	$(BIN)/pytest -p randomly tests/unit

controlplane: install
	$(BIN)/portico dev build
	PORTICO_REQUIRE_CONTROLPLANE=1 $(BIN)/pytest -m controlplane

# Real pods: a real node (containerd, kubelet, kube-proxy) and Traefik; needs root.
realnode: install
	bash .ci/install-system-packages
	$(BIN)/portico dev build
	PORTICO_REQUIRE_CONTROLPLANE=1 $(BIN)/pytest -m realnode

# The fleet benchmark on a control plane of its own (bench/README.md), e.g.
# make bench BENCH_ARGS="--sizes 100,1000 --helm-n 100".
bench: install
	$(BIN)/portico dev build
	$(BIN)/python -m bench $(BENCH_ARGS)

# Only the stacks through the real Pulumi engine (builds it once, ~20 min cold).
pulumi: install
	$(BIN)/portico dev build --with-pulumi
	PORTICO_REQUIRE_CONTROLPLANE=1 $(BIN)/pytest -m pulumi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
