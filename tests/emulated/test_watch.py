"""A watch that ends or fails does not leave portals unreconciled.

kmock ends the operator's live Portal watch on demand: cleanly (as a server
timeout or a proxy does), with ERROR 410 Gone first (what a real server sends
when the resource version is too old), or by failing the stream, which kmock
reports as an ERROR event with code 500 (Kopf alone would stop the operator
on that; Portico's watch guard lists again). Resync stays at 300 s, so within
these tests only a working watch can bring a change in: an edit of the known
portal and a portal created after the drop (which no timer knows about).
"""

from __future__ import annotations

import json

import kmock
import pytest

from tests.support.apiserver import ApiServer
from tests.support.emulated import (
    NAME,
    NAMESPACE,
    PORTALS,
    StartOperator,
    create_portal,
    edit_portal,
    portal,
    quiet,
    status_of,
    stored,
    wait_for,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]
NEW_NAME = "Help Centre (after the drop)"


async def change_and_expect_it_reconciled(api: ApiServer) -> None:
    await edit_portal(api, NAME, {"metadata": {"generation": 2}, "spec": {"displayName": NEW_NAME}})
    await create_portal(api, portal("faq"))

    def display_name() -> str:
        config = stored(api, "v1/configmaps", NAMESPACE, f"{NAME}-config")
        text = (config.get("data") or {}).get("portal.json", "{}")
        return str(json.loads(text).get("portal", {}).get("displayName", ""))

    await wait_for("the edit to reach the ConfigMap", lambda: display_name() == NEW_NAME)
    await wait_for("status of generation 2", lambda: status_of(api).get("observedGeneration") == 2)
    await wait_for("the new portal's status", lambda: status_of(api, "faq").get("phase"))


@pytest.mark.parametrize(
    ("how", "reconnect_fails"),
    [("close", False), ("close", True), ("expire", False)],
    ids=["closed", "closed-then-500", "410-gone"],
)
async def test_change_after_a_dropped_watch_is_reconciled(
    api: ApiServer, start_operator: StartOperator, how: str, reconnect_fails: bool
) -> None:
    await start_operator()
    await wait_for("the portal's status", lambda: status_of(api))
    await quiet(api)
    watches = api[kmock.action.WATCH][kmock.resource(PORTALS)]
    before = len(watches)
    fault = (
        api.fail(watches[before : before + 1], 500, "InternalError") if reconnect_fails else None
    )

    await api.drop_watches(PORTALS, how)
    # Kopf watches again (after one 500, when injected) and the new stream is live; the
    # old one left the bus before it ended, so a listener now is the new one.
    await wait_for(
        "Kopf to watch portals again",
        lambda: api.watchers(PORTALS) and len(watches) > before + bool(fault),
    )
    if fault is not None:
        assert len(fault.hits) == 1
    await quiet(api)  # kmock replays every object to a new watch; let that reconcile pass

    await change_and_expect_it_reconciled(api)


async def test_watch_error_is_survived_by_listing_again(
    api: ApiServer, start_operator: StartOperator
) -> None:
    """Kopf alone ends the operator on an ERROR event other than 410; Portico lists again.

    The ERROR frame here is kmock's own (code 500). Then the first re-list fails
    too (403, as after a permission is revoked; Kopf retries that request): the
    same process must still come back, watch again and reconcile what changed.
    """
    operator = await start_operator()
    await wait_for("the portal's status", lambda: status_of(api))
    await quiet(api)
    lists = api[kmock.action.LIST][kmock.resource(PORTALS)]
    watches = api[kmock.action.WATCH][kmock.resource(PORTALS)]
    listed, watched = len(lists), len(watches)
    forbidden = api.fail(lists[listed : listed + 1], 403, "Forbidden")

    await api.drop_watches(PORTALS, "error")
    await wait_for(
        "Kopf to list and watch portals again",
        lambda: api.watchers(PORTALS) and len(lists) >= listed + 2 and len(watches) > watched,
        timeout=30,
    )
    assert len(forbidden.hits) == 1
    assert operator.returncode() is None, operator.log_text()[-2000:]
    assert "failed (an ERROR event in the watch stream)" in operator.log_text()
    await quiet(api)

    await change_and_expect_it_reconciled(api)
    assert operator.returncode() is None
