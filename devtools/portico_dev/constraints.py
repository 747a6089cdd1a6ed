"""Constraints files: the exact versions an image installs, taken from the tested venv.

`portico dev images --lock` rewrites `operator/constraints.txt` and
`runtime/constraints.txt` from the distributions installed here (the runtime
dependencies of `portico` and `portico-runtime`, transitively, no extras), so
an image installs what the tests ran against and builds the same each time.
The stand-in's image (standin/Dockerfile) installs with the runtime's file: it runs
on the same web stack, and its requirements are a subset of the runtime's.

The images install from hashed lock files made from those pins
(`operator/requirements.lock`, `runtime/requirements.lock`, `pip install
--require-hashes`), and build their wheels with the build backend pinned in
`build-backend.lock` (no build isolation: nothing unpinned is fetched). The hashes are
PyPI's sha256 of every file of the pinned version that a Linux CPython 3.11 can install
(x86_64 or aarch64), so pip verifies whichever file it picks.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable, Iterable
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


LOCK_HEADER = (
    "# {what}: every version pinned with the sha256 of each file PyPI has for it that\n"
    "# a Linux CPython 3.11 can install. `pip install --require-hashes --no-deps -r` this file.\n"
    "# Regenerate with `portico dev images --lock` (from {source}).\n"
)
# The images' build backend (pyproject.toml [build-system]) and what it needs, exactly.
BUILD_BACKEND = {
    "hatchling": "1.33.0",
    "packaging": "26.4",
    "pathspec": "1.1.1",
    "pluggy": "1.7.0",
    "tomlkit": "0.15.3",
    "trove-classifiers": "2026.9.21.13",
}
PYPI = "https://pypi.org/pypi/{name}/json"
_ABIS = {"none", "abi3", "cp311"}

Fetch = Callable[[str, str], list[dict[str, object]]]


def _pypi_files(name: str, version: str) -> list[dict[str, object]]:
    """The files PyPI lists for NAME==VERSION (its JSON API: filename and digests)."""
    with urllib.request.urlopen(PYPI.format(name=name), timeout=60) as answer:
        files: list[dict[str, object]] = json.load(answer)["releases"].get(version, [])
    return files


def installable(filename: str) -> bool:
    """Whether a Linux CPython 3.11 (x86_64 or aarch64) could install this file."""
    if not filename.endswith(".whl"):
        return filename.endswith((".tar.gz", ".zip"))  # an sdist: any platform
    parts = filename[:-4].split("-")
    pythons, abis, platforms = (set(p.split(".")) for p in parts[-3:])
    linux = any(
        p == "any" or ("linux" in p and (p.endswith("x86_64") or p.endswith("aarch64")))
        for p in platforms
    )
    return linux and bool(abis & _ABIS) and any(_python_ok(p, abis) for p in pythons)


def _python_ok(tag: str, abis: set[str]) -> bool:
    """Whether CPython 3.11 takes a wheel's python tag: py3, py3X (X <= 11), cp311, and
    cp3X (X < 11) with the stable ABI (abi3)."""
    for prefix in ("py3", "cp3"):
        if tag.startswith(prefix):
            minor = tag[len(prefix) :]
            if not minor:
                return prefix == "py3"
            if not minor.isdigit() or int(minor) > 11:
                return False
            return prefix == "py3" or int(minor) == 11 or "abi3" in abis
    return False


def hashed(pins: dict[str, str], fetch: Fetch = _pypi_files) -> str:
    """Requirement lines `name==version --hash=sha256:...` for PINS, sorted."""
    lines = []
    for name, version in sorted(pins.items()):
        digests = sorted(
            {
                str(dict(f["digests"])["sha256"])  # type: ignore[call-overload]
                for f in fetch(name, version)
                if installable(str(f["filename"]))
            }
        )
        if not digests:
            raise ValueError(f"PyPI has no file of {name}=={version} for Linux CPython 3.11")
        hashes = " \\\n".join(f"    --hash=sha256:{d}" for d in digests)
        lines.append(f"{name}=={version} \\\n{hashes}")
    return "\n".join(lines) + "\n"


def parse_lock(path: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    """{name: (version, hashes)} of a lock file written by `hashed`."""
    text = path.read_text().replace("\\\n", " ")
    out = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        name, _, version = words[0].partition("==")
        hashes = tuple(w.removeprefix("--hash=sha256:") for w in words[1:])
        out[_canonical(name)] = (version, hashes)
    return out


IMAGE_LOCKS = (
    # (image directory, distribution, constraints file it takes its versions from)
    ("operator", "portico", "operator/constraints.txt"),
    ("runtime", "portico-runtime", "runtime/constraints.txt"),
    ("standin", "portico-standin", "runtime/constraints.txt"),
)


def image_pins(repo: Path, root: str, source: str) -> dict[str, str]:
    """ROOT's runtime requirements, transitively (as installed here), at SOURCE's versions:
    exactly what its image installs, nothing of another distribution's."""
    pins = parse(repo / source)
    wanted = closure(root)
    missing = sorted(set(wanted) - set(pins))
    if missing:
        raise ValueError(f"{source} pins none of {', '.join(missing)} ({root} needs them)")
    return {name: pins[name] for name in wanted}


def locks(repo: Path) -> Iterable[tuple[Path, str, str, dict[str, str]]]:
    """(lock file, what it is, where its pins come from, the pins) for each lock."""
    for image, root, source in IMAGE_LOCKS:
        what = f"What the {image} image installs"
        yield repo / image / "requirements.lock", what, source, image_pins(repo, root, source)
    yield (
        repo / "build-backend.lock",
        "The build backend the images build their wheels with",
        "BUILD_BACKEND in devtools/portico_dev/constraints.py",
        BUILD_BACKEND,
    )


def lock_hashes(repo: Path, fetch: Fetch = _pypi_files) -> list[Path]:
    """Rewrite the hashed lock files from the constraints files; returns them."""
    written = []
    for path, what, source, pins in locks(repo):
        path.write_text(LOCK_HEADER.format(what=what, source=source) + hashed(pins, fetch))
        written.append(path)
    return written
