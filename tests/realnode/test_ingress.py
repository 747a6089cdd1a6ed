"""A real pod behind a Service and two Ingresses, fetched through Traefik on loopback."""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import ipaddress
import json
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from portico_dev import node
from tests.support.controlplane import BASE_DOMAIN
from tests.support.realnode import RealCluster

PORTICO = str(Path(sys.executable).with_name("portico"))


def _self_signed(host: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _request(
    port: int, host: str, *, tls: ssl.SSLContext | None = None, path: str = "/"
) -> tuple[str, bytes]:
    """GET path with Host and SNI `host` from 127.0.0.1:port (the client resolves host so)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    peer = b""
    with raw:
        conn: socket.socket = raw
        if tls is not None:
            conn = tls.wrap_socket(raw, server_hostname=host)
            peer = conn.getpeercert(binary_form=True) or b""
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while data := conn.recv(65536):
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace"), peer


def _until_ok(fetch: object, timeout: float = 60.0) -> str:
    assert callable(fetch)
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        try:
            last = fetch()[0]
        except OSError as exc:
            last = str(exc)
        if last.startswith("HTTP/1.1 200"):
            return str(last)
        time.sleep(0.5)
    raise AssertionError(f"no 200 through Traefik within {timeout}s; last answer: {last[:300]!r}")


def _workload(ns: str, image: str, http_host: str, tls_host: str) -> list[dict[str, object]]:
    labels = {"app": "hello"}
    container = {
        "name": "hello",
        "image": image,
        "imagePullPolicy": "Never",  # there is no registry: the image was imported
        "env": [
            {"name": "HELLO_MESSAGE", "value": "real node"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "ports": [{"containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1},
        "securityContext": {
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    ingress_rule = {
        "http": {
            "paths": [
                {
                    "path": "/",
                    "pathType": "Prefix",
                    "backend": {"service": {"name": "hello", "port": {"number": 80}}},
                }
            ]
        }
    }
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "hello", "namespace": ns},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "hello", "namespace": ns},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "hello-http", "namespace": ns},
            "spec": {"rules": [{"host": http_host, **ingress_rule}]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "hello-https", "namespace": ns},
            "spec": {
                "tls": [{"hosts": [tls_host], "secretName": "hello-tls"}],
                "rules": [{"host": tls_host, **ingress_rule}],
            },
        },
    ]


@dataclass(frozen=True)
class HelloApp:
    namespace: str
    pod: str
    http_host: str
    tls_host: str
    cert: bytes


@pytest.fixture(scope="module")
def hello(
    real_cluster: RealCluster, hello_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HelloApp]:
    """The hello server as a Deployment on the real node, behind a Service and two Ingresses."""
    namespace = f"hello-{uuid.uuid4().hex[:6]}"
    real_cluster.kubectl("create", "namespace", namespace)
    real_cluster.plane.wait_for_service_account(namespace, "default")
    http_host, tls_host = f"{namespace}.portico.test", f"secure-{namespace}.portico.test"
    cert, key = _self_signed(tls_host)
    tmp = tmp_path_factory.mktemp("tls")
    (tmp / "tls.crt").write_bytes(cert)
    (tmp / "tls.key").write_bytes(key)
    real_cluster.kubectl(
        "create",
        "secret",
        "tls",
        "hello-tls",
        "-n",
        namespace,
        f"--cert={tmp / 'tls.crt'}",
        f"--key={tmp / 'tls.key'}",
    )
    docs = _workload(namespace, hello_image, http_host, tls_host)
    real_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    real_cluster.kubectl(
        "wait", "--for=condition=Available", "deployment/hello", "-n", namespace, "--timeout=120s"
    )
    pods = json.loads(real_cluster.kubectl("get", "pods", "-n", namespace, "-o", "json"))["items"]
    (pod,) = pods
    assert pod["spec"]["nodeName"] == node.NODE_NAME, "the pod must run on the real node"
    assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(node.POD_SUBNET)
    yield HelloApp(namespace, pod["metadata"]["name"], http_host, tls_host, cert)
    real_cluster.plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_http_through_traefik(real_cluster: RealCluster, hello: HelloApp) -> None:
    plain = _until_ok(lambda: _request(real_cluster.http, hello.http_host))
    assert f"hello from {hello.pod}: real node {hello.http_host}/" in plain


def test_https_through_traefik_serves_the_secret(
    real_cluster: RealCluster, hello: HelloApp
) -> None:
    context = ssl.create_default_context(cadata=hello.cert.decode())
    secure = _until_ok(lambda: _request(real_cluster.https, hello.tls_host, tls=context))
    assert f"hello from {hello.pod}: real node {hello.tls_host}/" in secure
    _, served = _request(real_cluster.https, hello.tls_host, tls=context)
    expected = x509.load_pem_x509_certificate(hello.cert).fingerprint(hashes.SHA256())
    assert hashlib.sha256(served).digest() == expected


def test_https_without_a_secret_serves_the_default_certificate(
    real_cluster: RealCluster, hello: HelloApp
) -> None:
    """A TLS entry with no secretName, as Portico writes for a portal's default host
    (tests/unit/test_render.py), gets Traefik's default certificate: the wildcard for the
    base domain that `portico dev` signs with the cluster's CA. Verified as a browser
    would (chain and hostname), with nothing of it in the namespace."""
    host = f"default-{hello.namespace}.{BASE_DOMAIN}"
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "hello-default", "namespace": hello.namespace},
        "spec": {
            "tls": [{"hosts": [host]}],
            "rules": [
                {
                    "host": host,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "hello", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        },
    }
    real_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(ingress))
    ca = (real_cluster.plane.workdir / "pki" / "ca.crt").read_text()
    context = ssl.create_default_context(cadata=ca)  # checks the chain and the hostname
    secure = _until_ok(lambda: _request(real_cluster.https, host, tls=context))
    assert f"hello from {hello.pod}: real node {host}/" in secure
    _, served = _request(real_cluster.https, host, tls=context)
    sans = x509.load_der_x509_certificate(served).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert sans.value.get_values_for_type(x509.DNSName) == [f"*.{BASE_DOMAIN}"]
    secrets = json.loads(
        real_cluster.kubectl("get", "secrets", "-n", hello.namespace, "-o", "json")
    )
    assert [s["metadata"]["name"] for s in secrets["items"]] == ["hello-tls"]


def _fetch_from_pod(real_cluster: RealCluster, hello: HelloApp, url: str) -> str:
    path = "/fetch?" + urllib.parse.urlencode({"url": url})
    answer, _ = _request(real_cluster.http, hello.http_host, path=path)
    return answer


def test_pod_reaches_a_service_through_kube_proxy(
    real_cluster: RealCluster, hello: HelloApp
) -> None:
    ip = real_cluster.kubectl(
        "get", "service", "hello", "-n", hello.namespace, "-o", "jsonpath={.spec.clusterIP}"
    )
    answer = _until_ok(lambda: (_fetch_from_pod(real_cluster, hello, f"http://{ip}/healthz"), b""))
    assert "status 200\nok" in answer


def test_pod_reaches_the_api_server_through_the_kubernetes_service(
    real_cluster: RealCluster, hello: HelloApp
) -> None:
    # The ServiceAccount CA must verify the API server as 10.96.0.1, as in-cluster clients do.
    url = "https://10.96.0.1/version"
    answer = _until_ok(lambda: (_fetch_from_pod(real_cluster, hello, url), b""))
    assert "status 200" in answer and '"gitVersion": "v1.34.4"' in answer


def test_status_json_reports_nodes_and_ingress(real_cluster: RealCluster) -> None:
    env = {"PORTICO_DEV_STATE": str(real_cluster.plane.state_file), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [PORTICO, "dev", "status", "-o", "json"], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["kubeconfig"] == str(real_cluster.plane.kubeconfig)
    kinds = {n["name"]: n["kind"] for n in status["nodes"]}
    assert kinds.pop(node.NODE_NAME) == "real"
    assert kinds and set(kinds.values()) == {"kwok"}
    assert status["ingress"] == {
        "http": f"127.0.0.1:{real_cluster.http}",
        "https": f"127.0.0.1:{real_cluster.https}",
    }
    text = subprocess.run([PORTICO, "dev", "status"], capture_output=True, text=True, env=env)
    assert f"node: {node.NODE_NAME} (real)" in text.stdout
    assert f"ingress: http 127.0.0.1:{real_cluster.http}" in text.stdout


def test_pod_reaches_a_host_loopback_server_through_a_relay(
    real_cluster: RealCluster, hello: HelloApp
) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"host loopback server"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        address = real_cluster.node.expose_host_port(server.server_address[1])
        answer = _until_ok(
            lambda: (_fetch_from_pod(real_cluster, hello, f"http://{address}/"), b"")
        )
        assert "status 200\nhost loopback server" in answer
    finally:
        server.shutdown()
