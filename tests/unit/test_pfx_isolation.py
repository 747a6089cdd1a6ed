"""A hostile .pfx costs the operator nothing: its iteration counts are judged before any
key is derived, and what still runs long is stopped in its worker process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from portico.certificates import CertReason, convert_pfx, pkcs12_cost
from portico.certificates.isolation import CertificateWorkers
from portico.certificates.pkcs12_cost import Count, iteration_counts, too_expensive
from tests.support.pfx_corpus import Corpus, pfx_corpus, with_mac_iterations

__all__ = ["pfx_corpus"]  # a fixture: imported so pytest finds it

HOSTILE = ("iter-openssl", "iter-kdf-rounds", "mac-iter-2-31")


def test_counts_of_a_default_export(pfx_corpus: Corpus) -> None:
    counts = iteration_counts(pfx_corpus.cases["aes256"].data)
    assert sorted(c.where for c in counts) == ["MAC", "certificates", "private key"]
    assert {c.iterations for c in counts} == {2048}
    # openssl -legacy and the 3DES export carry PKCS#12-PBE counts, read the same way
    for name in ("3des", "rc2-40"):
        assert {c.iterations for c in iteration_counts(pfx_corpus.cases[name].data)} == {2048}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_files_are_refused_before_any_key_derivation(pfx_corpus: Corpus, name: str) -> None:
    case = pfx_corpus.cases[name]
    started = time.process_time()
    verdict = convert_pfx(case.data, case.password, hostname=case.hostname)
    assert time.process_time() - started < 0.5  # 2^31 iterations would take ~8 minutes
    assert not verdict.ok and verdict.reason == CertReason.PFX_TOO_EXPENSIVE
    assert "Export it again with your tool's default settings" in verdict.message
    assert case.password and case.password not in verdict.message


def test_the_2_31_file_really_is_that_expensive(pfx_corpus: Corpus) -> None:
    """Without the check OpenSSL spends the count before the MAC is found wrong: the file
    is not refused by OpenSSL in seconds (it would run for minutes)."""
    case = pfx_corpus.cases["mac-iter-2-31"]
    probe = (
        "import sys; from cryptography.hazmat.primitives.serialization import pkcs12\n"
        "pkcs12.load_pkcs12(open(sys.argv[1], 'rb').read(), sys.argv[2].encode())"
    )
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run(
            [sys.executable, "-c", probe, str(case.path), case.password or ""], timeout=3
        )


def test_bounds_per_count_in_all_and_for_unknown_derivations() -> None:
    assert too_expensive([Count("MAC", pkcs12_cost.MAX_ITERATIONS)]) is None
    assert "1,000,001" in (too_expensive([Count("MAC", 1_000_001)]) or "")
    many = [Count("private key", 900_000)] * 5
    assert "4,500,000 key-derivation iterations over 5 parts" in (too_expensive(many) or "")
    scrypt = Count("private key", 0, unsupported="1.3.6.1.4.1.11591.4.11")
    assert "does not accept" in (too_expensive([scrypt]) or "")


def test_ber_indefinite_length_is_read(pfx_corpus: Corpus) -> None:
    """Some Windows and Java exports use BER; OpenSSL reads it, so must the reader."""
    der = pfx_corpus.cases["iter-openssl"].data
    header = 2 + (der[1] & 0x7F if der[1] & 0x80 else 0)
    ber = b"\x30\x80" + der[header:] + b"\x00\x00"
    assert {c.iterations for c in iteration_counts(ber)} == {1_100_000}
    assert convert_pfx(ber, "x").reason == CertReason.PFX_TOO_EXPENSIVE  # type: ignore[union-attr]


def test_unreadable_files_are_invalid_not_passed_on(pfx_corpus: Corpus) -> None:
    data = pfx_corpus.cases["aes256"].data
    nested = b"\x30\x80" * 100_000 + b"\x00\x00" * 100_000  # BER nesting as deep as it goes
    for broken in (data[:40], b"\x30\x03\x02\x01\x03", b"\x04\x00", b"", nested):
        with pytest.raises(pkcs12_cost.Malformed):
            iteration_counts(broken)
        assert convert_pfx(broken, "x").reason == CertReason.INVALID_PFX  # type: ignore[union-attr]


def test_mac_rewrite_keeps_the_structure(pfx_corpus: Corpus) -> None:
    data = with_mac_iterations(pfx_corpus.cases["aes256"].data, 2048)
    case = pfx_corpus.cases["aes256"]
    assert data == case.data and pkcs12.load_pkcs12(data, (case.password or "").encode())


# ---- the worker processes ----------------------------------------------------------


def slow_but_allowed(tmp_path: Path, corpus: Corpus) -> bytes:
    """Every count at the bound: allowed, and about a second of CPU to open."""
    case = corpus.cases["aes256"]
    key = tmp_path / "k.pem"
    crt = tmp_path / "c.pem"
    crt_pem, key_pem = corpus.pem_pairs["aes256"]
    crt.write_bytes(crt_pem)
    key.write_bytes(key_pem)
    out = tmp_path / "slow.pfx"
    subprocess.run(
        [
            *("openssl", "pkcs12", "-export", "-iter", str(pkcs12_cost.MAX_ITERATIONS)),
            *("-maciter", "-in", str(crt), "-inkey", str(key), "-out", str(out)),
            *("-passout", f"pass:{case.password}"),
        ],
        check=True,
        capture_output=True,
    )
    key.unlink()
    return out.read_bytes()


def test_workers_convert_like_the_library(pfx_corpus: Corpus) -> None:
    with CertificateWorkers(size=2) as workers:
        for name, case in pfx_corpus.cases.items():
            password = case.password.encode() if case.password else None
            verdict = workers.check("pfx", case.data, password, case.hostname)
            assert (None if verdict.ok else verdict.reason) == case.expected, name
        crt, key = pfx_corpus.pem_pairs["aes256"]
        assert workers.check("pair", crt, key, "support.contoso.test").ok


def test_a_check_over_its_wall_clock_is_killed_and_the_worker_replaced(
    tmp_path: Path, pfx_corpus: Corpus
) -> None:
    slow = slow_but_allowed(tmp_path, pfx_corpus)
    password = (pfx_corpus.cases["aes256"].password or "").encode()
    with CertificateWorkers(size=1, timeout=0.2) as workers:
        verdict = workers.check("pfx", slow, password)
        assert not verdict.ok and verdict.reason == CertReason.CERTIFICATE_CHECK_TIMED_OUT
        assert "longer than 0.2 s" in verdict.message and workers.killed == 1
        workers.timeout = 30.0
        case = pfx_corpus.cases["ec-p256"]
        assert workers.check("pfx", case.data, password, case.hostname).ok  # a fresh worker


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_a_worker_killed_by_its_cpu_limit_reports_it(tmp_path: Path, pfx_corpus: Corpus) -> None:
    """SIGXCPU is what RLIMIT_CPU sends: the verdict says the CPU allowance ran out."""
    slow = slow_but_allowed(tmp_path, pfx_corpus)
    password = (pfx_corpus.cases["aes256"].password or "").encode()
    case = pfx_corpus.cases["ec-p256"]
    with CertificateWorkers(size=1, cpu_seconds=3) as workers:
        assert workers.check("pfx", case.data, password, case.hostname).ok
        worker = workers._idle.queue[0]
        assert worker is not None
        idle_cpu = cpu_ticks(worker.pid)
        verdicts = []

        def check() -> None:
            verdicts.append(workers.check("pfx", slow, password))

        thread = threading.Thread(target=check)
        thread.start()
        deadline = time.monotonic() + 20
        while cpu_ticks(worker.pid) <= idle_cpu + 1 and time.monotonic() < deadline:
            thread.join(0.01)  # until the worker is busy deriving keys
        os.kill(worker.pid, signal.SIGXCPU)
        thread.join(30)
        assert verdicts and not verdicts[0].ok
        assert verdicts[0].reason == CertReason.CERTIFICATE_CHECK_TIMED_OUT
        assert "3 s of CPU time" in verdicts[0].message


def test_the_cpu_limit_ends_a_process_that_spins() -> None:
    spin = "from portico.certificates.worker import cap_cpu\ncap_cpu(1)\nwhile True: pass"
    proc = subprocess.run([sys.executable, "-c", spin], timeout=60)
    assert proc.returncode == -signal.SIGXCPU
