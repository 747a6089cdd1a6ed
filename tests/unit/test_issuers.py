"""Which issuers an issuerRef may name: the `allowedIssuers` notation and its matching."""

from __future__ import annotations

import pytest

from portico.api.model import IssuerRef
from portico.core import issuers
from portico.settings import Settings, SettingsError


@pytest.mark.parametrize(
    ("ref", "entries", "expected"),
    [
        (IssuerRef("le", "ClusterIssuer"), (), False),  # nothing listed: nothing allowed
        (IssuerRef("le", "ClusterIssuer"), ("ClusterIssuer/le",), True),
        (IssuerRef("le2", "ClusterIssuer"), ("ClusterIssuer/le",), False),
        (IssuerRef("le", "Issuer"), ("ClusterIssuer/le",), False),
        (IssuerRef("team-ca", "Issuer"), ("Issuer/*",), True),
        (IssuerRef("le", "ClusterIssuer"), ("Issuer/*",), False),
        (
            IssuerRef("pca", "ClusterIssuer", "awspca.cert-manager.io"),
            ("ClusterIssuer/pca",),
            False,
        ),
        (
            IssuerRef("pca", "ClusterIssuer", "awspca.cert-manager.io"),
            ("ClusterIssuer.awspca.cert-manager.io/pca",),
            True,
        ),
    ],
)
def test_allowed(ref: IssuerRef, entries: tuple[str, ...], expected: bool) -> None:
    assert issuers.allowed(ref, entries) is expected


def test_label_is_the_settings_notation() -> None:
    assert issuers.label(IssuerRef("le", "ClusterIssuer")) == "ClusterIssuer/le"
    ref = IssuerRef("pca", "ClusterIssuer", "awspca.cert-manager.io")
    assert issuers.allowed(ref, (issuers.label(ref),))


@pytest.mark.parametrize("bad", ["le", "Vault/le", "ClusterIssuer/", "ClusterIssuer/l*"])
def test_a_malformed_entry_stops_the_operator(bad: str) -> None:
    with pytest.raises(SettingsError, match="PORTICO_ALLOWED_ISSUERS"):
        Settings.from_env({"PORTICO_ALLOWED_ISSUERS": f"ClusterIssuer/ok,{bad}"})


def test_entries_from_the_environment() -> None:
    env = {"PORTICO_ALLOWED_ISSUERS": "ClusterIssuer/le, Issuer/*"}
    assert Settings.from_env(env).allowed_issuers == ("ClusterIssuer/le", "Issuer/*")
