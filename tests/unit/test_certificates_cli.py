"""`portico inspect-cert` on the generated pfx_corpus: verdicts, exit codes, no secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from portico.cli import main
from tests.support.pfx_corpus import Corpus, pfx_corpus

__all__ = ["pfx_corpus"]  # a fixture: imported so pytest finds it


def inspect(tmp_path: Path, pfx_corpus: Corpus, name: str, *extra: str) -> tuple[int, str]:
    case = pfx_corpus.cases[name]
    args = ["inspect-cert", str(case.path), "--host", case.hostname, *extra]
    if case.password is not None:
        password_file = tmp_path / "password"
        password_file.write_text(case.password + "\n")
        args += ["--password-file", str(password_file)]
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output


def test_valid_pfx(tmp_path: Path, pfx_corpus: Corpus) -> None:
    code, out = inspect(tmp_path, pfx_corpus, "aes256")
    assert code == 0, out
    assert "OK, ready for a kubernetes.io/tls Secret (3 in chain)" in out
    assert "SHA-256:" in out and "support.contoso.test" in out


def test_expiring_soon_warns_but_passes(tmp_path: Path, pfx_corpus: Corpus) -> None:
    code, out = inspect(tmp_path, pfx_corpus, "expiring-soon")
    assert code == 0
    assert "CertificateExpiringSoon" in out


@pytest.mark.parametrize(
    "name",
    ["wrong-password", "corrupt", "no-key", "mismatched-key", "sha1-leaf", "rsa-1024",
     "no-server-auth", "cn-only", "expired", "not-yet-valid"],
)  # fmt: skip
def test_rejected_pfx_exits_one(tmp_path: Path, pfx_corpus: Corpus, name: str) -> None:
    code, out = inspect(tmp_path, pfx_corpus, name)
    assert code == 1
    assert f"rejected ({pfx_corpus.cases[name].expected})" in out


def test_pem_pair_with_key(tmp_path: Path, pfx_corpus: Corpus) -> None:
    crt, key = pfx_corpus.pem_pairs["chain-out-of-order"]
    (tmp_path / "tls.crt").write_bytes(crt)
    (tmp_path / "tls.key").write_bytes(key)
    args = ["inspect-cert", str(tmp_path / "tls.crt"), "--key", str(tmp_path / "tls.key")]
    result = CliRunner().invoke(main, [*args, "--host", "support.contoso.test"])
    assert result.exit_code == 0, result.output
    assert "(4 in chain)" in result.output


def test_password_from_stdin(pfx_corpus: Corpus) -> None:
    case = pfx_corpus.cases["rc2-40"]
    args = ["inspect-cert", str(case.path), "--password-file", "-"]
    result = CliRunner().invoke(main, args, input=case.password)
    assert result.exit_code == 0, result.output


def test_output_never_shows_secrets(tmp_path: Path, pfx_corpus: Corpus) -> None:
    outputs = [inspect(tmp_path, pfx_corpus, name)[1] for name in pfx_corpus.cases]
    text = "\n".join(outputs)
    assert "-----BEGIN" not in text
    assert not [secret for secret in pfx_corpus.forbidden if secret in text]
