"""What the operator sends: server-side apply for children, merge-patch on /status, Events.

The API server's answers are not the subject here (the control-plane tier has
a real one); the requests are: a real server accepts more than one shape for
most of these, so only the recorded requests show which one the operator uses.
"""

from __future__ import annotations

import json

import pytest

from portico.controller.act import NO_OBJECT_VERSION
from tests.support.apiserver import APPLY, MERGE, ApiServer, body
from tests.support.emulated import (
    INSTANCES,
    NAME,
    NAMESPACE,
    PORTALS,
    StartOperator,
    by_operator,
    quiet,
    status_of,
    stored,
    wait_for,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]

# What a plain portal (no custom domain, no analytics) is made of: resource → kind.
CHILDREN = {
    "v1/secrets": "Secret",
    "v1/configmaps": "ConfigMap",
    "apps/v1/deployments": "Deployment",
    "v1/services": "Service",
    "networking.k8s.io/v1/ingresses": "Ingress",
    "batch/v1/jobs": "Job",
}


async def test_children_are_applied_server_side_and_status_is_merge_patched(
    api: ApiServer, start_operator: StartOperator
) -> None:
    before = stored(api, PORTALS, NAMESPACE, NAME)
    await start_operator()
    await wait_for("the portal's status", lambda: status_of(api).get("phase"))
    await quiet(api)  # the reconciles its own writes trigger are done too
    # Nothing unknown was asked for, nothing refused, and no child's name looked up: a
    # child is created by an apply that names a resourceVersion no object has, which
    # the API server refuses when anything holds the name (tests/controlplane/test_create).
    looked_up = [
        r
        for r in by_operator(api)
        if r.method == "GET" and r.namespace == NAMESPACE and r.resource in CHILDREN
    ]
    assert not looked_up, looked_up
    # The one 404: the reservations' ConfigMap, read once at start (none kept yet).
    assert [e.status for e in api.errors] == [404], api.errors
    writes = [r for r in by_operator(api) if r.method != "GET"]
    # Kopf only watches (no finalizers, no progress annotations): every write is Portico's.
    assert writes == [r for r in api if r.method != "GET"]
    owner = {
        "apiVersion": "portico.dev/v1alpha1",
        "kind": "Portal",
        "name": NAME,
        "uid": before["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }

    applies = [r for r in writes if r.headers.get("Content-Type") == APPLY]
    applied_kinds, created = set(), set()
    for r in applies:
        where = f"{r.method} {r.url.path_qs}"
        resource = next(res for res in CHILDREN if r.resource == res)
        assert r.method == "PATCH", where
        assert r.params == {"fieldManager": "portico", "force": "true"}, where
        assert r.subresource is None, where
        manifest = json.loads(r.text)  # JSON, which is YAML: what the apply content type wants
        assert manifest["kind"] == CHILDREN[resource], where
        assert manifest["apiVersion"] == resource.rsplit("/", 1)[0], where
        meta = manifest["metadata"]
        assert (meta["namespace"], meta["name"]) == (r.namespace, r.name) == (NAMESPACE, r.name)
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "portico", where
        assert meta["labels"]["portico.dev/portal"] == NAME, where
        assert meta["ownerReferences"] == [owner], where
        if (r.resource, r.name) not in created:  # its first apply only creates
            assert meta.get("resourceVersion") == NO_OBJECT_VERSION, where
            created.add((r.resource, r.name))
        applied_kinds.add(manifest["kind"])
    # Never Ready here (no controllers run its pods): no Ingress of its own yet, the page
    # server's route answers for it.
    assert applied_kinds == set(CHILDREN.values()) - {"Ingress"}

    portal_writes = [r for r in writes if r.resource == PORTALS]
    assert portal_writes, "the portal's status was never written"
    for r in portal_writes:
        where = f"{r.method} {r.url.path_qs}"
        assert r.method == "PATCH" and r.subresource == "status", where
        assert (r.namespace, r.name) == (NAMESPACE, NAME), where
        assert r.headers["Content-Type"] == MERGE, where
        assert r.params == {"fieldManager": "portico"}, where
        assert set(body(r)) == {"status"}, where
    after = stored(api, PORTALS, NAMESPACE, NAME)
    assert after["spec"] == before["spec"]
    assert after["metadata"] == before["metadata"]

    rest = [r for r in writes if r not in applies and r not in portal_writes]
    for r in rest:
        where = f"{r.method} {r.url.path_qs}"
        if r.resource == INSTANCES:
            assert r.method == "PATCH" and r.subresource == "status", where
            assert r.headers["Content-Type"] == MERGE, where
            assert set(body(r)) == {"status"}, where
        else:
            assert r.method == "POST" and r.resource == "v1/events", where
            assert r.namespace == NAMESPACE, where
            event = body(r)
            assert event["involvedObject"]["uid"] == before["metadata"]["uid"], where
            assert event["reportingComponent"] == "portico", where
    # A new portal's first Event is its Ready (Configuring has none: the apply started it).
    posted = any(r.resource == "v1/events" for r in rest)
    assert posted == (status_of(api).get("phase") == "Ready"), status_of(api).get("phase")
