"""The portal's session keys: made once, kept at no write, rotated on a token keeping the
previous key, and never in status or an Event (core/session_keys.py through decide())."""

from __future__ import annotations

import base64
import copy
import datetime
import json
from typing import Any

from portico.core import names, session_keys
from portico.core.decide import ROTATION_STATUS, Plan, decide
from portico.core.observed import Observed
from tests.support.worlds import NOW, SETTINGS, UID, P, minted, owned, portal_obj, world

KEY = ("Secret", names.instance_secret_name(P))
A, B, C = ("a" * 43, "b" * 43, "c" * 43)
TOKEN_EXPIRES = NOW + datetime.timedelta(days=1)


def held(*keys: str, handled: str = "") -> dict[str, Any]:
    text = "".join(f"{k}\n" for k in keys)
    annotations = {session_keys.HANDLED: handled} if handled else {}
    return {
        "metadata": {"name": KEY[1], "annotations": annotations},
        "data": {"keys": base64.b64encode(text.encode()).decode()},
    }


def keys_of(secret: dict[str, Any]) -> list[str]:
    return session_keys.held_keys(secret)


def test_the_first_key_is_the_fresh_one() -> None:
    out = session_keys.plan(None, "", A)
    assert keys_of({"data": out.data}) == [A]
    assert out.change == "created" and out.annotations == {}


def test_held_keys_are_kept_byte_for_byte_whatever_key_is_drawn() -> None:
    secret = held(A, B, handled="r1")
    out = session_keys.plan(secret, "r1", C)
    assert out.data == secret["data"] and out.change == ""
    assert out.annotations == {session_keys.HANDLED: "r1"} and out.handled == "r1"


def test_a_new_token_rotates_keeping_only_the_newest_previous_key() -> None:
    first = session_keys.plan(held(A, B, handled="r1"), "r2", C)
    assert keys_of({"data": first.data}) == [B, C]  # signs with C, still accepts B
    assert first.change == "rotated" and first.annotations == {session_keys.HANDLED: "r2"}


def test_a_rotation_asked_before_the_secret_existed_is_answered_by_the_first_key() -> None:
    out = session_keys.plan(None, "r1", A)
    assert keys_of({"data": out.data}) == [A] and out.handled == "r1"
    assert session_keys.plan(held(A, handled="r1"), "r1", B).change == ""


def test_unreadable_or_short_keys_are_replaced() -> None:
    broken = {"metadata": {}, "data": {"keys": "not base64!"}}
    assert keys_of({"data": session_keys.plan(broken, "", A).data}) == [A]
    short = held("too-short")
    assert keys_of({"data": session_keys.plan(short, "", A).data}) == [A]


def test_offline_draws_no_key() -> None:
    assert session_keys.plan(None, "", "").data == {}


def annotated(token: str) -> dict[str, Any]:
    obj = portal_obj()
    obj["metadata"].setdefault("annotations", {})[names.ROTATE_SESSION_KEYS] = token
    return obj


def after(o: Observed, plan: Plan, **overrides: Any) -> Observed:
    """The next reconcile's world: the plan's writes applied (a token minted when the plan
    asked for one), a new key drawn."""
    written = minted(plan, "t-1", TOKEN_EXPIRES) if plan.mint_token else owned(plan)
    children = {**{k: copy.deepcopy(dict(v)) for k, v in o.children.items()}, **written}
    obj = copy.deepcopy(dict(overrides.pop("obj", o.obj)))
    obj["status"] = plan.status
    return world(obj=obj, status=plan.status, children=children, **overrides)


def test_decide_makes_an_owned_secret_once_and_rewrites_nothing_after() -> None:
    o = world()
    plan = decide(o, SETTINGS, NOW)
    secret = owned(plan)[KEY]
    assert keys_of(secret) == [o.session_key]
    owner = secret["metadata"]["ownerReferences"][0]
    assert owner["uid"] == UID and owner["controller"] is True
    assert secret["metadata"]["labels"][names.PORTAL_LABEL] == P
    # Mounted where portal.json says the keys file is.
    config = json.loads(owned(plan)[("ConfigMap", names.config_name(P))]["data"]["portal.json"])
    pod = owned(plan)[("Deployment", P)]["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == KEY[1])
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"])
    assert config["sessions"]["keysFile"] == f"{mount['mountPath']}/keys"
    # Every later reconcile draws another key and writes nothing of it.
    o2 = after(o, plan)
    assert o2.session_key != o.session_key
    assert KEY not in owned(decide(o2, SETTINGS, NOW))


def test_decide_rotates_once_per_token_and_says_so_without_the_key() -> None:
    o = world()
    o = after(o, decide(o, SETTINGS, NOW))
    first = keys_of(dict(o.children[KEY]))
    asked = world(obj=annotated("2026-12-06"), status=dict(o.status), children=o.children)
    plan = decide(asked, SETTINGS, NOW)
    secret = owned(plan)[KEY]
    assert keys_of(secret) == [*first, asked.session_key]
    assert secret["metadata"]["annotations"][session_keys.HANDLED] == "2026-12-06"
    assert plan.status[ROTATION_STATUS] == "2026-12-06"
    rotated = [e for e in plan.events if e.reason == "SessionKeysRotated"]
    assert len(rotated) == 1 and "2026-12-06" in rotated[0].message
    said = json.dumps(plan.status) + "".join(e.message for e in plan.events)
    for key in (*first, asked.session_key):
        assert key not in said
    # The same token again (the next reconcile, or an operator restart): nothing more.
    again = after(asked, plan, obj=annotated("2026-12-06"))
    replan = decide(again, SETTINGS, NOW)
    assert KEY not in owned(replan) and not replan.events
    assert replan.status[ROTATION_STATUS] == "2026-12-06"


def test_a_status_lost_after_the_rotation_does_not_rotate_again() -> None:
    o = world()
    o = after(o, decide(o, SETTINGS, NOW))
    asked = world(obj=annotated("r1"), status=dict(o.status), children=o.children)
    plan = decide(asked, SETTINGS, NOW)
    # The Secret was written, the status patch was not: the Secret's stamp decides.
    children = {**dict(asked.children), **owned(plan)}
    lost = world(obj=annotated("r1"), status=dict(o.status), children=children)
    replan = decide(lost, SETTINGS, NOW)
    assert KEY not in owned(replan)
    assert replan.status[ROTATION_STATUS] == "r1"


def test_a_withdrawn_portal_keeps_its_session_keys_and_loses_its_token() -> None:
    o = world()
    o = after(o, decide(o, SETTINGS, NOW))
    first = keys_of(dict(o.children[KEY]))
    gone = world(instance=None, status=dict(o.status), children=o.children)
    plan = decide(gone, SETTINGS, NOW)
    assert KEY not in plan.deletes
    secret = owned(plan)[KEY]
    assert set(secret["data"]) == {"keys"} and keys_of(secret) == first


def test_an_upgrade_carries_the_keys_of_the_old_session_secret_over_once() -> None:
    """Releases before one Secret per portal kept the keys in `<portal>-session`: they
    move into `<portal>-instance` (no one is signed out) and the old Secret is pruned."""
    o = world()
    plan = decide(o, SETTINGS, NOW)
    legacy = ("Secret", names.legacy_session_secret_name(P))
    old = held(A, B, handled="r1")
    old["metadata"].update({"name": legacy[1], "uid": "u-old"})
    upgraded = world(children={legacy: old}, status=dict(plan.status))
    plan = decide(upgraded, SETTINGS, NOW)
    assert keys_of(owned(plan)[KEY]) == [A, B] and legacy in plan.deletes
    assert owned(plan)[KEY]["metadata"]["annotations"][session_keys.HANDLED] == "r1"


def test_no_key_in_the_repr_of_what_decide_reads_or_returns() -> None:
    o = world()
    keys = session_keys.plan(None, "", o.session_key)
    assert o.session_key not in repr(o)
    assert o.session_key not in repr(keys) and keys.data["keys"] not in repr(keys)
