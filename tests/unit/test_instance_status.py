"""PortalInstance status, decided in core/ (pure): usable or not, and how many portals link."""

from __future__ import annotations

import copy
import datetime
from pathlib import Path
from typing import Any

import yaml

from portico.api import model, validation
from portico.core.instance_status import decide_instance

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime.datetime(2026, 12, 1, 9, 0, tzinfo=datetime.UTC)
LATER = NOW + datetime.timedelta(hours=1)


def stored(**status: Any) -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / "examples" / "contoso-instance.yaml").read_text())
    raw["metadata"]["generation"] = 3
    if status:
        raw["status"] = status
    return raw


def parsed(obj: dict[str, Any]) -> model.PortalInstance:
    return model.parse_instance(validation.admit("PortalInstance", copy.deepcopy(obj))[0])


def test_usable_with_its_credentials() -> None:
    obj = stored()
    status = decide_instance(obj, parsed(obj), True, 4, NOW)
    assert status["observedGeneration"] == 3 and status["portalCount"] == 4
    (ready,) = status["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "True", "Available")
    assert ready["lastTransitionTime"] == "2026-12-01T09:00:00Z"


def test_missing_credentials_say_which_secret_to_create() -> None:
    obj = stored()
    instance = parsed(obj)
    (ready,) = decide_instance(obj, instance, False, 0, NOW)["conditions"]
    ns, secret = instance.credentials
    assert (ready["status"], ready["reason"]) == ("False", "CredentialsNotFound")
    assert f"{ns}/{secret} does not exist; create it" in ready["message"]


def test_transition_time_moves_only_when_the_condition_turns() -> None:
    obj = stored()
    first = decide_instance(obj, parsed(obj), True, 1, NOW)
    again = decide_instance(stored(**first), parsed(obj), True, 2, LATER)
    assert (
        again["conditions"][0]["lastTransitionTime"] == first["conditions"][0]["lastTransitionTime"]
    )
    turned = decide_instance(stored(**again), parsed(obj), False, 2, LATER)
    assert turned["conditions"][0]["lastTransitionTime"] == "2026-12-01T10:00:00Z"
