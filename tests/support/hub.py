"""A stand-in customer-insights hub and a CloudEvents receiver, on loopback, for tests and demos.

The hub implements the documented endpoint (`POST /data/Interactions?api-version=2016-01-01`)
and verifies what a real hub would: the SharedAccessSignature (resource, policy, key,
expiry) and the body's schema. It can be told to answer 429/500, to be slow, to reject,
or to go away (the server stops; the port refuses connections) and come back. The
receiver parses each batch with the `cloudevents` SDK.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import uvicorn
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portico_dev.procs import free_port
from portico_runtime.interactions import model, sas


@dataclass
class Script:
    """What the server answers next: a queue of (status, headers) before the normal answer."""

    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    delay: float = 0.0  # seconds before every answer (a slow hub)

    def next(self) -> tuple[int, dict[str, str]] | None:
        return self.answers.pop(0) if self.answers else None


@dataclass
class HubState:
    policy: str
    key: str
    resource: str = ""  # the hub URI the signature must name (set once the port is known)
    script: Script = field(default_factory=Script)
    attempts: list[str] = field(default_factory=list)  # interaction id of every request
    accepted: list[dict[str, Any]] = field(default_factory=list)  # bodies answered 2xx
    accepted_at: list[float] = field(default_factory=list)  # when each was (time.time())
    refused: list[str] = field(default_factory=list)  # why signature/schema checks failed
    expiries: list[int] = field(default_factory=list)

    def accept(self, body: dict[str, Any]) -> None:
        self.accepted.append(body)
        self.accepted_at.append(time.time())

    def accepted_ids(self) -> Counter[str]:
        return Counter(b["properties"]["portal_interactionid"] for b in self.accepted)


def hub_app(state: HubState) -> Starlette:
    async def interactions(request: Request) -> Response:
        if request.query_params.get("api-version") != "2016-01-01":
            return JSONResponse({"message": "api-version 2016-01-01 required"}, 400)
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        interaction_id = ""
        if isinstance(body, dict) and isinstance(body.get("properties"), dict):
            interaction_id = str(body["properties"].get("portal_interactionid", ""))
        state.attempts.append(interaction_id)
        if state.script.delay:
            await asyncio.sleep(state.script.delay)
        header = request.headers.get("authorization", "")
        why = sas.verify(header, state.resource, state.policy, state.key, time.time())
        if why:
            state.refused.append(why)
            return JSONResponse({"message": "unauthorized"}, 401)
        state.expiries.append(int(sas.parse(header)["se"]))
        problems = model.schema_problems(body)
        if problems or request.headers.get("content-type") != "application/json":
            state.refused.extend(problems or ["content-type must be application/json"])
            return JSONResponse({"message": "; ".join(problems)}, 400)
        scripted = state.script.next()
        if scripted is not None:
            status, headers = scripted
            if 200 <= status < 300:
                state.accept(body)
            return Response(status_code=status, headers=headers)
        state.accept(body)
        return JSONResponse({"accepted": 1}, 202)

    return Starlette(routes=[Route("/data/Interactions", interactions, methods=["POST"])])


@dataclass
class ReceiverState:
    script: Script = field(default_factory=Script)
    batches: list[list[CloudEvent]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def events(self) -> list[CloudEvent]:
        return [e for batch in self.batches for e in batch]


def receiver_app(state: ReceiverState) -> Starlette:
    async def receive(request: Request) -> Response:
        if request.headers.get("content-type") != "application/cloudevents-batch+json":
            state.refused.append("content-type")
            return Response(status_code=415)
        try:
            items = json.loads(await request.body())
            fmt = JSONFormat()
            batch = [fmt.read(None, json.dumps(item).encode()) for item in items]
        except Exception as exc:  # the SDK's own validation errors
            state.refused.append(f"{type(exc).__name__}: {exc}")
            return Response(status_code=400)
        if state.script.delay:
            await asyncio.sleep(state.script.delay)
        scripted = state.script.next()
        if scripted is not None:
            return Response(status_code=scripted[0], headers=scripted[1])
        state.batches.append([e for e in batch if isinstance(e, CloudEvent)])
        state.headers.append(dict(request.headers))
        return Response(status_code=202)

    return Starlette(routes=[Route("/events", receive, methods=["POST"])])


class Server:
    """A uvicorn server in a thread on a fixed loopback port; stop() and start() again."""

    def __init__(
        self,
        app: Starlette,
        port: int | None = None,
        lifespan: Literal["auto", "on", "off"] = "off",
        tls: tuple[Path, Path] | None = None,  # (certificate, key): serve HTTPS
    ) -> None:
        self.app, self.port, self.lifespan = app, port or free_port(), lifespan
        self.tls = tls
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        cert, key = self.tls or (None, None)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan=self.lifespan,
            ssl_certfile=cert,
            ssl_keyfile=key,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "the stand-in server did not start"
            assert self._thread.is_alive(), "the stand-in server could not bind its port"
            time.sleep(0.01)

    def stop(self) -> None:
        """Go away: the listening socket closes, connections are refused."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(60)
            self._server = None


@contextmanager
def running_hub(
    policy: str = "portal-writer", key: str = "hub-key-1", tls: tuple[Path, Path] | None = None
) -> Iterator[tuple[Server, HubState]]:
    """The hub on loopback; its signatures must name its own URL (set `state.resource` to
    the address a relay gives it when clients reach it elsewhere)."""
    state = HubState(policy=policy, key=key)
    server = Server(hub_app(state), tls=tls)
    state.resource = server.url
    server.start()
    try:
        yield server, state
    finally:
        server.stop()


@contextmanager
def running_receiver() -> Iterator[tuple[Server, ReceiverState]]:
    state = ReceiverState()
    server = Server(receiver_app(state))
    server.start()
    try:
        yield server, state
    finally:
        server.stop()
