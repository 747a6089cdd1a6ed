"""The real node's network namespace and the only doors between it and the host.

Run as `python -m portico_dev.forward NODE_IP,SERVICE_CIDR RULE...`: the process moves itself into
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
from typing import Any, cast

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


def rule(source: Endpoint, target: Endpoint, *, udp: bool = False) -> str:
    return f"{source}={target}" + ("/udp" if udp else "")


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

    def socket(self, ns: str, kind: int = socket.SOCK_STREAM) -> socket.socket:
        with self.inside(ns):
            sock = socket.socket(socket.AF_INET, kind)
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


class _UdpRelay(asyncio.DatagramProtocol):
    """One request, one reply (DNS): each datagram gets its own upstream socket."""

    def __init__(self, nss: Namespaces, target: Endpoint) -> None:
        self.nss, self.target = nss, target
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        task = asyncio.ensure_future(self._forward(data, addr))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _forward(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        loop = asyncio.get_running_loop()
        sock = self.nss.socket(self.target.ns, socket.SOCK_DGRAM)
        try:
            sock.connect((self.target.addr, self.target.port))
            await loop.sock_sendall(sock, data)
            reply = await asyncio.wait_for(loop.sock_recv(sock, 65535), 10)
            if self.transport is not None:
                self.transport.sendto(reply, addr)
        except (OSError, TimeoutError):
            pass  # the client retries (as DNS clients do)
        finally:
            sock.close()


async def _serve_udp(nss: Namespaces, source: Endpoint, target: Endpoint) -> None:
    sock = nss.socket(source.ns, socket.SOCK_DGRAM)
    sock.bind((source.addr, source.port))
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: _UdpRelay(nss, target), sock=sock)


async def _serve(
    nss: Namespaces,
    rules: list[tuple[Endpoint, Endpoint]],
    udp_rules: list[tuple[Endpoint, Endpoint]],
) -> None:
    for source, target in udp_rules:
        await _serve_udp(nss, source, target)
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
    described = [f"{s} -> {t}" for s, t in rules] + [f"{s} -> {t} (udp)" for s, t in udp_rules]
    print("forwarding " + ", ".join(described), flush=True)
    # Also the namespace's holder: it runs until it is stopped, rules or not.
    await asyncio.gather(*(s.serve_forever() for s in servers), asyncio.Event().wait())


def _setup_node_network(node_ip: str, service_cidr: str) -> None:
    """Loopback up, the node's address on a link of its own (the kubelet needs one), and a
    route for the Service addresses: a process of the node (not only a pod) can then dial a
    ClusterIP, which kube-proxy's OUTPUT rules turn into a pod's address, as on any node
    (whose default route plays this part; this namespace has none, nothing leaves it).

    A port-less bridge stands in for a dummy link: kernels without the dummy module exist.
    """
    for cmd in (
        ["ip", "link", "set", "lo", "up"],
        ["ip", "link", "add", "node0", "type", "bridge"],
        ["ip", "addr", "add", f"{node_ip}/32", "dev", "node0"],
        ["ip", "link", "set", "node0", "up"],
        ["ip", "route", "add", service_cidr, "dev", "node0", "src", node_ip],
    ):
        subprocess.run(cmd, check=True)


def main(argv: list[str]) -> int:
    """Usage: forward NODE_IP,SERVICE_CIDR RULE... (the holder), or forward --join=NETNS RULE..."""
    if argv[0].startswith("--join="):
        nss = Namespaces(join=argv[0].removeprefix("--join="))
    else:
        nss = Namespaces()
        node_ip, service_cidr = argv[0].split(",")
        _setup_node_network(node_ip, service_cidr)
    rules: list[tuple[Endpoint, Endpoint]] = []
    udp_rules: list[tuple[Endpoint, Endpoint]] = []
    for text in argv[1:]:
        udp = text.endswith("/udp")
        source, target = text.removesuffix("/udp").split("=", 1)
        pair = (Endpoint.parse(source), Endpoint.parse(target))
        (udp_rules if udp else rules).append(pair)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(nss, rules, udp_rules))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
