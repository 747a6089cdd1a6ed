"""The command lines of the control plane's components (pure: paths and ports in, flags out)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from portico_dev.pki import PKI, CertPair

STAGES = Path(__file__).parent / "stages.yaml"
# Metadata of every write; reads are left out to keep the log small.
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [create, update, patch, delete, deletecollection]
  - level: None
"""
# Nodes kwok manages carry this annotation; nothing else is touched by kwok.
KWOK_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"

SERVICE_CIDR = "10.96.0.0/16"  # ClusterIPs; the real node routes them to kube-proxy


def audit_policy(read_users: tuple[str, ...] = ()) -> str:
    """AUDIT_POLICY, plus every request (reads and watches too) by READ_USERS (the bench)."""
    if not read_users:
        return AUDIT_POLICY
    users = ", ".join(f'"{u}"' for u in read_users)
    head, rules = AUDIT_POLICY.split("rules:\n")
    return f"{head}rules:\n  - level: Metadata\n    users: [{users}]\n{rules}"


def etcd_args(workdir: Path, ports: dict[str, int], ca: CertPair, cert: CertPair) -> list[str]:
    client = f"https://127.0.0.1:{ports['etcd']}"
    peer = f"http://127.0.0.1:{ports['etcd-peer']}"
    return [
        "--name=portico",
        f"--data-dir={workdir / 'etcd'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=portico={peer}",
        f"--cert-file={cert.cert}",
        f"--key-file={cert.key}",
        f"--trusted-ca-file={ca.cert}",
        "--client-cert-auth",
        # Throw-away data: durability is not worth the fsync latency.
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


def apiserver_args(
    ports: dict[str, int], ca: CertPair, serving: CertPair, etcd: CertPair, sa: CertPair
) -> list[str]:
    return [
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={ports['apiserver']}",
        f"--etcd-servers=https://127.0.0.1:{ports['etcd']}",
        f"--etcd-cafile={ca.cert}",
        f"--etcd-certfile={etcd.cert}",
        f"--etcd-keyfile={etcd.key}",
        f"--client-ca-file={ca.cert}",
        f"--tls-cert-file={serving.cert}",
        f"--tls-private-key-file={serving.key}",
        f"--service-account-issuer={SA_ISSUER}",
        f"--service-account-key-file={sa.cert}",
        f"--service-account-signing-key-file={sa.key}",
        "--authorization-mode=RBAC",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--allow-privileged=true",
        # Endpoints may not be loopback addresses; nothing in-cluster dials the API.
        "--endpoint-reconciler-type=none",
        "--profiling=false",
    ]


def audit_args(workdir: Path, read_users: tuple[str, ...] = ()) -> list[str]:
    """Log every write (who, verb, what) so tests can count a client's writes."""
    policy = workdir / "audit-policy.yaml"
    policy.write_text(audit_policy(read_users))
    return [
        f"--audit-policy-file={policy}",
        f"--audit-log-path={workdir / 'logs' / 'audit.log'}",
        "--audit-log-format=json",
        "--audit-log-maxsize=200",
    ]


def kcm_args(configs: dict[str, Path], pki: PKI, sa: CertPair) -> list[str]:
    kcfg = configs["kube-controller-manager"]
    return [
        f"--kubeconfig={kcfg}",
        "--secure-port=0",
        "--leader-elect=false",
        # Each controller acts as its own ServiceAccount, as in kubeadm clusters.
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={sa.key}",
        f"--root-ca-file={pki.ca.cert}",
        f"--cluster-signing-cert-file={pki.ca.cert}",
        f"--cluster-signing-key-file={pki.ca.key}",
        "--cluster-name=portico-dev",
        "--profiling=false",
    ]


def scheduler_args(configs: dict[str, Path]) -> list[str]:
    kcfg = configs["kube-scheduler"]
    return [
        f"--kubeconfig={kcfg}",
        f"--authentication-kubeconfig={kcfg}",
        f"--authorization-kubeconfig={kcfg}",
        "--secure-port=0",
        "--leader-elect=false",
        "--profiling=false",
    ]


def kwok_args(configs: dict[str, Path]) -> list[str]:
    key, value = KWOK_ANNOTATION
    return [
        f"--kubeconfig={configs['kwok']}",
        f"--config={STAGES}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={key}={value}",
        "--cidr=10.244.0.1/16",
        "--node-ip=10.240.0.1",
        "--node-lease-duration-seconds=40",
        "--v=WARN",  # INFO logs every lease renewal
    ]


def kwok_nodes(count: int) -> list[dict[str, Any]]:
    """The fake nodes kwok runs pods on (it takes every Node with KWOK_ANNOTATION)."""
    key, value = KWOK_ANNOTATION
    return [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {key: value, "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "type": "kwok",
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                },
            },
            "spec": {},
        }
        for name in (f"kwok-node-{i}" for i in range(count))
    ]
