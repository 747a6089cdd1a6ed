"""Every file of the generated .pfx pfx_corpus ends converted or rejected with its reason."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from portico.certificates import (
    CertificateVerdict,
    ConvertedCertificate,
    Rejection,
    convert_pfx,
    validate_tls_pair,
)
from tests.support.pfx_corpus import EXPECTED, Corpus, PfxCase, pfx_corpus

__all__ = ["pfx_corpus"]  # a fixture: imported so pytest finds it


def verdict(case: PfxCase) -> CertificateVerdict:
    return convert_pfx(case.data, case.password, hostname=case.hostname)


def cns(pem: bytes) -> tuple[str, ...]:
    return tuple(
        str(c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
        for c in x509.load_pem_x509_certificates(pem)
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_case_ends_with_its_verdict(pfx_corpus: Corpus, name: str) -> None:
    case = pfx_corpus.cases[name]
    result = verdict(case)
    if case.expected is None:
        assert isinstance(result, ConvertedCertificate), getattr(result, "message", "")
        assert cns(result.certificate_pem) == case.chain  # leaf first, issuers in order
        key = serialization.load_pem_private_key(result.private_key_pem, None)
        leaf = x509.load_pem_x509_certificate(result.certificate_pem)
        public = serialization.PublicFormat.SubjectPublicKeyInfo
        der = serialization.Encoding.DER
        assert key.public_key().public_bytes(der, public) == leaf.public_key().public_bytes(
            der, public
        )
        assert result.private_key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
        assert set(result.tls_secret_data()) == {"tls.crt", "tls.key"}
    else:
        assert isinstance(result, Rejection)
        assert result.reason == case.expected, result.message
        assert result.message


def test_summary_of_a_valid_file(pfx_corpus: Corpus) -> None:
    result = verdict(pfx_corpus.cases["aes256"])
    assert isinstance(result, ConvertedCertificate)
    summary = result.summary
    assert summary.dns_names == ("support.contoso.test",)
    assert "CN=support.contoso.test" in summary.subject
    assert summary.signature_algorithm == "sha256WithRSAEncryption"
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", summary.sha256_fingerprint)
    assert summary.not_before < summary.not_after
    assert summary.public_key == "RSA 2048"
    status = summary.as_status()
    assert set(status) >= {"subject", "dnsNames", "notBefore", "notAfter", "sha256Fingerprint"}
    assert status["notAfter"].endswith("Z")
    assert not result.expiring_soon and result.days_left > 300
    assert result.warnings == ()


def test_ec_key_summary(pfx_corpus: Corpus) -> None:
    result = verdict(pfx_corpus.cases["ec-p256"])
    assert isinstance(result, ConvertedCertificate)
    assert result.summary.public_key == "EC secp256r1"


def test_expiring_soon_is_flagged(pfx_corpus: Corpus) -> None:
    result = verdict(pfx_corpus.cases["expiring-soon"])
    assert isinstance(result, ConvertedCertificate)
    assert result.expiring_soon and result.days_left in (9, 10)
    assert "days left" in result.expiry_message


def test_invalid_pfx_says_both_causes(pfx_corpus: Corpus) -> None:
    for name in ("wrong-password", "corrupt", "pem-not-pfx"):
        result = verdict(pfx_corpus.cases[name])
        assert isinstance(result, Rejection)
        assert "password is wrong" in result.message and "not a valid PKCS#12" in result.message
    pem = verdict(pfx_corpus.cases["pem-not-pfx"])
    assert isinstance(pem, Rejection) and "PEM" in pem.message


def test_weak_signature_message(pfx_corpus: Corpus) -> None:
    for name in ("sha1-leaf", "sha1-intermediate"):
        result = verdict(pfx_corpus.cases[name])
        assert isinstance(result, Rejection)
        assert "use a SHA-2 certificate" in result.message
        assert "sha1" in result.message.lower()
    intermediate = verdict(pfx_corpus.cases["sha1-intermediate"])
    assert isinstance(intermediate, Rejection)
    assert "intermediate" in intermediate.message and "SHA-1 CA" in intermediate.message


def test_rejections_keep_a_summary_when_the_leaf_is_readable(pfx_corpus: Corpus) -> None:
    result = verdict(pfx_corpus.cases["expired"])
    assert isinstance(result, Rejection) and result.summary is not None
    assert verdict(pfx_corpus.cases["wrong-password"]).summary is None


def test_password_with_trailing_newline(pfx_corpus: Corpus) -> None:
    case = pfx_corpus.cases["aes256"]
    assert convert_pfx(case.data, (case.password or "") + "\n").ok


def test_no_password_file_accepts_none_or_empty(pfx_corpus: Corpus) -> None:
    case = pfx_corpus.cases["no-password"]
    assert convert_pfx(case.data, None).ok and convert_pfx(case.data, "").ok


def test_hostname_is_optional(pfx_corpus: Corpus) -> None:
    case = pfx_corpus.cases["san-mismatch"]
    assert convert_pfx(case.data, case.password).ok


def test_no_secret_in_any_message_or_summary(pfx_corpus: Corpus) -> None:
    """Neither a password nor any PEM body appears in what is shown to people."""
    shown: list[str] = []
    for case in pfx_corpus.cases.values():
        result = verdict(case)
        shown.append(repr(result))
        if isinstance(result, Rejection):
            shown += [p.message for p in result.problems]
            shown.append(repr(result.summary.as_status()) if result.summary else "")
        else:
            shown += [*result.warnings, result.expiry_message, repr(result.summary.as_status())]
    text = "\n".join(shown)
    assert "-----BEGIN" not in text
    leaks = [secret for secret in pfx_corpus.forbidden if secret in text]
    assert not leaks
    assert len(pfx_corpus.forbidden) > 100  # the check really compared passwords and PEM lines


@pytest.mark.parametrize(
    "name",
    [
        "aes256",
        "ec-p256",
        "chain-out-of-order",
        "sha1-leaf",
        "sha1-intermediate",
        "rsa-1024",
        "no-server-auth",
        "san-mismatch",
        "cn-only",
        "expired",
        "not-yet-valid",
        "expiring-soon",
    ],
)
def test_tls_pair_gives_the_same_verdict(pfx_corpus: Corpus, name: str) -> None:
    crt, key = pfx_corpus.pem_pairs[name]
    case = pfx_corpus.cases[name]
    result = validate_tls_pair(crt, key, hostname=case.hostname)
    expected = verdict(case)
    assert result.ok == expected.ok
    if isinstance(result, Rejection) and isinstance(expected, Rejection):
        assert result.reason == expected.reason
    if isinstance(result, ConvertedCertificate) and isinstance(expected, ConvertedCertificate):
        assert result.certificate_pem == expected.certificate_pem
        assert result.summary == expected.summary


def test_tls_pair_problems(pfx_corpus: Corpus, tmp_path: Path) -> None:
    crt, key = pfx_corpus.pem_pairs["aes256"]
    other_crt, _ = pfx_corpus.pem_pairs["ec-p256"]
    assert validate_tls_pair(other_crt, key).reason == "KeyMismatch"  # type: ignore[union-attr]
    assert validate_tls_pair(crt, b"").reason == "MissingPrivateKey"  # type: ignore[union-attr]
    assert validate_tls_pair(b"nonsense", key).reason == "InvalidCertificate"  # type: ignore[union-attr]
    assert validate_tls_pair(crt, b"nonsense").reason == "InvalidPrivateKey"  # type: ignore[union-attr]
    loaded = serialization.load_pem_private_key(key, None)
    encrypted = loaded.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase-for-test"),
    )
    result = validate_tls_pair(crt, encrypted)
    assert isinstance(result, Rejection) and result.reason == "InvalidPrivateKey"
    assert "encrypted" in result.message


def test_callable_from_threads(pfx_corpus: Corpus) -> None:
    """The operator converts off the event loop; parallel calls give the same verdicts."""
    cases = list(pfx_corpus.cases.values()) * 2
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(verdict, cases))
    for case, result in zip(cases, results, strict=True):
        assert (
            None if isinstance(result, ConvertedCertificate) else result.reason
        ) == case.expected
