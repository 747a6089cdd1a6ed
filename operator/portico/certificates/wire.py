"""Verdicts as JSON, for the pipe between the operator and its certificate workers.

JSON rather than pickle: a worker handles a tenant's bytes, and what it sends
back must never be able to run code in the operator.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from portico.certificates.result import (
    CertificateSummary,
    CertificateVerdict,
    CertReason,
    ConvertedCertificate,
    Problem,
    Rejection,
)


def b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def _summary(summary: CertificateSummary | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    return {
        "subject": summary.subject,
        "issuer": summary.issuer,
        "dns_names": list(summary.dns_names),
        "not_before": summary.not_before.isoformat(),
        "not_after": summary.not_after.isoformat(),
        "signature_algorithm": summary.signature_algorithm,
        "sha256_fingerprint": summary.sha256_fingerprint,
        "public_key": summary.public_key,
    }


def _read_summary(raw: dict[str, Any] | None) -> CertificateSummary | None:
    if raw is None:
        return None
    return CertificateSummary(
        subject=str(raw["subject"]),
        issuer=str(raw["issuer"]),
        dns_names=tuple(str(n) for n in raw["dns_names"]),
        not_before=datetime.fromisoformat(raw["not_before"]),
        not_after=datetime.fromisoformat(raw["not_after"]),
        signature_algorithm=str(raw["signature_algorithm"]),
        sha256_fingerprint=str(raw["sha256_fingerprint"]),
        public_key=str(raw["public_key"]),
    )


def encode(verdict: CertificateVerdict) -> dict[str, Any]:
    if isinstance(verdict, Rejection):
        return {
            "ok": False,
            "problems": [[p.reason.value, p.message] for p in verdict.problems],
            "summary": _summary(verdict.summary),
        }
    return {
        "ok": True,
        "certificate_pem": b64(verdict.certificate_pem),
        "private_key_pem": b64(verdict.private_key_pem),
        "summary": _summary(verdict.summary),
        "days_left": verdict.days_left,
        "expiring_soon": verdict.expiring_soon,
        "warnings": list(verdict.warnings),
    }


def decode(raw: dict[str, Any]) -> CertificateVerdict:
    """A verdict back from its JSON form; ValueError/KeyError/TypeError when it is not one."""
    if raw["ok"] is False:
        problems = tuple(Problem(CertReason(r), str(m)) for r, m in raw["problems"])
        if not problems:
            raise ValueError("a rejection without problems")
        return Rejection(problems, _read_summary(raw.get("summary")))
    summary = _read_summary(raw["summary"])
    if raw["ok"] is not True or summary is None:
        raise ValueError("not a verdict")
    return ConvertedCertificate(
        unb64(raw["certificate_pem"]) or b"",
        unb64(raw["private_key_pem"]) or b"",
        summary=summary,
        days_left=int(raw["days_left"]),
        expiring_soon=bool(raw["expiring_soon"]),
        warnings=tuple(str(w) for w in raw["warnings"]),
    )
