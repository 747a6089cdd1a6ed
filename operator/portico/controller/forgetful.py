"""Kopf's per-object memory, not kept: Portico handles watch events only.

Kopf remembers every object it has seen (about 0.8 KiB each: a memo, an error
throttler, index and daemon state) until the object is deleted: at 5,000
portals that is some 50,000 records, 40 MiB, for features Portico does not use
(no daemons, timers, indexes, on.create/resume, or patches by Kopf). Each event
gets a fresh record instead; the store (store.py) is the operator's one memory
of the cluster.
"""

from __future__ import annotations

from typing import Any

from kopf._core.reactor.inventory import ResourceMemories, ResourceMemory


class ForgetfulMemories(ResourceMemories):
    async def recall(self, raw_body: Any, **kwargs: Any) -> ResourceMemory:
        return await super().recall(raw_body, **{**kwargs, "ephemeral": True})
