"""Build (once, cached by version) and set up the Pulumi engine for the stacks in stacks/.

Two programs from pinned Go modules, the way `binaries` builds the control plane:
the `pulumi` CLI (gomod/pulumi) and the Kubernetes provider plugin
`pulumi-resource-kubernetes` (gomod/pulumi-kubernetes). Their versions equal the
Python SDKs pinned in pyproject.toml, because the engine loads the provider by
the version the SDK asks for.

The Python language host is not built: the module proxy does not serve it. The
programs run through the Automation API instead, whose inline mode serves the
language runtime from the Python SDK itself (`pulumi up --client=...`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from portico_dev import binaries
from portico_dev.binaries import (
    GOMOD_DIR,
    BinariesMissing,
    Progress,
    Target,
    _default_progress,
    _fmt,
    _lock,
    _require_version,
    _run_go,
)

CLI_MODULE = "github.com/pulumi/pulumi/pkg/v3"
PROVIDER_MODULE = "github.com/pulumi/pulumi-kubernetes/provider/v4"
PROVIDER_CMD = "cmd/pulumi-resource-kubernetes"
# The provider module has no tags of its own, so go.mod pins a pseudo-version;
# this names the release tag at that commit (what the plugin reports).
PROVIDER_RELEASES = {"v4.0.0-20260115033456-f47bc2d6f199": "v4.25.0"}
# Upstream's release build generates these from schema.json and
# terraform-mapping.json (cmd/pulumi-resource-kubernetes/generate.go).
EMBEDDED = {
    "schema.json": "schema-embed.json",
    "terraform-mapping.json": "terraform-mapping-embed.json",
}

BINARIES = ("pulumi", "pulumi-resource-kubernetes")


def cli_version() -> str:
    """The pinned CLI version, e.g. v3.260.0 (= the `pulumi` Python SDK)."""
    return _require_version("pulumi", CLI_MODULE)


def provider_version() -> str:
    """The pinned provider release, e.g. v4.25.0 (= the `pulumi-kubernetes` Python SDK)."""
    pseudo = _require_version("pulumi-kubernetes", PROVIDER_MODULE)
    if pseudo not in PROVIDER_RELEASES:
        raise RuntimeError(
            f"gomod/pulumi-kubernetes pins {PROVIDER_MODULE} {pseudo}; "
            "add the release it stands for to PROVIDER_RELEASES"
        )
    return PROVIDER_RELEASES[pseudo]


def targets() -> list[Target]:
    """What to build, longest first."""
    cli, provider = cli_version(), provider_version()
    return [
        Target(
            "pulumi-kubernetes",
            PROVIDER_MODULE,
            {"pulumi-resource-kubernetes": f"./{PROVIDER_CMD}"},
            (f"-X {PROVIDER_MODULE}/pkg/version.Version={provider.lstrip('v')}",),
        ),
        Target(
            "pulumi",
            CLI_MODULE,
            {"pulumi": f"{CLI_MODULE}/cmd/pulumi"},
            # Without it `pulumi version` is empty and the Automation API refuses the CLI.
            (f"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version={cli}",),
        ),
    ]


def cache_bin_dir() -> Path:
    return binaries.cache_root() / f"pulumi-{cli_version()}-kubernetes-{provider_version()}" / "bin"


def locate() -> dict[str, Path]:
    """Each engine binary in the cache; BinariesMissing says how to build them."""
    bin_dir = cache_bin_dir()
    found = {name: bin_dir / name for name in BINARIES}
    missing = [n for n, p in found.items() if not (p.is_file() and os.access(p, os.X_OK))]
    if missing:
        raise BinariesMissing(
            f"missing Pulumi engine binaries: {', '.join(missing)} (looked in {bin_dir}); "
            "run `portico dev build --with-pulumi` to build them from the pinned Go modules"
        )
    return found


def _module_dir(go: str, module: str, version: str, cwd: Path) -> Path:
    out = subprocess.run(
        [go, "mod", "download", "-json", f"{module}@{version}"],
        cwd=cwd,
        env={**os.environ, "GOTOOLCHAIN": "local", "GOWORK": "off", "GOFLAGS": "-mod=readonly"},
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise binaries.BuildFailed(f"go mod download {module}@{version}:\n{out.stdout}{out.stderr}")
    return Path(json.loads(out.stdout)["Dir"])


def _provider_source(go: str, work: Path) -> Path:
    """A copy of gomod/pulumi-kubernetes with the files upstream's main embeds."""
    src = work / "src-pulumi-kubernetes"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(GOMOD_DIR / "pulumi-kubernetes", src)
    pseudo = _require_version("pulumi-kubernetes", PROVIDER_MODULE)
    upstream = _module_dir(go, PROVIDER_MODULE, pseudo, src) / PROVIDER_CMD
    for source, embedded in EMBEDDED.items():
        data = json.loads((upstream / source).read_text())
        if source == "schema.json":
            data["version"] = provider_version().lstrip("v")
        (src / PROVIDER_CMD / embedded).write_text(json.dumps(data, separators=(",", ":")))
    return src


def build(progress: Progress | None = None, *, force: bool = False) -> Path:
    """Build whatever engine binary is missing from the cache; return the bin directory."""
    report = progress or _default_progress
    bin_dir = cache_bin_dir()
    with _lock(bin_dir.parent / ".lock"):
        todo = [
            t for t in targets() if force or not all((bin_dir / n).is_file() for n in t.packages)
        ]
        if not todo:
            return bin_dir
        go = binaries.find_go()
        staging = bin_dir.parent / "bin.partial"
        staging.mkdir(parents=True, exist_ok=True)
        bin_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        for target in todo:
            cwd = (
                _provider_source(go, staging) if target.module_dir == "pulumi-kubernetes" else None
            )
            _run_go(go, target, staging, report, cwd=cwd)
            for name in target.packages:
                os.replace(staging / name, bin_dir / name)
        shutil.rmtree(staging, ignore_errors=True)
        report(f"Pulumi engine ready in {bin_dir} ({_fmt(time.monotonic() - started)})")
    return bin_dir


def ensure(progress: Progress | None = None) -> dict[str, Path]:
    try:
        return locate()
    except BinariesMissing:
        build(progress)
        return locate()


def offline_env(home: Path, backend: Path, passphrase: str) -> dict[str, str]:
    """Environment for the engine: local file backend, passphrase secrets, no network.

    Plugins come only from HOME's plugin directory (see `install_provider`), never
    from PATH or a download.
    """
    return {
        "PULUMI_HOME": str(home),
        "PULUMI_BACKEND_URL": backend.as_uri(),
        "PULUMI_CONFIG_PASSPHRASE": passphrase,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
        "PULUMI_SKIP_CONFIRMATIONS": "true",
        "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
    }


def install_provider(bins: dict[str, Path], env: dict[str, str]) -> None:
    """`pulumi plugin install --file`: the locally built provider, under its release version."""
    version = provider_version()
    cmd = [str(bins["pulumi"]), "plugin", "install", "resource", "kubernetes", version]
    cmd += ["--file", str(bins["pulumi-resource-kubernetes"])]
    result = subprocess.run(
        cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stdout}{result.stderr}")
