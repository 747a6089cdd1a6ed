"""A fault-injecting HTTPS reverse proxy between the operator and the real API server.

HTTP-level faults (toxiproxy works on TCP and cannot answer 409/429/503): at
`rate`, a request gets one fault its shape allows — 409 (writes only), 429 with
`Retry-After`, 500, 503, a slow answer, a connection reset, and for a watch a
stream cut after a short while. Everything else is forwarded unchanged
(the bearer token passes through; nothing here logs a header or a body).
Every request is recorded so a test can check what the client did next.

Portico's first few faulted writes get a 429 (the probes); `repeat_of` finds what
the client sent next. A test that SIGKILLs the operator first waits for every
probe's repeat and holds new probes until the kill is done (`unrepeated_probes`,
`hold_probes`): a kill within Retry-After of a probe would leave nothing to check.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from portico_dev.pki import PKI
from portico_dev.procs import free_port

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "upgrade", "host", "content-length"}
)
RETRY_AFTER = 1  # seconds, in every injected 429
# Portico's own client (the official Python client's User-Agent); Kopf's is kopf/...
PORTICO_AGENT = "OpenAPI-Generator/"
PROBES = 5  # Portico's first faulted writes get 429: Retry-After is checked in every run


@dataclass(frozen=True)
class Seen:
    at: float
    method: str
    path: str
    agent: str
    fault: str  # "" when forwarded unchanged; "kill" marks the operator killed (`mark`)
    body: str = ""  # a digest: a repeated request is the same path with the same body

    @property
    def watch(self) -> bool:
        return "watch=true" in self.path or "watch=1" in self.path

    @property
    def throttled_portico_write(self) -> bool:
        portico = self.agent.startswith(PORTICO_AGENT)
        return self.fault == "429" and self.method in WRITES and portico


def repeat_of(seen: list[Seen], index: int) -> Seen | None:
    """The next request identical to seen[INDEX] (method, path, body), or the kill marker
    that came first, or None while there is neither."""
    first = seen[index]
    same = (first.method, first.path, first.body)
    return next(
        (n for n in seen[index + 1 :] if (n.method, n.path, n.body) == same or n.fault == "kill"),
        None,
    )


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code}
    body |= {"reason": reason, "message": message}
    headers = {"Retry-After": str(RETRY_AFTER)} if code == 429 else {}
    return web.Response(
        status=code, text=json.dumps(body), content_type="application/json", headers=headers
    )


class FaultProxy:
    """Listens on 127.0.0.1 with a certificate from the control plane's CA; runs in a thread."""

    def __init__(self, upstream: str, pki_dir: Path, rate: float = 0.2, seed: int = 12) -> None:
        self.upstream, self.rate = upstream.rstrip("/"), rate
        self.random = random.Random(seed)
        self.port = free_port()
        self.seen: list[Seen] = []
        self._throttle_writes = PROBES
        self.probes: list[Seen] = []  # the writes answered 429 by `_throttle_writes`
        self._holding = False  # while a kill is due: no new probe (`hold_probes`)
        self._probe_lock = threading.Lock()
        pki = PKI.load(pki_dir)
        serving = pki.issue("faultproxy", "portico-faultproxy", server=True)
        self._server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_ssl.load_cert_chain(serving.cert, serving.key)
        self._client_ssl = ssl.create_default_context(cafile=str(pki.ca.cert))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def faults(self) -> Counter[str]:
        return Counter(s.fault for s in list(self.seen) if s.fault and s.fault != "kill")

    def mark_kill(self) -> None:
        """A new process cannot honour a Retry-After its predecessor was given."""
        self.seen.append(Seen(time.monotonic(), "", "", "", "kill"))

    def hold_probes(self, hold: bool) -> None:
        """No new probe while HOLD; once this returns, every probe issued is counted."""
        with self._probe_lock:
            self._holding = hold

    def unrepeated_probes(self) -> int:
        """Probes the client has not sent again yet, counting one still being answered."""
        with self._probe_lock:
            issued = PROBES - self._throttle_writes
        probes = list(self.probes)  # before `seen`: a probe is recorded there first
        seen = list(self.seen)
        index = {id(s): i for i, s in enumerate(seen)}
        waiting = [p for p in probes if repeat_of(seen, index[id(p)]) is None]
        return issued - len(probes) + len(waiting)

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _start(self) -> None:
        # An injected reset is an exception in aiohttp's handler: not worth a traceback each.
        logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._client_ssl, limit=0),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        await web.TCPSite(
            self._runner, "127.0.0.1", self.port, ssl_context=self._server_ssl
        ).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    # -- one request ---------------------------------------------------------------

    def _pick(self, method: str, watch: bool, agent: str) -> str:
        if self.random.random() >= self.rate:
            return ""
        # Portico's own writes are few beside its reads: the first faults they get are 429s,
        # so that honouring Retry-After on a write is checked in every run.
        if method in WRITES and agent.startswith(PORTICO_AGENT):
            with self._probe_lock:
                if self._throttle_writes > 0 and not self._holding:
                    self._throttle_writes -= 1
                    return "probe"
        if watch:  # few and long-lived: mostly cut them, the fault watches are made for
            kinds = ["drop-watch"] * 4 + ["429", "500", "503", "reset"]
        else:
            kinds = ["429", "500", "503", "slow", "reset"]
            kinds += ["409", "409"] if method in WRITES else []
        # Every kind early on (a rare one would otherwise be missed now and then), then at random.
        injected = self.faults()
        unseen = [k for k in kinds if not injected[k]]
        return self.random.choice(unseen or kinds)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        watch = request.query.get("watch") in ("true", "1")
        agent = request.headers.get("User-Agent", "")
        fault = self._pick(request.method, watch, agent)
        digest = hashlib.sha256(await request.read()).hexdigest()[:16]
        probe = fault == "probe"
        fault = "429" if probe else fault
        seen = Seen(time.monotonic(), request.method, request.path_qs, agent, fault, digest)
        self.seen.append(seen)
        if probe:
            self.probes.append(seen)
        if fault == "409":
            return _status(409, "Conflict", "injected conflict: the object has been modified")
        if fault == "429":
            return _status(429, "TooManyRequests", "injected: too many requests")
        if fault in ("500", "503"):
            reason = "InternalError" if fault == "500" else "ServiceUnavailable"
            return _status(int(fault), reason, f"injected {fault}")
        if fault == "reset":
            assert request.transport is not None
            request.transport.abort()
            raise ConnectionResetError("injected reset")
        if fault == "slow":
            await asyncio.sleep(self.random.uniform(1.0, 4.0))
        cut_after = self.random.uniform(0.5, 5.0) if fault == "drop-watch" else None
        return await self._forward(request, cut_after)

    async def _forward(self, request: web.Request, cut_after: float | None) -> web.StreamResponse:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        body = await request.read()
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=body or None,
            allow_redirects=False,
        ) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in HOP_BY_HOP:
                    response.headers.add(key, value)
            await response.prepare(request)
            deadline = None if cut_after is None else time.monotonic() + cut_after
            while True:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    chunk = await asyncio.wait_for(upstream.content.readany(), timeout)
                except TimeoutError:
                    assert request.transport is not None
                    request.transport.abort()  # the dropped watch stream
                    return response
                if not chunk:
                    break
                await response.write(chunk)
            await response.write_eof()
            return response
