"""A 409 or a 500 on a write is retried by the work queue, with backoff, until it lands.

A real API server does not answer a forced server-side apply with 409 Conflict
on demand, nor a status patch with 500; kmock does. Resync is left at 300 s,
so within these tests only the work queue's backoff (or a watch event) can
bring a failed reconcile back. (A 409 on a child's first apply is no fault: that
apply only creates, and its 409 says the name is taken — act.py reads it then.)
"""

from __future__ import annotations

import json

import kmock
import pytest

from portico.core import names, token
from tests.support.apiserver import APPLY, ApiServer
from tests.support.emulated import (
    NAME,
    NAMESPACE,
    PORTALS,
    StartOperator,
    by_operator,
    edit_portal,
    quiet,
    status_of,
    stored,
    wait_for,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]
REASONS = {409: "Conflict", 500: "InternalError"}
KEY = f"('Portal', '{NAMESPACE}', '{NAME}')"


@pytest.mark.parametrize(
    ("apply_fails", "status_fails"),
    [(500, 500), (500, 409)],
    ids=["apply500-status500", "apply500-status409"],
)
async def test_failed_first_apply_and_status_patch_are_retried(
    api: ApiServer, start_operator: StartOperator, apply_fails: int, status_fails: int
) -> None:
    first_apply = api["patch"][{"Content-Type": APPLY}][:1]
    first_status = api["patch"][kmock.resource(PORTALS)][kmock.subresource("status")][:1]
    apply_fault = api.fail(first_apply, apply_fails, REASONS[apply_fails])
    status_fault = api.fail(first_status, status_fails, REASONS[status_fails])
    operator = await start_operator()

    status = await wait_for("the portal's status to be written", lambda: status_of(api))
    assert status["observedGeneration"] == 1
    assert status["phase"] == "Configuring"  # no Deployment controller here: never Available
    for fault in (apply_fault, status_fault):
        assert len(fault.hits) == 1, fault.view
        failed = fault.hits[0]
        again = [
            r for r in api if r.id > failed.id and (r.method, r.url) == (failed.method, failed.url)
        ]
        assert again, f"{failed.method} {failed.url.path} was never sent again"
    child = apply_fault.hits[0]
    assert child.resource is not None and child.name is not None
    applied = stored(api, child.resource, child.namespace, child.name)
    for assigned in ("uid", "creationTimestamp"):  # set by the server on create
        applied["metadata"].pop(assigned)
    refused = json.loads(child.text)
    for meta in (applied["metadata"], refused["metadata"]):  # the create-only version
        meta.pop("resourceVersion", None)
    if child.name.endswith("-instance"):  # the retry carries a new token and session key
        for secret in (applied, refused):
            secret["data"].pop("token")
            secret["data"].pop("keys")
            for key in (token.TOKEN_ID, token.TOKEN_EXPIRES, names.APPLIED_HASH):
                secret["metadata"]["annotations"].pop(key)
    assert applied == refused, "the refused child was not applied on a retry"

    # The work queue said so, and counted: the failed apply is one failed reconcile, whose
    # report in status was refused too; the retry after the backoff wrote both.
    await quiet(api)
    log = operator.log_text()
    assert f"reconcile of {KEY} failed ({apply_fails} " in log, log
    assert f"could not record the failure of support/{NAME} in its status: {status_fails}" in log
    assert "retry 1 in 1s" in log, log
    assert operator.metric("portico_reconcile_errors_total") == 1
    for code in {apply_fails, status_fails}:
        expected = [apply_fails, status_fails].count(code)
        assert operator.metric("portico_api_errors_total", status=str(code)) == expected


async def test_retry_waits_for_the_backoff(api: ApiServer, start_operator: StartOperator) -> None:
    """With nothing else going on, the retry of a failed apply comes after the base delay (1 s)."""
    await start_operator()
    await wait_for("the portal's status", lambda: status_of(api))
    await quiet(api)
    configmaps = api["patch"][kmock.resource("v1/configmaps")]
    seen = len(configmaps)
    fault = api.fail(configmaps[seen : seen + 1], 409, "Conflict")

    await edit_portal(
        api, NAME, {"metadata": {"generation": 2}, "spec": {"displayName": "Help Centre (new)"}}
    )
    failed = (await wait_for("the apply of the edited ConfigMap", lambda: fault.hits))[0]
    await wait_for("the apply to be retried", lambda: [r for r in configmaps if r.id > failed.id])
    # The retry reads from the watch-fed store, so its first request is the apply itself.
    retry = next(r for r in by_operator(configmaps) if r.id > failed.id)
    delay = api.arrivals[retry.id] - api.arrivals[failed.id]
    assert 0.9 <= delay <= 2.5, f"retried after {delay:.2f}s"
    config = stored(api, "v1/configmaps", NAMESPACE, f"{NAME}-config")
    assert json.loads(config["data"]["portal.json"])["portal"]["displayName"] == "Help Centre (new)"
    await wait_for("status of generation 2", lambda: status_of(api).get("observedGeneration") == 2)
