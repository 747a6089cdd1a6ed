"""`portico dev`'s Traefik: the default TLS store holds a wildcard for the base domain, signed
by the dev cluster's CA (the real-node tier checks Traefik serves it)."""

from __future__ import annotations

from pathlib import Path

import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from portico_dev import traefik
from portico_dev.pki import PKI


def test_the_default_store_is_a_wildcard_for_the_base_domain(tmp_path: Path) -> None:
    pki = PKI(tmp_path / "pki")
    pair = pki.issue("default-host", "*.portals.test", server=True, hosts=("*.portals.test",))
    leaf = x509.load_pem_x509_certificate(pair.cert.read_bytes())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["*.portals.test"]
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(pki.ca.cert.read_bytes()))

    dynamic = traefik.default_store(tmp_path / "dynamic.yaml", pair.cert, pair.key)
    store = yaml.safe_load(dynamic.read_text())["tls"]["stores"]["default"]
    assert store == {"defaultCertificate": {"certFile": str(pair.cert), "keyFile": str(pair.key)}}
    assert f"--providers.file.filename={dynamic}" in traefik.arguments(dynamic)
    assert not any(a.startswith("--providers.file") for a in traefik.arguments())
