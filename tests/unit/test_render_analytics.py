"""portal.json's analytics section: both sinks, their privacy setting, the mounted files,
and the operator's queue and token settings; the runtime reads back what the operator wrote."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from portico.api import model, validation
from portico.core import entitlement, render
from portico.core.observed import Observed, SecretView
from portico.settings import Settings
from portico_runtime.config import parse
from portico_runtime.interactions import sinks

ROOT = Path(__file__).resolve().parents[2]


def rendered(patch: dict, settings: Settings | None = None) -> dict:
    raw = yaml.safe_load((ROOT / "examples" / "customer-customerselfservice.yaml").read_text())
    raw = copy.deepcopy(raw)
    raw["spec"]["analytics"].update(patch)
    defaulted, problems = validation.admit("Portal", raw)
    assert problems == []
    inst = yaml.safe_load((ROOT / "examples" / "contoso-instance.yaml").read_text())
    instance = model.parse_instance(validation.admit("PortalInstance", inst)[0])
    return render.runtime_config(model.parse_portal(defaulted), instance, settings or Settings())


def test_both_sinks_reach_portal_json_with_their_files_and_settings() -> None:
    config = rendered(
        {
            "cloudEvents": {
                "url": "https://events.contoso.example/portal",
                "headersSecretRef": {"name": "contoso-events", "key": "headers"},
                "searchStrings": "Omit",
            }
        },
        Settings(interactions_queue_size=500, interactions_token_seconds=120),
    )
    analytics = config["analytics"]
    assert analytics["queueSize"] == 500
    assert analytics["customerInsights"]["searchStrings"] == "Send"  # the CRD default
    assert analytics["customerInsights"]["tokenSeconds"] == 120
    assert analytics["cloudEvents"] == {
        "url": "https://events.contoso.example/portal",
        "headersFile": "/etc/portico/secrets/contoso-events/headers",
        "interactions": [
            "KnowledgeArticleViewed",
            "BlogPostViewed",
            "ForumThreadViewed",
            "SearchPerformed",
        ],
        "searchStrings": "Omit",
    }
    portal = parse(config)
    assert (
        "/etc/portico/secrets/contoso-events/headers" in portal.secret_files
    )  # provision checks it
    ci, ce = sinks.settings(portal)
    assert (ci.sink, ci.interactions, ci.search_strings) == (
        "customerInsights",
        ("KnowledgeArticleViewed", "SearchPerformed"),
        "Send",
    )
    assert (ce.sink, ce.search_strings, ce.source) == (
        "cloudEvents",
        "Omit",
        config["portal"]["url"],
    )
    assert sinks.queue_size(portal) == 500 and sinks.token_seconds(portal) == 120


def test_the_headers_secret_is_mounted_like_the_shared_key() -> None:
    raw = yaml.safe_load((ROOT / "examples" / "customer-customerselfservice.yaml").read_text())
    raw["spec"]["analytics"]["cloudEvents"] = {
        "url": "https://events.contoso.example/portal",
        "headersSecretRef": {"name": "contoso-events", "key": "headers"},
    }
    portal = model.parse_portal(validation.admit("Portal", raw)[0])
    assert [r.name for r in portal.secret_refs][:2] == ["contoso-insights", "contoso-events"]


def test_search_strings_is_checked_by_the_schema() -> None:
    raw = yaml.safe_load((ROOT / "examples" / "customer-customerselfservice.yaml").read_text())
    raw["spec"]["analytics"]["customerInsights"]["searchStrings"] = "Encrypt"
    _, problems = validation.admit("Portal", raw)
    assert problems


def _observed(secrets: dict[str, SecretView | None]) -> Observed:
    from tests.support.worlds import portal_obj, world

    obj = portal_obj(
        analytics={
            "cloudEvents": {
                "url": "https://events.contoso.example/portal",
                "headersSecretRef": {"name": "events", "key": "headers"},
            }
        }
    )
    return world(obj=obj, secrets=secrets)


def test_analytics_configured_names_the_cloudevents_sink_or_its_missing_secret() -> None:
    ok, _ = entitlement.mounted_secrets(
        _observed({"events": SecretView("events", "1", frozenset({"headers"}))})
    )
    assert [(c.type, c.status, c.reason) for c in ok] == [
        ("AnalyticsConfigured", "True", "Configured")
    ]
    assert "https://events.contoso.example/portal" in ok[0].message
    missing, _ = entitlement.mounted_secrets(_observed({"events": None}))
    assert [(c.status, c.reason) for c in missing] == [("False", "SecretNotFound")]
    no_key, _ = entitlement.mounted_secrets(
        _observed({"events": SecretView("events", "1", frozenset({"other"}))})
    )
    assert no_key[0].reason == "SecretKeyMissing" and "CloudEvents headers" in no_key[0].message
