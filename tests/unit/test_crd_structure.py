"""The CRDs are written for people: every field described and bounded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from portico.api import crds


def fields(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from fields(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from fields(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from fields(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("kind", ["Portal", "PortalInstance", "PortalInvitation"])
def test_every_spec_field_is_described_and_bounded(kind: str) -> None:
    spec = crds.schema_for(kind)["properties"]["spec"]
    for path, schema in fields(spec, "spec"):
        assert schema.get("description"), f"{path} has no description"
        if schema.get("type") == "string" and "enum" not in schema:
            assert "maxLength" in schema, f"{path} has no maxLength"
        if schema.get("type") == "array":
            assert "maxItems" in schema, f"{path} has no maxItems"


def test_portal_names_columns_and_status() -> None:
    crd = crds.crd_for("Portal")
    assert crd["spec"]["names"]["shortNames"] == ["ptl"]
    assert crd["spec"]["names"]["categories"] == ["portico"]
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c.get("priority", 0) for c in version["additionalPrinterColumns"]}
    assert columns == {
        "Phase": 0,
        "URL": 0,
        "Type": 0,
        "Template": 0,
        "Age": 0,
        "Reason": 1,
        "State": 1,
        "Maintenance": 1,
    }
    conditions = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"][
        "conditions"
    ]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_instance_is_cluster_scoped() -> None:
    assert crds.crd_for("PortalInstance")["spec"]["scope"] == "Cluster"


def test_invitation_names_columns_and_status() -> None:
    crd = crds.crd_for("PortalInvitation")
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["categories"] == ["portico"]
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [
        c["name"].upper() for c in version["additionalPrinterColumns"] if not c.get("priority")
    ]
    assert columns == ["STATE", "PORTAL", "CONTACT", "REDEEMED", "EXPIRES"]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert status["state"]["enum"] == ["Pending", "Sent", "Redeemed", "Expired", "Revoked"]
    assert "code" not in str(sorted(status)).lower(), "status never has a place for the code"
