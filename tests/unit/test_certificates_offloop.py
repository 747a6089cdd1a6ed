"""A 4096-bit .pfx converted in a worker thread leaves the event loop free.

cryptography validates the RSA key on load (about a second for 4096 bits)
with the GIL released, so the operator's `asyncio.to_thread` keeps other
portals' handlers running meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from portico.certificates import ConvertedCertificate, convert_pfx

HOST = "big.contoso.test"


def big_pfx() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=90))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), False)
        .sign(key, hashes.SHA256())
    )
    encryption = serialization.BestAvailableEncryption(b"big-pfx-test")
    return pkcs12.serialize_key_and_certificates(b"big", key, cert, None, encryption)


def test_4096_bit_conversion_does_not_stall_the_loop() -> None:
    data = big_pfx()

    async def run() -> tuple[object, float]:
        gaps: list[float] = []
        done = asyncio.Event()

        async def heartbeat() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.01)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        beat = asyncio.create_task(heartbeat())
        result = await asyncio.to_thread(convert_pfx, data, "big-pfx-test", hostname=HOST)
        done.set()
        await beat
        return result, max(gaps)

    result, worst_gap = asyncio.run(run())
    assert isinstance(result, ConvertedCertificate)
    assert result.summary.public_key == "RSA 4096"
    assert worst_gap < 0.25, f"event loop stalled for {worst_gap:.3f}s"
