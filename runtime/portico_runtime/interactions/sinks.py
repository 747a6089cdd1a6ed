"""Where interactions go: the customer-insights hub and a CloudEvents sink.

Each sink knows its settings (from portal.json's `analytics`) and how to turn a batch
into one HTTP request. Credentials are read from mounted files on every request, so a
rotated Secret is used without a restart and without losing what is queued.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from portico_runtime.config import Portal
from portico_runtime.interactions import model, sas

DEFAULT_QUEUE_SIZE = 10_000
DEFAULT_TOKEN_SECONDS = 300.0
HUB_PATH = "/data/Interactions?api-version=2016-01-01"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
EVENT_TYPE = "dev.portico.interaction."
ALL_KINDS = tuple(model.TYPES)


@dataclass(frozen=True)
class Settings:
    """One sink's settings, as portal.json carries them."""

    sink: str  # customerInsights | cloudEvents
    url: str
    interactions: tuple[str, ...]
    search_strings: str = "Send"
    policy: str = ""
    key_file: str = ""
    headers_file: str = ""
    source: str = ""  # the portal's URL (CloudEvents `source`)


def _kinds(raw: dict[str, Any]) -> tuple[str, ...]:
    wanted = raw.get("interactions")
    if not isinstance(wanted, list):
        return ALL_KINDS
    return tuple(k for k in wanted if k in model.TYPES)


def _mode(raw: dict[str, Any]) -> str:
    mode = raw.get("searchStrings", "Send")
    return mode if mode in model.SEARCH_STRINGS else "Send"


def settings(portal: Portal) -> list[Settings]:
    analytics = portal.raw.get("analytics") or {}
    found: list[Settings] = []
    ci = analytics.get("customerInsights")
    if isinstance(ci, dict) and ci.get("hubUri") and ci.get("sharedKeyFile"):
        found.append(
            Settings(
                "customerInsights",
                str(ci["hubUri"]).rstrip("/"),
                _kinds(ci),
                _mode(ci),
                policy=str(ci.get("policyName", "")),
                key_file=str(ci["sharedKeyFile"]),
            )
        )
    ce = analytics.get("cloudEvents")
    if isinstance(ce, dict) and ce.get("url"):
        found.append(
            Settings(
                "cloudEvents",
                str(ce["url"]),
                _kinds(ce),
                _mode(ce),
                headers_file=str(ce.get("headersFile") or ""),
                source=portal.url,
            )
        )
    return found


def queue_size(portal: Portal) -> int:
    size = (portal.raw.get("analytics") or {}).get("queueSize", DEFAULT_QUEUE_SIZE)
    return size if isinstance(size, int) and size > 0 else DEFAULT_QUEUE_SIZE


def token_seconds(portal: Portal) -> float:
    ci = (portal.raw.get("analytics") or {}).get("customerInsights") or {}
    value = ci.get("tokenSeconds", DEFAULT_TOKEN_SECONDS) if isinstance(ci, dict) else 0
    return float(value) if isinstance(value, int | float) and value > 0 else DEFAULT_TOKEN_SECONDS


@dataclass(frozen=True)
class Request:
    url: str
    headers: dict[str, str]
    content: bytes


class Sink(Protocol):
    name: str
    batch: int

    def request(self, items: list[model.Interaction]) -> Request: ...

    def credentials_changed(self) -> bool: ...


def hub_body(interaction: model.Interaction) -> dict[str, Any]:
    return {"interactionType": interaction.type, "properties": interaction.properties}


class Hub:
    """`POST {hubUri}/data/Interactions?api-version=2016-01-01`, one interaction a request,
    signed with a SharedAccessSignature of the hub URI."""

    name = "customerInsights"
    batch = 1

    def __init__(self, config: Settings, ttl: float) -> None:
        self.url = config.url + HUB_PATH
        self.tokens = sas.TokenSource(
            config.url, config.policy, sas.KeyFile(Path(config.key_file)), ttl
        )

    def request(self, items: list[model.Interaction]) -> Request:
        (interaction,) = items
        headers = {"Authorization": self.tokens.header(), "Content-Type": "application/json"}
        return Request(self.url, headers, json.dumps(hub_body(interaction)).encode())

    def credentials_changed(self) -> bool:
        return self.tokens.key_changed()


def cloud_event(interaction: model.Interaction, source: str) -> CloudEvent:
    return CloudEvent(
        {
            "id": interaction.id,
            "source": source,
            "type": EVENT_TYPE + interaction.type,
            "time": datetime.fromisoformat(interaction.properties["portal_timestamp"]),
            "subject": interaction.properties["portal_contactid"],
            "datacontenttype": "application/json",
        },
        dict(interaction.properties),
    )


def batch_body(events: list[CloudEvent]) -> bytes:
    """Batched structured mode: a JSON array of structured-mode events (the SDK writes each)."""
    fmt = JSONFormat()
    return b"[" + b",".join(fmt.write(e) for e in events) + b"]"


def read_headers(path: str) -> dict[str, str]:
    """`Name: value` lines (e.g. `Authorization: Bearer ...`) from the mounted headers file."""
    if not path:
        return {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep and name.strip() and name.strip().lower() not in ("content-type", "content-length"):
            headers[name.strip()] = value.strip()
    return headers


class CloudEvents:
    """CloudEvents 1.0 batches (`application/cloudevents-batch+json`) to one URL."""

    name = "cloudEvents"
    batch = 100

    def __init__(self, config: Settings) -> None:
        self.url, self.source, self.headers_file = config.url, config.source, config.headers_file
        self._sent_with: dict[str, str] = {}

    def request(self, items: list[model.Interaction]) -> Request:
        self._sent_with = read_headers(self.headers_file)
        headers = {**self._sent_with, "Content-Type": BATCH_CONTENT_TYPE}
        events = [cloud_event(i, self.source) for i in items]
        return Request(self.url, headers, batch_body(events))

    def credentials_changed(self) -> bool:
        return read_headers(self.headers_file) != self._sent_with


def make(config: Settings, portal: Portal) -> Sink:
    if config.sink == "customerInsights":
        return Hub(config, token_seconds(portal))
    return CloudEvents(config)
