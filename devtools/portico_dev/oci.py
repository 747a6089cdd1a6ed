"""OCI image archives (an OCI image layout in a tar), as `ctr images import` and buildah read them.

Written by hand for the base image (a root filesystem tar → one gzip layer) and
used to name the manifests of buildah's archives, so containerd imports them
under the intended reference without a `--base-name`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Bumped when what this module writes changes, so cached archives are made anew.
FORMAT = 2
LAYOUT = {"imageLayoutVersion": "1.0.0"}
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
# containerd names an imported image after this annotation; OCI's own selects one image
# of several in `oci-archive:PATH:NAME` (buildah, skopeo), and holds the full name as theirs do.
CONTAINERD_NAME = "io.containerd.image.name"
REF_NAME = "org.opencontainers.image.ref.name"
_CHUNK = 1 << 20


def _blob(data: bytes) -> tuple[str, int]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), len(data)


def _descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    digest, size = _blob(data)
    return {"mediaType": media_type, "digest": digest, "size": size}


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def index_entries(manifest: dict[str, Any], names: Iterable[str]) -> list[dict[str, Any]]:
    """One index entry per name, all pointing at the same manifest."""
    return [{**manifest, "annotations": {CONTAINERD_NAME: n, REF_NAME: n}} for n in names]


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def gzip_layer(rootfs_tar: Path, out: Path) -> tuple[str, str, int]:
    """Compress a tar reproducibly (no name, mtime 0); returns (diff_id, digest, size)."""
    diff, blob = hashlib.sha256(), hashlib.sha256()

    class _Tee(io.RawIOBase):
        def __init__(self, sink: io.BufferedWriter) -> None:
            self.sink = sink

        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            blob.update(b)
            return self.sink.write(b)

    with rootfs_tar.open("rb") as src, out.open("wb") as sink:
        tee = _Tee(sink)
        with gzip.GzipFile(filename="", mode="wb", fileobj=tee, mtime=0, compresslevel=6) as gz:
            while chunk := src.read(_CHUNK):
                diff.update(chunk)
                gz.write(chunk)
    return "sha256:" + diff.hexdigest(), "sha256:" + blob.hexdigest(), out.stat().st_size


def write_image(rootfs_tar: Path, out: Path, image_config: dict[str, Any], names: list[str]) -> str:
    """A one-layer OCI archive from a root filesystem tar; returns the manifest digest."""
    staging = out.with_name(out.name + ".layer")
    try:
        diff_id, layer_digest, layer_size = gzip_layer(rootfs_tar, staging)
        config = _json(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": image_config,
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            }
        )
        layer = {"mediaType": LAYER_GZIP, "digest": layer_digest, "size": layer_size}
        manifest = _json(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": _descriptor(CONFIG, config),
                "layers": [layer],
            }
        )
        desc = _descriptor(MANIFEST, manifest)
        index = {"schemaVersion": 2, "manifests": index_entries(desc, names)}
        partial = out.with_name(out.name + ".partial")
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            _add(tar, "oci-layout", _json(LAYOUT))
            _add(tar, "index.json", _json(index))
            _add(tar, f"blobs/sha256/{desc['digest'][7:]}", manifest)
            _add(tar, f"blobs/sha256/{_blob(config)[0][7:]}", config)
            info = tarfile.TarInfo(f"blobs/sha256/{layer_digest[7:]}")
            info.size, info.mode, info.mtime = layer_size, 0o644, 0
            with staging.open("rb") as blob:
                tar.addfile(info, blob)
        os.replace(partial, out)
        return str(desc["digest"])
    finally:
        staging.unlink(missing_ok=True)


def read_index(archive: Path) -> dict[str, Any]:
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        if member is None:
            raise ValueError(f"{archive} has no index.json: not an OCI archive")
        index: dict[str, Any] = json.load(member)
        return index


def rename(archive: Path, out: Path, names: list[str]) -> str:
    """Copy ARCHIVE to OUT with its single manifest named NAMES; returns the manifest digest."""
    index = read_index(archive)
    manifests = index.get("manifests") or []
    if len({m["digest"] for m in manifests}) != 1:
        raise ValueError(f"{archive}: expected one manifest, found {len(manifests)}")
    desc = {k: v for k, v in manifests[0].items() if k != "annotations"}
    index["manifests"] = index_entries(desc, names)
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(archive) as src, tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as dst:
        for member in src:
            if member.name.lstrip("./") == "index.json":
                _add(dst, "index.json", _json(index))
            elif member.isfile():
                data = src.extractfile(member)
                assert data is not None
                dst.addfile(member, data)
            else:
                dst.addfile(member)
    os.replace(partial, out)
    return str(desc["digest"])


def image_config(archive: Path) -> dict[str, Any]:
    """The runtime config (User, Entrypoint, Env, ...) of the archive's first manifest."""
    with tarfile.open(archive) as tar:

        def blob(digest: str) -> Any:
            member = tar.extractfile(f"blobs/sha256/{digest.split(':', 1)[1]}")
            assert member is not None, digest
            return json.load(member)

        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        manifest = blob(index["manifests"][0]["digest"])
        config: dict[str, Any] = blob(manifest["config"]["digest"]).get("config") or {}
        return config


def files(archive: Path) -> set[str]:
    """Every path in the image's filesystem (its layers, first manifest), without a leading
    `./` or `/`; a path a later layer deletes (`.wh.` whiteout) is left out."""
    paths: set[str] = set()
    with tarfile.open(archive) as tar:

        def blob(digest: str) -> bytes:
            member = tar.extractfile(f"blobs/sha256/{digest.split(':', 1)[1]}")
            assert member is not None, digest
            return member.read()

        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        manifest = json.loads(blob(index["manifests"][0]["digest"]))
        for layer in manifest["layers"]:
            data = blob(layer["digest"])
            # gzip or plain tar, whatever the media type says: "r:*" reads both.
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as layer_tar:
                for member in layer_tar:
                    path = member.name.removeprefix("./").lstrip("/")
                    directory, _, name = path.rpartition("/")
                    if name.startswith(".wh."):
                        gone = f"{directory}/{name[4:]}" if directory else name[4:]
                        paths = {p for p in paths if p != gone and not p.startswith(gone + "/")}
                    elif path:
                        paths.add(path)
    return paths


def copy(src: Path, dst: Path) -> None:
    partial = dst.with_name(dst.name + ".partial")
    shutil.copyfile(src, partial)
    os.replace(partial, dst)
