"""The OCI archives the real dev node imports: layout, digests, reproducibility."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from portico_dev import forward, images


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def _blob(members: dict[str, bytes], digest: str) -> bytes:
    data = members[f"blobs/sha256/{digest.removeprefix('sha256:')}"]
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    return data


def test_archive_is_an_oci_layout_that_names_the_image(tmp_path: Path) -> None:
    ref = "localhost/portico/tool:abc"
    files = {"tool": (b"#!/bin/true\n", 0o755)}
    archive = images.write_oci_archive(tmp_path / "a.tar", ref, files, entrypoint=["/tool"])
    members = _members(archive)
    assert json.loads(members["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    (entry,) = json.loads(members["index.json"])["manifests"]
    assert entry["annotations"][images.NAME_ANNOTATION] == ref
    manifest = json.loads(_blob(members, entry["digest"]))
    config = json.loads(_blob(members, manifest["config"]["digest"]))
    assert config["config"]["Entrypoint"] == ["/tool"]
    assert config["config"]["User"] == "65532:65532"  # never root
    (layer_desc,) = manifest["layers"]
    layer = _blob(members, layer_desc["digest"])
    assert config["rootfs"]["diff_ids"] == [layer_desc["digest"]]  # uncompressed layer
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        (member,) = tar.getmembers()
        assert (member.name, member.mode, member.uid) == ("tool", 0o755, 0)
        assert tar.extractfile(member).read() == b"#!/bin/true\n"  # type: ignore[union-attr]


def test_same_inputs_give_the_same_bytes(tmp_path: Path) -> None:
    files = {"b": (b"2", 0o644), "a": (b"1", 0o755)}
    one = images.write_oci_archive(tmp_path / "1.tar", "x/y:z", files, entrypoint=["/a"])
    two = images.write_oci_archive(
        tmp_path / "2.tar", "x/y:z", dict(reversed(files.items())), entrypoint=["/a"]
    )
    assert one.read_bytes() == two.read_bytes()


def test_relay_rules_round_trip() -> None:
    source = forward.Endpoint("host", "127.0.0.1", 8080)
    target = forward.Endpoint("node", "10.249.0.1", 6443)
    text = forward.rule(source, target)
    assert text == "host:127.0.0.1:8080=node:10.249.0.1:6443"
    left, right = text.split("=")
    assert (forward.Endpoint.parse(left), forward.Endpoint.parse(right)) == (source, target)
