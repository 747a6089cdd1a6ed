"""The real node's network namespace and the only doors between it and the host.

Run as `python -m portico.devcluster.forward NODE_IP RULE...`: the process moves itself into
a new network namespace (the node's: containerd, kubelet, kube-proxy, Traefik and
the pods' bridge live there, other processes join it through /proc/PID/ns/net),
then relays TCP between the two namespaces. Each RULE is
`FROM_NS:ADDR:PORT=TO_NS:ADDR:PORT` with NS `host` or `node`, for example
`node:127.0.0.1:6443=host:127.0.0.1:6443` (the kubelet reaches the API server) or
`host:127.0.0.1:30080=node:127.0.0.1:8080` (a client reaches Traefik). Nothing
is routed, bridged or masqueraded on the host: the host's network is untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class Endpoint:
    ns: str  # "host" or "node"
    addr: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        ns, addr, port = text.rsplit(":", 2)
        if ns not in ("host", "node"):
            raise ValueError(f"namespace must be host or node, not {ns!r}")
        return cls(ns, addr, int(port))

    def __str__(self) -> str:
        return f"{self.ns}:{self.addr}:{self.port}"


def rule(source: Endpoint, target: Endpoint) -> str:
    return f"{source}={target}"


class Namespaces:
    """File descriptors of both namespaces; sockets belong to the one they are made in."""

    def __init__(self, join: str | None = None) -> None:
        """A new node namespace, or (join) the one at that /proc/PID/ns/net path."""
        self.fds = {"host": os.open("/proc/self/ns/net", os.O_RDONLY)}
        if join is not None:
            self.fds["node"] = os.open(join, os.O_RDONLY)
            self._enter("node")
            return
        if _libc.unshare(CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")
        self.fds["node"] = os.open("/proc/self/ns/net", os.O_RDONLY)

    @contextlib.contextmanager
    def inside(self, ns: str) -> Iterator[None]:
        self._enter(ns)
        try:
            yield
        finally:
            self._enter("node")

    def _enter(self, ns: str) -> None:
        if _libc.setns(self.fds[ns], CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({ns}) failed")

    def socket(self, ns: str) -> socket.socket:
        with self.inside(ns):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        return sock


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


async def _relay(
    nss: Namespaces, target: Endpoint, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    loop = asyncio.get_running_loop()
    sock = nss.socket(target.ns)
    try:
        await loop.sock_connect(sock, (target.addr, target.port))
    except OSError:
        sock.close()
        writer.close()
        return
    up_reader, up_writer = await asyncio.open_connection(sock=sock)
    await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
    for stream in (writer, up_writer):
        stream.close()


async def _serve(nss: Namespaces, rules: list[tuple[Endpoint, Endpoint]]) -> None:
    servers = []
    for source, target in rules:
        sock = nss.socket(source.ns)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((source.addr, source.port))

        async def handle(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: Endpoint = target
        ) -> None:
            await _relay(nss, target, reader, writer)

        servers.append(await asyncio.start_server(handle, sock=sock))
    print("forwarding " + ", ".join(f"{s} -> {t}" for s, t in rules), flush=True)
    # Also the namespace's holder: it runs until it is stopped, rules or not.
    await asyncio.gather(*(s.serve_forever() for s in servers), asyncio.Event().wait())


def _setup_node_network(node_ip: str) -> None:
    """Loopback up, and the node's address on a link of its own (the kubelet needs one).

    A port-less bridge stands in for a dummy link: kernels without the dummy module exist.
    """
    for cmd in (
        ["ip", "link", "set", "lo", "up"],
        ["ip", "link", "add", "node0", "type", "bridge"],
        ["ip", "addr", "add", f"{node_ip}/32", "dev", "node0"],
        ["ip", "link", "set", "node0", "up"],
    ):
        subprocess.run(cmd, check=True)


def main(argv: list[str]) -> int:
    """Usage: forward NODE_IP RULE... (the holder) or forward --join=NETNS_PATH RULE..."""
    if argv[0].startswith("--join="):
        nss = Namespaces(join=argv[0].removeprefix("--join="))
    else:
        nss = Namespaces()
        _setup_node_network(argv[0])
    rules = []
    for text in argv[1:]:
        source, target = text.split("=", 1)
        rules.append((Endpoint.parse(source), Endpoint.parse(target)))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(nss, rules))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
