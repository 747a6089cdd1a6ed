"""The runtime as it serves (uvicorn on loopback, its lifespan, the content pages) with the
stand-in instance, the stand-in hub and a CloudEvents receiver: what a signed-in contact
views and searches arrives, once, with the hub's fields; anonymous visitors send nothing;
the counters are on /metrics; shutdown flushes the queue."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from portico_runtime import jobs, web
from portico_runtime.config import Reader, parse
from portico_runtime.interactions import model
from tests.support.content import as_contact, with_visitors
from tests.support.hub import HubState, ReceiverState, Server, running_hub, running_receiver
from tests.support.identity import certificate
from tests.support.runtime import credentials, portal_json, running_instance, write_config


def until(check: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.02)


Setup = tuple[Server, HubState, ReceiverState, dict[str, Any]]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Setup]:
    with (
        running_instance() as (url, _),
        running_hub() as (hub, hub_state),
        running_receiver() as (
            sink,
            sink_state,
        ),
    ):
        # CustomerSelfService: articles and forums; the hub takes articles and searches only.
        config = portal_json("customer-customerselfservice.yaml", url, credentials(tmp_path))
        key = tmp_path / "sharedKey"
        key.write_text(hub_state.key)
        config["analytics"]["customerInsights"].update(
            hubUri=hub.url, sharedKeyFile=str(key), searchStrings="Hash"
        )
        config["analytics"]["cloudEvents"] = {"url": sink.url + "/events"}
        config["analytics"]["queueSize"] = 100
        config["authentication"]["identityProviders"] = []  # not what this test is about
        jobs.provision(parse(config))
        app = with_visitors(web.create_app(Reader(write_config(tmp_path, config))))
        runtime = Server(app, lifespan="on")
        runtime.start()
        try:
            yield runtime, hub_state, sink_state, config
        finally:
            runtime.stop()


def test_views_and_searches_of_a_contact_reach_the_hub(served: Setup) -> None:
    runtime, hub, sink, config = served
    contact = as_contact("0b6f1c9e-contact")
    with httpx.Client(base_url=runtime.url) as client:
        assert client.get("/knowledge/KA-01001").status_code == 200  # anonymous: not tracked
        assert client.get("/search?q=password").status_code == 200
        assert client.get("/knowledge/KA-01001", headers=contact).status_code == 200
        assert client.get("/search?q=reset password", headers=contact).status_code == 200
        assert client.get("/search?q=reset password&page=2", headers=contact).status_code == 200
        assert client.get("/forums/FT-0001", headers=contact).status_code == 200
        until(lambda: len(hub.accepted) == 2 and len(sink.events()) == 3)
        time.sleep(0.3)  # nothing more arrives
        metrics = client.get("/metrics")
    assert hub.refused == [] and sink.refused == []
    assert len(hub.accepted) == 2  # the forum view is not among the hub's interactions[]
    article, search = hub.accepted
    assert article["interactionType"] == "portal_viewknowledgearticle"
    props = article["properties"]
    assert props["knowledgearticleid"] == "KA-01001"
    assert props["knowledgetitle"] == "How to reset your password"
    assert props["portal_contactid"] == "0b6f1c9e-contact"
    assert props["portal_timestamp"].endswith("Z")
    assert props["portal_portalid"] == model.portal_id(parse(config))
    assert search["interactionType"] == "portal_search"
    # searchStrings: Hash for the hub; the CloudEvents sink (default Send) gets the text.
    import hashlib

    assert search["properties"]["searchstring"] == hashlib.sha256(b"reset password").hexdigest()
    events = sink.events()
    assert [e.get_type() for e in events] == [
        "dev.portico.interaction.portal_viewknowledgearticle",
        "dev.portico.interaction.portal_search",
        "dev.portico.interaction.portal_viewforumthread",
    ]
    assert events[0].get_id() == props["portal_interactionid"]  # one interaction, one id
    assert events[1].get_data()["searchstring"] == "reset password"  # type: ignore[index]
    assert events[0].get_source() == config["portal"]["url"]
    text = metrics.text
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    line = (
        'portico_runtime_interactions_total{outcome="sent",sink="customerInsights",'
        'type="portal_viewknowledgearticle"} 1.0'
    )
    assert line in text
    assert 'portico_runtime_interactions_queue_depth{sink="cloudEvents"} 0.0' in text
    for secret in (hub.key, "sig=", "SharedAccessSignature"):
        assert secret not in text


def test_pages_do_not_wait_for_a_hub_that_is_gone_and_shutdown_flushes(
    served: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    runtime, hub, sink, _ = served
    hub.script.delay = 1.0  # a slow hub: five views take five seconds to deliver
    contact = as_contact("c-1")
    with httpx.Client(base_url=runtime.url) as client:
        for _ in range(5):
            assert client.get("/knowledge/KA-01002", headers=contact).status_code == 200
    assert len(hub.accepted) < 5  # the pages were served before the hub took them all
    runtime.stop()  # uvicorn's shutdown runs the lifespan: the queue is flushed
    assert len(hub.accepted) == 5 and len(set(hub.accepted_ids())) == 5
    assert len(sink.events()) == 5
    logged = caplog.text + json.dumps([r.getMessage() for r in caplog.records])
    assert hub.key not in logged and "sig=" not in logged


def test_analytics_added_to_portal_json_is_followed_without_a_restart(tmp_path: Path) -> None:
    with running_instance() as (url, _), running_hub() as (hub, hub_state):
        config = portal_json("customer-community.yaml", url, credentials(tmp_path))
        jobs.provision(parse(config))
        path = write_config(tmp_path, config)
        runtime = Server(with_visitors(web.create_app(Reader(path))), lifespan="on")
        runtime.start()
        try:
            contact = as_contact("c-9")
            with httpx.Client(base_url=runtime.url) as client:
                assert client.get("/blogs/BP-0001", headers=contact).status_code == 200
                key = tmp_path / "sharedKey"
                key.write_text(hub_state.key)
                config["analytics"] = {
                    "customerInsights": {
                        "hubUri": hub.url,
                        "policyName": hub_state.policy,
                        "sharedKeyFile": str(key),
                        "interactions": ["BlogPostViewed"],
                    }
                }
                path.write_text(json.dumps(config))
                os.utime(path, ns=(1, 1))  # a new stamp even within one clock tick
                assert client.get("/blogs/BP-0001", headers=contact).status_code == 200
                until(lambda: len(hub_state.accepted) == 1)
        finally:
            runtime.stop()
    (body,) = hub_state.accepted
    assert body["interactionType"] == "portal_viewblogpost"
    assert body["properties"]["blogtitle"] == "Welcome to our community"


RETRIED = 'outcome="retried",sink="customerInsights"'


def test_a_hub_behind_the_instances_private_ca_is_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hub over HTTPS whose certificate only the instance's ca.crt vouches for: with
    another CA there the runtime does not deliver (the certificate is checked, not waved
    through); once the CA is rotated in place (as the kubelet updates a mounted Secret)
    the same runtime verifies the hub with it, beside the public roots, and delivers."""
    monkeypatch.setenv("PORTICO_INTERACTIONS_FLUSH_SECONDS", "1")  # the untrusted one's stop
    cert, key_file = certificate(tmp_path)
    (tmp_path / "old").mkdir()
    old_ca, _ = certificate(tmp_path / "old")
    with running_instance() as (url, _), running_hub(tls=(cert, key_file)) as (hub, state):
        assert hub.url.startswith("https://")
        creds = credentials(tmp_path)
        (creds / "ca.crt").write_bytes(old_ca.read_bytes())
        config = portal_json("customer-customerselfservice.yaml", url, creds)
        shared = tmp_path / "sharedKey"
        shared.write_text(state.key)
        config["analytics"]["customerInsights"].update(hubUri=hub.url, sharedKeyFile=str(shared))
        config["authentication"]["identityProviders"] = []
        jobs.provision(parse(config))
        app = with_visitors(web.create_app(Reader(write_config(tmp_path, config))))
        runtime = Server(app, lifespan="on")
        runtime.start()
        try:
            with httpx.Client(base_url=runtime.url) as client:
                untrusted = as_contact("c-untrusted")
                assert client.get("/knowledge/KA-01001", headers=untrusted).status_code == 200
                # A TLS failure is a network error: retried, never sent.
                until(lambda: RETRIED in client.get("/metrics").text)
                assert state.accepted == [] and state.attempts == []
                (creds / "ca.crt").write_bytes(cert.read_bytes())
                trusted = as_contact("c-trusted")
                assert client.get("/knowledge/KA-01001", headers=trusted).status_code == 200
                until(lambda: len(state.accepted) == 1)
        finally:
            runtime.stop()
    assert state.accepted[0]["properties"]["portal_contactid"] == "c-trusted"
