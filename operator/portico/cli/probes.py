"""`portico doctor`'s probes: the requests it makes beyond the API server's objects.

Each returns what it saw (a `Reach`, a text, an error line) and never raises for a
fault on the far side: the verdicts (core/doctor*.py) decide what it means.
Nothing is sent that could be secret: no credentials go to the instance or the URL.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.parse

import kubernetes

from portico.controller.kube import Kube
from portico.core.doctor import Reach
from portico.domain import parse_nameserver  # IP[:PORT], [IPv6]:PORT

TIMEOUT = 5.0
# The runtime's port (core/templates/_pod.yaml.j2: containerPort 8080), where /metrics is.
RUNTIME_PORT = 8080


def _context() -> ssl.SSLContext:
    """TLS without verification: the certificate is judged by the verdicts, from its
    bytes, so that an untrusted or wrong one is reported rather than ending the request."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _Pinned(http.client.HTTPSConnection):
    """HTTPS to ADDRESS (an ingress controller) with the URL's host as SNI and Host."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        self.tls = _context()
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.address = address

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)


def fetch(url: str, address: str = "", timeout: float = TIMEOUT) -> Reach:
    """GET URL (redirects not followed); to ADDRESS (IP[:PORT]) instead of the host's own
    addresses when given, as `curl --connect-to` does."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    target, port = parse_nameserver(address, port) if address else (host, port)
    connection: http.client.HTTPConnection
    if tls:
        connection = _Pinned(host, port, target, timeout)
    else:
        connection = http.client.HTTPConnection(target, port, timeout=timeout)
    try:
        connection.request("GET", parts.path or "/", headers={"Host": parts.netloc})
        certificate = None
        if tls and isinstance(connection.sock, ssl.SSLSocket):
            certificate = connection.sock.getpeercert(binary_form=True)
        answer = connection.getresponse()
        answer.read(65536)
        return Reach(status=answer.status, certificate=certificate)
    except (OSError, http.client.HTTPException, ValueError) as err:
        return Reach(error=_why(err))
    finally:
        connection.close()


def _why(err: BaseException) -> str:
    text = str(err) or err.__class__.__name__
    return text.splitlines()[0][:300]


def pod_metrics(kube: Kube, namespace: str, pod: str, timeout: float = TIMEOUT) -> str:
    """A pod's /metrics through the API server's pod proxy; raises ProbeError with why not
    (forbidden, the pod not answering, a NetworkPolicy in the way)."""
    path = f"/api/v1/namespaces/{namespace}/pods/{pod}:{RUNTIME_PORT}/proxy/metrics"
    params = kube.client.param_serialize(
        method="GET",
        resource_path=path,
        header_params={"Accept": "text/plain"},
        auth_settings=["BearerToken"],
    )
    try:
        response = kube.client.call_api(*params, _request_timeout=timeout)
        raw: bytes = response.read()  # type: ignore[no-untyped-call]
        status = response.status
    except kubernetes.client.exceptions.ApiException as err:
        raise ProbeError(f"the API server's pod proxy answered {err.status} {err.reason}") from None
    except Exception as err:  # the connection to the API server itself
        raise ProbeError(_why(err)) from None
    if status >= 300:
        said = raw.decode(errors="replace").strip().splitlines()[:1]
        raise ProbeError(
            f"the API server's pod proxy answered {status}" + (f": {said[0][:200]}" if said else "")
        )
    return raw.decode(errors="replace")


class ProbeError(Exception):
    """One line saying why a probe got no answer."""
