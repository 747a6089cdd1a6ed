"""`PortalInstance.spec.allowedImages` patterns (pure).

An image reference is a path: `registry/team/name:tag` or `...@sha256:...`. A pattern's
`*` matches within one path segment and `?` one character other than `/`, so
`registry.example.com/portals/*` allows `registry.example.com/portals/app:1` but not
`registry.example.com/portals/other-team/app:1`; nothing else is special (no `[...]`
classes: a reference never needs them). Shell-style fnmatch lets `*` cross `/`, which
would hand an instance's credentials to any image below the pattern's prefix.
"""

from __future__ import annotations

import functools
import re


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    parts = []
    for char in pattern:
        if char == "*":
            parts.append("[^/]*")
        elif char == "?":
            parts.append("[^/]")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts))


def matches(image: str, pattern: str) -> bool:
    """Whether IMAGE is allowed by PATTERN (whole reference, case-sensitive)."""
    return _compiled(pattern).fullmatch(image) is not None


def allowed(image: str, patterns: tuple[str, ...]) -> bool:
    return any(matches(image, pattern) for pattern in patterns)
