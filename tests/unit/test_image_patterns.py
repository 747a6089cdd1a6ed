"""allowedImages patterns: `*` and `?` stay within one path segment of the image reference."""

from __future__ import annotations

import copy

import pytest

from portico.api.model import parse_instance, parse_portal
from portico.core import entitlement, image_patterns
from tests.support.worlds import INSTANCE, SETTINGS, portal_obj

ALLOWED = "registry.example.com/portals/*"


@pytest.mark.parametrize(
    ("image", "allowed"),
    [
        ("registry.example.com/portals/app:1.2", True),
        ("registry.example.com/portals/app", True),
        ("registry.example.com/portals/app@sha256:" + "a" * 64, True),
        # `*` never crosses `/`: another team's path below the prefix is not allowed.
        ("registry.example.com/portals/other-team/app:1", False),
        ("registry.example.com/portals/../evil/app:1", False),
        ("registry.example.com/portalsX/app:1", False),
        ("registry.example.com.evil.io/portals/app:1", False),
        ("evil.io/registry.example.com/portals/app:1", False),
    ],
)
def test_star_matches_within_one_segment(image: str, allowed: bool) -> None:
    assert image_patterns.matches(image, ALLOWED) is allowed


@pytest.mark.parametrize(
    ("pattern", "image", "allowed"),
    [
        ("registry.example.com/*/app:1", "registry.example.com/team/app:1", True),
        ("registry.example.com/*/app:1", "registry.example.com/a/b/app:1", False),
        ("registry.example.com/portals/app:?", "registry.example.com/portals/app:1", True),
        ("registry.example.com/portals/app?x", "registry.example.com/portals/app/x", False),
        # Regular-expression and fnmatch syntax is literal.
        ("registry.example.com/portals/app:[12]", "registry.example.com/portals/app:1", False),
        ("registry.example.com/portals/app:[12]", "registry.example.com/portals/app:[12]", True),
        ("registry.example.com/portals/app.+", "registry.example.com/portals/appXX", False),
        ("Registry.example.com/portals/*", "registry.example.com/portals/app", False),
    ],
)
def test_only_star_and_question_mark_are_special(pattern: str, image: str, allowed: bool) -> None:
    assert image_patterns.matches(image, pattern) is allowed


def test_an_image_under_a_deeper_path_is_not_allowed() -> None:
    """The entitlement check itself: what fnmatch allowed (`*` across `/`) is ImageNotAllowed."""
    raw = copy.deepcopy(INSTANCE)
    raw["spec"]["allowedImages"] = [ALLOWED]
    instance = parse_instance(raw)

    def problem(image: str) -> str | None:
        obj = portal_obj(runtime={"image": image})
        found = entitlement.image_allowed(parse_portal(obj), instance, SETTINGS)
        return found.reason if found else None

    assert problem("registry.example.com/portals/app:1") is None
    assert problem("registry.example.com/portals/team-b/app:1") == "ImageNotAllowed"
