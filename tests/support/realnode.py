"""What the portal tests on the real node share: the images, a DNS server, the stand-in
instance as a pod, and an HTTP(S) client that reaches Traefik on loopback.

The fixtures are session-scoped and registered by conftest.py, so every module of the
tier uses one build, one instance pod and one DNS server.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from portico.core.names import SECRET_LABEL
from portico_dev import ControlPlane, imagebuild, node, pages, traefik
from portico_dev import binaries as devbinaries
from tests.support.controlplane import BASE_DOMAIN, Cluster, Operator, wait_for

CREDENTIALS_NAMESPACE = "portico-system"
INSTANCE_TOKEN = "stand-in-instance-token"
# Restricted Pod Security, as the operator's own pods are.
RESTRICTED = {
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


# --- HTTP through Traefik ---------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: str
    cert: bytes = b""  # the served certificate (DER), over TLS

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.cert).hexdigest()


def fetch(
    port: int, host: str, *, tls: bool = False, path: str = "/", timeout: float = 10
) -> Answer:
    """GET path from 127.0.0.1:port with Host (and SNI) `host`: a client resolving host so.

    Over TLS the certificate is not verified here; tests compare its fingerprint instead.
    """
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    cert = b""
    with raw:
        conn: socket.socket = raw
        if tls:
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            conn = context.wrap_socket(raw, server_hostname=host)
            cert = conn.getpeercert(binary_form=True) or b""
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while data := conn.recv(65536):
            chunks.append(data)
    return _answer(b"".join(chunks), cert)


def _answer(raw: bytes, cert: bytes = b"") -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode(errors="replace").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines)}
    return Answer(int(status_line.split()[1]), headers, body.decode(errors="replace"), cert)


# Run inside the node's network namespace: one plain HTTP request to Traefik from a client
# socket bound to a given source address, the raw answer printed as base64.
_FROM_SOURCE = """
import base64, socket, sys
source, port, request = sys.argv[1], int(sys.argv[2]), base64.b64decode(sys.argv[3])
conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
conn.settimeout(10)
conn.bind((source, 0))
conn.connect(("127.0.0.1", port))
conn.sendall(request)
chunks = []
while data := conn.recv(65536):
    chunks.append(data)
print(base64.b64encode(b"".join(chunks)).decode())
"""


def fetch_from(
    real: node.RealNode,
    source: str,
    host: str,
    headers: dict[str, str] | None = None,
    *,
    method: str = "GET",
    path: str = "/",
    form: str = "",
) -> Answer:
    """One request with Host HOST from a client inside the node's network, its socket bound
    to SOURCE (any 127.0.0.0/8 address: Traefik, listening on the node's loopback, sees
    each as a client of its own, the way a node's host network shows clients' addresses)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if form:
        lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(form)}"]
    raw = "\r\n".join(lines) + "\r\n\r\n" + form
    request = base64.b64encode(raw.encode()).decode()
    argv = [sys.executable, "-c", _FROM_SOURCE, source, str(traefik.HTTP), request]
    done = subprocess.run(real.inside(argv), capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise OSError(f"the request from {source} failed: {done.stderr.strip()[-300:]}")
    return _answer(base64.b64decode(done.stdout.strip()))


# Run inside the node's network namespace: one GET of an in-cluster address (a Service's
# ClusterIP, which only the node routes) with an Authorization header; the body printed.
_GET_INSIDE = """
import sys, urllib.request
request = urllib.request.Request(sys.argv[1], headers={"Authorization": sys.stdin.read()})
with urllib.request.urlopen(request, timeout=10) as answer:
    sys.stdout.write(answer.read().decode())
"""


def get_inside(real: node.RealNode, url: str, authorization: str) -> Any:
    """GET URL from inside the node's network (the stand-in instance's API, as the pods
    call it); the JSON answer. The authorization goes by stdin, not the command line."""
    argv = [sys.executable, "-c", _GET_INSIDE, url]
    done = subprocess.run(
        real.inside(argv), input=authorization, capture_output=True, text=True, timeout=30
    )
    if done.returncode != 0:
        raise OSError(f"GET {url} from the node failed: {done.stderr.strip()[-300:]}")
    return json.loads(done.stdout)


def serving(answer: Answer, text: str) -> Answer | None:
    """ANSWER if it is a 200 that shows TEXT (for `until`)."""
    return answer if answer.status == 200 and text in answer.body else None


def until(what: str, probe: Any, timeout: float = 120.0) -> Answer:
    """Fetch with PROBE until it returns an Answer (it returns None to go on)."""

    def attempt() -> Answer | None:
        try:
            answer: Answer | None = probe()
            return answer
        except OSError:
            return None

    return wait_for(what, attempt, timeout=timeout)


def request(
    port: int,
    host: str,
    method: str,
    path: str,
    cookie: str = "",
    form: dict[str, str] | None = None,
) -> Answer:
    """One HTTPS request to Traefik on loopback for HOST (Host and SNI), a visitor's: its
    session cookie, a form."""
    body = urlencode(form or {}).encode()
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    if cookie:
        head.append(f"Cookie: {cookie}")
    if form is not None:
        head += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=15) as raw,
        context.wrap_socket(raw, server_hostname=host) as conn,
    ):
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        chunks = []
        while data := conn.recv(65536):
            chunks.append(data)
    top, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *lines = top.decode(errors="replace").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}\n{value.strip()}" if key in headers else value.strip()
    return Answer(int(status_line.split()[1]), headers, rest.decode(errors="replace"))


def session_cookie(answer: Answer) -> str:
    found = re.search(r"(__Host-portico-session=[^;]*)", answer.headers.get("set-cookie", ""))
    return found.group(1) if found else ""


def csrf(answer: Answer) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', answer.body)
    assert found, answer.body[:500]
    return found.group(1)


# --- images, DNS, the instance -----------------------------------------------------------


@dataclass(frozen=True)
class Images:
    operator: str
    runtime: str
    standin: str  # the stand-in instance: tests and demos only


@dataclass(frozen=True)
class PageServer:
    namespace: str
    name: str  # its Deployment


@dataclass
class Instance:
    """The stand-in CRM as a pod, and the PortalInstance pointing at its Service."""

    name: str
    url: str


def instance_docs(name: str, url: str, token: str) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": f"{name}-credentials",
                "namespace": CREDENTIALS_NAMESPACE,
                "labels": {SECRET_LABEL: "portico"},
            },
            "stringData": {"token": token},
        },
        {
            "apiVersion": "portico.dev/v1alpha1",
            "kind": "PortalInstance",
            "metadata": {"name": name},
            "spec": {
                "url": url,
                "credentialsSecretRef": {
                    "namespace": CREDENTIALS_NAMESPACE,
                    "name": f"{name}-credentials",
                },
                "languages": ["en-US", "de-DE", "fr-FR"],
                "solutions": ["FieldService", "ProjectService"],
                "administrators": ["jay@contoso.com"],
                "allowedNamespaces": {"from": "All"},
                # The stand-in serves plain http inside the node.
                "insecure": url.startswith("http://"),
            },
        },
    ]


# The stand-in pod fails every install of this package: a real provisioning Job's failure.
REJECTED_PACKAGE = "PartnerProjectService"


def instance_workload(image: str) -> list[dict[str, Any]]:
    labels = {"app": "crm"}
    container = {
        "name": "instance",
        "image": image,
        "imagePullPolicy": "Never",
        "args": [
            *("instance", "--credentials-dir", "/credentials"),
            *("--solutions", "FieldService,ProjectService"),
            *("--reject", REJECTED_PACKAGE),
        ],
        "ports": [{"containerPort": 8090}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8090}, "periodSeconds": 1},
        "volumeMounts": [{"name": "credentials", "mountPath": "/credentials", "readOnly": True}],
        "securityContext": RESTRICTED,
    }
    volume = {"name": "credentials", "secret": {"secretName": "crm-credentials"}}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "crm", "namespace": CREDENTIALS_NAMESPACE},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "containers": [container],
                        "volumes": [volume],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "crm", "namespace": CREDENTIALS_NAMESPACE},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8090}]},
        },
    ]


def pods(cluster: Cluster, namespace: str, selector: str) -> list[dict[str, Any]]:
    return cluster.items("pods", namespace, selector)


def on_real_node(pod: dict[str, Any]) -> bool:
    return bool(pod["spec"].get("nodeName") == node.NODE_NAME)


class RealCluster:
    """The control plane and its real node, with the ingress addresses on the host."""

    def __init__(self, plane: ControlPlane, real: node.RealNode) -> None:
        self.plane, self.node = plane, real
        assert plane.state is not None
        ingress = plane.state.real_node["ingress"]
        self.http = _port(ingress["http"])
        self.https = _port(ingress["https"])

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return self.plane.kubectl(*args, input=input).stdout


def _port(address: str) -> int:
    host, port = address.rsplit(":", 1)
    assert host == "127.0.0.1", address  # the ingress listens on loopback only
    return int(port)


@contextlib.contextmanager
def request_loop(port: int, host: str) -> Iterator[list[Answer | str]]:
    """Requests to HOST, one every 50 ms from a thread, while the block runs: the answers
    (or the connection error, as text) in order, complete once the block has ended."""
    answers: list[Answer | str] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                answers.append(fetch(port, host))
            except OSError as exc:
                answers.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.05)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    try:
        yield answers
    finally:
        stop.set()
        thread.join(timeout=30)


# --- the tier's machinery, shared by its fixtures (conftest.py) and bench/realnode.py ------


def node_binaries() -> dict[str, Path]:
    """The control plane's and the node's binaries; raises BinariesMissing or
    node.NodeUnavailable (not root, no containerd, ...) with the reason."""
    node.check_host()  # first: without root the cache under ~root is not even readable
    return {**devbinaries.locate(), **devbinaries.locate(devbinaries.NODE_BINARIES)}


@contextlib.contextmanager
def running_real_cluster(bins: dict[str, Path]) -> Iterator[RealCluster]:
    """A control plane and its real node with Traefik, stopped (node too) on exit."""
    plane = ControlPlane(bins=bins, die_with_parent=True)
    plane.start()
    try:
        # Traefik's default certificate: a wildcard for the tests' base domain.
        real = node.RealNode(plane, bins, base_domain=BASE_DOMAIN)
        real.start()
        yield RealCluster(plane, real)
    finally:
        plane.stop()


def import_portico_images(real_cluster: RealCluster) -> Images:
    """The operator, runtime and stand-in images, built (cached) and imported into the node."""
    names = ("operator", "runtime", "standin")
    built = {image.name: image for image in imagebuild.build(only=names)}
    for name in names:
        real_cluster.node.import_image(built[name].archive)
    return Images(*(built[name].ref for name in names))


def start_instance(real_cluster: RealCluster, images: Images) -> Instance:
    """The stand-in instance (its own image, `portico-standin instance`) as a pod; its
    PortalInstance's url is its Service's ClusterIP (there is no cluster DNS)."""
    plane, cluster = real_cluster.plane, Cluster(real_cluster.plane)
    if plane.kubectl("get", "namespace", CREDENTIALS_NAMESPACE, check=False).returncode != 0:
        plane.kubectl("create", "namespace", CREDENTIALS_NAMESPACE)
    plane.wait_for_service_account(CREDENTIALS_NAMESPACE, "default")
    secret = instance_docs("crm", "http://unused", INSTANCE_TOKEN)[0]
    cluster.apply(secret, *instance_workload(images.standin))
    plane.kubectl(
        "wait", "--for=condition=Available", "deployment/crm",
        "-n", CREDENTIALS_NAMESPACE, "--timeout=180s",
    )  # fmt: skip
    ip = real_cluster.kubectl(
        "get", "service", "crm", "-n", CREDENTIALS_NAMESPACE, "-o", "jsonpath={.spec.clusterIP}"
    )
    instance = Instance(f"crm-{uuid.uuid4().hex[:6]}", f"http://{ip}")
    cluster.apply(*instance_docs(instance.name, instance.url, INSTANCE_TOKEN))
    return instance


def install_page_server(real_cluster: RealCluster, images: Images) -> PageServer:
    """The shared page server from the chart's templates/pages.yaml, as `portico dev up
    --real-node` runs it."""
    helm = real_cluster.plane.bins["helm"]
    pages.install(real_cluster.plane, helm, images.runtime, BASE_DOMAIN)
    return PageServer(pages.NAMESPACE, pages.NAME)


def operator_env(images: Images, dns: str) -> dict[str, str]:
    """The settings of the tier's operator: Portico's runtime image pulled Never (it was
    imported), DNS at DNS (a node address relaying to the host's server), default hosts
    over HTTPS with Traefik's default certificate, the page server's Traefik settings."""
    return {
        "PORTICO_RUNTIME_IMAGE": images.runtime,
        "PORTICO_IMAGE_PULL_POLICY": "Never",
        "PORTICO_DNS_NAMESERVERS": dns,
        "PORTICO_DNS_TIMEOUT": "1",
        "PORTICO_DNS_RECHECK_SECONDS": "0.5",
        "PORTICO_DEFAULT_HOST_TLS": "true",  # Traefik's default certificate serves them
        **pages.operator_env(),
    }


def portal_operator(
    real_cluster: RealCluster, images: Images, dns_port: int, workdir: Path
) -> Operator:
    """`portico run` (not started) as a process of this host in the node's network, where an
    in-cluster operator would be (it reaches the instance's ClusterIP there, and the host's
    DNS server on DNS_PORT through a relay)."""
    plane = real_cluster.plane
    dns = real_cluster.node.expose_host_port(dns_port, udp=True)
    env = operator_env(images, dns)
    return Operator(plane, plane.kubeconfig, workdir, netns=real_cluster.node.netns, **env)
