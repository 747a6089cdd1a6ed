"""Find or build the control-plane binaries from the pinned Go modules in `gomod/`.

Each subdirectory of `gomod/` is a wrapper module whose go.mod/go.sum pin one
upstream project; the version strings in those go.mod files are the single
source of truth for what gets built and for the cache key.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

GOMOD_DIR = Path(__file__).parent / "gomod"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Target:
    """One `go build` invocation: a wrapper module and the commands it produces."""

    module_dir: str  # subdirectory of gomod/
    upstream: str  # the pinned upstream module (its version names the cache key)
    packages: dict[str, str]  # binary name -> Go package path
    ldflags: tuple[str, ...] = ()
    # Cached apart from the control plane under its own version, so pinning a
    # new Traefik rebuilds only Traefik (and never the Kubernetes binaries).
    own_cache: bool = False
    # Directories of the upstream module copied beside bin/ after the build (e.g. the
    # CRDs a controller needs), as (path in the module, name beside bin/).
    assets: tuple[tuple[str, str], ...] = ()

    @property
    def version(self) -> str:
        return _require_version(self.module_dir, self.upstream)

    @property
    def bin_dir(self) -> Path:
        if self.own_cache:
            return cache_root() / f"{self.module_dir}-{self.version}" / "bin"
        return cache_bin_dir()

    def asset_dir(self, name: str) -> Path:
        return self.bin_dir.parent / name

    @property
    def complete(self) -> bool:
        built = all((self.bin_dir / name).is_file() for name in self.packages)
        return built and all(self.asset_dir(name).is_dir() for _, name in self.assets)


def _require_version(module_dir: str, module: str) -> str:
    text = (GOMOD_DIR / module_dir / "go.mod").read_text()
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", text, re.MULTILINE)
    if not match:
        raise RuntimeError(f"{module} is not pinned in gomod/{module_dir}/go.mod")
    return match.group(1)


def _kube_ldflags(version: str) -> tuple[str, ...]:
    # Without these the binaries report v0.0.0-master, which breaks helm's
    # kubeVersion checks and kubectl's skew warnings.
    major, minor = version.lstrip("v").split(".")[:2]
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return tuple(flags)


def _helm_ldflags(version: str, kube_version: str) -> tuple[str, ...]:
    major, minor = kube_version.lstrip("v").split(".")[:2]
    return (
        f"-X helm.sh/helm/v3/internal/version.version={version}",
        "-X helm.sh/helm/v3/internal/version.gitTreeState=clean",
        f"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor={major}",
        f"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={minor}",
        f"-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor={major}",
        f"-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor={minor}",
    )


def _traefik_ldflags(version: str) -> tuple[str, ...]:
    return (f"-X github.com/traefik/traefik/v3/pkg/version.Version={version}",)


def targets() -> list[Target]:
    """What to build, longest first (so a cold build shows the long pole early).

    The real node's kubelet and kube-proxy come from the same pinned module as
    the control plane but are a target of their own, so adding them to a cache
    that already holds the control plane builds just them.
    """
    kube = _require_version("kubernetes", "k8s.io/kubernetes")
    helm = _require_version("helm", "helm.sh/helm/v3")
    kube_cmds = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
    return [
        Target(
            "kubernetes",
            "k8s.io/kubernetes",
            {name: f"k8s.io/kubernetes/cmd/{name}" for name in kube_cmds},
            _kube_ldflags(kube),
        ),
        Target(
            "kubernetes",
            "k8s.io/kubernetes",
            {name: f"k8s.io/kubernetes/cmd/{name}" for name in NODE_KUBE_BINARIES},
            _kube_ldflags(kube),
        ),
        Target(
            "traefik",
            "github.com/traefik/traefik/v3",
            {"traefik": "github.com/traefik/traefik/v3/cmd/traefik"},
            _traefik_ldflags(_require_version("traefik", "github.com/traefik/traefik/v3")),
            own_cache=True,
        ),
        # The real cert-manager for the control-plane tier's issuerRef tests: upstream's
        # controllers started by our own main (gomod/cert-manager/main.go says why),
        # and the CRDs of the same module.
        Target(
            "cert-manager",
            CERT_MANAGER_MODULE,
            {CERT_MANAGER_BINARY: "."},
            own_cache=True,
            assets=(("deploy/crds", "crds"),),
        ),
        Target("etcd", "go.etcd.io/etcd/server/v3", {"etcd": "go.etcd.io/etcd/server/v3"}),
        Target("kwok", "sigs.k8s.io/kwok", {"kwok": "sigs.k8s.io/kwok/cmd/kwok"}),
        Target(
            "helm",
            "helm.sh/helm/v3",
            {"helm": "helm.sh/helm/v3/cmd/helm"},
            _helm_ldflags(helm, kube),
        ),
    ]


def versions() -> dict[str, str]:
    """Pinned upstream versions, e.g. {"kubernetes": "v1.34.4", ...}."""
    return {t.module_dir: t.version for t in targets()}


NODE_KUBE_BINARIES = ("kubelet", "kube-proxy")
CERT_MANAGER_MODULE = "github.com/cert-manager/cert-manager"
CERT_MANAGER_BINARY = "cert-manager-controller"
# What `portico dev up --real-node` runs besides the control plane.
NODE_BINARIES = (*NODE_KUBE_BINARIES, "traefik")
ALL_BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
    "helm",
)


def versions_key() -> str:
    v = versions()
    return f"k8s-{v['kubernetes']}-etcd-{v['etcd']}-kwok-{v['kwok']}-helm-{v['helm']}"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "portico"


def cache_bin_dir() -> Path:
    return cache_root() / versions_key() / "bin"


class BinariesMissing(RuntimeError):
    """Some binaries are neither in KUBEBUILDER_ASSETS nor in the build cache."""


class BuildFailed(RuntimeError):
    """`go build` failed; the message carries the command and its output tail."""


def locate(names: tuple[str, ...] = ALL_BINARIES) -> dict[str, Path]:
    """Map each binary to a path: KUBEBUILDER_ASSETS first (envtest convention), then the cache.

    envtest asset directories usually hold only etcd, kube-apiserver and kubectl;
    the rest then come from the cache.
    """
    search = []
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        search.append(Path(assets))
    search.append(cache_bin_dir())
    own = {name: t.bin_dir for t in targets() if t.own_cache for name in t.packages}
    found: dict[str, Path] = {}
    missing = []
    for name in names:
        for directory in [*search, *([own[name]] if name in own else [])]:
            path = directory / name
            if path.is_file() and os.access(path, os.X_OK):
                found[name] = path
                break
        else:
            missing.append(name)
    if missing:
        where = " or ".join(str(d) for d in [*search, *sorted(set(own.values()))])
        raise BinariesMissing(
            f"missing control-plane binaries: {', '.join(missing)} (looked in {where}); "
            "run `portico dev build` to build them from the pinned Go modules"
        )
    return found


def find_go() -> str:
    """The Go toolchain: $GO, then PATH, then the usual install location."""
    for candidate in (os.environ.get("GO"), shutil.which("go"), "/usr/local/go/bin/go"):
        if candidate and Path(candidate).is_file():
            return candidate
    raise BuildFailed(
        "no Go toolchain found (set GO=/path/to/go or put `go` on PATH); "
        "Go 1.26 or newer is needed to build the control-plane binaries"
    )


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    # Two builds of the same key (a developer and CI) must not interleave.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fmt(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _default_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run_go(
    go: str, target: Target, out_dir: Path, progress: Progress, cwd: Path | None = None
) -> None:
    """`go build` TARGET in its wrapper module (or CWD, a prepared copy of it)."""
    env = {
        **os.environ,
        # Never fetch a newer toolchain: only the module proxy is allowed.
        "GOTOOLCHAIN": "local",
        "GOFLAGS": "-trimpath -buildvcs=false -mod=readonly",
        "CGO_ENABLED": "0",
        "GOWORK": "off",
    }
    ldflags = " ".join(("-s", "-w", *target.ldflags))
    # One package: name the output (go would call etcd's "server"); several: a directory.
    (single,) = target.packages if len(target.packages) == 1 else (None,)
    output = str(out_dir / single) if single else f"{out_dir}{os.sep}"
    cmd = [go, "build", f"-ldflags={ldflags}", "-o", output, *target.packages.values()]
    names = ", ".join(target.packages)
    version = _require_version(target.module_dir, target.upstream)
    started = time.monotonic()
    log_path = out_dir / f"{next(iter(target.packages))}.log"
    with log_path.open("w") as log:
        workdir = cwd or GOMOD_DIR / target.module_dir
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        done = threading.Event()

        def ticker() -> None:
            while not done.wait(30):
                progress(f"  ... still building {names} ({_fmt(time.monotonic() - started)})")

        thread = threading.Thread(target=ticker, daemon=True)
        progress(f"building {names} from {target.upstream} {version}")
        thread.start()
        try:
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            done.set()
            thread.join()
    elapsed = _fmt(time.monotonic() - started)
    if code != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise BuildFailed(
            f"building {names} failed after {elapsed} (exit {code}).\n"
            f"command (in {workdir}): {' '.join(cmd)}\n"
            f"last lines of {log_path}:\n{tail}"
        )
    progress(f"built {names} in {elapsed}")


def _copy_assets(go: str, target: Target) -> None:
    """Copy TARGET's assets out of the module cache (where `go build` just put the module)."""
    if not target.assets:
        return
    found = subprocess.run(
        [go, "list", "-m", "-f", "{{.Dir}}", target.upstream],
        cwd=GOMOD_DIR / target.module_dir,
        env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly", "GOWORK": "off"},
        capture_output=True,
        text=True,
    )
    if found.returncode != 0 or not found.stdout.strip():
        raise BuildFailed(f"cannot find {target.upstream} in the module cache: {found.stderr}")
    module = Path(found.stdout.strip())
    for source, name in target.assets:
        partial = target.asset_dir(name).with_name(f"{name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(module / source, partial)
        # The module cache is read-only; the copy must be removable like the rest.
        for path in [partial, *partial.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(target.asset_dir(name), ignore_errors=True)
        os.replace(partial, target.asset_dir(name))


def cert_manager() -> tuple[Path, Path]:
    """The cert-manager controller binary and its CRD directory, or BinariesMissing."""
    target = next(t for t in targets() if t.module_dir == "cert-manager")
    binary = locate((CERT_MANAGER_BINARY,))[CERT_MANAGER_BINARY]
    crds = target.asset_dir("crds")
    if not crds.is_dir():
        raise BinariesMissing(
            f"missing cert-manager's CRDs in {crds}; "
            "run `portico dev build` to build cert-manager from its pinned Go module"
        )
    return binary, crds


def build(progress: Progress | None = None, *, force: bool = False) -> Path:
    """Build whatever is missing from the cache and return the control plane's bin directory.

    Output goes to a staging directory first and is moved in per binary, so an
    interrupted build never leaves a half-written binary in bin/.
    """
    report = progress or _default_progress
    bin_dir = cache_bin_dir()
    with _lock(bin_dir.parent / ".lock"):
        todo = [t for t in targets() if force or not t.complete]
        if not todo:
            return bin_dir
        go = find_go()
        staging = bin_dir.parent / "bin.partial"
        staging.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        for target in todo:
            _run_go(go, target, staging, report)
            target.bin_dir.mkdir(parents=True, exist_ok=True)
            for name in target.packages:
                os.replace(staging / name, target.bin_dir / name)
            _copy_assets(go, target)
        shutil.rmtree(staging, ignore_errors=True)
        report(f"all binaries ready in {bin_dir} ({_fmt(time.monotonic() - started)})")
    return bin_dir


def ensure(progress: Progress | None = None) -> dict[str, Path]:
    """Locate every binary, building the missing ones first."""
    try:
        return locate()
    except BinariesMissing:
        build(progress)
        return locate()


def ensure_node(progress: Progress | None = None) -> dict[str, Path]:
    """Locate the real node's binaries (kubelet, kube-proxy, Traefik), building them if missing."""
    try:
        return locate(NODE_BINARIES)
    except BinariesMissing:
        build(progress)
        return locate(NODE_BINARIES)
