"""The emulated-API tier: `portico run` against a kmock 0.8 API server on loopback.

Real-server behaviour is the control-plane tier's job; this tier injects the
faults a real server will not produce on demand (409/500 on a write, a watch
that ends or fails). The kmock server runs in the test's event loop; the
operator runs as its own process, exactly as deployed (Kopf cluster-wide).
Kopf is not run in-process: when it stops it cancels every task created after
it started, pytest-asyncio's teardown task included.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import kmock
import pytest_asyncio

from tests.support.apiserver import ApiServer
from tests.support.emulated import NAMESPACE, Operator, StartOperator, seed
from tests.support.runtime import running_instance


@pytest_asyncio.fixture
async def api() -> AsyncIterator[ApiServer]:
    """kmock on 127.0.0.1 holding one PortalInstance, its credentials Secret and one Portal."""
    with running_instance() as (url, _):
        async with (
            ApiServer(namespaces=[NAMESPACE, "portico-system"]) as server,
            kmock.Server(server),
        ):
            seed(server, url)
            yield server


@pytest_asyncio.fixture
async def start_operator(api: ApiServer, tmp_path: Path) -> AsyncIterator[StartOperator]:
    """Start `portico run` against API; every one started is stopped at teardown."""
    started: list[Operator] = []

    async def start(resync_seconds: float = 300.0, **env: str) -> Operator:
        operator = Operator(api, tmp_path, resync_seconds, env)
        started.append(operator)
        await operator.start()
        return operator

    try:
        yield start
    finally:
        for operator in started:
            # Stop in a thread: kmock must keep serving the operator while it shuts down.
            await asyncio.to_thread(operator.stop)
