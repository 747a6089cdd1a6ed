"""Pass a request on to a portal's runtime pod: for a portal the operator has made Ready
whose own route the ingress controller has not applied yet, so that Ready means the URL
serves the portal.

Whole bodies, plain http.client in a worker thread: this path carries a portal's
traffic only for the moments between Ready and the ingress's own route.
"""

from __future__ import annotations

import asyncio
import http.client
import random
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response

from portico_runtime.pages.sites import Endpoint

TIMEOUT = 30.0
CONNECT_TIMEOUT = 2.0
MAX_BODY = 16 * 1024 * 1024
# Hop-by-hop headers (RFC 9110 7.6.1) stay with the connection they came on.
HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)


class Unreachable(Exception):
    """No pod of the portal answered."""


def _send(
    endpoint: Endpoint, method: str, target: str, headers: list[tuple[str, str]], body: bytes
) -> tuple[int, list[tuple[str, str]], bytes]:
    conn = http.client.HTTPConnection(endpoint.address, endpoint.port, timeout=CONNECT_TIMEOUT)
    try:
        conn.connect()  # a pod that is gone must not hold the visitor for long
        assert conn.sock is not None
        conn.sock.settimeout(TIMEOUT)
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        answer = conn.getresponse()
        data = answer.read(MAX_BODY + 1)
        if len(data) > MAX_BODY:
            raise Unreachable("the portal's answer is larger than the page server passes on")
        kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in HOP]
        return answer.status, kept, data
    finally:
        conn.close()


async def forward(request: Request, pods: Sequence[Endpoint]) -> Response:
    """The portal's answer, from the first of its pods (in random order) that takes the
    connection; Unreachable when none does."""
    body = await request.body()
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP]
    client = request.client.host if request.client else ""
    forwarded = request.headers.get("x-forwarded-for")
    headers = [(k, v) for k, v in headers if k.lower() != "x-forwarded-for"]
    if client:
        headers.append(("X-Forwarded-For", f"{forwarded}, {client}" if forwarded else client))
    order = list(pods)
    random.shuffle(order)
    for endpoint in order:
        try:
            status, kept, data = await asyncio.to_thread(
                _send, endpoint, request.method, target, headers, body
            )
        except (ConnectionError, TimeoutError, http.client.HTTPException, OSError):
            continue  # a pod stopping, or not routable yet: the next one
        response = Response(data, status)
        for name, value in kept:
            response.headers.append(name, value)
        return response
    raise Unreachable("no pod of the portal answered")
