"""kubectl against the dev control plane, and what tests and tools do with it: apply CRDs,
wait for a ServiceAccount, log in as one. A base of `ControlPlane`, which provides the
binaries, the admin kubeconfig, the work directory and the server's address."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import yaml

from portico_dev import kubeconfig


class KubectlError(RuntimeError):
    """kubectl exited non-zero; the message has its stderr."""


class Kubectl:
    @property
    def bins(self) -> dict[str, Path]:
        raise NotImplementedError

    @property
    def kubeconfig(self) -> Path:
        raise NotImplementedError

    @property
    def workdir(self) -> Path:
        raise NotImplementedError

    @property
    def server(self) -> str:
        raise NotImplementedError

    def _check_components(self) -> None:
        """Raises when a component of the control plane has exited."""

    def _wait_kubectl(self, args: list[str], what: str, deadline: float) -> None:
        # `kubectl wait` fails at once when nothing matches yet, so loop around it.
        last = ""
        while time.monotonic() < deadline:
            self._check_components()
            remaining = max(int(deadline - time.monotonic()), 1)
            result = self.kubectl(*args, f"--timeout={min(remaining, 10)}s", check=False)
            if result.returncode == 0:
                return
            last = result.stderr.strip()
            time.sleep(0.3)
        raise TimeoutError(f"timed out waiting for {what}: {last}")

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120.0,
        kubeconfig_path: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl against this control plane (admin unless a kubeconfig is given)."""
        cmd = [
            str(self.bins["kubectl"]),
            f"--kubeconfig={kubeconfig_path or self.kubeconfig}",
            *args,
        ]
        result = subprocess.run(
            cmd, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise KubectlError(
                f"kubectl {' '.join(args)} failed (exit {result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        return result

    def install_crds(self, crds_dir: Path, timeout: float = 60.0) -> list[str]:
        """Server-side apply every *.yaml in crds_dir and wait until each CRD is Established."""
        files = sorted(crds_dir.glob("*.yaml"))
        if not files:
            return []
        args = ["apply", "--server-side", "--force-conflicts", "--field-manager=portico-dev"]
        for path in files:
            args += ["-f", str(path)]
        self.kubectl(*args)
        names = [
            f"customresourcedefinition.apiextensions.k8s.io/{doc['metadata']['name']}"
            for path in files
            for doc in yaml.safe_load_all(path.read_text())
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"
        ]
        deadline = time.monotonic() + timeout
        wait = ["wait", "--for=condition=Established", *names]
        self._wait_kubectl(wait, "CRDs Established", deadline)
        return [n.split("/", 1)[-1] for n in names]

    def wait_for_service_account(self, namespace: str, name: str, timeout: float = 30.0) -> None:
        """Pods are only admitted once their ServiceAccount exists (the controller makes it)."""
        deadline = time.monotonic() + max(timeout, 1)
        while time.monotonic() < deadline:
            got = self.kubectl("get", "serviceaccount", name, "-n", namespace, check=False)
            if got.returncode == 0:
                return
            self._check_components()
            time.sleep(0.2)
        raise TimeoutError(f"ServiceAccount {namespace}/{name} was not created")

    def serviceaccount_kubeconfig(
        self,
        namespace: str,
        name: str,
        *,
        create: bool = True,
        duration: str = "1h",
        path: Path | None = None,
    ) -> Path:
        """A kubeconfig that authenticates as ServiceAccount namespace/name with a bound token."""
        if create:
            exists = self.kubectl("get", "serviceaccount", name, "-n", namespace, check=False)
            if exists.returncode != 0:
                self.kubectl("create", "serviceaccount", name, "-n", namespace)
        token = self.kubectl(
            "create", "token", name, "-n", namespace, f"--duration={duration}"
        ).stdout.strip()
        target = path or self.workdir / f"sa-{namespace}-{name}.kubeconfig"
        return kubeconfig.write(
            target,
            server=self.server,
            ca=self.workdir / "pki" / "ca.crt",
            user=f"system:serviceaccount:{namespace}:{name}",
            token=token,
            namespace=namespace,
        )
