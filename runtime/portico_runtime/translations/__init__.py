"""Translation bundles shipped with the runtime: one JSON file per language (BCP 47)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


class MissingBundle(LookupError):
    """No bundle for a language."""


def available() -> list[str]:
    return sorted(
        p.name.removesuffix(".json")
        for p in resources.files(__package__).iterdir()
        if p.name.endswith(".json")
    )


@cache
def bundle(language: str) -> dict[str, str]:
    """The strings of LANGUAGE; MissingBundle when the runtime ships none for it."""
    if language not in available():
        raise MissingBundle(language)
    data: Any = json.loads(resources.files(__package__).joinpath(f"{language}.json").read_text())
    if data.get("language") != language or not isinstance(data.get("strings"), dict):
        raise MissingBundle(f"{language}: malformed bundle")
    return {str(k): str(v) for k, v in data["strings"].items()}


def text(language: str, key: str, **values: str) -> str:
    """A string in LANGUAGE, falling back to en-US for a language without a bundle."""
    try:
        strings = bundle(language)
    except MissingBundle:
        strings = bundle("en-US")
    return (strings.get(key) or bundle("en-US")[key]).format(**values)
