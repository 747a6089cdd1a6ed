"""The real node's component configurations, as data: containerd, CNI, kubelet, kube-proxy.

Every path is under the node's own directory; node.py writes these and starts the
components inside the node's network namespace.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CNI_BIN = Path("/usr/lib/cni")  # Debian containernetworking-plugins
POD_SUBNET = "10.88.0.0/24"  # the CNI bridge, inside the node's namespace only


def write_containerd(node_dir: Path, socket: Path, sandbox_image: str, network: str) -> Path:
    """containerd's config.toml and the CNI network it hands pods; returns the config path."""
    base = node_dir / "containerd"
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    config = f"""version = 2
root = "{base / "root"}"
state = "{base / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{base / "opt"}"
[{cri}]
  sandbox_image = "{sandbox_image}"
  # No CAP_SYS_RESOURCE here: without this every sandbox fails on oom_score_adj.
  restrict_oom_score_adj = true
  # Pod network namespaces are mounts under our state dir, not /run/netns.
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = "{base / "runc"}"
[{cri}.cni]
  bin_dir = "{CNI_BIN}"
  conf_dir = "{node_dir / "cni" / "net.d"}"
  max_conf_num = 1
"""
    path = base / "config.toml"
    path.write_text(config)
    (node_dir / "cni" / "net.d" / "10-portico.conflist").write_text(
        json.dumps(cni_network(node_dir, network))
    )
    return path


def cni_network(node_dir: Path, network: str) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": network,
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",  # inside the node's namespace: no clash with others
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(node_dir / "cni" / "ipam"),
                },
            }
        ],
    }


def kubelet(node_dir: Path, socket: Path, cgroup_root: str, client_ca: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # Verified on this kind of machine: cgroupfs (no systemd), swap may be on.
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": cgroup_root,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{socket}",
        "podLogsDir": str(node_dir / "pod-logs"),
        "resolvConf": str(node_dir / "resolv.conf"),
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(client_ca)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        # No registry: locally imported images must never be garbage-collected.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "serializeImagePulls": False,
        "enforceNodeAllocatable": ["pods"],
    }


def kube_proxy(kubeconfig: Path, node_name: str, cluster_cidr: str) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": node_name,
        "mode": "iptables",
        "clusterCIDR": cluster_cidr,
        # Conntrack sysctls are global to the machine: leave them alone.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        "metricsBindAddress": "127.0.0.1:10249",
        "healthzBindAddress": "127.0.0.1:10256",
    }
