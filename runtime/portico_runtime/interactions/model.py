"""Interactions as the hub expects them: pure builders, no I/O.

One view or search of a signed-in contact is one Interaction; its id (a UUID) is made
once, here, so every retry and every sink carries the same `portal_interactionid`.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from portico_runtime.config import Portal

# The CRD's names (spec.analytics.*.interactions) and the hub's interaction types.
TYPES = {
    "KnowledgeArticleViewed": "portal_viewknowledgearticle",
    "BlogPostViewed": "portal_viewblogpost",
    "ForumThreadViewed": "portal_viewforumthread",
    "SearchPerformed": "portal_search",
}
# The fields each type carries beside the common four (the hub's schema).
FIELDS = {
    "portal_viewknowledgearticle": ("knowledgearticleid", "knowledgetitle"),
    "portal_viewblogpost": ("blogpostid", "blogtitle"),
    "portal_viewforumthread": ("forumthreadid", "forumthreadtitle"),
    "portal_search": ("searchstring",),
}
COMMON = ("portal_interactionid", "portal_contactid", "portal_timestamp", "portal_portalid")
SEARCH_STRINGS = ("Send", "Hash", "Omit")
# Portal ids are stable UUIDs derived from the portal's identity (namespace/name).
_PORTAL_NAMESPACE = uuid.UUID("4d9a5c52-5b0e-4f0a-9d47-0c1f2f6e7a11")


@dataclass(frozen=True)
class Interaction:
    kind: str  # the CRD name, e.g. KnowledgeArticleViewed
    type: str  # the hub's name, e.g. portal_viewknowledgearticle
    properties: dict[str, str] = field(hash=False)

    @property
    def id(self) -> str:
        return self.properties["portal_interactionid"]


def portal_id(portal: Portal) -> str:
    """The portal's id as the hub sees it: the same for every pod and every restart."""
    return str(uuid.uuid5(_PORTAL_NAMESPACE, f"{portal.namespace}/{portal.name}"))


def timestamp(now: datetime | None = None) -> str:
    """UTC, ISO 8601, milliseconds, `Z` (never the pod's local time)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build(
    kind: str,
    portal: Portal,
    contact_id: str,
    fields: dict[str, str],
    *,
    interaction_id: str | None = None,
    now: datetime | None = None,
) -> Interaction:
    hub_type = TYPES[kind]
    properties = {
        "portal_interactionid": interaction_id or str(uuid.uuid4()),
        "portal_contactid": contact_id,
        "portal_timestamp": timestamp(now),
        "portal_portalid": portal_id(portal),
        **{k: v for k, v in fields.items() if k in FIELDS[hub_type]},
    }
    return Interaction(kind, hub_type, properties)


def view_fields(kind: str, item_id: str, title: str) -> dict[str, str]:
    id_field, title_field = FIELDS[TYPES[kind]]
    return {id_field: item_id, title_field: title}


def search_string(q: str, mode: str) -> dict[str, str]:
    """What leaves for `portal_search` (spec searchStrings): the text, its SHA-256, or nothing."""
    if mode == "Omit":
        return {}
    if mode == "Hash":
        return {"searchstring": hashlib.sha256(q.encode("utf-8")).hexdigest()}
    return {"searchstring": q}


def for_sink(
    interaction: Interaction, wanted: tuple[str, ...], searches: str
) -> Interaction | None:
    """The interaction as one sink sends it: None if the sink does not take its kind, and
    the search string sent, hashed or omitted as that sink says."""
    if interaction.kind not in wanted:
        return None
    if interaction.type != "portal_search":
        return interaction
    properties = {k: v for k, v in interaction.properties.items() if k != "searchstring"}
    properties.update(search_string(interaction.properties.get("searchstring", ""), searches))
    return Interaction(interaction.kind, interaction.type, properties)


def schema_problems(body: Any) -> list[str]:
    """What is wrong with a hub request body (the stand-in hub and the tests use it)."""
    if not isinstance(body, dict) or set(body) != {"interactionType", "properties"}:
        return ["the body must be {interactionType, properties}"]
    hub_type, properties = body["interactionType"], body["properties"]
    if hub_type not in FIELDS:
        return [f"unknown interaction type {hub_type!r}"]
    if not isinstance(properties, dict):
        return ["properties must be an object"]
    problems = [f"{k} is missing" for k in COMMON if not isinstance(properties.get(k), str)]
    allowed = {*COMMON, *FIELDS[hub_type]}
    problems += [f"unexpected field {k}" for k in properties if k not in allowed]
    if hub_type != "portal_search":
        problems += [f"{k} is missing" for k in FIELDS[hub_type] if k not in properties]
    try:
        uuid.UUID(str(properties.get("portal_interactionid")))
        stamp = datetime.fromisoformat(str(properties.get("portal_timestamp")))
        if stamp.utcoffset() is None or stamp.utcoffset().total_seconds() != 0:  # type: ignore[union-attr]
            problems.append("portal_timestamp is not UTC")
    except ValueError:
        problems.append("portal_interactionid is not a UUID or portal_timestamp not ISO 8601")
    return problems
