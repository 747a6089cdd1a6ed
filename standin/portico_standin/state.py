"""The stand-in's memory. Capabilities keep their own stores in `stores` (see `store()`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class InstanceState:
    authorization: str  # the exact header value the instance's own credentials give
    languages: tuple[str, ...]
    solutions: tuple[str, ...]
    reject: tuple[str, ...] = ()  # packages whose install fails (to test failure paths)
    installed: dict[str, list[str]] = field(default_factory=dict)
    translations: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    edited: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    stores: dict[str, Any] = field(default_factory=dict)


def store(state: InstanceState, kind: type[T]) -> T:
    """The one store of this kind for this instance (made on first use)."""
    found = state.stores.get(kind.__name__)
    if found is None:
        found = state.stores[kind.__name__] = kind()
    return found
