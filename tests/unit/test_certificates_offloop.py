"""A portal whose certificate is a 4096-bit .pfx is reconciled without stalling the event loop.

Loading a 4096-bit .pfx takes about a second. The reconcile runs as the operator runs it
(`Operator.work`: observe, decide, act in a reconcile thread), against an API that answers
every write, while a heartbeat on the loop measures the longest gap between its beats.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from portico.controller.operator import Operator
from portico.domain import ownership
from portico.settings import Settings
from tests.support.pfx_corpus import server_certificate
from tests.support.runtime import TOKEN, running_instance

HOST = "big.contoso.test"


def big_pfx() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    cert = server_certificate(HOST, key)
    encryption = serialization.BestAvailableEncryption(PASSWORD)
    return pkcs12.serialize_key_and_certificates(b"big", key, cert, None, encryption)


PASSWORD = b"big-pfx-test"
INSTANCE = {
    "apiVersion": "portico.dev/v1alpha1",
    "kind": "PortalInstance",
    "metadata": {"name": "crm", "resourceVersion": "1"},
    "spec": {
        "url": "https://crm.example.net",
        "credentialsSecretRef": {"namespace": "portico-system", "name": "crm-creds"},
        "languages": ["en-US"],
        "administrators": ["jay@contoso.com"],
        "allowedNamespaces": {"from": "All"},
    },
}
PORTAL = {
    "apiVersion": "portico.dev/v1alpha1",
    "kind": "Portal",
    "metadata": {
        "name": "big",
        "namespace": "team",
        "uid": "uid-big",
        "generation": 1,
        "resourceVersion": "2",
        "creationTimestamp": "2026-12-01T00:00:00Z",
    },
    "spec": {
        "displayName": "Big",
        "type": "Production",
        "subdomain": "big",
        "instanceRef": {"name": "crm"},
        "language": "en-US",
        "administrator": "jay@contoso.com",
        "audience": "Customer",
        "template": "Community",
        "customDomain": {"hostname": HOST, "tls": {"pfxSecretRef": {"name": "big-pfx"}}},
    },
    # The CNAME and the TXT record were verified before (DNS is not this test's): the
    # certificate is judged.
    "status": {
        "customDomain": {
            "hostname": HOST,
            "target": "big.portals.example.com",
            "state": "Verified",
            "reason": "CNAMEVerified",
            "message": "verified",
            "ownership": {
                "value": ownership.token("uid-big", HOST),
                "state": "Verified",
                "reason": "OwnershipVerified",
            },
        }
    },
}


def secret(namespace: str, name: str, data: dict[str, bytes]) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v).decode() for k, v in data.items()}
    return {
        "metadata": {"namespace": namespace, "name": name, "resourceVersion": "3"},
        "data": encoded,
    }


class Answering:
    """An API server that finds nothing it is asked for and answers each write with its body."""

    def __init__(self) -> None:
        self.statuses: list[dict[str, Any]] = []

    def get(self, *_: Any) -> None:
        return None

    def list(self, *_: Any) -> list[Any]:
        return []

    def request(self, method: str, path: str, body: Any = None, *_: Any, **__: Any) -> Any:
        if path.endswith("/status"):
            self.statuses.append(body["status"])
            return None  # nothing kept from it: the next reconcile is not this test's
        answer = copy.deepcopy(body)
        answer.setdefault("metadata", {})["resourceVersion"] = "9"
        return answer


def test_4096_bit_conversion_does_not_stall_the_loop() -> None:
    # DNS: a closed port on loopback, answered at once; the verdict remembered stands.
    settings = Settings(dns_nameservers=("127.0.0.1",), dns_port=9, dns_timeout=0.2)
    api = Answering()
    op = Operator.build(settings, api)  # type: ignore[arg-type]
    with running_instance() as (url, _):  # the portal's token is minted there
        instance = copy.deepcopy(INSTANCE)
        instance["spec"].update(url=url, insecure=True)
        op.instance_event("ADDED", instance)
        worst_gap = _reconcile_with_heartbeat(op)
    # The conversion happened in that reconcile: its verdict is in the status it wrote.
    certificate = api.statuses[-1]["certificate"]
    assert certificate["publicKey"] == "RSA 4096", certificate
    assert worst_gap < 0.25, f"event loop stalled for {worst_gap:.3f}s"


def _reconcile_with_heartbeat(op: Operator) -> float:
    op.portal_event("ADDED", copy.deepcopy(PORTAL))
    op.secret_event("ADDED", secret("portico-system", "crm-creds", {"token": TOKEN.encode()}))
    pfx = {"certificate.pfx": big_pfx(), "password": PASSWORD}
    op.secret_event("ADDED", secret("team", "big-pfx", pfx))

    async def run() -> float:
        op.executor = ThreadPoolExecutor(2, "reconcile")
        gaps: list[float] = []
        done = asyncio.Event()

        async def heartbeat() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.01)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        beat = asyncio.create_task(heartbeat())
        while not gaps:  # beating before the work starts: a stall from its first moment counts
            await asyncio.sleep(0.01)
        await op.work(("Portal", "team", "big"))
        done.set()
        await beat
        op.executor.shutdown()
        return max(gaps)

    return asyncio.run(run())
