"""How much `portico plan` work one portal costs, as a ratio to reading its YAML.

Run: .venv/bin/python bench/render.py [ROUNDS]
The baseline (yaml.safe_load of the example) runs in the same process, so the
ratios compare like with like on whatever machine this is.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from portico.api import model, validation
from portico.core import render
from portico.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "examples" / "customer-customerselfservice.yaml").read_text()
INSTANCE = model.parse_instance(
    validation.admit(
        "PortalInstance", yaml.safe_load((ROOT / "examples" / "contoso-instance.yaml").read_text())
    )[0]
)
SETTINGS = Settings()


def per_call(fn: Callable[[], object], rounds: int) -> float:
    fn()  # warm caches (compiled CEL programs, jinja2 templates)
    start = time.perf_counter()
    for _ in range(rounds):
        fn()
    return (time.perf_counter() - start) / rounds


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    raw = yaml.safe_load(TEXT)
    defaulted = validation.admit("Portal", raw)[0]
    portal = model.parse_portal(defaulted)
    cases = {
        "baseline: yaml.safe_load": lambda: yaml.safe_load(TEXT),
        "admit (schema + CEL)": lambda: validation.admit("Portal", raw),
        "render children": lambda: render.children(portal, INSTANCE, SETTINGS),
        "plan one portal (all three)": lambda: render.children(
            model.parse_portal(validation.admit("Portal", yaml.safe_load(TEXT))[0]),
            INSTANCE,
            SETTINGS,
        ),
    }
    times = {name: per_call(fn, rounds) for name, fn in cases.items()}
    base = times["baseline: yaml.safe_load"]
    for name, seconds in times.items():
        print(f"{name:<30} {seconds * 1e3:8.3f} ms   {seconds / base:6.1f}x baseline")


if __name__ == "__main__":
    main()
