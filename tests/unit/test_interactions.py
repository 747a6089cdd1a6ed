"""Interactions: the pure rules (signature, token life, the hub's schema, search strings,
back-off) and the background sender against the stand-in hub on loopback — exactly once
to a hub that stays up, the same id across retries, drops counted, rotation lossless."""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.eventhub._pyamqp.utils import generate_sas_token  # a signer Portico did not write

from portico_runtime.config import Portal
from portico_runtime.interactions import model, sas, sinks
from portico_runtime.interactions.metrics import Metrics
from portico_runtime.interactions.queue import DropOldest
from portico_runtime.interactions.sender import Sender, Tuning, backoff, retry_after
from tests.support.hub import HubState, Server, running_hub, running_receiver

FAST = Tuning(timeout=2.0, backoff=0.01, backoff_cap=0.05, flush_seconds=5.0)


def portal(**analytics: Any) -> Portal:
    return Portal(
        name="contoso-support",
        namespace="support",
        display_name="Contoso Support",
        url="https://contoso-support.portals.example.com",
        audience="Customer",
        template="CustomerSelfService",
        language="en-US",
        languages=("en-US",),
        features=("base",),
        solutions=("PortalBase",),
        instance_url="http://127.0.0.1:1",
        credentials_dir="/nonexistent",
        raw={"analytics": analytics},
    )


# --- the signature ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "resource",
    ["https://contoso.insights.example.net", "https://hub.example.net/a path/ü?x=1&y=2"],
)
def test_the_signature_matches_the_azure_sdks_generator(resource: str) -> None:
    expiry = 1_900_000_000
    ours = sas.sign(resource, "portal-writer", "s3cr3t+/=key", expiry)
    theirs = generate_sas_token(resource, "portal-writer", "s3cr3t+/=key", expiry)  # type: ignore[no-untyped-call]
    assert sas.parse(ours) == sas.parse(theirs)
    assert ours == theirs


def test_verify_accepts_only_the_right_key_resource_policy_and_time() -> None:
    header = sas.sign("https://hub", "writer", "k1", 2000)
    assert sas.verify(header, "https://hub", "writer", "k1", now=1000) == ""
    assert sas.verify(header, "https://hub", "writer", "k2", now=1000) == "bad signature"
    assert sas.verify(header, "https://other", "writer", "k1", now=1000) != ""
    assert sas.verify(header, "https://hub", "reader", "k1", now=1000) != ""
    assert sas.verify(header, "https://hub", "writer", "k1", now=2001) == "expired"
    assert sas.verify("Bearer x", "https://hub", "writer", "k1", now=1000) != ""


def test_tokens_are_short_lived_renewed_early_and_in_utc(tmp_path: Path) -> None:
    key = tmp_path / "sharedKey"
    key.write_text("k1\n")
    now = [1_000_000.0]
    tokens = sas.TokenSource(
        "https://hub", "writer", sas.KeyFile(key), ttl=300, clock=lambda: now[0]
    )
    first = tokens.header()
    assert sas.parse(first)["se"] == "1000300"  # epoch seconds: UTC whatever the pod's TZ
    now[0] += 200
    assert tokens.header() == first  # 100 s left of 300: kept
    now[0] += 41
    renewed = tokens.header()  # 59 s left (< a fifth): a new token before this one expires
    assert renewed != first and int(sas.parse(renewed)["se"]) == 1_000_541
    assert sas.verify(renewed, "https://hub", "writer", "k1", now[0]) == ""


def test_a_rotated_key_signs_the_next_token(tmp_path: Path) -> None:
    key = tmp_path / "sharedKey"
    key.write_text("k1")
    tokens = sas.TokenSource("https://hub", "writer", sas.KeyFile(key), ttl=300)
    before = tokens.header()
    assert not tokens.key_changed()
    key.write_text("k2-rotated")
    assert tokens.key_changed()
    after = tokens.header()
    assert sas.verify(after, "https://hub", "writer", "k2-rotated", time.time()) == ""
    assert after != before and not tokens.key_changed()


# --- the hub's schema and the privacy rules ---------------------------------------------------


def test_each_type_carries_the_hubs_fields() -> None:
    p = portal()
    when = datetime(2026, 12, 6, 14, 30, 5, 123000, tzinfo=timezone(timedelta(hours=2)))
    article = model.build(
        "KnowledgeArticleViewed",
        p,
        "c-1",
        model.view_fields("KnowledgeArticleViewed", "KA-1", "T"),
        now=when,
    )
    assert article.type == "portal_viewknowledgearticle"
    props = article.properties
    assert props["knowledgearticleid"] == "KA-1" and props["knowledgetitle"] == "T"
    assert props["portal_contactid"] == "c-1"
    assert props["portal_timestamp"] == "2026-12-06T12:30:05.123Z"  # UTC, whatever was given
    assert props["portal_portalid"] == model.portal_id(p) == model.portal_id(portal())
    assert model.schema_problems(sinks.hub_body(article)) == []
    for kind, fields in (
        ("BlogPostViewed", {"blogpostid", "blogtitle"}),
        ("ForumThreadViewed", {"forumthreadid", "forumthreadtitle"}),
    ):
        built = model.build(kind, p, "c", model.view_fields(kind, "id", "title"))
        assert set(built.properties) == {*model.COMMON, *fields}
        assert model.schema_problems(sinks.hub_body(built)) == []
    assert model.schema_problems({"interactionType": "portal_viewblogpost", "properties": {}})


def test_search_strings_send_hash_or_omit() -> None:
    search = model.build("SearchPerformed", portal(), "c", {"searchstring": "reset password"})
    every = tuple(model.TYPES)
    assert model.for_sink(search, every, "Send") == search
    hashed = model.for_sink(search, every, "Hash")
    assert hashed is not None and hashed.id == search.id
    assert hashed.properties["searchstring"] == hashlib.sha256(b"reset password").hexdigest()
    omitted = model.for_sink(search, every, "Omit")
    assert omitted is not None and "searchstring" not in omitted.properties
    assert model.schema_problems(sinks.hub_body(omitted)) == []
    assert model.for_sink(search, ("KnowledgeArticleViewed",), "Send") is None


def test_retry_after_and_backoff() -> None:
    assert retry_after("7", 0) == 7.0
    assert retry_after("100000", 0) == 300.0
    assert retry_after("Thu, 01 Jan 1970 00:00:10 GMT", 4.0) == 6.0
    assert retry_after("soon", 0) is None and retry_after(None, 0) is None
    rng = random.Random(1)
    waits = [backoff(n, 0.5, 30.0, rng) for n in range(12)]
    assert all(0 <= w <= min(30.0, 0.5 * 2**n) for n, w in enumerate(waits))
    assert max(waits[6:]) > 1.0  # it grows


def test_a_full_queue_drops_its_oldest() -> None:
    queue: DropOldest[int] = DropOldest(3)
    assert [queue.put(n) for n in range(5)] == [None, None, None, 0, 1]
    assert asyncio.run(queue.take(10)) == [2, 3, 4]


# --- the sender against the stand-in hub --------------------------------------------------------


def hub_portal(server: Server, state: HubState, key: Path, **extra: Any) -> Portal:
    key.write_text(state.key + "\n")
    ci = {"hubUri": server.url, "policyName": state.policy, "sharedKeyFile": str(key), **extra}
    return portal(customerInsights=ci)


def views(p: Portal, n: int, start: int = 0) -> list[model.Interaction]:
    return [
        model.build(
            "KnowledgeArticleViewed",
            p,
            f"c-{i}",
            model.view_fields("KnowledgeArticleViewed", f"KA-{i}", "t"),
        )
        for i in range(start, start + n)
    ]


def run(body: Callable[[Metrics, httpx.AsyncClient], Awaitable[None]]) -> Metrics:
    metrics = Metrics()

    async def main() -> None:
        async with httpx.AsyncClient(follow_redirects=False) as client:
            await body(metrics, client)

    asyncio.run(main())
    return metrics


def sender_for(
    p: Portal, metrics: Metrics, client: httpx.AsyncClient, size: int = 1000, tuning: Tuning = FAST
) -> Sender:
    (config,) = sinks.settings(p)
    sender = Sender(sinks.make(config, p), size, metrics, client, tuning)
    sender.start()
    return sender


async def until(check: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.01)


SENT = ("customerInsights", "portal_viewknowledgearticle")


def test_every_interaction_reaches_a_hub_that_stays_up_exactly_once(tmp_path: Path) -> None:
    with running_hub() as (server, state):
        p = hub_portal(server, state, tmp_path / "key")
        items = views(p, 200)

        async def body(metrics: Metrics, client: httpx.AsyncClient) -> None:
            sender = sender_for(p, metrics, client)
            for item in items:
                sender.put(item)
            await until(lambda: len(state.accepted) == 200)
            await sender.drain(5)

        metrics = run(body)
    assert state.refused == []
    assert state.accepted_ids() == {i.id: 1 for i in items}
    assert [b["properties"] for b in state.accepted] == [i.properties for i in items]  # in order
    assert metrics.value(*SENT, "sent") == 200
    assert metrics.total("retried") == metrics.total("dropped") == metrics.total("rejected") == 0


def test_429_500_and_timeouts_are_retried_with_the_same_id(tmp_path: Path) -> None:
    with running_hub() as (server, state):
        p = hub_portal(server, state, tmp_path / "key")
        state.script.answers = [(500, {}), (429, {"Retry-After": "1"}), (503, {})]
        items = views(p, 3)

        async def body(metrics: Metrics, client: httpx.AsyncClient) -> None:
            sender = sender_for(p, metrics, client)
            started = time.monotonic()
            sender.put(items[0])
            await until(lambda: len(state.accepted) == 1)
            assert time.monotonic() - started >= 1.0  # Retry-After honoured
            # A hub slower than the request timeout: the answer never arrives, the id is sent again.
            state.script.delay = 0.5
            slow = Sender(
                sender.sink,
                10,
                metrics,
                client,
                Tuning(timeout=0.2, backoff=0.01, backoff_cap=0.05),
            )
            slow.start()
            slow.put(items[1])
            await until(lambda: state.attempts.count(items[1].id) >= 2)
            state.script.delay = 0
            await until(lambda: state.accepted_ids()[items[1].id] >= 1)
            await slow.drain(5)
            await sender.drain(5)

        metrics = run(body)
    assert state.attempts[:4] == [items[0].id] * 4
    assert state.accepted_ids()[items[0].id] == 1
    # At least once, and every copy the hub saw carries the one id.
    assert set(state.attempts[4:]) == {items[1].id}
    assert metrics.value(*SENT, "retried") >= 4
    assert metrics.value(*SENT, "sent") == 2 and metrics.total("dropped") == 0


def test_other_4xx_are_rejected_not_retried(tmp_path: Path) -> None:
    with running_hub() as (server, state):
        p = hub_portal(server, state, tmp_path / "key")
        state.script.answers = [(400, {})]
        items = views(p, 2)

        async def body(metrics: Metrics, client: httpx.AsyncClient) -> None:
            sender = sender_for(p, metrics, client)
            for item in items:
                sender.put(item)
            await until(lambda: len(state.accepted) == 1)
            await sender.drain(5)

        metrics = run(body)
    assert state.attempts == [items[0].id, items[1].id]
    assert metrics.value(*SENT, "rejected") == 1 and metrics.value(*SENT, "sent") == 1
    assert metrics.total("retried") == 0


def test_a_hub_down_longer_than_the_queue_holds_counts_the_drops(tmp_path: Path) -> None:
    with running_hub() as (server, state):
        p = hub_portal(server, state, tmp_path / "key")
        server.stop()  # the hub goes away
        items = views(p, 20)

        async def body(metrics: Metrics, client: httpx.AsyncClient) -> None:
            sender = sender_for(p, metrics, client, size=5)
            sender.put(items[0])
            await until(lambda: metrics.value(*SENT, "retried") >= 2)  # in flight, retrying
            for item in items[1:]:
                sender.put(item)
            assert metrics.value(*SENT, "dropped") == 14  # 19 queued into room for 5
            assert metrics.depth.labels(sink="customerInsights")._value.get() == 5
            await asyncio.to_thread(server.start)  # the hub is back on the same port
            await until(lambda: len(state.accepted) == 6)
            await sender.drain(5)

        metrics = run(body)
    kept = [items[0], *items[15:]]  # the one in flight and the newest five
    assert state.accepted_ids() == {i.id: 1 for i in kept}
    assert metrics.value(*SENT, "sent") == 6 and metrics.value(*SENT, "dropped") == 14
    assert metrics.value(*SENT, "sent") + metrics.value(*SENT, "dropped") == len(items)


def test_a_rotated_shared_key_loses_nothing(tmp_path: Path) -> None:
    with running_hub() as (server, state):
        key = tmp_path / "key"
        p = hub_portal(server, state, key)
        first, queued = views(p, 1), views(p, 10, start=1)

        async def body(metrics: Metrics, client: httpx.AsyncClient) -> None:
            sender = sender_for(p, metrics, client)
            sender.put(first[0])
            await until(lambda: len(state.accepted) == 1)  # a token signed with the old key
            state.key = "hub-key-2"  # the hub's policy gets a new key ...
            for item in queued:
                sender.put(item)
            await until(lambda: len(state.refused) >= 1)  # ... old tokens are refused ...
            key.write_text("hub-key-2\n")  # ... and the Secret (the mounted file) follows
            await until(lambda: len(state.accepted) == 11)
            await sender.drain(5)

        metrics = run(body)
    assert state.accepted_ids() == {i.id: 1 for i in first + queued}
    assert metrics.total("rejected") == 0 and metrics.value(*SENT, "sent") == 11


def test_a_wrong_key_is_rejected_once_no_rotation_came(tmp_path: Path) -> None:
    with running_hub() as (server, state):
        p = hub_portal(server, state, tmp_path / "key")
        state.key = "not-the-portals-key"
        items = views(p, 3)
        tuning = Tuning(timeout=2.0, backoff=0.01, backoff_cap=0.05, rotation_seconds=0.3)

        async def body(metrics: Metrics, client: httpx.AsyncClient) -> None:
            sender = sender_for(p, metrics, client, tuning=tuning)
            for item in items:
                sender.put(item)
            await until(lambda: metrics.value(*SENT, "rejected") == 3)
            await sender.drain(5)

        metrics = run(body)
    assert state.accepted == [] and set(state.refused) == {"bad signature"}
    assert metrics.value(*SENT, "retried") >= 1 and metrics.value(*SENT, "sent") == 0


def test_shutdown_flushes_within_the_grace_period(tmp_path: Path) -> None:
    with running_hub() as (server, state):
        p = hub_portal(server, state, tmp_path / "key")
        items = views(p, 30)

        async def body(metrics: Metrics, client: httpx.AsyncClient) -> None:
            sender = sender_for(p, metrics, client)
            for item in items[:20]:
                sender.put(item)
            await sender.drain(10)  # a hub that answers: everything goes out
            assert len(state.accepted) == 20
            server.stop()
            stuck = sender_for(p, metrics, client)
            for item in items[20:]:
                stuck.put(item)
            started = time.monotonic()
            await stuck.drain(0.5)  # a hub that is gone: the grace period bounds the wait
            assert time.monotonic() - started < 2.5

        metrics = run(body)
    assert metrics.value(*SENT, "sent") == 20 and metrics.value(*SENT, "dropped") == 10
    assert metrics.depth.labels(sink="customerInsights")._value.get() == 0


# --- CloudEvents -----------------------------------------------------------------------------


def test_cloudevents_batches_parse_with_the_sdk(tmp_path: Path) -> None:
    headers = tmp_path / "headers"
    headers.write_text("Authorization: Bearer sink-token\nX-Tenant: contoso\n")
    with running_receiver() as (server, state):
        p = portal(cloudEvents={"url": server.url + "/events", "headersFile": str(headers)})
        state.script.answers = [(500, {})]
        items = [*views(p, 150), model.build("SearchPerformed", p, "c-s", {"searchstring": "hi"})]

        async def body(metrics: Metrics, client: httpx.AsyncClient) -> None:
            sender = sender_for(p, metrics, client)
            for item in items:
                sender.put(item)
            await until(lambda: len(state.events()) == len(items))
            await sender.drain(5)

        metrics = run(body)
    assert state.refused == []
    events = state.events()
    assert [e.get_id() for e in events] == [i.id for i in items]  # each once, in order
    assert {e.get_source() for e in events} == {p.url}
    assert events[0].get_type() == "dev.portico.interaction.portal_viewknowledgearticle"
    assert events[-1].get_type() == "dev.portico.interaction.portal_search"
    assert events[0].get_data() == items[0].properties
    when = events[0].get_time()
    assert when == datetime.fromisoformat(items[0].properties["portal_timestamp"])
    assert when is not None and when.utcoffset() == timedelta(0)
    assert max(len(b) for b in state.batches) <= 100 and len(state.batches) >= 2
    assert all(h["authorization"] == "Bearer sink-token" for h in state.headers)
    assert metrics.value("cloudEvents", "portal_viewknowledgearticle", "sent") == 150
    assert metrics.value("cloudEvents", "portal_viewknowledgearticle", "retried") >= 1
