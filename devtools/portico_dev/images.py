"""Images for the real dev node without a registry: OCI archives written here, imported
into the node's containerd with `ctr -n k8s.io images import`.

The sandbox (pause) image and the `hello` test server are static Go programs from
`images/<name>/` packed into one-layer archives; other builders (the operator and
runtime images) hand their own OCI archives to `import_archive`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from portico_dev.binaries import BuildFailed, cache_root, find_go

SOURCES = Path(__file__).parent / "images"
REPOSITORY = "localhost/portico"
# containerd keeps its image name in this annotation of the OCI index entry.
NAME_ANNOTATION = "io.containerd.image.name"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
NOBODY = 65532


@dataclass(frozen=True)
class Image:
    """A built image: its full reference and the OCI archive that holds it."""

    ref: str
    archive: Path


def _tar_entry(name: str, data: bytes, mode: int) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    info.uid = info.gid = 0
    return info, data


def _tar(entries: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    # Fixed mtimes and order: the same inputs give the same digests.
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_oci_archive(
    path: Path,
    ref: str,
    files: dict[str, tuple[bytes, int]],
    *,
    entrypoint: list[str],
    user: str = f"{NOBODY}:{NOBODY}",
    env: list[str] | None = None,
) -> Path:
    """Write a one-layer image (files: path in image -> (content, mode)) as an OCI archive."""
    layer = _tar([_tar_entry(name, data, mode) for name, (data, mode) in sorted(files.items())])
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": entrypoint, "User": user, "Env": env or []},
        "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]},
    }
    config_blob = json.dumps(config, sort_keys=True).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": _digest(config_blob),
            "size": len(config_blob),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": _digest(layer),
                "size": len(layer),
            }
        ],
    }
    manifest_blob = json.dumps(manifest, sort_keys=True).encode()
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": manifest["mediaType"],
                "digest": _digest(manifest_blob),
                "size": len(manifest_blob),
                "annotations": {NAME_ANNOTATION: ref, REF_ANNOTATION: ref},
            }
        ],
    }
    entries = [
        _tar_entry("oci-layout", b'{"imageLayoutVersion":"1.0.0"}', 0o644),
        _tar_entry("index.json", json.dumps(index, sort_keys=True).encode(), 0o644),
    ]
    for blob in (layer, config_blob, manifest_blob):
        entries.append(_tar_entry(f"blobs/sha256/{_digest(blob)[7:]}", blob, 0o644))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    tmp.write_bytes(_tar(entries))
    os.replace(tmp, path)
    return path


def _source_hash(name: str, go: str) -> str:
    digest = hashlib.sha256()
    version = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False)
    digest.update(version.stdout.encode())
    for path in sorted((SOURCES / name).iterdir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def go_image(name: str) -> Image:
    """Build (or reuse, by source and Go version) images/<name> as a static one-binary image."""
    go = find_go()
    tag = _source_hash(name, go)
    ref = f"{REPOSITORY}/{name}:{tag}"
    out = cache_root() / "images" / f"{name}-{tag}"
    archive = out / f"{name}.oci.tar"
    if archive.is_file():
        return Image(ref, archive)
    out.mkdir(parents=True, exist_ok=True)
    binary = out / name
    env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOWORK": "off"}
    cmd = [go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(binary), "."]
    result = subprocess.run(
        cmd, cwd=SOURCES / name, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BuildFailed(f"building image {name} failed: {result.stderr.strip()}")
    files = {name: (binary.read_bytes(), 0o755)}
    write_oci_archive(archive, ref, files, entrypoint=[f"/{name}"])
    return Image(ref, archive)


def pause_image() -> Image:
    return go_image("pause")


def hello_image() -> Image:
    return go_image("hello")


def import_archive(ctr: list[str], archive: Path) -> None:
    """Load an OCI archive into the node's containerd, where the kubelet's CRI sees it.

    `ctr` is the command prefix that reaches that containerd (see RealNode.ctr).
    Pods use the image with imagePullPolicy Never or IfNotPresent: there is no registry.
    """
    cmd = [*ctr, "-n", "k8s.io", "images", "import", str(archive)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        detail = result.stderr.strip() or result.stdout.strip()
        raise RuntimeError(f"importing {archive} into containerd failed: {detail}")
