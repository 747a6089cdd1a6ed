"""What tracking costs a page, and how fast the sender empties its queue, as same-run ratios.

Run: .venv/bin/python -m bench.interactions [--requests 400] [--rounds 5] [--interactions 2000]

1. Page latency: two runtimes (each its own uvicorn process) serve the same article from
   the same stand-in instance (a process); one has the customer-insights hub configured
   (the stand-in hub, a process of its own, verifying every signature), one has no
   analytics. Every request is a signed-in contact's (the bench's runtime launcher puts
   the contact on the request the way the sign-in layer does), so every page on the
   tracked runtime queues one interaction. Requests alternate between the two, in rounds,
   on keep-alive connections; the figure is p50(tracked) / p50(untracked) (target < 1.05).
   A third runtime, identical to the untracked one, is the control: p50(control) /
   p50(untracked) shows what noise alone does on this machine in this run.
2. Sender throughput: N interactions through the real Sender (queue, SAS tokens,
   retries armed) to the stand-in hub, and the same N bodies POSTed by a bare httpx
   loop (no queue, no signing) to the same hub: the ratio of interactions per second.
   The CloudEvents sink (batches of 100) against the stand-in receiver, as the same ratio
   to the bare loop.

Nothing here is asserted; the figures print as JSON (and to --out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from portico_dev.procs import free_port  # noqa: E402

KEY, POLICY, TOKEN = "bench-hub-key", "portal-writer", "bench-instance-token"
CONTACT = {"x-test-contact": "0b6f1c9e-bench|bench@example.com|"}


# --- the processes -------------------------------------------------------------------------


def _serve_hub(port: int) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from tests.support.hub import HubState, ReceiverState, hub_app, receiver_app

    state = HubState(policy=POLICY, key=KEY, resource=f"http://127.0.0.1:{port}")
    routes = [*hub_app(state).routes, Mount("/ce", receiver_app(ReceiverState()))]
    app = Starlette(routes=routes)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")


def _serve_instance(port: int) -> None:
    from portico_standin.app import create_app
    from portico_standin.state import InstanceState

    state = InstanceState(f"Bearer {TOKEN}", ("en-US", "de-DE", "fr-FR"), ())
    uvicorn.run(create_app(state), host="127.0.0.1", port=port, log_level="warning")


def _serve_runtime(port: int, config: str) -> None:
    from tests.support.content import with_visitors

    from portico_runtime import web
    from portico_runtime.config import Reader

    app = with_visitors(web.create_app(Reader(Path(config))))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


@contextmanager
def process(*args: str, port: int) -> Iterator[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.interactions", *args, "--port", str(port)],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "/", timeout=1)
            break
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit(f"{' '.join(args)} did not start") from None
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


# --- 1. page latency -------------------------------------------------------------------------


def _config(tmp: Path, instance: str, hub: str | None) -> Path:
    from tests.support.runtime import credentials, portal_json

    config = portal_json("customer-customerselfservice.yaml", instance, credentials(tmp, TOKEN))
    config["authentication"]["identityProviders"] = []
    if hub is None:
        config["analytics"] = {}
    else:
        key = tmp / "sharedKey"
        key.write_text(KEY)
        config["analytics"]["customerInsights"].update(hubUri=hub, sharedKeyFile=str(key))
        config["analytics"]["queueSize"] = 100_000
    path = tmp / ("tracked.json" if hub else "untracked.json")
    path.write_text(json.dumps(config))
    return path


def _provision(config: Path) -> None:
    from portico_runtime import jobs
    from portico_runtime.config import load

    jobs.provision(load(config))


def pages(requests: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        with (
            process("serve-hub", port=free_port()) as hub,
            process("serve-instance", port=free_port()) as instance,
        ):
            tracked, untracked = _config(tmp, instance, hub), _config(tmp, instance, None)
            _provision(tracked)
            with (
                process("serve-runtime", "--config", str(tracked), port=free_port()) as on,
                process("serve-runtime", "--config", str(untracked), port=free_port()) as off,
                process("serve-runtime", "--config", str(untracked), port=free_port()) as ctl,
            ):
                names = ("on", "off", "control")
                times: dict[str, list[float]] = {name: [] for name in names}
                with (
                    httpx.Client(base_url=on) as c_on,
                    httpx.Client(base_url=off) as c_off,
                    httpx.Client(base_url=ctl) as c_ctl,
                ):
                    clients = dict(zip(names, (c_on, c_off, c_ctl), strict=True))
                    for client in clients.values():  # warm: templates, connections
                        for _ in range(20):
                            client.get("/knowledge/KA-01001", headers=CONTACT).raise_for_status()
                    for r in range(rounds):
                        order = names[r % 3 :] + names[: r % 3]  # each goes first in turn
                        for _ in range(requests // rounds):
                            for name in order:
                                start = time.perf_counter()
                                clients[name].get("/knowledge/KA-01001", headers=CONTACT)
                                times[name].append(time.perf_counter() - start)
                    sent = _sent(c_on.get("/metrics").text)
    p50 = {k: statistics.median(v) for k, v in times.items()}
    baseline = statistics.median(times["off"] + times["control"])
    return {
        "requests_each": len(times["on"]),
        "p50_ms_tracking_on": round(p50["on"] * 1000, 3),
        "p50_ms_tracking_off": round(p50["off"] * 1000, 3),
        "p50_ms_control_off": round(p50["control"] * 1000, 3),
        "p50_ratio_on_off": round(p50["on"] / p50["off"], 4),
        "p50_ratio_on_control": round(p50["on"] / p50["control"], 4),
        # The figure to read: tracked against both untracked runtimes' requests pooled.
        "p50_ratio_on_untracked": round(p50["on"] / baseline, 4),
        # Two identical untracked runtimes: how far apart noise alone puts them.
        "p50_ratio_control_off": round(p50["control"] / p50["off"], 4),
        "interactions_sent_during_run": sent,
    }


def _sent(metrics: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("portico_runtime_interactions_total") and 'outcome="sent"' in line
    )


# --- 2. sender throughput ----------------------------------------------------------------------


async def _through_sender(hub: str, kind: str, n: int, tmp: Path) -> float:
    from tests.unit.test_interactions import portal

    from portico_runtime.interactions import model, sinks
    from portico_runtime.interactions.metrics import Metrics
    from portico_runtime.interactions.sender import Sender, Tuning

    key = tmp / "key"
    key.write_text(KEY)
    if kind == "customerInsights":
        p = portal(
            customerInsights={"hubUri": hub, "policyName": POLICY, "sharedKeyFile": str(key)}
        )
    else:
        p = portal(cloudEvents={"url": hub + "/ce/events"})
    (config,) = sinks.settings(p)
    items = [
        model.build("SearchPerformed", p, f"c-{i}", {"searchstring": "bench"}) for i in range(n)
    ]
    metrics = Metrics()
    async with httpx.AsyncClient(follow_redirects=False) as client:
        sender = Sender(sinks.make(config, p), n, metrics, client, Tuning())
        for item in items:  # queued first: the figure is how fast the sender empties it
            sender.put(item)
        start = time.perf_counter()
        sender.start()
        await sender.drain(600)  # returns once the queue is empty and the last batch answered
        elapsed = time.perf_counter() - start
    assert metrics.total("sent") == n, "the bench lost interactions"
    return n / elapsed


async def _bare_loop(hub: str, n: int) -> float:
    """The floor: the same hub bodies, one POST each, no queue, no signing (pre-signed)."""
    from tests.unit.test_interactions import portal

    from portico_runtime.interactions import model, sas, sinks

    p = portal()
    header = sas.sign(hub, POLICY, KEY, int(time.time()) + 3600)
    bodies = [
        json.dumps(
            sinks.hub_body(model.build("SearchPerformed", p, f"c-{i}", {"searchstring": "b"}))
        )
        for i in range(n)
    ]
    url = hub + sinks.HUB_PATH
    headers = {"Authorization": header, "Content-Type": "application/json"}
    async with httpx.AsyncClient() as client:
        start = time.perf_counter()
        for body in bodies:
            (await client.post(url, content=body, headers=headers)).raise_for_status()
        return n / (time.perf_counter() - start)


def throughput(n: int, rounds: int) -> dict[str, Any]:
    """Rounds alternate the three, so a busy machine slows each alike; rates are medians."""
    rates: dict[str, list[float]] = {"bare": [], "hub": [], "ce": []}
    chunk = max(1, n // rounds)
    with tempfile.TemporaryDirectory() as tmp_dir, process("serve-hub", port=free_port()) as hub:
        tmp = Path(tmp_dir)
        for _ in range(rounds):
            rates["bare"].append(asyncio.run(_bare_loop(hub, chunk)))
            rates["hub"].append(asyncio.run(_through_sender(hub, "customerInsights", chunk, tmp)))
            rates["ce"].append(asyncio.run(_through_sender(hub, "cloudEvents", chunk, tmp)))
    bare, hub_rate, ce_rate = (statistics.median(rates[k]) for k in ("bare", "hub", "ce"))
    return {
        "interactions": chunk * rounds,
        "bare_post_loop_per_s": round(bare, 1),
        "hub_sender_per_s": round(hub_rate, 1),
        "hub_sender_ratio_to_bare": round(hub_rate / bare, 3),
        "cloudevents_sender_per_s": round(ce_rate, 1),
        "cloudevents_sender_ratio_to_bare": round(ce_rate / bare, 3),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.interactions", description=__doc__)
    p.add_argument(
        "mode",
        nargs="?",
        default="run",
        choices=["run", "serve-hub", "serve-instance", "serve-runtime"],
    )
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--config", default="")
    p.add_argument("--requests", type=int, default=400, help="page requests per runtime")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--interactions", type=int, default=2000, help="for the sender's throughput")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if args.mode == "serve-hub":
        _serve_hub(args.port)
        return
    if args.mode == "serve-instance":
        _serve_instance(args.port)
        return
    if args.mode == "serve-runtime":
        _serve_runtime(args.port, args.config)
        return
    result = {
        "pages": pages(args.requests, args.rounds),
        "sender": throughput(args.interactions, args.rounds),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
