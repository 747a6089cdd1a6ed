"""The shared page server on real pods behind Traefik (docs/runtime-contract.md, "Pages").

- A new portal's URL shows its page (from the one page server, no pod of its own) until
  Ready, and after `kubectl wait --for=condition=Ready` returns only the portal itself,
  even before Traefik has applied the portal's own route (the page server passes the
  request on): a request loop started before the wait, over HTTPS, READY_RUNS times.
- A Failed portal's page says it failed in words the public may read, with the security
  headers, over HTTPS through Traefik; the runtime's own answers carry them too.
- Killing the page server's pods under a request loop on a Ready portal: every request 200.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from tests.support.controlplane import BASE_DOMAIN, Cluster, Operator, fresh_namespace
from tests.support.portals import portal
from tests.support.realnode import (
    REJECTED_PACKAGE,
    Answer,
    Instance,
    PageServer,
    RealCluster,
    fetch,
    pods,
    request_loop,
    serving,
    until,
)

READY_RUNS = int(os.environ.get("PORTICO_REALNODE_READY_RUNS", "10"))
AT_ONCE = 5  # portals brought up side by side (the node has two cores, shared)
READY_TIMEOUT = 300.0
AFTER_READY = 5.0
COMPONENT = "app.kubernetes.io/component"


@pytest.fixture(scope="module")
def namespace(
    real_cluster: RealCluster,
    operator: Operator,  # conftest.py: one per module
    page_server: PageServer,
) -> Iterator[str]:
    with fresh_namespace(real_cluster.plane, "pages") as name:
        yield name


def security_headers(answer: Answer) -> list[str]:
    """What is missing of the headers every answer over HTTPS must carry."""
    h = answer.headers
    problems = []
    if not h.get("strict-transport-security", "").startswith("max-age="):
        problems.append("Strict-Transport-Security")
    csp = h.get("content-security-policy", "")
    if "frame-ancestors 'none'" not in csp or "default-src 'none'" not in csp:
        problems.append(f"Content-Security-Policy ({csp!r})")
    if h.get("x-content-type-options") != "nosniff":
        problems.append("X-Content-Type-Options")
    if not h.get("referrer-policy"):
        problems.append("Referrer-Policy")
    return problems


@dataclass
class Run:
    name: str
    host: str
    display: str
    # (when sent, seconds it took, the answer or the error)
    answers: list[tuple[float, float, Answer | str]] = field(default_factory=list)
    ready_at: float = 0.0


def _loop(real_cluster: RealCluster, run: Run, stop: threading.Event) -> None:
    while not stop.is_set():
        sent = time.monotonic()
        answer: Answer | str
        try:
            answer = fetch(real_cluster.https, run.host, tls=True, timeout=30)
        except OSError as exc:
            answer = f"{type(exc).__name__}: {exc}"
        run.answers.append((sent, time.monotonic() - sent, answer))
        time.sleep(0.1)


def _one_run(real_cluster: RealCluster, namespace: str, crm: Instance, i: int) -> Run:
    suffix = uuid.uuid4().hex[:4]
    run = Run(f"run-{i}-{suffix}", f"run-{i}-{suffix}.{BASE_DOMAIN}", f"Ready Run {i} {suffix}")
    stop = threading.Event()
    loop = threading.Thread(target=_loop, args=(real_cluster, run, stop), daemon=True)
    loop.start()  # before the portal exists: the loop sees every step
    try:
        doc = portal(run.name, namespace, crm.name, subdomain=run.name, displayName=run.display)
        Cluster(real_cluster.plane).apply(doc)
        real_cluster.plane.kubectl(
            "wait", "--for=condition=Ready", f"portal/{run.name}", "-n", namespace,
            f"--timeout={READY_TIMEOUT:.0f}s", timeout=READY_TIMEOUT + 30,
        )  # fmt: skip
        run.ready_at = time.monotonic()
        time.sleep(AFTER_READY)
    finally:
        stop.set()
        loop.join(timeout=60)
    return run


def _verdict(run: Run) -> list[str]:
    """What went wrong in one run: anything but the page server's answers before Ready,
    anything but the portal after `kubectl wait` returned."""
    problems = []
    for sent, _, answer in run.answers:
        if isinstance(answer, str):
            problems.append(f"error {answer}")
            continue
        portal_itself = answer.status == 200 and run.display in answer.body
        if sent > run.ready_at:
            if not portal_itself:
                problems.append(f"after Ready: {answer.status} {answer.body[:120]!r}")
            continue
        page = (
            answer.status == 503 and "retry-after" in answer.headers and run.display in answer.body
        )
        # Before the operator's first status the page server knows no portal at this host.
        unknown = answer.status == 404 and "There is no portal at" in answer.body
        if not (page or unknown or portal_itself):
            problems.append(f"before Ready: {answer.status} {answer.body[:120]!r}")
        elif missing := security_headers(answer):
            problems.append(f"{answer.status} without {missing}")
    return problems


@pytest.mark.timeout(1800)
def test_the_page_until_ready_and_only_the_portal_once_wait_returns(
    real_cluster: RealCluster, namespace: str, crm: Instance
) -> None:
    runs: list[Run] = []
    with ThreadPoolExecutor(AT_ONCE) as pool:
        runs = list(
            pool.map(lambda i: _one_run(real_cluster, namespace, crm, i), range(READY_RUNS))
        )
    cluster = Cluster(real_cluster.plane)
    assert pods(cluster, namespace, f"{COMPONENT}=pages") == []  # no page pod per portal
    report = []
    for run in runs:
        before = [a for s, _, a in run.answers if s <= run.ready_at and isinstance(a, Answer)]
        after = [a for s, _, a in run.answers if s > run.ready_at]
        around = [
            (round(s - run.ready_at, 2), round(took, 2), a if isinstance(a, str) else a.status)
            for s, took, a in run.answers
            if s > run.ready_at - 5
        ]
        report.append(
            f"{run.name}: {sum(a.status == 503 for a in before)} pages before Ready, "
            f"{len(after)} requests after, all the portal"
        )
        assert any(a.status == 503 for a in before), f"{run.name}: the page was never shown"
        assert len(after) >= 5, f"{run.name}: too few requests after Ready: {around}"
        assert _verdict(run) == [], f"{run.name}: {_verdict(run)[:5]}"
    print(f"\n{READY_RUNS} runs:\n" + "\n".join(report))


def test_a_failed_portals_page_says_only_what_the_public_may_know(
    real_cluster: RealCluster, namespace: str, crm: Instance
) -> None:
    cluster = Cluster(real_cluster.plane)
    # The stand-in pod fails this package's install: the real provisioning Job fails.
    broken = portal(
        "broken",
        namespace,
        crm.name,
        subdomain=f"broken-{namespace}",
        displayName="Contoso Broken",
        template=REJECTED_PACKAGE,
        audience="Partner",
    )
    cluster.apply(broken)
    failed = cluster.wait_phase(namespace, "broken", "Failed", "InstallFailed", READY_TIMEOUT)
    message = cluster.condition(failed, "SolutionsInstalled")["message"]
    assert "broken-provision-1" in message  # the details are in status, for the administrator
    host = f"broken-{namespace}.{BASE_DOMAIN}"

    def failed_page() -> Answer | None:
        answer = fetch(real_cluster.https, host, tls=True)
        ok = answer.status == 503 and "could not be installed" in answer.body
        return answer if ok else None

    page = until("the Failed page over HTTPS", failed_page, timeout=60)
    assert "<h1>Contoso Broken</h1>" in page.body
    for secret in ("InstallFailed", crm.url, crm.name, REJECTED_PACKAGE, "provision", "Job"):
        assert secret not in page.body, f"the public page shows {secret!r}"
    assert security_headers(page) == []
    assert int(page.headers["retry-after"]) > 0
    # The runtime's own answers over HTTPS carry the headers too, and /healthz says "ok".
    cluster.apply(
        portal(
            "fine", namespace, crm.name, subdomain=f"fine-{namespace}", displayName="Contoso Fine"
        )
    )
    cluster.wait_phase(namespace, "fine", "Ready", timeout=READY_TIMEOUT)
    fine = f"fine-{namespace}.{BASE_DOMAIN}"
    start = until(
        "the portal", lambda: serving(fetch(real_cluster.https, fine, tls=True), "Contoso Fine")
    )
    assert security_headers(start) == []
    health = fetch(real_cluster.https, fine, tls=True, path="/healthz")
    assert (health.status, health.body) == (200, "ok\n")


def test_killing_the_page_server_keeps_a_ready_portal_up(
    real_cluster: RealCluster, namespace: str, crm: Instance, page_server: PageServer
) -> None:
    cluster = Cluster(real_cluster.plane)
    host = f"steady-{namespace}.{BASE_DOMAIN}"
    cluster.apply(
        portal(
            "steady",
            namespace,
            crm.name,
            subdomain=f"steady-{namespace}",
            displayName="Contoso Steady",
        )
    )
    cluster.wait_phase(namespace, "steady", "Ready", timeout=READY_TIMEOUT)
    until(
        "the portal through its own route",
        lambda: serving(fetch(real_cluster.http, host), "Contoso Steady"),
    )
    time.sleep(3)  # Traefik's own route for the portal, not the page server's pass-through
    selector = "app.kubernetes.io/name=portico-pages"
    with request_loop(real_cluster.http, host) as answers:
        time.sleep(1)
        killed = real_cluster.kubectl(
            "get", "pods", "-n", page_server.namespace, "-l", selector, "-o", "name"
        )
        assert killed.split(), "no page server pod to kill"
        real_cluster.kubectl(
            "delete", "pods", "-n", page_server.namespace, "-l", selector,
            "--grace-period=0", "--force", "--wait=false",
        )  # fmt: skip
        time.sleep(8)
    failed = [a for a in answers if not isinstance(a, Answer) or a.status != 200]
    assert len(answers) > 50
    assert not failed, f"{len(failed)} of {len(answers)} requests failed: {failed[:3]}"
    print(f"{len(answers)} requests while the page server's pods were killed, all 200")
    real_cluster.kubectl(
        "wait", "--for=condition=Available", f"deployment/{page_server.name}",
        "-n", page_server.namespace, "--timeout=180s",
    )  # fmt: skip
