"""Interactions on the real node: a contact signs in through the real OpenID provider
(tests/support/oidcprovider.py) on the runtime's pods behind Traefik over HTTPS, reads an
article and searches; the stand-in hub on the host verifies each signature and receives
exactly those interactions, for the contact the provider's user is at the instance. Then,
with the hub slow, a spec edit replaces the runtime pod: the old pod's queue is flushed at
shutdown, within its grace period, and every interaction arrives with the id it was given.

The provider and the hub run on the host's loopback over HTTPS; the pods reach both at the
node's address through relays (`expose_host_port`), and trust both through the instance
credentials' ca.crt, as a company's private CA would be trusted. The provider's issuer is
https://<node address>:<port>/ for the pods and the browser alike: the browser (this test,
on the host) reaches that address on loopback at the same port, as an /etc/hosts line
would send it there (tests/support/oidc.Resolving), checking the certificate for it.

One module, one portal, set up once (real-node tests are slow and serialized).
"""

from __future__ import annotations

import json
import ssl
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest

from portico_dev import node
from portico_dev.procs import free_port
from tests.support import oidcprovider
from tests.support.controlplane import BASE_DOMAIN, Cluster, Operator, wait_for
from tests.support.hub import HubState, running_hub
from tests.support.identity import certificate
from tests.support.oidc import ALICE, Resolving, provider_sign_in
from tests.support.oidcprovider import User
from tests.support.portals import portal, secret
from tests.support.realnode import (
    CREDENTIALS_NAMESPACE,
    INSTANCE_TOKEN,
    Answer,
    Instance,
    RealCluster,
    get_inside,
    instance_docs,
    pods,
    request,
    session_cookie,
    until,
)

READY_TIMEOUT = 240.0
RUNTIME_PODS = "app.kubernetes.io/component=runtime"
GRACE_SECONDS = 30  # the runtime pod's terminationGracePeriodSeconds (Kubernetes' default)
PRE_STOP_SECONDS = 5  # its preStop sleep: SIGTERM, and the flush, come after it
# The hub is slow throughout: 5 s an answer until the old pod is told to stop (however long
# the new pod takes to be ready, the old one still holds most of its queue then), 1 s after
# (the 14 left must fit the 5 s preStop plus the 20 s flush, and some must be left for it).
SLOWER, SLOW = 5.0, 1.0
QUEUED = 14


@dataclass
class Tracked:
    namespace: str
    name: str
    host: str
    hub: HubState
    cookie: str  # the signed-in contact's session
    contact: dict[str, Any]  # that contact at the instance, as the stand-in has it
    issuer: str


@pytest.fixture(scope="module")
def tracked(
    real_cluster: RealCluster,
    operator: Operator,
    crm: Instance,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Tracked]:
    tmp = tmp_path_factory.mktemp("interactions")
    cluster = Cluster(real_cluster.plane)
    # The pods reach the host's loopback only through a relay on the node's address.
    cert, key = certificate(tmp, node.NODE_IP)
    # The provider on the host, at the node's address for the pods (and the browser).
    idp_port = free_port()
    issuer = f"https://{real_cluster.node.expose_host_port(idp_port)}/"
    with running_hub(tls=(cert, key)) as (hub, state):
        address = real_cluster.node.expose_host_port(hub.port)
        state.resource = f"https://{address}"  # what the portal's hubUri says, signed
        # A PortalInstance of the stand-in pod whose credentials carry a private CA: the
        # hub's and the provider's certificate are trusted by the runtime through it.
        instance = f"crm-ca-{uuid.uuid4().hex[:6]}"
        docs = instance_docs(instance, crm.url, INSTANCE_TOKEN)
        docs[0]["stringData"]["ca.crt"] = cert.read_text()
        cluster.apply(*docs)
        namespace = f"track-{uuid.uuid4().hex[:6]}"
        real_cluster.kubectl("create", "namespace", namespace)
        real_cluster.plane.wait_for_service_account(namespace, "default")
        analytics = {
            "customerInsights": {
                "hubUri": state.resource,
                "policyName": state.policy,
                "sharedKeySecretRef": {"name": "insights", "key": "sharedKey"},
                "interactions": ["KnowledgeArticleViewed", "SearchPerformed"],
            }
        }
        doc = portal(
            "help", namespace, instance,
            type="Production",
            runtime={"replicas": 1},  # one old pod: what arrives after its SIGTERM is its flush
            authentication={
                "localSignIn": True,
                "registration": "Open",
                "identityProviders": [{
                    "name": "zitadel",
                    "issuer": issuer,
                    "clientId": oidcprovider.CLIENT_ID,
                    "clientSecretRef": {"name": "zitadel", "key": "clientSecret"},
                }],
            },
            analytics=analytics,
        )  # fmt: skip
        host = f"{doc['spec']['subdomain']}.{BASE_DOMAIN}"
        callback = f"https://{host}/auth/zitadel/callback"  # the runtime's, on its host
        try:
            with oidcprovider.provider(
                tmp, [ALICE], [callback], port=idp_port, issuer=issuer, tls=(cert, key)
            ) as idp:
                cluster.apply(
                    secret("insights", namespace, sharedKey=state.key),
                    secret("zitadel", namespace, clientSecret=idp.client_secret),
                    doc,
                )
                cluster.wait_phase(namespace, "help", "Ready", timeout=READY_TIMEOUT)
                cookie = sign_in(real_cluster.https, host, issuer, cert, ALICE)
                # Who the provider's user is at the instance: asked of the stand-in itself.
                found = get_inside(
                    real_cluster.node,
                    f"{crm.url}/portico/v1/portals/{namespace}/help/contacts?"
                    + urlencode({"email": ALICE.email}),
                    f"Bearer {INSTANCE_TOKEN}",
                )
                yield Tracked(namespace, "help", host, state, cookie, found, issuer)
        finally:
            real_cluster.kubectl("delete", "namespace", namespace, "--wait=false")
            real_cluster.plane.kubectl(
                "delete", "portalinstance", instance, "--wait=false", check=False
            )
            real_cluster.plane.kubectl(
                "delete", "secret", f"{instance}-credentials", "-n", CREDENTIALS_NAMESPACE,
                "--wait=false", check=False,
            )  # fmt: skip


def sign_in(port: int, host: str, issuer: str, ca: Path, user: User) -> str:
    """USER signs in with the provider, as a browser does: the portal sends them to the
    provider, they log in there, the provider sends them back to the portal's callback.
    Their new session cookie."""

    def started() -> Answer | None:
        answer = request(port, host, "GET", "/auth/zitadel/signin")
        return answer if answer.status in (302, 303, 307) else None

    start = until("the portal to send the browser to the provider", started, timeout=60)
    authorize = start.headers["location"]
    assert authorize.startswith(issuer), authorize
    browser = Resolving(urlsplit(issuer).netloc, ssl.create_default_context(cafile=str(ca)))
    back = urlsplit(provider_sign_in(authorize, user, transport=browser))
    assert (back.scheme, back.netloc, back.path) == ("https", host, "/auth/zitadel/callback")
    done = request(port, host, "GET", f"{back.path}?{back.query}", session_cookie(start))
    assert done.status == 303 and done.headers["location"] == "/profile", done.body[:500]
    cookie = session_cookie(done)
    assert cookie
    profile = request(port, host, "GET", "/profile", cookie)
    assert profile.status == 200 and user.email in profile.body
    return cookie


def searches(hub: HubState) -> dict[str, set[str]]:
    """Each search string the hub accepted, with the interaction ids it came with."""
    found: dict[str, set[str]] = defaultdict(set)
    for body in hub.accepted:
        props = body["properties"]
        if body["interactionType"] == "portal_search":
            found[props["searchstring"]].add(props["portal_interactionid"])
    return found


def test_a_signed_in_contact_is_tracked_through_the_real_pods(
    real_cluster: RealCluster, tracked: Tracked
) -> None:
    """The contact the provider's user is at the instance (created there at the first
    sign-in, the provider's identity linked to it) is the one every interaction names."""
    https, host, hub = real_cluster.https, tracked.host, tracked.hub
    # Anonymous: served, never tracked.
    anonymous = request(https, host, "GET", "/knowledge/KA-01001")
    assert anonymous.status == 200 and "How to reset your password" in anonymous.body

    article = request(https, host, "GET", "/knowledge/KA-01001", tracked.cookie)
    assert article.status == 200 and "<h1>How to reset your password</h1>" in article.body
    found = request(https, host, "GET", f"/search?q={quote('reset password')}", tracked.cookie)
    assert found.status == 200 and 'href="/knowledge/KA-01001"' in found.body

    wait_for("the hub to receive the view and the search", lambda: len(hub.accepted) >= 2, 60)
    time.sleep(2)  # and nothing more
    assert hub.refused == []  # every signature and body checked out
    view, search = hub.accepted
    assert view["interactionType"] == "portal_viewknowledgearticle"
    assert view["properties"]["knowledgearticleid"] == "KA-01001"
    assert view["properties"]["knowledgetitle"] == "How to reset your password"
    assert search["interactionType"] == "portal_search"
    assert search["properties"]["searchstring"] == "reset password"
    contact = tracked.contact
    identity = {"issuer": tracked.issuer, "subject": ALICE.id}
    assert contact["email"] == ALICE.email and identity in contact["identities"], contact
    assert view["properties"]["portal_contactid"] == contact["id"]
    assert search["properties"]["portal_contactid"] == contact["id"]
    assert len(hub.accepted_ids()) == 2 and len(hub.attempts) == 2  # once each, no retry
    assert all(e > time.time() for e in hub.expiries)  # short-lived tokens, in UTC seconds


def test_nothing_is_lost_when_the_pod_is_replaced_while_the_hub_is_slow(
    real_cluster: RealCluster, tracked: Tracked
) -> None:
    cluster = Cluster(real_cluster.plane)
    https, host, hub = real_cluster.https, tracked.host, tracked.hub
    (old,) = pods(cluster, tracked.namespace, RUNTIME_PODS)
    hub.script.delay = SLOWER
    wanted = [f"rolling {i}" for i in range(QUEUED)]
    for q in wanted:  # served at once: the pages never wait for the hub
        answer: Answer = request(https, host, "GET", f"/search?q={quote(q)}", tracked.cookie)
        assert answer.status == 200
    assert len(searches(hub).keys() & set(wanted)) < QUEUED // 2  # queued, not yet sent

    edited = time.time()
    patch = {"spec": {"displayName": "Help, rolled"}}  # a new config: new pods
    real_cluster.plane.kubectl(
        "patch", "portal", tracked.name, "-n", tracked.namespace, "--type=merge",
        "-p", json.dumps(patch),
    )  # fmt: skip

    def terminating() -> float | None:
        pod = cluster.get("pod", old["metadata"]["name"], tracked.namespace)
        return time.time() if pod is None or pod["metadata"].get("deletionTimestamp") else None

    deleted = wait_for("the old runtime pod to be told to stop", terminating, READY_TIMEOUT, 0.2)
    hub.script.delay = SLOW
    sigterm = deleted + PRE_STOP_SECONDS  # at the earliest: the old pod's flush starts
    print(f"old pod deleted {deleted - edited:.1f}s after the edit")
    wait_for(
        "every queued search at the hub",
        lambda: set(wanted) <= searches(hub).keys(),
        timeout=PRE_STOP_SECONDS + GRACE_SECONDS + 30,
    )
    arrivals = [
        at
        for body, at in zip(hub.accepted, hub.accepted_at, strict=True)
        if body["properties"].get("searchstring") in wanted
    ]
    late = [at for at in arrivals if at > sigterm]
    assert late, (
        f"the old pod's queue was empty before its SIGTERM (deleted {deleted - edited:.1f}s "
        "after the edit): the flush was not exercised; queue more searches"
    )
    assert max(arrivals) < deleted + GRACE_SECONDS  # the flush ended within the grace period
    ids = searches(hub)
    assert all(len(ids[q]) == 1 for q in wanted)  # at-least-once, one id per interaction
    assert hub.refused == []
    print(f"{len(late)} of {QUEUED} searches were sent by the flush after SIGTERM")

    cluster.wait_phase(tracked.namespace, tracked.name, "Ready", timeout=READY_TIMEOUT)

    # The old pod may still be listed for the rest of its grace period.
    def alone() -> list[dict[str, Any]] | None:
        found = pods(cluster, tracked.namespace, RUNTIME_PODS)
        return found if len(found) == 1 else None

    (new,) = wait_for("the old runtime pod to be gone", alone, GRACE_SECONDS + 30)
    assert new["metadata"]["name"] != old["metadata"]["name"]
