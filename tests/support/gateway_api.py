"""The Gateway API route CRDs, pinned: fetched once from the Go module proxy (the module
sigs.k8s.io/gateway-api holds config/crd), checked against a hash, cached beside the
other binaries in ~/.cache/portico."""

from __future__ import annotations

import hashlib
import io
import os
import urllib.request
import zipfile
from pathlib import Path

from portico_dev.binaries import cache_root

MODULE = "sigs.k8s.io/gateway-api"
VERSION = "v1.4.1"
# sha256 of the module zip the proxy serves (module zips are reproducible).
ZIP_SHA256 = "c20dca8192e9c4d3b5045da5df21123a3268910e982c5e056bd0878a06734bb1"
# HTTPRoute and GRPCRoute are in the standard channel; TLSRoute only in the experimental.
FILES = (
    "standard/gateway.networking.k8s.io_httproutes.yaml",
    "standard/gateway.networking.k8s.io_grpcroutes.yaml",
    "experimental/gateway.networking.k8s.io_tlsroutes.yaml",
)
ROUTE_CRDS = tuple(
    f"{kind}.gateway.networking.k8s.io" for kind in ("httproutes", "grpcroutes", "tlsroutes")
)


def proxy() -> str:
    """The first URL in GOPROXY, as the go command would use it, else the public proxy."""
    for entry in os.environ.get("GOPROXY", "").replace("|", ",").split(","):
        if entry.startswith(("https://", "http://")):
            return entry.rstrip("/")
    return "https://proxy.golang.org"


def route_crds() -> list[Path]:
    """The three route CRDs' YAML files, fetching the pinned module the first time."""
    home = cache_root() / f"gateway-api-{VERSION}"
    paths = [home / name for name in FILES]
    if all(p.exists() for p in paths):
        return paths
    url = f"{proxy()}/{MODULE}/@v/{VERSION}.zip"
    with urllib.request.urlopen(url, timeout=120) as response:
        data = response.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != ZIP_SHA256:
        raise AssertionError(f"{url}: sha256 {digest}, expected {ZIP_SHA256}")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name, path in zip(FILES, paths, strict=True):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(archive.read(f"{MODULE}@{VERSION}/config/crd/{name}"))
            tmp.replace(path)
    return paths
