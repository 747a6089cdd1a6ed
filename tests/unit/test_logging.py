"""`--log-format json`: one JSON object per line, with `extra` fields and tracebacks."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from portico.cli.run import configure_logging


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_json_line_carries_extra_fields_and_the_traceback(
    root_restored: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", verbose=False)
    log = logging.getLogger("portico.reconcile")
    try:
        raise KeyError("spec")
    except KeyError:
        log.error("reconcile of %s failed", "team/web", exc_info=True, extra={"portal": "web"})
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1  # the traceback is inside the object, not lines of its own
    entry = json.loads(lines[0])
    assert entry["message"] == "reconcile of team/web failed"
    assert (entry["level"], entry["logger"], entry["portal"]) == (
        "ERROR",
        "portico.reconcile",
        "web",
    )
    assert entry["time"][:2] == "20" and "T" in entry["time"]
    assert "Traceback (most recent call last)" in entry["exc_info"]
    assert "KeyError: 'spec'" in entry["exc_info"]
    assert "test_a_json_line_carries_extra_fields_and_the_traceback" in entry["exc_info"]
