"""A real HTTPS server on loopback that plays an ingress controller for `portico doctor`:
one certificate per host name, chosen by SNI, and one HTTP status for every request."""

from __future__ import annotations

import http.server
import ssl
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

Pair = tuple[rsa.RSAPrivateKey, x509.Certificate]


@dataclass
class Ingress:
    port: int
    answer: int
    hosts: list[str] = field(default_factory=list)  # the Host header of each request

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def _context(directory: Path, name: str, pair: Pair) -> ssl.SSLContext:
    key, leaf = pair
    crt, pem = directory / f"{name}.crt", directory / f"{name}.key"
    crt.write_bytes(leaf.public_bytes(Encoding.PEM))
    pem.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(crt, pem)
    return context


@contextmanager
def running_ingress(certificates: Mapping[str, Pair], answer: int = 200) -> Iterator[Ingress]:
    """Serve CERTIFICATES (host -> key and leaf; the first for an unknown name) and answer
    every GET with ANSWER."""
    with tempfile.TemporaryDirectory() as tmp:
        contexts = {
            host: _context(Path(tmp), str(i), pair)
            for i, (host, pair) in enumerate(certificates.items())
        }
        default = next(iter(contexts.values()))

        def choose(sock: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
            sock.context = contexts.get(name or "", default)

        default.sni_callback = choose  # type: ignore[assignment]
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.socket = default.wrap_socket(server.socket, server_side=True)
        ingress = Ingress(server.server_address[1], answer)
        server.ingress = ingress  # type: ignore[attr-defined]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield ingress
        finally:
            server.shutdown()
            server.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ingress: Ingress = self.server.ingress  # type: ignore[attr-defined]
        ingress.hosts.append(self.headers.get("Host", ""))
        self.send_response(ingress.answer)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass
