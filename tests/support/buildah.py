"""buildah without a daemon, for the images tier: run an image's archive, read its files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

from portico_dev import imagebuild
from tests.support import tiers


def skip_or_fail(reason: str) -> NoReturn:
    tiers.skip_or_fail(reason, required_by="PORTICO_REQUIRE_IMAGES")


def overlay_works(scratch: Path) -> bool:
    """overlay makes a container in a blink; vfs (a full copy) works everywhere."""
    dirs = {name: scratch / f"ov-{name}" for name in ("lower", "upper", "work", "merged")}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={dirs['lower']},upperdir={dirs['upper']},workdir={dirs['work']}"
    mount = ["mount", "-t", "overlay", "overlay", "-o", options, str(dirs["merged"])]
    if subprocess.run(mount, capture_output=True, check=False).returncode != 0:
        return False
    subprocess.run(["umount", str(dirs["merged"])], capture_output=True, check=False)
    return True


class Buildah:
    """buildah on a storage of this session's own, so it never waits for a build's lock."""

    def __init__(self, root: Path) -> None:
        tool = shutil.which("buildah")
        if tool is None:
            skip_or_fail("buildah is not installed (bash .ci/install-system-packages)")
        self.base = [tool, "--root", str(root / "root"), "--runroot", str(root / "run")]
        self.base += ["--storage-driver", "overlay" if overlay_works(root) else "vfs"]

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.base, *args], capture_output=True, text=True, check=check, timeout=300
        )

    def container(self, image: imagebuild.Image) -> str:
        # The archive names its manifest twice: choose one (as a FROM line does).
        created = self("from", "--pull-never", f"oci-archive:{image.archive}:{image.ref}").stdout
        return created.strip().splitlines()[-1]

    def run_argv(self, container: str, *args: str, mounts: dict[str, str] | None = None,
                 env: dict[str, str] | None = None) -> list[str]:  # fmt: skip
        """The argv of `buildah run`: the image's own user, the host's network (loopback)."""
        argv = [*self.base, "run", "--isolation", "chroot", "--network", "host"]
        for src, dst in (mounts or {}).items():
            argv += ["--volume", f"{src}:{dst}"]
        for key, value in (env or {}).items():
            argv += ["--env", f"{key}={value}"]
        return [*argv, container, "--", *args]
