"""The stand-in customer-insights hub of `make demo-real` (run with the venv's python).

    demo_hub.py serve DIR   the hub over HTTPS on the host's loopback, reached by the real
                            node's pods through a relay; writes DIR/hub.json (its hubUri,
                            policy and shared key, and DIR/hub.crt: the CA the portal's
                            instance credentials carry) and DIR/received.json as
                            interactions arrive; runs until it is stopped
    demo_hub.py show DIR    print the interactions the hub received

The hub verifies each SharedAccessSignature and body as the real one does
(tests/support/hub.py); the relay stops with `portico dev down`.
"""

from __future__ import annotations

import json
import secrets
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's tests/

from tests.support.hub import running_hub
from tests.support.identity import certificate

from portico_dev import node
from portico_dev.controlplane import ControlPlane
from portico_dev.state import default_state_file


def serve(workdir: Path) -> None:
    plane = ControlPlane.attach(default_state_file())
    if plane is None or plane.state is None or not plane.state.real_node:
        sys.exit("no real node is running (portico dev up --real-node)")
    real = node.RealNode(plane, {})
    real.netns_pid = plane.state.processes["node-net"][0]
    workdir.mkdir(parents=True, exist_ok=True)
    cert, key = certificate(workdir, node.NODE_IP)
    (workdir / "hub.crt").write_bytes(cert.read_bytes())
    with running_hub(key=secrets.token_urlsafe(24), tls=(cert, key)) as (hub, state):
        state.resource = f"https://{real.expose_host_port(hub.port)}"
        about = {"hubUri": state.resource, "policy": state.policy, "key": state.key}
        (workdir / "hub.json").write_text(json.dumps(about))
        stop = False

        def done(*_: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, done)
        signal.signal(signal.SIGINT, done)
        while not stop:
            received = {"accepted": state.accepted, "refused": state.refused}
            (workdir / "received.tmp").write_text(json.dumps(received))
            (workdir / "received.tmp").replace(workdir / "received.json")
            time.sleep(0.5)


FIELDS = {
    "portal_viewknowledgearticle": ("knowledgearticleid", "knowledgetitle"),
    "portal_viewblogpost": ("blogpostid", "blogtitle"),
    "portal_viewforumthread": ("forumthreadid", "forumthreadtitle"),
    "portal_search": ("searchstring",),
}


def show(workdir: Path) -> None:
    path = workdir / "received.json"
    received = json.loads(path.read_text()) if path.is_file() else {"accepted": [], "refused": []}
    accepted, refused = received["accepted"], received["refused"]
    print(f"{len(accepted)} interaction(s) accepted (signature and body verified), ", end="")
    print(f"{len(refused)} refused")
    for body in accepted:
        props = body["properties"]
        what = " ".join(repr(props.get(f, "")) for f in FIELDS.get(body["interactionType"], ()))
        print(
            f"  {props['portal_timestamp']}  {body['interactionType']:<28} {what}\n"
            f"      portal_interactionid={props['portal_interactionid']}"
            f"  portal_contactid={props['portal_contactid']}"
        )
    for why in refused:
        print(f"  refused: {why}")


if __name__ == "__main__":
    command, *args = sys.argv[1:] or [""]
    if command == "serve" and len(args) == 1:
        serve(Path(args[0]))
    elif command == "show" and len(args) == 1:
        show(Path(args[0]))
    else:
        sys.exit(__doc__)
