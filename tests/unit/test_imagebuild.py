"""The image builder's pure parts: OCI archives, cache keys, build contexts, constraints."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from portico_dev import constraints, imagebuild, oci

ROOT = Path(__file__).resolve().parents[2]


def rootfs(tmp: Path) -> Path:
    path = tmp / "rootfs.tar"
    with tarfile.open(path, "w") as tar:
        data = b"#!/bin/sh\necho hello\n"
        info = tarfile.TarInfo("usr/bin/hello")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    return path


def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def test_write_image_is_a_valid_reproducible_oci_archive(tmp_path: Path) -> None:
    names = ["localhost/portico/base:abc", "localhost/portico/base:dev"]
    first = oci.write_image(rootfs(tmp_path), tmp_path / "a.tar", {"Cmd": ["sh"]}, names)
    second = oci.write_image(rootfs(tmp_path), tmp_path / "b.tar", {"Cmd": ["sh"]}, names)
    assert first == second, "same inputs, same manifest digest"
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    files = members(tmp_path / "a.tar")
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    assert [m["annotations"][oci.CONTAINERD_NAME] for m in index["manifests"]] == names
    assert [m["annotations"][oci.REF_NAME] for m in index["manifests"]] == names
    # Every blob is stored under its own digest, and the manifest points at them.
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert oci._blob(data)[0] == "sha256:" + name.rsplit("/", 1)[1]
    manifest = json.loads(files[f"blobs/sha256/{first[7:]}"])
    assert manifest["layers"][0]["mediaType"] == oci.LAYER_GZIP
    assert oci.image_config(tmp_path / "a.tar") == {"Cmd": ["sh"]}


def test_rename_names_the_manifest_for_containerd(tmp_path: Path) -> None:
    digest = oci.write_image(rootfs(tmp_path), tmp_path / "a.tar", {}, ["x/y:1"])
    renamed = oci.rename(tmp_path / "a.tar", tmp_path / "b.tar", ["localhost/portico/r:2"])
    assert renamed == digest
    index = oci.read_index(tmp_path / "b.tar")
    assert index["manifests"][0]["digest"] == digest
    assert index["manifests"][0]["annotations"][oci.CONTAINERD_NAME] == "localhost/portico/r:2"
    before, after = members(tmp_path / "a.tar"), members(tmp_path / "b.tar")
    assert {k: v for k, v in before.items() if k != "index.json"} == {
        k: v for k, v in after.items() if k != "index.json"
    }


def _layer(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_files_lists_the_filesystem_a_container_would_see(tmp_path: Path) -> None:
    """Across layers, as buildah writes them: a later layer's whiteout deletes a path."""
    lower = _layer({"./usr/bin/hello": b"1", "opt/venv/lib/pkg/__init__.py": b"", "etc/x": b""})
    upper = _layer({"opt/venv/lib/.wh.pkg": b"", "opt/venv/lib/new.py": b""})
    lower = gzip.compress(lower, mtime=0)
    layers = [oci._descriptor(oci.LAYER_GZIP, lower), oci._descriptor("t", upper)]
    manifest = oci._json({"config": oci._descriptor(oci.CONFIG, b"{}"), "layers": layers})
    index = {"manifests": [oci._descriptor(oci.MANIFEST, manifest)]}
    with tarfile.open(tmp_path / "img.tar", "w") as tar:
        for name, data in [
            ("index.json", oci._json(index)),
            *((f"blobs/sha256/{oci._blob(b)[0][7:]}", b) for b in (manifest, lower, upper)),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert oci.files(tmp_path / "img.tar") == {"usr/bin/hello", "etc/x", "opt/venv/lib/new.py"}
    single = oci.write_image(rootfs(tmp_path), tmp_path / "one.tar", {}, ["x/y:1"])
    assert single and "usr/bin/hello" in oci.files(tmp_path / "one.tar")


def context(dockerfile: str) -> set[str]:
    return {p.relative_to(ROOT).as_posix() for p in imagebuild.context_files(dockerfile)}


def test_build_contexts_follow_the_dockerignore_allow_lists() -> None:
    operator = context("operator/Dockerfile")
    assert {"pyproject.toml", "README.md", "operator/requirements.lock"} <= operator
    assert "build-backend.lock" in operator
    assert "crds/portal.yaml" in operator and "operator/portico/cli/__init__.py" in operator
    assert not any("__pycache__" in p or p.startswith("runtime/") for p in operator)
    runtime = context("runtime/Dockerfile")
    assert {"runtime/pyproject.toml", "runtime/requirements.lock", "build-backend.lock"} <= runtime
    assert "runtime/portico_runtime/translations/de-DE.json" in runtime
    assert all(
        p.startswith("runtime/") and "Dockerfile" not in p for p in runtime - {"build-backend.lock"}
    )
    standin = context("standin/Dockerfile")
    assert {"standin/pyproject.toml", "standin/portico_standin/cli.py"} <= standin
    assert all(
        p.startswith("standin/") and "Dockerfile" not in p for p in standin - {"build-backend.lock"}
    )


def test_each_image_is_sent_only_what_it_is_for() -> None:
    """The operator's image never sees the dev cluster, the runtime's never the stand-in:
    each package ships in the image it is for, and nowhere else."""
    operator = context("operator/Dockerfile")
    assert not any("portico_dev" in p or "devcluster" in p or p.startswith("devtools/")
                   for p in operator)  # fmt: skip
    assert not any(p.startswith("standin/") for p in operator)
    runtime = context("runtime/Dockerfile")
    assert not any("portico_standin" in p or p.startswith(("standin/", "devtools/"))
                   for p in runtime)  # fmt: skip
    standin = context("standin/Dockerfile")
    assert not any(p.startswith(("operator/", "devtools/", "runtime/portico_runtime"))
                   for p in standin)  # fmt: skip
    for dockerfile in ("operator/Dockerfile", "runtime/Dockerfile"):
        text = (ROOT / dockerfile).read_text()
        assert "standin" not in text and "portico_dev" not in text, dockerfile


def test_keys_name_the_inputs() -> None:
    plan = imagebuild.plan()
    assert [i.name for i in plan] == ["base", "operator", "runtime", "standin"]
    assert len({i.key for i in plan}) == 4
    assert imagebuild.plan() == plan, "keys are stable"
    for image in plan:
        assert image.archive.name == f"{image.name}-{image.key}.oci.tar"
        assert image.refs == [image.ref, f"localhost/portico/{image.name}:dev"]


def test_a_changed_context_file_changes_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    before = imagebuild.dockerfile_key("runtime")
    operator = imagebuild.dockerfile_key("operator")
    real = Path.read_bytes

    def edited(path: Path) -> bytes:
        data = real(path)
        return data + b"# edit\n" if path.name == "web.py" else data

    monkeypatch.setattr(Path, "read_bytes", edited)
    assert imagebuild.dockerfile_key("runtime") != before
    assert imagebuild.dockerfile_key("operator") == operator, "not in the operator's context"


@pytest.mark.parametrize(
    ("pyproject", "pins"),
    [
        (ROOT / "pyproject.toml", ROOT / "operator" / "constraints.txt"),
        (ROOT / "runtime" / "pyproject.toml", ROOT / "runtime" / "constraints.txt"),
        (ROOT / "standin" / "pyproject.toml", ROOT / "runtime" / "constraints.txt"),
    ],
)
def test_constraints_pin_every_direct_dependency_within_its_range(
    pyproject: Path, pins: Path
) -> None:
    import tomllib

    pinned = constraints.parse(pins)
    for text in tomllib.loads(pyproject.read_text())["project"]["dependencies"]:
        req = Requirement(text)
        key = constraints._canonical(req.name)
        assert key in pinned, f"{req.name} is not pinned in {pins.name}"
        assert req.specifier.contains(pinned[key]), f"{req.name}=={pinned[key]} vs {req}"


def test_the_dockerfiles_install_only_hashed_pins() -> None:
    """Every pip install in an image is --require-hashes from a lock, or the wheel just built
    from no index; wheels are built by the hash-pinned backend without build isolation."""
    for dockerfile, lock in (
        ("operator/Dockerfile", "operator/requirements.lock"),
        ("runtime/Dockerfile", "runtime/requirements.lock"),
        ("standin/Dockerfile", "standin/requirements.lock"),
    ):
        text = (ROOT / dockerfile).read_text()
        assert "ARG PYTHON_IMAGE=" in text and "FROM ${PYTHON_IMAGE}" in text
        commands = [c.strip() for c in text.replace("\\\n", " ").split("&&")]
        installs = [c for c in commands if " install " in f" {c} " and "pip" in c]
        assert any(f"--require-hashes --no-deps -r {lock}" in c for c in installs), dockerfile
        assert any("--require-hashes --no-deps -r build-backend.lock" in c for c in installs)
        for command in installs:
            hashed = "--require-hashes" in command
            built = "--no-index" in command and "/dist/" in command
            assert hashed or built, f"{dockerfile}: {command}"
        wheels = [c for c in commands if "pip wheel" in c]
        assert wheels and all("--no-build-isolation" in c for c in wheels), dockerfile
        assert any(c.split("\n")[0].endswith("pip check") for c in commands), dockerfile


@pytest.mark.parametrize(("image", "root", "source"), constraints.IMAGE_LOCKS)
def test_each_lock_pins_what_its_image_needs_at_the_constraints_versions(
    image: str, root: str, source: str
) -> None:
    locked = constraints.parse_lock(ROOT / image / "requirements.lock")
    assert {k: v for k, (v, _) in locked.items()} == constraints.image_pins(ROOT, root, source)
    for name, (_, hashes) in locked.items():
        assert hashes and all(len(h) == 64 for h in hashes), name


def test_the_build_backend_is_pinned_and_locked() -> None:
    import tomllib

    locked = constraints.parse_lock(ROOT / "build-backend.lock")
    assert {k: v for k, (v, _) in locked.items()} == constraints.BUILD_BACKEND
    for pyproject in ("pyproject.toml", "runtime/pyproject.toml", "standin/pyproject.toml"):
        requires = tomllib.loads((ROOT / pyproject).read_text())["build-system"]["requires"]
        assert requires == [f"hatchling=={constraints.BUILD_BACKEND['hatchling']}"], pyproject


@pytest.mark.parametrize(
    ("filename", "installable"),
    [
        ("cryptography-50.0.2-cp311-abi3-manylinux_2_34_x86_64.whl", True),
        ("cryptography-50.0.2-cp311-abi3-manylinux_2_28_aarch64.whl", True),
        ("cryptography-50.0.2-cp311-abi3-macosx_10_9_universal2.whl", False),
        ("cryptography-50.0.2-cp311-abi3-win_amd64.whl", False),
        ("pyyaml-6.0.4-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", False),
        ("pyyaml-6.0.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", True),
        ("click-8.5.1-py3-none-any.whl", True),
        ("six-1.17.0-py2.py3-none-any.whl", True),
        # The stable ABI of an older CPython installs on 3.11 (argon2-cffi-bindings' only
        # Linux wheels): without its hash pip would fall back to building the sdist.
        ("argon2_cffi_bindings-26.2.0-cp39-abi3-manylinux_2_26_x86_64.whl", True),
        ("x-1.0-cp39-cp39-manylinux_2_17_x86_64.whl", False),
        ("x-1.0-cp312-abi3-manylinux_2_17_x86_64.whl", False),
        ("x-1.0-py312-none-any.whl", False),
        ("click-8.5.1.tar.gz", True),
    ],
)
def test_hashes_cover_the_files_a_linux_cpython_311_may_pick(
    filename: str, installable: bool
) -> None:
    assert constraints.installable(filename) is installable


def test_a_lock_line_has_every_installable_file_hash() -> None:
    files = {
        ("click", "8.5.1"): [
            {"filename": "click-8.5.1-py3-none-any.whl", "digests": {"sha256": "b" * 64}},
            {"filename": "click-8.5.1.tar.gz", "digests": {"sha256": "a" * 64}},
            {"filename": "click-8.5.1-cp311-cp311-win_amd64.whl", "digests": {"sha256": "c" * 64}},
        ]
    }
    text = constraints.hashed({"click": "8.5.1"}, lambda n, v: files[(n, v)])  # type: ignore[arg-type]
    assert (
        text == f"click==8.5.1 \\\n    --hash=sha256:{'a' * 64} \\\n    --hash=sha256:{'b' * 64}\n"
    )
