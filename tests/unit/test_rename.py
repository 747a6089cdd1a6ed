"""Rename (spec.renamePolicy: Allow): the pure decisions (core/rename.py, decide), the
claims the index holds for a renamed portal, and the page server's 308 for its old host."""

from __future__ import annotations

import copy
import datetime
from typing import Any

from starlette.testclient import TestClient

from portico.api import model, validation
from portico.controller.index import Index
from portico.core import rename
from portico.core.decide import Plan, decide
from portico.core.observed import Observed
from portico_runtime.pages.app import create_app
from portico_runtime.pages.sites import Directory, site
from tests.support.plan import plan as run_plan
from tests.support.worlds import NOW, SETTINGS, P, portal_obj, world

BASE = SETTINGS.base_domain
GRACE = SETTINGS.rename_grace_seconds
READY = {"type": "Ready", "status": "True", "reason": "Ready", "message": "ok"}
TAKEN = {"type": "Ready", "status": "False", "reason": "SubdomainTaken", "message": "x"}


def _status(url_sub: str, ready: dict[str, str] = READY, **more: Any) -> dict[str, Any]:
    return {"phase": "Ready", "url": f"https://{url_sub}.{BASE}", "conditions": [ready], **more}


def _renamed(subdomain: str, status: dict[str, Any], **overrides: Any) -> Observed:
    obj = portal_obj(subdomain=subdomain, renamePolicy="Allow")
    obj["status"] = status
    defaulted, problems = validation.admit("Portal", copy.deepcopy(obj))
    assert problems == []
    fields = {"obj": obj, "portal": model.parse_portal(defaulted), **overrides}
    return world(**fields)


def _at(seconds: float) -> datetime.datetime:
    return NOW + datetime.timedelta(seconds=seconds)


def test_a_rename_lists_the_old_subdomain_until_its_release_and_comes_back_then() -> None:
    out = rename.decide("new", _status("old"), BASE, NOW, GRACE)
    assert out.subdomain == "new" and out.renamed_at == "2026-11-30T12:00:00Z"
    assert out.previous == (rename.Previous("old", "2026-12-07T12:00:00Z"),)
    assert out.release_in == GRACE + 1  # decide comes back at the release
    settled = {**_status("new"), "previousSubdomains": [p.status() for p in out.previous]}
    settled["renamedAt"] = out.renamed_at
    # Unchanged while it lasts (no write), then released: the list is empty.
    assert rename.decide("new", settled, BASE, _at(60), GRACE).previous == out.previous
    after = rename.decide("new", settled, BASE, _at(GRACE), GRACE)
    assert after.previous == () and after.release_in is None
    assert after.renamed_at == out.renamed_at  # its claim on "new" still counts from then


def test_only_a_subdomain_the_portal_held_is_kept_and_zero_grace_keeps_none() -> None:
    # A portal that never held its subdomain (SubdomainTaken) keeps nothing of it.
    assert rename.decide("new", _status("old", TAKEN), BASE, NOW, GRACE).previous == ()
    assert rename.decide("new", _status("old"), BASE, NOW, 0).previous == ()
    # A change of the base domain is not a rename.
    other = {**_status("old"), "url": "https://old.elsewhere.example"}
    assert not rename.moving("new", other, BASE)
    assert rename.decide("new", other, BASE, NOW, GRACE).previous == ()


def test_a_rename_back_takes_the_held_name_with_its_old_claim() -> None:
    held = [{"subdomain": "old", "releasesAt": "2026-12-07T12:00:00Z"}]
    status = _status("new", renamedAt="2026-11-30T11:30:00Z", previousSubdomains=held)
    out = rename.decide("old", status, BASE, NOW, GRACE)
    assert [p.subdomain for p in out.previous] == ["new"]
    assert out.renamed_at == ""  # the claim on "old" counts from its creation again


def test_the_index_holds_previous_subdomains_before_every_other_claim() -> None:
    obj = portal_obj(subdomain="new", renamePolicy="Allow")
    obj["status"] = _status("old")  # renamed: no plan has recorded it yet
    since = "2026-11-30T11:00:00Z"
    assert rename.held("new", obj["status"], BASE) == ("old",)
    assert rename.subdomain_since(obj, since, BASE) > "9999"  # the youngest claim
    index = Index()
    portal = model.parse_portal(validation.admit("Portal", copy.deepcopy(obj))[0])
    index.put(portal, since, rename.subdomain_since(obj, since, BASE), ("old",))
    squatter = model.parse_portal(
        validation.admit(
            "Portal",
            {**portal_obj(subdomain="old"), "metadata": {"name": "sq", "namespace": "other"}},
        )[0]
    )
    index.put(squatter, "2020-01-01T00:00:00Z")  # older than any claim: still loses "old"
    assert index.subdomain_owner("old").ref == f"team/{P}"  # type: ignore[union-attr]
    assert index.subdomain_claimants("old") == {("team", P), ("other", "sq")}
    # Once its status lists nothing, the name is the other portal's.
    index.put(portal, since)
    assert index.subdomain_owner("old").ref == "other/sq"  # type: ignore[union-attr]
    index.remove(("team", P))
    assert index.subdomain_claimants("new") == set()


def _decide(o: Observed) -> Plan:
    return decide(o, SETTINGS, NOW)


def test_decide_completes_a_rename_with_an_event_and_a_time_to_come_back() -> None:
    plan = _decide(_renamed("new", _status("old")))
    assert plan.status["url"] == f"https://new.{BASE}"
    assert plan.status["previousSubdomains"] == [
        {"subdomain": "old", "releasesAt": "2026-12-07T12:00:00Z"}
    ]
    assert plan.status["renamedAt"] == "2026-11-30T12:00:00Z"
    renamed = [e for e in plan.events if e.reason == "Renamed"]
    assert renamed and "redirects to it until 2026-12-07T12:00:00Z" in renamed[0].message
    assert plan.requeue_after is not None and plan.requeue_after <= GRACE + 1
    config = next(w.manifest for w in plan.writes if w.key == ("ConfigMap", f"{P}-config"))
    assert f'"url": "https://new.{BASE}"' in config["data"]["portal.json"]


def test_decide_a_rename_to_a_taken_subdomain_is_subdomain_taken_and_keeps_the_old() -> None:
    plan = _decide(_renamed("new", _status("old"), subdomain_owner="other/holder"))
    assert plan.phase == "Failed"
    ready = next(c for c in plan.status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "SubdomainTaken"
    assert "still holds its previous subdomain(s) old" in ready["message"]
    assert [p["subdomain"] for p in plan.status["previousSubdomains"]] == ["old"]
    assert not [e for e in plan.events if e.reason == "Renamed"]


def test_a_deprovisioned_portal_holds_no_previous_subdomain() -> None:
    held = [{"subdomain": "old", "releasesAt": "2026-12-07T12:00:00Z"}]
    obj = portal_obj(subdomain="new", state="Deprovisioned")
    plan = _decide(world(status=_status("new", previousSubdomains=held), obj=obj))
    assert "previousSubdomains" not in plan.status


def _page_site(status: dict[str, Any]) -> Any:
    obj = portal_obj(subdomain="new")
    obj["status"] = status
    return site(obj)


def test_the_page_server_redirects_an_old_host_with_path_and_query_until_release() -> None:
    held = [{"subdomain": "old", "releasesAt": "2999-01-01T00:00:00Z"}]
    directory = Directory()
    directory.replace_sites([_page_site(_status("new", previousSubdomains=held))])
    client = TestClient(create_app(directory))
    answer = client.get(
        "/kb/article?id=7&lang=en", headers={"Host": f"old.{BASE}"}, follow_redirects=False
    )
    assert answer.status_code == 308
    assert answer.headers["location"] == f"https://new.{BASE}/kb/article?id=7&lang=en"
    # Past its release time the old host is nobody's: the page server's 404.
    gone = [{"subdomain": "old", "releasesAt": "2000-01-01T00:00:00Z"}]
    directory.replace_sites([_page_site(_status("new", previousSubdomains=gone))])
    assert client.get("/", headers={"Host": f"old.{BASE}"}).status_code == 404


def test_the_page_server_gives_a_held_host_to_its_holder_and_none_while_blocked() -> None:
    held = [{"subdomain": "old", "releasesAt": "2999-01-01T00:00:00Z"}]
    renamed = _page_site(_status("new", previousSubdomains=held))
    squatter = portal_obj(subdomain="old")
    squatter["metadata"].update(name="sq", creationTimestamp="2000-01-01T00:00:00Z")
    squatter["status"] = _status("old")
    directory = Directory()
    directory.replace_sites([renamed, site(squatter)])
    assert directory.lookup(f"old.{BASE}").key == ("team", P)  # type: ignore[union-attr]
    # A blocked rename (SubdomainTaken) redirects nowhere: the new name is not its own.
    blocked = _page_site(_status("new", TAKEN, previousSubdomains=held))
    assert blocked.previous == () and blocked.hosts == ()


def test_portico_plan_understands_the_rename_policy(tmp_path: Any) -> None:
    import yaml

    from tests.support.worlds import INSTANCE

    instance = tmp_path / "instance.yaml"
    instance.write_text(yaml.safe_dump(INSTANCE))
    good = tmp_path / "portal.yaml"
    good.write_text(yaml.safe_dump(portal_obj(renamePolicy="Allow")))
    assert run_plan(str(instance), str(good)).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(portal_obj(renamePolicy="Always")))
    result = run_plan(str(instance), str(bad))
    assert result.returncode != 0 and "renamePolicy" in result.stdout + result.stderr
