"""The real cert-manager for the control-plane tier: upstream's controllers (built from the
pinned module in devtools/portico_dev/gomod/cert-manager) as a process on the host against
the tier's API server, its own CRDs, and a CA `ClusterIssuer` whose CA the tests make here.

No webhook: cert-manager's webhook only validates and defaults resources (and converts none:
the CRDs serve v1 alone); issuance runs in the controllers. The CRDs' own OpenAPI schemas
still validate every Certificate Portico writes.
"""

from __future__ import annotations

import base64
import datetime
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

from portico_dev import ControlPlane
from portico_dev import binaries as devbinaries
from tests.support.controlplane import Cluster, wait_for

# Where ClusterIssuers' Secrets live (the controller's --cluster-resource-namespace).
NAMESPACE = "cert-manager"
ISSUER = "portico-test-ca"
CA_SUBJECT = "CN=Portico Test CA,O=Portico tests"


@dataclass(frozen=True)
class CertManager:
    issuer: dict[str, str]  # the issuerRef a portal names
    ca: x509.Certificate
    log: Path


def make_ca() -> tuple[bytes, bytes, x509.Certificate]:
    """A self-signed CA (PEM certificate, PEM key) that may sign server certificates."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Portico Test CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Portico tests"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return cert.public_bytes(Encoding.PEM), pem_key, cert


def install_crds(plane: ControlPlane, crds: Path) -> None:
    cluster = Cluster(plane)
    docs = [
        doc
        for path in sorted(crds.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]
    cluster.apply(*docs)
    names = [f"crd/{doc['metadata']['name']}" for doc in docs]
    plane.kubectl("wait", "--for=condition=Established", *names, "--timeout=60s")


def _issuer_ready(cluster: Cluster) -> dict[str, Any] | None:
    issuer = cluster.get("clusterissuer", ISSUER)
    conditions = ((issuer or {}).get("status") or {}).get("conditions") or ()
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return issuer if ready else None


@contextmanager
def running_cert_manager(plane: ControlPlane, workdir: Path) -> Iterator[CertManager]:
    """CRDs, the controller and a Ready CA ClusterIssuer; BinariesMissing if not built."""
    binary, crds = devbinaries.cert_manager()
    install_crds(plane, crds)
    cluster = Cluster(plane)
    if plane.kubectl("get", "namespace", NAMESPACE, check=False).returncode != 0:
        plane.kubectl("create", "namespace", NAMESPACE)
    crt, key, ca = make_ca()
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": ISSUER, "namespace": NAMESPACE},
            "data": {
                "tls.crt": base64.b64encode(crt).decode(),
                "tls.key": base64.b64encode(key).decode(),
            },
        },
        {
            "apiVersion": "cert-manager.io/v1",
            "kind": "ClusterIssuer",
            "metadata": {"name": ISSUER},
            "spec": {"ca": {"secretName": ISSUER}},
        },
    )
    log = workdir / "cert-manager.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                str(binary),
                f"--kubeconfig={plane.kubeconfig}",
                f"--cluster-resource-namespace={NAMESPACE}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def ready() -> dict[str, Any] | None:
            if proc.poll() is not None:
                raise AssertionError(
                    f"cert-manager exited {proc.returncode}:\n"
                    f"{log.read_text(errors='replace')[-3000:]}"
                )
            return _issuer_ready(cluster)

        wait_for(f"ClusterIssuer {ISSUER} Ready (log: {log})", ready, timeout=60)
        yield CertManager({"name": ISSUER, "kind": "ClusterIssuer"}, ca, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
