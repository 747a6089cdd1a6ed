"""Converted certificates (with their private keys) are kept no longer than needed:
evicted on rotation, on deletion of the portal or its Secret, and by size."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

from portico.certificates import CertReason, ConvertedCertificate, Problem, Rejection
from portico.certificates.result import CertificateSummary
from portico.controller.certcache import CertificateCache
from portico.controller.operator import Operator
from portico.settings import Settings
from tests.support.pfx_corpus import Corpus, pfx_corpus

__all__ = ["pfx_corpus"]


class NoApi:
    """Event handling makes no request; any attempt fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"event handling called the API ({name})")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def converted(n: int = 0) -> ConvertedCertificate:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    summary = CertificateSummary(
        f"CN=h{n}", "CN=ca", (f"h{n}",), now, now + timedelta(days=90), "sha256", "AA", "RSA 2048"
    )
    return ConvertedCertificate(b"crt", b"key", summary=summary, days_left=90, expiring_soon=False)


def test_a_rotated_secret_replaces_the_entry_at_once() -> None:
    cache = CertificateCache()
    old = CertificateCache.content("pfx", b"old", b"pw", "h")
    cache.put(("team", "web"), old, converted())
    assert cache.get(("team", "web"), old) is not None
    new = CertificateCache.content("pfx", b"new", b"pw", "h")
    assert cache.get(("team", "web"), new) is None
    assert ("team", "web") not in cache  # the old key is gone, not merely shadowed
    assert CertificateCache.content("pfx", b"old", b"other", "h") != old  # password counts


def test_lru_bound_and_ttls_with_an_injected_clock() -> None:
    clock = Clock()
    cache = CertificateCache(size=2, ttl=100.0, retry_timed_out=10.0, clock=clock)
    content = CertificateCache.content("pfx", b"x", None, "h")
    cache.put(("a", "1"), content, converted(1))
    cache.put(("a", "2"), content, converted(2))
    assert cache.get(("a", "1"), content) is not None  # 1 is now the most recent
    cache.put(("b", "3"), content, converted(3))
    assert len(cache) == 2 and ("a", "2") not in cache and ("a", "1") in cache
    timed_out = Rejection((Problem(CertReason.CERTIFICATE_CHECK_TIMED_OUT, "slow"),))
    cache.put(("b", "3"), content, timed_out)
    clock.now += 11
    assert cache.get(("b", "3"), content) is None  # a timeout is tried again soon
    assert cache.get(("a", "1"), content) is not None
    clock.now += 100
    assert cache.get(("a", "1"), content) is None and len(cache) == 0


def pfx_portal(corpus: Corpus) -> tuple[dict[str, Any], dict[str, Any]]:
    body = {
        "apiVersion": "portico.dev/v1alpha1",
        "kind": "Portal",
        "metadata": {"name": "web", "namespace": "team", "uid": "uid-web", "generation": 1},
        "spec": {
            "displayName": "Web",
            "subdomain": "web",
            "instanceRef": {"name": "crm"},
            "language": "en-US",
            "administrator": "jay@contoso.com",
            "audience": "Customer",
            "template": "Community",
            "customDomain": {
                "hostname": "support.contoso.test",
                "tls": {"pfxSecretRef": {"name": "web-pfx"}},
            },
        },
    }
    body["metadata"].update(resourceVersion="10", creationTimestamp="2026-11-30T10:00:00Z")
    case = corpus.cases["aes256"]
    secret = {
        "metadata": {"name": "web-pfx", "namespace": "team", "resourceVersion": "7"},
        "data": {
            "certificate.pfx": base64.b64encode(case.data).decode(),
            "password": base64.b64encode((case.password or "").encode()).decode(),
        },
    }
    return body, secret


def test_deleting_the_secret_or_the_portal_evicts(pfx_corpus: Corpus) -> None:
    kube: Any = NoApi()
    op = Operator.build(Settings(), kube)
    body, secret = pfx_portal(pfx_corpus)
    op.portal_event("ADDED", body)
    op.secret_event("ADDED", secret)
    case = pfx_corpus.cases["aes256"]
    key = ("team", "web")
    try:
        verdict = op.observer._convert(
            key, "pfx", case.data, (case.password or "").encode(), case.hostname
        )
        assert verdict.ok and key in op.observer.cert_cache  # type: ignore[operator]
        op.secret_event("DELETED", secret)
        assert key not in op.observer.cert_cache  # type: ignore[operator]
        op.observer._convert(key, "pfx", case.data, (case.password or "").encode(), "h")
        assert key in op.observer.cert_cache  # type: ignore[operator]
        op.portal_event("DELETED", body)
        assert key not in op.observer.cert_cache  # type: ignore[operator]
    finally:
        op.observer.close()


def test_a_reconcile_with_nothing_to_judge_evicts(pfx_corpus: Corpus) -> None:
    """The custom domain was removed from the spec: the next observe drops the verdict."""
    kube: Any = NoApi()
    op = Operator.build(Settings(), kube)
    body, _ = pfx_portal(pfx_corpus)
    del body["spec"]["customDomain"]
    op.instance_event(
        "ADDED",
        {
            "metadata": {"name": "crm", "resourceVersion": "1", "generation": 1},
            "spec": {
                "url": "https://crm.example.net",
                "credentialsSecretRef": {"namespace": "sys", "name": "crm-creds"},
                "languages": ["en-US"],
                "administrators": ["jay@contoso.com"],
                "allowedNamespaces": {"from": "All"},
            },
        },
    )
    op.secret_event(
        "ADDED",
        {
            "metadata": {"name": "crm-creds", "namespace": "sys", "resourceVersion": "3"},
            "data": {"token": base64.b64encode(b"t").decode()},
        },
    )
    op.portal_event("ADDED", body)
    key = ("team", "web")
    assert op.observer.cert_cache is not None
    op.observer.cert_cache.put(key, ("pfx", "digest", "h"), converted())
    observed = op.observer.observe("team", "web", datetime.now(UTC))
    assert observed is not None and observed.certificate is None
    assert key not in op.observer.cert_cache
