"""Certificate rules that need no corpus: hostname matching and chain order."""

from __future__ import annotations

import pytest

from portico.certificates import CertReason, name_covers


@pytest.mark.parametrize(
    ("pattern", "host", "covered"),
    [
        ("support.contoso.com", "support.contoso.com", True),
        ("Support.Contoso.COM", "support.contoso.com.", True),
        ("*.contoso.com", "support.contoso.com", True),
        ("*.contoso.com", "SUPPORT.contoso.com", True),
        ("*.contoso.com", "contoso.com", False),  # the apex is not covered
        ("*.contoso.com", "a.b.contoso.com", False),  # one label only
        ("*.com", "contoso.com", False),  # no wildcard right under a TLD
        ("s*.contoso.com", "support.contoso.com", False),  # partial wildcards never match
        ("*s.contoso.com", "ss.contoso.com", False),
        ("support.*.com", "support.contoso.com", False),
        ("other.contoso.com", "support.contoso.com", False),
        ("*.contoso.com", "*.contoso.com", False),  # a hostname is never a pattern
        ("*.bücher.example", "shop.xn--bcher-kva.example", True),  # IDN compared as A-labels
    ],
)
def test_name_covers(pattern: str, host: str, covered: bool) -> None:
    assert name_covers(pattern, host) is covered


def test_reasons_are_camel_case() -> None:
    for reason in CertReason:
        assert reason.value[0].isupper() and "_" not in reason.value and " " not in reason.value
