"""Sign-in on the real node: the runtime's pods behind Traefik over HTTPS, contacts in the
stand-in instance's pod, the session keys from the Secret the operator made; a rotation of
those keys reaches the running pods without signing anyone out; then the same portal made
Private refuses a stranger (static files too) and still answers /healthz."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator

import pytest
from itsdangerous import BadSignature, URLSafeTimedSerializer

from tests.support.controlplane import BASE_DOMAIN, Cluster, Operator
from tests.support.portals import portal
from tests.support.realnode import (
    Images,
    Instance,
    RealCluster,
    csrf,
    request,
    session_cookie,
    until,
)

READY_TIMEOUT = 240.0
PASSWORD = "a long enough password"


ROTATE = "portico.dev/rotate-session-keys"
HANDLED = "lastHandledSessionKeysRotation"


def keys(cluster: Cluster, namespace: str) -> list[str]:
    """The session keys the operator keeps in `shop-instance`, oldest first."""
    obj = cluster.get("secret", "shop-instance", namespace) or {}
    raw = (obj.get("data") or {}).get("keys", "")
    return base64.b64decode(raw).decode().split() if raw else []


def signed_with(cookie: str, key: str) -> bool:
    """Whether the session cookie carries KEY's signature (the runtime's serializer)."""
    value = cookie.partition("=")[2]
    try:
        URLSafeTimedSerializer([key], salt="portico-session").loads(value)
    except BadSignature:
        return False
    return bool(value)


@pytest.fixture(scope="module")
def operator(
    real_cluster: RealCluster,
    portico_images: Images,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator]:
    plane = real_cluster.plane
    op = Operator(
        plane,
        plane.kubeconfig,
        tmp_path_factory.mktemp("operator-signin"),
        netns=real_cluster.node.netns,  # where the instance's ClusterIP answers (its tokens)
        PORTICO_RUNTIME_IMAGE=portico_images.runtime,
        PORTICO_IMAGE_PULL_POLICY="Never",
    )
    op.start()
    try:
        yield op
    finally:
        op.stop()


def test_sign_up_and_a_private_site_through_traefik(
    real_cluster: RealCluster, operator: Operator, crm: Instance
) -> None:
    cluster = Cluster(real_cluster.plane)
    namespace = f"signin-{uuid.uuid4().hex[:6]}"
    real_cluster.kubectl("create", "namespace", namespace)
    real_cluster.plane.wait_for_service_account(namespace, "default")
    # No session keys from the test: the operator makes them.
    auth = {"localSignIn": True, "registration": "Open"}
    doc = portal("shop", namespace, crm.name, type="Production", authentication=auth)
    cluster.apply(doc)
    host = f"{doc['spec']['subdomain']}.{BASE_DOMAIN}"
    https = real_cluster.https
    try:
        cluster.wait_phase(namespace, "shop", "Ready", timeout=READY_TIMEOUT)
        page = until(
            "the sign-up page from the runtime",
            lambda: (
                (a := request(https, host, "GET", "/signup")).status == 200
                and "csrf" in a.body
                and a
            ),
            timeout=60,
        )
        cookie = session_cookie(page)
        assert cookie, page.headers
        assert all(
            word in page.headers["set-cookie"] for word in ("Secure", "HttpOnly", "SameSite=Lax")
        )
        form = {"csrf": csrf(page), "email": "ada@example.com", "password": PASSWORD}
        done = request(https, host, "POST", "/signup", cookie, form)
        assert done.status == 303 and done.headers["location"] == "/profile", done.body[:500]
        cookie = session_cookie(done) or cookie
        profile = request(https, host, "GET", "/profile", cookie)
        assert profile.status == 200 and "ada@example.com" in profile.body
        assert "<li>Authenticated</li>" in profile.body
        (first,) = keys(cluster, namespace)
        assert signed_with(cookie, first)

        # A rotation: pods pick up the new key from the mounted file (no restart), sign
        # new sessions with it, and Ada's session, signed with the old key, still holds.
        real_cluster.plane.kubectl(
            "annotate", "portal", "shop", "-n", namespace, f"{ROTATE}=first-rotation"
        )
        until(
            "the rotation to be handled",
            lambda: cluster.portal(namespace, "shop")["status"].get(HANDLED) == "first-rotation",
            timeout=60,
        )
        old, new = keys(cluster, namespace)
        assert old == first and new != first
        until(
            "the pods to sign with the new key (the kubelet updates the mounted file)",
            lambda: signed_with(session_cookie(request(https, host, "GET", "/signin")), new),
            timeout=180,
        )
        kept = request(https, host, "GET", "/profile", cookie)
        assert kept.status == 200 and "ada@example.com" in kept.body

        # Private: a stranger gets only the sign-in pages and /healthz, static files included.
        private = {"visibility": "Private", "private": {"allow": {"emailDomains": ["contoso.com"]}}}
        real_cluster.plane.kubectl(
            "patch", "portal", "shop", "-n", namespace, "--type=merge",
            "-p", json.dumps({"spec": private}),
        )  # fmt: skip
        # Ready for the new generation: its pods alone serve (the old, public ones are gone).
        cluster.wait_phase(namespace, "shop", "Ready", timeout=READY_TIMEOUT)
        refused = until(
            "the private site to refuse a stranger",
            lambda: (a := request(https, host, "GET", "/static/app.css")).status == 303 and a,
            timeout=READY_TIMEOUT,
        )
        assert refused.headers["location"].startswith("/signin")
        assert request(https, host, "GET", "/").status == 303
        assert request(https, host, "GET", "/signin").status == 200
        assert request(https, host, "GET", "/healthz").status == 200
        # Ada's address is not in contoso.com: signed in, she is told she has no access.
        signin = request(https, host, "GET", "/signin")
        fresh = session_cookie(signin)
        form = {"csrf": csrf(signin), "email": "ada@example.com", "password": PASSWORD}
        done = request(https, host, "POST", "/signin", fresh, form)
        assert done.status == 303, done.body[:500]
        denied = request(https, host, "GET", "/", session_cookie(done) or fresh)
        assert denied.status == 403 and "does not have access" in denied.body
    finally:
        real_cluster.plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
