"""A watch that ends or fails does not leave portals unreconciled.

kmock ends the operator's live Portal watch on demand: cleanly (as a server
timeout or a proxy does), with ERROR 410 Gone first (what a real server sends
when the resource version is too old), or by failing the stream, which kmock
reports as an ERROR event with code 500. Resync stays at 300 s, so within
these tests only a working watch can bring a change in: an edit of the known
portal and a portal created after the drop (which no timer knows about).
"""

from __future__ import annotations

import json

import kmock
import pytest

from tests.emulated.apiserver import ApiServer
from tests.emulated.conftest import StartOperator
from tests.emulated.harness import (
    NAME,
    NAMESPACE,
    PORTALS,
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


async def test_watch_error_stops_the_operator_and_its_replacement_catches_up(
    api: ApiServer, start_operator: StartOperator
) -> None:
    """Kopf treats an ERROR event other than 410 as fatal: the process exits, non-zero.

    That is not a stuck operator (the kubelet restarts it), but it is a restart:
    the replacement must pick up what changed while none was running.
    """
    operator = await start_operator()
    await wait_for("the portal's status", lambda: status_of(api))
    await quiet(api)

    await api.drop_watches(PORTALS, "error")
    await wait_for("the operator to exit", lambda: operator.returncode() is not None, timeout=20)
    assert operator.returncode() != 0
    assert "Error in the watch-stream" in operator.log_text()

    await start_operator()
    await change_and_expect_it_reconciled(api)
