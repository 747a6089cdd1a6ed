"""The README's install block as tests/realnode/test_readme_install.py reads it (that test runs
it on a real node; this one, on every unit run, catches a block it could no longer read)."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.support.readme import (
    PLACEHOLDERS,
    README,
    ROOT,
    BlockMissing,
    commands,
    install_block,
    substituted,
)


def test_the_install_block_is_helm_and_kubectl_on_files_of_this_repository() -> None:
    block = install_block(README.read_text())
    run = commands(block)
    assert run[0].startswith("helm install portico charts/portico ")
    assert run[-1].startswith("kubectl wait --for=condition=Ready portal/")
    for command in run:
        words = shlex.split(command)
        # The real-node test puts only the dev cluster's helm and kubectl on PATH.
        assert words[0] in {"helm", "kubectl"}, command
        for path in (w for w in words if w.startswith(("examples/", "charts/"))):
            assert (ROOT / path).exists(), f"{command}: {path} is not in the repository"


def test_only_the_placeholders_change() -> None:
    block = install_block(README.read_text())
    run = substituted(block, "localhost/p/operator:abc", "localhost/p/runtime:def", "portals.test")
    assert len(run) == len(commands(block))
    text = "\n".join(run)
    assert "example.com" not in text and "0.1.0" not in text
    assert "image.repository=localhost/p/operator " in text
    assert "image.tag=abc " in text and "runtimeImage=localhost/p/runtime:def " in text
    # Everything else is the README's, byte for byte.
    pattern = re.escape("\n".join(commands(block)))
    for placeholder in PLACEHOLDERS:
        pattern = pattern.replace(re.escape(placeholder), ".+?")
    assert re.fullmatch(pattern, text)


def test_continuations_join_and_comments_go() -> None:
    block = "# a comment\nhelm install a \\\n  --set x=1\n\nkubectl get pods\n"
    assert commands(block) == ["helm install a   --set x=1", "kubectl get pods"]
    with pytest.raises(BlockMissing, match="continued"):
        commands("helm install a \\\n")


def test_a_placeholder_the_readme_dropped_fails() -> None:
    text = "x\n<!-- tests/realnode/test_readme_install.py runs the next block -->\n```sh\n"
    text += "helm install portico charts/portico --set image.tag=0.1.0\n```\n"
    with pytest.raises(BlockMissing, match="no longer has"):
        substituted(install_block(text), "r/o:t", "r/r:t", "d")


def test_the_two_commands_are_make_targets() -> None:
    readme, makefile = README.read_text(), (ROOT / "Makefile").read_text()
    for target in ("demo", "test"):
        assert f"make {target} " in readme
        assert re.search(rf"^{target}:", makefile, re.M), target
