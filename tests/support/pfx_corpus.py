"""The .pfx corpus, generated at test time (no key is ever committed).

    corpus = build_corpus(tmp_path)          # writes the files, about a second
    case = corpus.cases["aes256"]
    convert_pfx(case.data, case.password, hostname=case.hostname)

or, in a test module, `from tests.support.pfx_corpus import pfx_corpus` (a fixture
that builds it once per session and skips without the openssl CLI).

Every case names the reason it must be rejected with (`expected`), or None
when it must convert. Files made with the openssl CLI: 3DES and RC2-40
(`-legacy`) encodings and the SHA-1 signatures, which cryptography refuses
to make; the rest with cryptography. `corpus.forbidden` lists every password
and PEM body used, for tests that check nothing leaks. `corpus.pem_pairs`
holds the same material as tls.crt/tls.key for the PEM path.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOSTNAME = "support.contoso.test"

# name -> (expected reason or None for "converts", what the file is)
EXPECTED: dict[str, tuple[str | None, str]] = {
    "aes256": (None, "AES-256/PBKDF2 (OpenSSL 3 default), leaf + intermediate + root"),
    "3des": (None, "PBE-SHA1-3DES, made by the openssl CLI"),
    "rc2-40": (None, "RC2-40 certificates, 3DES key (openssl pkcs12 -export -legacy)"),
    "no-password": (None, "no encryption, no password"),
    "ec-p256": (None, "EC P-256 leaf"),
    "wildcard": (None, "SAN *.contoso.test"),
    "expiring-soon": (None, "valid, 10 days left"),
    "chain-out-of-order": (None, "chain stored root, intermediate A, intermediate B"),
    "wrong-password": ("InvalidPfx", "AES-256 file opened with another password"),
    "corrupt": ("InvalidPfx", "AES-256 file with damaged bytes"),
    "pem-not-pfx": ("InvalidPfx", "a PEM certificate named .pfx"),
    "no-key": ("MissingPrivateKey", "certificates only"),
    "mismatched-key": ("KeyMismatch", "another RSA key beside the leaf and intermediate"),
    "sha1-leaf": ("WeakSignature", "leaf signed sha1WithRSAEncryption (openssl x509 -sha1)"),
    "sha1-intermediate": ("WeakSignature", "intermediate signed with SHA-1, leaf SHA-256"),
    "rsa-1024": ("WeakKey", "RSA 1024-bit leaf"),
    "no-server-auth": ("MissingServerAuth", "extended key usage clientAuth only"),
    "san-mismatch": ("HostnameMismatch", "SAN other.contoso.test"),
    "cn-only": ("HostnameMismatch", "CN is the host, no SAN"),
    "expired": ("CertificateExpired", "notAfter yesterday"),
    "not-yet-valid": ("CertificateNotYetValid", "notBefore in 10 days"),
    # Hostile: more key-derivation work than any real export (bound: 1,000,000 per count).
    "iter-openssl": ("PfxTooExpensive", "openssl pkcs12 -export -iter 1100000 -maciter"),
    "iter-kdf-rounds": ("PfxTooExpensive", "cryptography's PKCS12 builder, kdf_rounds 1100000"),
    "mac-iter-2-31": ("PfxTooExpensive", "aes256 with its MAC count rewritten to 2^31-1"),
}


def with_mac_iterations(pfx: bytes, count: int) -> bytes:
    """The file with its MacData iteration count replaced (DER, as both makers write it):
    what an attacker sends costs OpenSSL the count before the MAC is found wrong."""

    def tlv(data: bytes, pos: int) -> tuple[int, int]:  # (content start, end)
        first, pos = data[pos + 1], pos + 2
        if first & 0x80:
            size = first & 0x7F
            first, pos = int.from_bytes(data[pos : pos + size], "big"), pos + size
        return pos, pos + first

    def encode(tag: int, content: bytes) -> bytes:
        n = len(content)
        raw = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)])
        raw += b"" if n < 0x80 else n.to_bytes((n.bit_length() + 7) // 8, "big")
        return bytes([tag]) + raw + content

    start, _ = tlv(pfx, 0)
    _, version_end = tlv(pfx, start)
    _, auth_end = tlv(pfx, version_end)
    mac_start, _ = tlv(pfx, auth_end)
    _, digest_end = tlv(pfx, mac_start)
    _, salt_end = tlv(pfx, digest_end)
    iterations = encode(0x02, count.to_bytes((count.bit_length() + 8) // 8, "big"))
    mac = encode(0x30, pfx[mac_start:salt_end] + iterations)
    return encode(0x30, pfx[start:auth_end] + mac)


def server_certificate(host: str, key: Any) -> x509.Certificate:
    """A self-signed serverAuth certificate for HOST, valid for 90 days, signed by KEY."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=90))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), False)
        .sign(key, hashes.SHA256())
    )


def hostile_pfx(host: str, password: str, mac_iterations: int = 2**31 - 1) -> bytes:
    """A valid-looking .pfx for HOST (EC P-256, AES-256) whose MAC asks for 2^31-1
    iterations: the file a tenant uploads to stall an operator that opens it in-process.
    With MAC_ITERATIONS 2048 it is the same file as an ordinary export."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = server_certificate(host, key)
    encryption = serialization.BestAvailableEncryption(password.encode())
    good = pkcs12.serialize_key_and_certificates(b"p", key, cert, None, encryption)
    return with_mac_iterations(good, mac_iterations)


@dataclass(frozen=True)
class PfxCase:
    name: str
    path: Path
    password: str | None
    expected: str | None
    note: str
    hostname: str = HOSTNAME
    chain: tuple[str, ...] = ()  # expected CNs of a converted chain, leaf first

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()


@dataclass
class Corpus:
    directory: Path
    cases: dict[str, PfxCase] = field(default_factory=dict)
    pem_pairs: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)  # crt, key
    # Passwords and PEM base64 lines (keys and certificates) no message may contain.
    forbidden: list[str] = field(default_factory=list)


def openssl() -> str | None:
    return shutil.which("openssl")


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Portico Test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _rsa(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


class _Maker:
    def __init__(self, directory: Path, now: datetime) -> None:
        self.dir = directory
        self.now = now
        self.corpus = Corpus(directory)
        self.password = "pfxpw-" + secrets.token_urlsafe(12)
        self.corpus.forbidden.append(self.password)

    # --- material ----------------------------------------------------------
    def remember(self, *pems: bytes) -> None:
        for pem in pems:
            lines = pem.decode().splitlines()
            self.corpus.forbidden += [ln for ln in lines if ln and not ln.startswith("-----")]

    def key_pem(self, key: CertificateIssuerPrivateKeyTypes) -> bytes:
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.remember(pem)
        return pem

    def cert(
        self,
        cn: str,
        key: CertificateIssuerPrivateKeyTypes,
        issuer: tuple[x509.Certificate, CertificateIssuerPrivateKeyTypes] | None = None,
        *,
        ca: bool = False,
        sans: tuple[str, ...] | None = (HOSTNAME,),
        usage: tuple[x509.ObjectIdentifier, ...] = (ExtendedKeyUsageOID.SERVER_AUTH,),
        days: tuple[int, int] = (-1, 365),
    ) -> x509.Certificate:
        signer_name, signer_key = (issuer[0].subject, issuer[1]) if issuer else (_name(cn), key)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(signer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now + timedelta(days=days[0]))
            .not_valid_after(self.now + timedelta(days=days[1]))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(usage)), critical=False)
            if sans:
                names = [x509.DNSName(n) for n in sans]
                builder = builder.add_extension(x509.SubjectAlternativeName(names), False)
        return builder.sign(signer_key, hashes.SHA256())

    def sha1_signed(
        self,
        cn: str,
        key: CertificateIssuerPrivateKeyTypes,
        issuer: tuple[x509.Certificate, CertificateIssuerPrivateKeyTypes],
        *,
        ca: bool,
    ) -> x509.Certificate:
        """cryptography will not sign with SHA-1, so the openssl CLI does."""
        work = self.dir / "work"
        work.mkdir(exist_ok=True)
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(_name(cn))
            .sign(key, hashes.SHA256())
        )
        (work / f"{cn}.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
        (work / "ca.pem").write_bytes(issuer[0].public_bytes(serialization.Encoding.PEM))
        (work / "ca.key").write_bytes(self.key_pem(issuer[1]))
        ext = (
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
            if ca
            else f"basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
            f"subjectAltName=DNS:{HOSTNAME}\n"
        )
        (work / "ext.cnf").write_text(ext)
        out = work / f"{cn}.pem"
        self.run_openssl(
            *["x509", "-req", "-sha1", "-days", "365", "-set_serial", "4242"],
            *("-in", str(work / f"{cn}.csr"), "-out", str(out), "-extfile", str(work / "ext.cnf")),
            *("-CA", str(work / "ca.pem"), "-CAkey", str(work / "ca.key")),
        )
        (work / "ca.key").unlink()
        return x509.load_pem_x509_certificate(out.read_bytes())

    def run_openssl(self, *args: str) -> None:
        binary = openssl()
        assert binary, "the openssl CLI is needed to make the SHA-1 and legacy .pfx files"
        env = {**os.environ, "PORTICO_PFX_PASSWORD": self.password}
        subprocess.run([binary, *args], check=True, env=env, capture_output=True, cwd=self.dir)

    # --- files -------------------------------------------------------------
    def add(
        self, name: str, data: bytes, password: str | None, chain: tuple[str, ...] = ()
    ) -> None:
        expected, note = EXPECTED[name]
        path = self.dir / f"{name}.pfx"
        path.write_bytes(data)
        self.corpus.cases[name] = PfxCase(name, path, password, expected, note, chain=chain)

    def pfx(
        self,
        name: str,
        key: CertificateIssuerPrivateKeyTypes | None,
        cert: x509.Certificate | None,
        cas: list[x509.Certificate],
        *,
        encrypt: bool = True,
        chain: tuple[str, ...] = (),
        rounds: int = 2048,
    ) -> bytes:
        if encrypt:
            encryption: serialization.KeySerializationEncryption = (
                serialization.PrivateFormat.PKCS12.encryption_builder()
                .kdf_rounds(rounds)
                .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
                .hmac_hash(hashes.SHA256())
                .build(self.password.encode())
            )
        else:
            encryption = serialization.NoEncryption()
        data = pkcs12.serialize_key_and_certificates(
            name.encode(),
            key,  # type: ignore[arg-type]
            cert,
            cas or None,
            encryption,
        )
        self.add(name, data, self.password if encrypt else None, chain)
        pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [cert, *cas] if c)
        self.remember(pem)
        if key is not None and cert is not None:
            self.corpus.pem_pairs[name] = (pem, self.key_pem(key))
        return data

    def openssl_pfx(
        self,
        name: str,
        key: CertificateIssuerPrivateKeyTypes,
        certs: list[x509.Certificate],
        *options: str,
    ) -> None:
        work = self.dir / "work"
        work.mkdir(exist_ok=True)
        (work / "in.pem").write_bytes(
            b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
        )
        (work / "in.key").write_bytes(self.key_pem(key))
        out = self.dir / f"{name}.pfx"
        self.run_openssl(
            "pkcs12",
            "-export",
            *options,
            "-in",
            str(work / "in.pem"),
            "-inkey",
            str(work / "in.key"),
            "-passout",
            "env:PORTICO_PFX_PASSWORD",
            "-out",
            str(out),
        )
        (work / "in.key").unlink()
        self.add(name, out.read_bytes(), self.password, tuple(_cn(c) for c in certs))


def _cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def build_corpus(directory: Path, now: datetime | None = None) -> Corpus:
    """Write every case of EXPECTED under directory; return paths and passwords."""
    directory.mkdir(parents=True, exist_ok=True)
    m = _Maker(directory, now or datetime.now(UTC))
    root_key, inter_key, leaf_key = _rsa(), _rsa(), _rsa()
    root = m.cert("Portico Test Root CA", root_key, ca=True, days=(-30, 3650))
    inter = m.cert("Portico Test Issuing CA", inter_key, (root, root_key), ca=True)
    by_inter = (inter, inter_key)
    leaf = m.cert(HOSTNAME, leaf_key, by_inter)
    good = (HOSTNAME, "Portico Test Issuing CA", "Portico Test Root CA")

    aes = m.pfx("aes256", leaf_key, leaf, [inter, root], chain=good)
    des = ["-keypbe", "PBE-SHA1-3DES", "-certpbe", "PBE-SHA1-3DES", "-macalg", "sha1"]
    m.openssl_pfx("3des", leaf_key, [leaf, inter], *des)
    m.openssl_pfx("rc2-40", leaf_key, [leaf, inter], "-legacy")
    m.pfx("no-password", leaf_key, leaf, [inter], encrypt=False, chain=good[:2])

    ec_key = ec.generate_private_key(ec.SECP256R1())
    m.pfx("ec-p256", ec_key, m.cert(HOSTNAME, ec_key, by_inter), [inter], chain=good[:2])
    wildcard = m.cert("*.contoso.test", leaf_key, by_inter, sans=("*.contoso.test",))
    m.pfx("wildcard", leaf_key, wildcard, [inter], chain=("*.contoso.test", good[1]))
    m.pfx(
        "expiring-soon",
        leaf_key,
        m.cert(HOSTNAME, leaf_key, by_inter, days=(-300, 10)),
        [inter],
        chain=good[:2],
    )

    a_key, b_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    inter_a = m.cert("Portico Test Intermediate A", a_key, (root, root_key), ca=True)
    inter_b = m.cert("Portico Test Intermediate B", b_key, (inter_a, a_key), ca=True)
    deep = m.cert(HOSTNAME, leaf_key, (inter_b, b_key))
    m.pfx(
        "chain-out-of-order",
        leaf_key,
        deep,
        [root, inter_a, inter_b],
        chain=(HOSTNAME, _cn(inter_b), _cn(inter_a), _cn(root)),
    )

    m.add("wrong-password", aes, "wrong-" + secrets.token_urlsafe(12))
    m.corpus.forbidden.append(m.corpus.cases["wrong-password"].password or "")
    damaged = bytearray(aes)
    middle = len(damaged) // 2
    damaged[middle : middle + 48] = bytes(b ^ 0x5A for b in damaged[middle : middle + 48])
    m.add("corrupt", bytes(damaged), m.password)
    m.add("pem-not-pfx", leaf.public_bytes(serialization.Encoding.PEM), m.password)

    m.pfx("no-key", None, leaf, [inter])
    # cryptography and openssl both refuse to pair a certificate with a foreign key, so
    # the key goes in alone and the certificates as extra bags, as hand-made bundles do.
    m.pfx("mismatched-key", _rsa(), None, [leaf, inter])
    m.pfx("sha1-leaf", leaf_key, m.sha1_signed(HOSTNAME, leaf_key, by_inter, ca=False), [inter])
    sha1_inter = m.sha1_signed("Portico Test SHA-1 CA", inter_key, (root, root_key), ca=True)
    m.pfx(
        "sha1-intermediate",
        leaf_key,
        m.cert(HOSTNAME, leaf_key, (sha1_inter, inter_key)),
        [sha1_inter, root],
    )
    weak = _rsa(1024)
    m.pfx("rsa-1024", weak, m.cert(HOSTNAME, weak, by_inter), [inter])
    client_only = (ExtendedKeyUsageOID.CLIENT_AUTH,)
    m.pfx(
        "no-server-auth", leaf_key, m.cert(HOSTNAME, leaf_key, by_inter, usage=client_only), [inter]
    )
    other = m.cert("other.contoso.test", leaf_key, by_inter, sans=("other.contoso.test",))
    m.pfx("san-mismatch", leaf_key, other, [inter])
    m.pfx("cn-only", leaf_key, m.cert(HOSTNAME, leaf_key, by_inter, sans=None), [inter])
    m.pfx("expired", leaf_key, m.cert(HOSTNAME, leaf_key, by_inter, days=(-400, -1)), [inter])
    m.pfx("not-yet-valid", leaf_key, m.cert(HOSTNAME, leaf_key, by_inter, days=(10, 400)), [inter])

    # Made at full cost (about a second each), as a tenant would make them.
    m.openssl_pfx("iter-openssl", leaf_key, [leaf, inter], "-iter", "1100000", "-maciter")
    m.pfx("iter-kdf-rounds", leaf_key, leaf, [inter], rounds=1_100_000)
    m.add("mac-iter-2-31", with_mac_iterations(aes, 2**31 - 1), m.password)

    shutil.rmtree(directory / "work", ignore_errors=True)
    assert set(m.corpus.cases) == set(EXPECTED), "every EXPECTED case must be generated"
    return m.corpus


@pytest.fixture(scope="session")
def pfx_corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """The corpus, built once; skips without openssl (fails if PORTICO_REQUIRE_CONTROLPLANE=1)."""
    if openssl() is None:
        reason = "the openssl CLI is not installed; run .ci/install-system-packages"
        if os.environ.get("PORTICO_REQUIRE_CONTROLPLANE") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return build_corpus(tmp_path_factory.mktemp("pfx"))
