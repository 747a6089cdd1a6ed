"""A bounded in-memory queue per sink: put never waits, a full queue drops its oldest item."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class DropOldest(Generic[T]):
    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._items: deque[T] = deque()
        self._ready = asyncio.Event()
        self.closed = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> T | None:
        """Add ITEM at once; returns the oldest item if it made room (the caller counts it)."""
        dropped = self._items.popleft() if len(self._items) >= self.size else None
        self._items.append(item)
        self._ready.set()
        return dropped

    async def take(self, most: int) -> list[T]:
        """Up to MOST items, waiting for one; [] once closed and empty."""
        while not self._items:
            if self.closed:
                return []
            self._ready.clear()
            await self._ready.wait()
        return [self._items.popleft() for _ in range(min(most, len(self._items)))]

    def drain_all(self) -> list[T]:
        items, self._items = list(self._items), deque()
        return items

    def close(self) -> None:
        """No more waiting: take() returns what is left, then []."""
        self.closed = True
        self._ready.set()
