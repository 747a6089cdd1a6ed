"""The cert-manager target of `portico dev build`: pinned, cached apart by version, and
missing loudly (the control-plane tier turns BinariesMissing into a failure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from portico_dev import BinariesMissing, binaries


def test_pinned_to_cert_manager_1_21_and_cached_by_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (target,) = [t for t in binaries.targets() if t.module_dir == "cert-manager"]
    assert target.version.startswith("v1.21.")
    assert target.bin_dir == tmp_path / "portico" / f"cert-manager-{target.version}" / "bin"
    assert target.asset_dir("crds") == target.bin_dir.parent / "crds"
    assert not target.complete
    with pytest.raises(BinariesMissing, match="portico dev build"):
        binaries.cert_manager()
    target.bin_dir.mkdir(parents=True)
    (target.bin_dir / binaries.CERT_MANAGER_BINARY).write_text("#!/bin/sh\n")
    (target.bin_dir / binaries.CERT_MANAGER_BINARY).chmod(0o755)
    with pytest.raises(BinariesMissing, match="CRDs"):
        binaries.cert_manager()
    target.asset_dir("crds").mkdir()
    assert target.complete
    assert binaries.cert_manager() == (
        target.bin_dir / binaries.CERT_MANAGER_BINARY,
        target.asset_dir("crds"),
    )
