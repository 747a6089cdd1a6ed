"""`portico dev images`: the images a real node runs, built here without a registry or daemon.

- `base`: Debian bookworm with Python 3.11, made by mmdebstrap from Debian's
  packages and written as a one-layer OCI archive (`oci.py`).
- `operator`, `runtime` and `standin`: built by buildah (vfs storage, chroot
  isolation, no daemon) from `operator/Dockerfile`, `runtime/Dockerfile` and
  `standin/Dockerfile` themselves, with their `PYTHON_IMAGE` build argument pointed
  at the base archive. Python packages come from PyPI at the versions in the
  constraints files. `standin` (the stand-in instance) is for tests and demos only.

Each archive is cached as `~/.cache/portico/images/<name>-<key>.oci.tar`, where
the key hashes every input (recipe, Dockerfile, build context, base key), and
is importable with `ctr -n k8s.io images import`: its manifest is named both
`localhost/portico/<name>:<key12>` and `localhost/portico/<name>:dev`.
"""

from __future__ import annotations

import fcntl
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from portico_dev import binaries, oci
from portico_dev.binaries import Progress

REPO = Path(__file__).resolve().parents[2]
REGISTRY = "localhost/portico"
DEV_TAG = "dev"
SUITE, MIRROR = "bookworm", "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates")
# A fixed SOURCE_DATE_EPOCH: file and image timestamps never differ between two builds.
EPOCH = 1700000000
MMDEBSTRAP_OPTIONS = (
    "--variant=minbase",
    "--mode=root",
    "--format=tar",
    # merged /usr done by mmdebstrap itself (no usrmerge, so no perl in the image).
    "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
    "--skip=output/dev",
    '--aptopt=APT::Install-Recommends "false"',
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
)
BASE_CONFIG = {
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"],
    "Cmd": ["python3"],
}
# Built from a Dockerfile with the repository root as context, and the command that
# shows the image runs at all (run as the image's own user).
DOCKERFILES = {
    "operator": ("operator/Dockerfile", ["portico", "--help"]),
    "runtime": ("runtime/Dockerfile", ["portico-runtime", "--help"]),
    # The stand-in instance, for the real-node tier and `make demo-real` only.
    "standin": ("standin/Dockerfile", ["portico-standin", "--help"]),
}
NAMES = ("base", *DOCKERFILES)
# The host's CA bundle, mounted (never copied) into RUN steps so pip trusts what the host does.
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
PRUNE_AFTER_DAYS = 7


class ImageBuildFailed(RuntimeError):
    """A build step failed; the message names the command and its log."""


@dataclass(frozen=True)
class Image:
    name: str
    key: str
    archive: Path

    @property
    def ref(self) -> str:
        """The content-addressed reference: a new build of other inputs never reuses it."""
        return f"{REGISTRY}/{self.name}:{self.key[:12]}"

    @property
    def refs(self) -> list[str]:
        return [self.ref, f"{REGISTRY}/{self.name}:{DEV_TAG}"]

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "ref": self.ref, "refs": self.refs, "archive": str(self.archive)}


def images_dir() -> Path:
    return binaries.cache_root() / "images"


def _hash(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def base_key() -> str:
    recipe = [SUITE, MIRROR, BASE_PACKAGES, MMDEBSTRAP_OPTIONS, EPOCH, BASE_CONFIG, oci.FORMAT]
    return _hash(json.dumps(recipe, sort_keys=True).encode())


def context_files(dockerfile: str) -> list[Path]:
    """The files the Dockerfile's build sees: its `<Dockerfile>.dockerignore` allow-list.

    The ignore files here use one form: `*`, then `!path` to send, then patterns to
    leave out again; anything else is refused rather than guessed.
    """
    lines = [
        line.strip()
        for line in (REPO / f"{dockerfile}.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    if not lines or lines[0] != "*":
        raise ImageBuildFailed(f"{dockerfile}.dockerignore must start with '*' (an allow-list)")
    allow = [line[1:].rstrip("/") for line in lines[1:] if line.startswith("!")]
    deny = [line for line in lines[1:] if not line.startswith("!")]
    files: list[Path] = []
    for entry in allow:
        path = REPO / entry
        candidates = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in candidates:
            rel = file.relative_to(REPO).as_posix()
            if not any(_denied(rel, pattern) for pattern in deny):
                files.append(file)
    return files


def _denied(rel: str, pattern: str) -> bool:
    if pattern.startswith("**/"):
        tail = pattern[3:]
        return any(fnmatch.fnmatch(part, tail) for part in rel.split("/")) or fnmatch.fnmatch(
            rel.rsplit("/", 1)[-1], tail
        )
    return fnmatch.fnmatch(rel, pattern) or rel.startswith(pattern.rstrip("/") + "/")


def dockerfile_key(name: str) -> str:
    dockerfile, _ = DOCKERFILES[name]
    parts = [base_key().encode(), (REPO / dockerfile).read_bytes()]
    for file in context_files(dockerfile):
        mode = "x" if os.access(file, os.X_OK) else "-"
        parts += [f"{file.relative_to(REPO).as_posix()} {mode}".encode(), file.read_bytes()]
    return _hash(*parts)


def plan() -> list[Image]:
    """Every image with the key of its current inputs, in build order."""
    directory = images_dir()
    keys = {"base": base_key(), **{name: dockerfile_key(name) for name in DOCKERFILES}}
    return [Image(name, keys[name], directory / f"{name}-{keys[name]}.oci.tar") for name in NAMES]


def _fmt(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _run(
    cmd: list[str], log: Path, what: str, progress: Progress, env: dict[str, str] | None = None
) -> None:
    """Run CMD with its output in LOG, saying every 30 s that it still runs."""
    started = time.monotonic()
    done = threading.Event()

    def ticker() -> None:
        while not done.wait(30):
            progress(f"  ... still {what} ({_fmt(time.monotonic() - started)})")

    thread = threading.Thread(target=ticker, daemon=True)
    thread.start()
    try:
        with log.open("a") as out:
            out.write(f"$ {' '.join(cmd)}\n")
            out.flush()
            code = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    finally:
        done.set()
        thread.join()
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise ImageBuildFailed(
            f"{what} failed (exit {code}): {' '.join(cmd)}\nlast lines of {log}:\n{tail}"
        )


def _tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else "")
    if not path:
        raise ImageBuildFailed(
            f"{name} is not installed; `bash .ci/install-system-packages` installs it "
            "(Debian packages mmdebstrap and buildah)"
        )
    return path


def _build_base(image: Image, work: Path, log: Path, progress: Progress) -> None:
    rootfs = work / "rootfs.tar"
    cmd = [_tool("mmdebstrap"), *MMDEBSTRAP_OPTIONS, f"--include={','.join(BASE_PACKAGES)}"]
    cmd += [SUITE, str(rootfs), MIRROR]
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(EPOCH)}
    _run(cmd, log, "making the Debian root filesystem (mmdebstrap)", progress, env=env)
    progress("  writing the base OCI archive")
    oci.write_image(rootfs, image.archive, BASE_CONFIG, image.refs)


class _Buildah:
    """buildah with storage of its own under the cache (vfs: no kernel overlay needed)."""

    def __init__(self, root: Path, log: Path, progress: Progress) -> None:
        self.base = [_tool("buildah"), "--root", str(root / "root"), "--runroot", str(root / "run")]
        self.base += ["--storage-driver", "vfs"]
        self.log, self.progress = log, progress

    def __call__(self, what: str, *args: str) -> None:
        _run([*self.base, *args], self.log, what, self.progress)

    def output(self, *args: str) -> str:
        return subprocess.run(
            [*self.base, *args], check=True, capture_output=True, text=True
        ).stdout.strip()

    def clean(self) -> None:
        subprocess.run([*self.base, "rm", "--all"], capture_output=True, check=False)
        subprocess.run([*self.base, "rmi", "--all", "--force"], capture_output=True, check=False)


def _build_dockerfile(image: Image, base: Image, work: Path, log: Path, progress: Progress) -> None:
    dockerfile, smoke = DOCKERFILES[image.name]
    buildah = _Buildah(images_dir() / "buildah", log, progress)
    buildah.clean()  # whatever an interrupted build left
    build = ["build", "--isolation", "chroot", "--format", "oci", "--pull-never"]
    build += ["--timestamp", str(EPOCH), "--layers=false", "-f", dockerfile]
    build += ["--ignorefile", f"{dockerfile}.dockerignore", "-t", image.ref]
    build += ["--build-arg", f"PYTHON_IMAGE=oci-archive:{base.archive}:{base.ref}"]
    if HOST_CA.is_file():
        build += ["--volume", f"{HOST_CA}:{HOST_CA}:ro"]
    try:
        buildah(f"building {dockerfile} (buildah)", *build, str(REPO))
        progress(f"  checking the image runs: {' '.join(smoke)}")
        container = buildah.output("from", "--pull-never", image.ref)
        buildah(
            f"running {' '.join(smoke)} in the image",
            "run",
            "--isolation",
            "chroot",
            container,
            "--",
            *smoke,
        )
        pushed = work / "pushed.oci.tar"
        buildah("writing the OCI archive", "push", image.ref, f"oci-archive:{pushed}")
        oci.rename(pushed, image.archive, image.refs)
    finally:
        buildah.clean()


def _default_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def _lock() -> Iterator[None]:
    # Two builds (a developer and CI, or two test sessions) must not share buildah's storage.
    directory = images_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build(
    progress: Progress | None = None, *, force: bool = False, only: tuple[str, ...] = ()
) -> list[Image]:
    """Build whatever is not cached (ONLY: these and what they need); returns every image."""
    report = progress or _default_progress
    images = plan()
    wanted = set(only or NAMES) | {"base"}
    with _lock():
        for stale in images_dir().glob("work-*"):  # an interrupted build's (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        base = images[0]
        for image in images:
            if image.name not in wanted:
                continue
            if image.archive.is_file() and not force:
                report(f"{image.name}: cached {image.archive.name} ({image.ref})")
                image.archive.touch()  # in use: keep it from being pruned
                continue
            started = time.monotonic()
            report(f"{image.name}: building {image.ref}")
            log = images_dir() / f"{image.name}.log"
            log.write_text("")
            with tempfile.TemporaryDirectory(dir=images_dir(), prefix="work-") as tmp:
                if image.name == "base":
                    _build_base(image, Path(tmp), log, report)
                else:
                    _build_dockerfile(image, base, Path(tmp), log, report)
            size = image.archive.stat().st_size / 2**20
            took = _fmt(time.monotonic() - started)
            report(f"{image.name}: built {image.archive.name} ({size:.0f} MiB) in {took}")
        _prune(images)
    return [image for image in images if image.name in wanted]


def _prune(current: list[Image]) -> None:
    """Archives unused for a week go. Not at once: other checkouts (other keys) share the cache."""
    keep = {image.archive.name for image in current}
    cutoff = time.time() - PRUNE_AFTER_DAYS * 86400
    for path in images_dir().glob("*.oci.tar"):
        if path.name not in keep and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
