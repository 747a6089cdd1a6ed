"""A notification's marks refused by the API server: never sent twice, never lost.

A real API server does not refuse one chosen status patch on demand; kmock does. The
outbox writes `Sending` before the webhook gets the message and `Sent` after (the record
in status.notifications, controller/notify.py): a refused `Sending` sends nothing and is
tried again; a refused `Sent` is written again later without sending again.
"""

from __future__ import annotations

import base64
import uuid

import kmock
import pytest

from tests.support.apiserver import ApiServer
from tests.support.emulated import (
    NAME,
    PORTALS,
    StartOperator,
    edit_portal,
    status_of,
    wait_for,
)
from tests.support.webhook import running_receiver

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]


def _status_patch_with(api: ApiServer, word: str) -> kmock.View:
    """The first status patch of the Portal whose body has WORD."""
    patches = api["patch"][kmock.resource(PORTALS)][kmock.subresource("status")]
    return patches[lambda request: f'"{word}"' in request.text][:1]


async def test_refused_marks_neither_lose_nor_repeat_a_notification(
    api: ApiServer, start_operator: StartOperator
) -> None:
    key = b"emulated-hmac-key-" + uuid.uuid4().hex.encode()
    api.objects["v1/secrets", "portico-system", "notify-key"] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "notify-key", "namespace": "portico-system", "uid": "k1"},
        "data": {"key": base64.b64encode(key).decode()},
    }
    sending = api.fail(_status_patch_with(api, "Sending"), 500, "InternalError")
    sent = api.fail(_status_patch_with(api, "Sent"), 500, "InternalError")
    with running_receiver() as receiver:
        operator = await start_operator(
            PORTICO_NOTIFICATION_WEBHOOK_URL=receiver.url,
            PORTICO_NOTIFICATION_WEBHOOK_SECRET="portico-system/notify-key",
            PORTICO_NOTIFICATION_RETRY_SECONDS="0.2",
        )
        await wait_for("the first status", lambda: status_of(api).get("phase"))
        await edit_portal(api, NAME, {"metadata": {"generation": 2}, "spec": {"state": "Stopped"}})

        def sent_recorded() -> bool:
            entry = (status_of(api).get("notifications") or {}).get("Stopped") or {}
            return entry.get("webhook") == "Sent"

        await wait_for("the Stopped webhook to be recorded Sent", sent_recorded, timeout=30)
        assert len(sending.hits) == 1 and len(sent.hits) == 1
        # Refused Sending: nothing went out then; refused Sent: not sent again.
        assert [d.json["reason"] for d in receiver.deliveries(NAME)] == ["Stopped"]
        assert key.decode() not in operator.log_text()
        assert "status not written" in operator.log_text()
