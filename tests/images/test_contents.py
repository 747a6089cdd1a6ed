"""What ships in which image, read from the OCI archives' own layers: each image carries
the package it is for and nothing of the others (docs/architecture.md, Package layout)."""

from __future__ import annotations

import re

from portico_dev import imagebuild, oci

# Installed packages, wherever the virtualenv puts site-packages.
PACKAGE = re.compile(r"/site-packages/([A-Za-z0-9_]+)/")


def packages(image: imagebuild.Image) -> set[str]:
    return {m.group(1) for path in oci.files(image.archive) if (m := PACKAGE.search(path))}


def test_operator_image_has_the_operator_and_no_dev_cluster(
    built: dict[str, imagebuild.Image],
) -> None:
    files = oci.files(built["operator"].archive)
    assert any(p.endswith("site-packages/portico/cli/__init__.py") for p in files)
    assert any(p.endswith("site-packages/portico/_crds/portal.yaml") for p in files)
    leaked = sorted(p for p in files if "portico_dev" in p or "devcluster" in p)
    assert not leaked, f"the operator image carries the dev cluster: {leaked[:10]}"
    assert {"portico_dev", "portico_runtime", "portico_standin"}.isdisjoint(
        packages(built["operator"])
    )


def test_runtime_image_has_the_runtime_and_no_stand_in(built: dict[str, imagebuild.Image]) -> None:
    files = oci.files(built["runtime"].archive)
    assert any(p.endswith("site-packages/portico_runtime/cli.py") for p in files)
    leaked = sorted(p for p in files if "portico_standin" in p or "portico-standin" in p)
    assert not leaked, f"the runtime image carries the stand-in instance: {leaked[:10]}"
    assert {"portico", "portico_dev", "portico_standin"}.isdisjoint(packages(built["runtime"]))


def test_standin_image_has_only_the_stand_in(built: dict[str, imagebuild.Image]) -> None:
    image = built["standin"]
    assert "portico_standin" in packages(image)
    assert {"portico", "portico_dev", "portico_runtime"}.isdisjoint(packages(image))
    assert oci.image_config(image.archive)["Entrypoint"] == ["portico-standin"]
    uid = oci.image_config(image.archive)["User"].split(":")[0]
    assert uid.isdigit() and int(uid) != 0
