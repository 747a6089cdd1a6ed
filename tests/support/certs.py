"""Real certificates for custom domains: a CA-signed leaf, its .pfx and their Secrets."""

from __future__ import annotations

import base64
import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    pkcs12,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from portico.core.names import SECRET_LABEL
from tests.support.controlplane import Cluster, wait_for


def make_leaf(
    host: str, days: int = 90
) -> tuple[rsa.RSAPrivateKey, x509.Certificate, x509.Certificate]:
    """A key, a CA-signed leaf for HOST valid for DAYS more days, and the CA."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, leaf, ca


def make_pfx(host: str, password: str, days: int = 90) -> tuple[bytes, str]:
    """An AES-256 .pfx for HOST, and the leaf's SHA-256 fingerprint."""
    key, leaf, ca = make_leaf(host, days)
    data = pkcs12.serialize_key_and_certificates(
        b"portal", key, leaf, [ca], BestAvailableEncryption(password.encode())
    )
    return data, leaf.fingerprint(hashes.SHA256()).hex()


def tls_secret(name: str, namespace: str, host: str) -> dict[str, Any]:
    """A kubernetes.io/tls Secret for HOST, as a user (or cert-manager) would create it."""
    key, leaf, ca = make_leaf(host)
    crt = leaf.public_bytes(Encoding.PEM) + ca.public_bytes(Encoding.PEM)
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": namespace, "labels": {SECRET_LABEL: "portico"}},
        "data": {
            "tls.crt": base64.b64encode(crt).decode(),
            "tls.key": base64.b64encode(pem).decode(),
        },
    }


def pfx_secret(name: str, namespace: str, data: bytes, password: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": {SECRET_LABEL: "portico"}},
        "data": {
            "certificate.pfx": base64.b64encode(data).decode(),
            "password": base64.b64encode(password.encode()).decode(),
        },
    }


def custom(host: str, **tls: Any) -> dict[str, Any]:
    return {"hostname": host, "tls": tls or {"pfxSecretRef": {"name": "site-pfx"}}}


def ingress_hosts(cluster: Cluster, namespace: str, name: str) -> list[str]:
    ing = cluster.get("ingress", name, namespace) or {}
    return [r["host"] for r in ing.get("spec", {}).get("rules", ())]


def ownership(cluster: Cluster, namespace: str, name: str, timeout: float = 60) -> dict[str, Any]:
    """status.customDomain.ownership of portal NAME, once the operator has published it."""

    def published() -> dict[str, Any] | None:
        record = ((cluster.portal(namespace, name).get("status") or {}).get("customDomain")) or {}
        own = record.get("ownership") or {}
        return own if own.get("value") and own.get("name") else None

    return wait_for(f"the ownership record of {namespace}/{name} in status", published, timeout)


def ownership_record(cluster: Cluster, namespace: str, name: str) -> str:
    """The TXT record portal NAME's status asks for, as a zone-file line: what its owner
    adds at the DNS provider (domainOwnership Required)."""
    own = ownership(cluster, namespace, name)
    return f'{own["name"]}. {own["type"]} "{own["value"]}"'
