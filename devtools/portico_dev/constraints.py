"""Constraints files: the exact versions an image installs, taken from the tested venv.

`portico dev images --lock` rewrites `operator/constraints.txt` and
`runtime/constraints.txt` from the distributions installed here (the runtime
dependencies of `portico` and `portico-runtime`, transitively, no extras), so
an image installs what the tests ran against and builds the same each time.
The stand-in's image (standin/Dockerfile) installs with the runtime's file: it runs
on the same web stack, and its requirements are a subset of the runtime's.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

HEADER = (
    "# Exact versions {image} installs (pip --constraint), from the venv the tests ran in.\n"
    "# Regenerate with `portico dev images --lock` after changing dependencies.\n"
)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(root: str) -> dict[str, str]:
    """{distribution: version} for ROOT's runtime requirements, transitively (ROOT excluded)."""
    # Late: `packaging` comes with the dev venv.
    from packaging.requirements import Requirement

    pins: dict[str, str] = {}
    todo = [root]
    seen = {_canonical(root)}
    while todo:
        dist = metadata.distribution(todo.pop())
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue  # an extra's requirement, or one for another platform
            key = _canonical(req.name)
            if key in seen:
                continue
            seen.add(key)
            pins[key] = metadata.version(req.name)
            todo.append(req.name)
    return dict(sorted(pins.items()))


def render(root: str, image: str) -> str:
    lines = [f"{name}=={version}" for name, version in closure(root).items()]
    return HEADER.format(image=image) + "\n".join(lines) + "\n"


def parse(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[_canonical(name)] = version
    return pins


def lock(repo: Path) -> list[Path]:
    """Rewrite both constraints files; returns them."""
    written = []
    for root, path, image in (
        ("portico", repo / "operator" / "constraints.txt", "the operator image"),
        ("portico-runtime", repo / "runtime" / "constraints.txt", "the runtime image"),
    ):
        path.write_text(render(root, image))
        written.append(path)
    return written
