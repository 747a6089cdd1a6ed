"""The images tier: the built OCI archives, run with buildah (no daemon, no node).

Without the archives the tier is skipped with the reason; PORTICO_REQUIRE_IMAGES=1
(set by `make test`) turns that skip into a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from portico_dev import imagebuild
from tests.support import tiers
from tests.support.buildah import Buildah, skip_or_fail

HERE = Path(__file__).parent.resolve()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tiers.mark_tier(items, HERE, pytest.mark.images)


@pytest.fixture(scope="session")
def built() -> dict[str, imagebuild.Image]:
    """The current archives (by the key of today's inputs); `portico dev images` makes them."""
    current = {image.name: image for image in imagebuild.plan()}
    missing = [i.name for i in current.values() if not i.archive.is_file()]
    if missing:
        skip_or_fail(f"no image archives for {', '.join(missing)}: run `portico dev images`")
    return current


@pytest.fixture(scope="session")
def buildah(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Buildah]:
    tool = Buildah(tmp_path_factory.mktemp("buildah"))
    try:
        yield tool
    finally:
        tool("rm", "--all", check=False)
        tool("rmi", "--all", "--force", check=False)
