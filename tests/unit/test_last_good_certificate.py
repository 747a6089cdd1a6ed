"""A rejected .pfx replacement keeps the last good certificate served, only while it holds."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from portico.core.custom_domain import _last_good

NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)


def previous(**overrides: Any) -> dict[str, Any]:
    return {
        "source": "pfxSecretRef",
        "dnsNames": ["www.contoso.test"],
        "notAfter": "2027-01-01T00:00:00Z",
    } | overrides


@pytest.mark.parametrize(
    ("status", "host", "served"),
    [
        (previous(), "www.contoso.test", True),
        (previous(dnsNames=["*.contoso.test"]), "www.contoso.test", True),
        (previous(dnsNames=["WWW.contoso.test."]), "www.contoso.test", True),
        (previous(), "shop.contoso.test", False),  # another host: not this one's certificate
        (previous(dnsNames=["*.contoso.test"]), "a.b.contoso.test", False),
        (previous(notAfter="2026-11-30T11:59:59Z"), "www.contoso.test", False),  # expired
        (previous(source="secretRef"), "www.contoso.test", False),  # the user's Secret
        (previous(notAfter="garbage"), "www.contoso.test", False),
        (None, "www.contoso.test", False),  # never had a good one
    ],
)
def test_last_good(status: dict[str, Any] | None, host: str, served: bool) -> None:
    assert _last_good(status, host, NOW) is served
