"""The interactions of signed-in contacts, handed to each configured sink's sender.

Pages call `viewed` / `searched` after they rendered; both return at once. The sinks
follow portal.json as it is now: a changed `analytics` block starts new senders and
lets the old ones finish what they hold. Anonymous visitors are never tracked (the
pages call this only for a signed-in contact).

The sinks' TLS is verified as every call of the runtime is (portico_runtime.trust): the
public roots plus the instance's `ca.crt` when its credentials carry one, so a company
whose instance has a private CA gets its in-house hub or CloudEvents sink trusted the
same way, with nothing more to configure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl

import httpx

from portico_runtime import trust
from portico_runtime.config import ConfigError, Portal, Reader
from portico_runtime.content.kinds import Kind
from portico_runtime.interactions import model, sinks
from portico_runtime.interactions.metrics import Metrics
from portico_runtime.interactions.sender import Sender, Tuning
from portico_runtime.visitor import Contact


class Tracker:
    def __init__(self, reader: Reader, tuning: Tuning | None = None) -> None:
        self.reader = reader
        self.tuning = tuning or Tuning.from_env()
        self.metrics = Metrics()
        # By the private CA file ("" none): its verify context and the client made with it.
        self._clients: dict[str, tuple[ssl.SSLContext, httpx.AsyncClient]] = {}
        self._stale: list[httpx.AsyncClient] = []  # closed once their senders have drained
        self._key: str | None = None
        self._senders: list[tuple[sinks.Settings, Sender]] = []
        self._retiring: set[asyncio.Task[None]] = set()

    def _http(self, portal: Portal) -> httpx.AsyncClient:
        """The client for the portal's CA file; a new one once that file changed on disk
        (a rotated private CA): the senders then start over with it."""
        ca_file = trust.ca_file(portal.credentials_dir)
        verify = trust.context(portal.credentials_dir)
        kept = self._clients.get(ca_file)
        if kept is not None and kept[0] is verify:
            return kept[1]
        if kept is not None:
            self._stale.append(kept[1])
        client = httpx.AsyncClient(
            timeout=self.tuning.timeout, follow_redirects=False, trust_env=False, verify=verify
        )
        self._clients[ca_file] = (verify, client)
        return client

    def senders(self, portal: Portal) -> list[tuple[sinks.Settings, Sender]]:
        analytics = portal.raw.get("analytics") or {}
        http = self._http(portal)
        key = json.dumps(
            [analytics, portal.url, portal.namespace, portal.name, id(http)], sort_keys=True
        )
        if key == self._key:
            return self._senders
        old, self._senders, self._key = self._senders, [], key
        size = sinks.queue_size(portal)
        for config in sinks.settings(portal):
            sender = Sender(sinks.make(config, portal), size, self.metrics, http, self.tuning)
            sender.start()
            self._senders.append((config, sender))
        stale, self._stale = self._stale, []
        retired = [sender for _, sender in old]
        self._retiring.add(retiring := asyncio.create_task(self._retire(retired, stale)))
        retiring.add_done_callback(self._retiring.discard)
        return self._senders

    async def _retire(self, senders: list[Sender], clients: list[httpx.AsyncClient]) -> None:
        """Drain the senders a change replaced, then close the clients they sent with."""
        await asyncio.gather(*(s.drain(self.tuning.flush_seconds) for s in senders))
        for client in clients:
            await client.aclose()

    def _emit(self, portal: Portal, interaction: model.Interaction) -> None:
        for config, sender in self.senders(portal):
            shaped = model.for_sink(interaction, config.interactions, config.search_strings)
            if shaped is not None:
                sender.put(shaped)

    def viewed(
        self, portal: Portal, contact: Contact, kind: Kind, item_id: str, title: str
    ) -> None:
        fields = model.view_fields(kind.interaction, item_id, title)
        self._emit(portal, model.build(kind.interaction, portal, contact.id, fields))

    def searched(self, portal: Portal, contact: Contact, q: str) -> None:
        fields = {"searchstring": q}
        self._emit(portal, model.build("SearchPerformed", portal, contact.id, fields))

    async def start(self) -> None:
        """Start the senders for the configuration as it is (they also start on first use)."""
        with contextlib.suppress(ConfigError):
            self.senders(self.reader.get())

    async def stop(self) -> None:
        """Flush every queue within the grace period, then let go of the connections."""
        senders = [s for _, s in self._senders]
        await asyncio.gather(*(s.drain(self.tuning.flush_seconds) for s in senders))
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        for _, client in self._clients.values():
            await client.aclose()
