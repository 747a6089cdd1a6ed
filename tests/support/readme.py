"""The README's install commands, read from the README itself so a test runs what a reader
copies: the ```sh block after the marker comment that names the test.

The only changes a test may make are the placeholders the README tells the reader to replace
(PLACEHOLDERS); each must still be in the block, so README and test cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MARKER = "<!-- tests/realnode/test_readme_install.py runs the next block"

# What the README's reader replaces, in this order (the runtime image first: it contains the
# operator's repository): runtime image, operator repository, operator tag, base domain.
PLACEHOLDERS = (
    "registry.example.com/portico-runtime:0.1.0",
    "registry.example.com/portico",
    "image.tag=0.1.0",
    "portals.example.com",
)


class BlockMissing(AssertionError):
    pass


def install_block(text: str) -> str:
    """The body of the first ```sh block after the marker."""
    at = text.find(MARKER)
    if at < 0:
        raise BlockMissing(f"the README has no {MARKER!r} comment before its install commands")
    rest = text[at:].split("\n", 1)[1]
    opening = rest.find("```sh\n")
    if opening < 0 or rest[:opening].strip():
        raise BlockMissing("the install marker must be followed directly by a ```sh block")
    body = rest[opening + len("```sh\n") :]
    end = body.find("```")
    if end < 0:
        raise BlockMissing("the README's install block is not closed")
    return body[:end]


def commands(block: str) -> list[str]:
    """One string per command, as the shell reads them: a line ending in a backslash goes on
    with the next; blank lines and comments are left out (each command is run on its own, so
    a failure names it)."""
    out: list[str] = []
    pending = ""
    for line in block.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        out.append((pending + line).strip())
        pending = ""
    if pending:
        raise BlockMissing(f"the install block ends inside a continued command: {pending!r}")
    return out


def substituted(block: str, operator_image: str, runtime_image: str, base_domain: str) -> list[str]:
    """The block's commands with the reader's values in place of the README's placeholders."""
    repository, tag = operator_image.rsplit(":", 1)
    values = (runtime_image, repository, f"image.tag={tag}", base_domain)
    out = commands(block)
    missing = [p for p in PLACEHOLDERS if not any(p in c for c in out)]
    if missing:
        raise BlockMissing(
            f"the README's install block no longer has {missing}: the README tells readers to "
            "replace these; change it and tests/support/readme.py together"
        )
    for placeholder, value in zip(PLACEHOLDERS, values, strict=True):
        out = [c.replace(placeholder, value) for c in out]
    return out
