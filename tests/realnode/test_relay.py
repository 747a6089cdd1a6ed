"""Relays into the node's network namespace: UDP (a DNS server on the host's loopback)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

from tests.support.realnode import RealCluster

CLIENT = """
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(5)
sock.sendto(b"ping", (host, int(port)))
print(sock.recv(100).decode())
"""


def test_udp_relay_answers_from_the_host_loopback(real_cluster: RealCluster) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def echo() -> None:
        data, addr = server.recvfrom(100)
        server.sendto(b"pong " + data, addr)

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    try:
        address = real_cluster.node.expose_host_port(port, udp=True)
        # The client runs inside the node's namespace, where pods' packets arrive.
        argv = real_cluster.node.inside([sys.executable, "-c", CLIENT, address])
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "pong ping"
    finally:
        server.close()
