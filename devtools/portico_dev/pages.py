"""The shared page server on the dev cluster's real node: the chart's own
`templates/pages.yaml` (one source of truth), rendered by the built helm and applied.

Used by `portico dev up --real-node` and the real-node tier, where the operator runs
as a process on the host: the page server must be a pod, where Traefik reaches it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

NAMESPACE = "portico-system"
RELEASE = "portico"
NAME = f"{RELEASE}-pages"
# The chart's errors Middleware for Traefik (an allow-list's refusal → the 403 page).
ERROR_MIDDLEWARE = f"{NAMESPACE}/{NAME}-blocked"


def operator_env() -> dict[str, str]:
    """The settings of an operator whose portals this page server and the dev cluster's
    Traefik serve: Traefik enforces IP allow-lists, with the page server's 403 page."""
    return {
        "PORTICO_INGRESS_CONTROLLER": "traefik",
        "PORTICO_PAGES_ERROR_MIDDLEWARE": ERROR_MIDDLEWARE,
    }


def chart_dir() -> Path | None:
    """charts/portico of the checkout this module runs from (None: not a checkout)."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "charts" / "portico" / "Chart.yaml").is_file():
            return parent / "charts" / "portico"
    return None


def manifests(helm: Path, image: str, base_domain: str, pull_policy: str = "Never") -> str:
    chart = chart_dir()
    if chart is None:
        raise RuntimeError(
            "the page server's manifests come from charts/portico: run from a checkout"
        )
    args = [
        str(helm), "template", RELEASE, str(chart), "--namespace", NAMESPACE,
        "--show-only", "templates/pages.yaml",
        "--set", f"runtimeImage={image}",
        "--set", f"runtimeImagePullPolicy={pull_policy}",
        "--set", f"baseDomain={base_domain}",
        "--set", "ingressController=traefik",
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"helm template of the page server failed: {done.stderr.strip()}")
    return done.stdout


def install(plane: object, helm: Path, image: str, base_domain: str, timeout: float = 180) -> None:
    """Apply the page server into NAMESPACE of PLANE (a ControlPlane) and wait until it is
    Available (its first lists are in)."""
    kubectl = plane.kubectl  # type: ignore[attr-defined]
    if kubectl("get", "namespace", NAMESPACE, check=False).returncode != 0:
        kubectl("create", "namespace", NAMESPACE)
    plane.wait_for_service_account(NAMESPACE, "default")  # type: ignore[attr-defined]
    text = manifests(helm, image, base_domain)
    kubectl("apply", "--server-side", "--field-manager=portico-dev", "-f", "-", input=text)
    kubectl(
        "wait", "--for=condition=Available", f"deployment/{NAME}", "-n", NAMESPACE,
        f"--timeout={int(timeout)}s", timeout=timeout + 10,
    )  # fmt: skip
