"""Invitation watch events -> store and queue: a status-only change queues nothing, a link
Secret and a portal appearing wake the invitation, a deletion forgets it."""

from __future__ import annotations

import copy
from typing import Any

from tests.support.events import operator, portal


def invitation(generation: int = 1, version: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "portico.dev/v1alpha1",
        "kind": "PortalInvitation",
        "metadata": {
            "name": "ann",
            "namespace": "team",
            "uid": "uid-ann",
            "generation": generation,
            "resourceVersion": str(version),
        },
        "spec": {"portalRef": {"name": "web"}, "contact": {"email": "ann@example.com"}},
    }


KEY = ("PortalInvitation", "team", "ann")


def test_a_new_invitation_is_queued_and_its_own_status_patch_is_not() -> None:
    op = operator()
    op.invitation_event("ADDED", invitation())
    assert KEY in op.queue
    op.queue.forget(KEY)
    patched = copy.deepcopy(invitation(version=2))
    patched["status"] = {"state": "Sent"}
    op.invitation_event("MODIFIED", patched)
    assert KEY not in op.queue
    op.invitation_event("MODIFIED", invitation(generation=2, version=3))
    assert KEY in op.queue


def test_the_link_secret_and_the_portal_wake_the_invitation() -> None:
    op = operator()
    op.invitation_event("ADDED", invitation())
    op.queue.forget(KEY)
    secret = {
        "metadata": {
            "name": "ann-link",
            "namespace": "team",
            "resourceVersion": "7",
            "labels": {
                "app.kubernetes.io/managed-by": "portico",
                "portico.dev/invitation": "ann",
            },
            "ownerReferences": [{"uid": "uid-ann", "controller": True}],
        },
        "data": {"link": "aHR0cHM6Ly94L3JlZ2lzdGVyP2ludml0YXRpb249Yw=="},
    }
    op.secret_event("ADDED", secret)
    assert KEY in op.queue
    op.queue.forget(KEY)
    op.portal_event("ADDED", portal())
    assert KEY in op.queue


def test_a_deleted_invitation_is_forgotten() -> None:
    op = operator()
    op.invitation_event("ADDED", invitation())
    op.invitation_event("DELETED", invitation())
    assert KEY not in op.queue
    assert ("team", "ann") not in op.store.invitations
