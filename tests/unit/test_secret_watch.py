"""Secrets are watched by label; a referenced Secret the watch cannot see is looked at by name,
metadata only, once per change of the portal (issue 19, part 9).

The operator must not hold every Secret of a namespace: the watch and the initial list select
`portico.dev/secret-for` on the server. A Secret a portal references but nobody labelled is
missing from that view; the portal then says so by name (SecretNotLabelled) after one
metadata-only read, and an unchanged portal costs no further read.
"""

from __future__ import annotations

import base64
import copy
import datetime
from typing import Any

import kopf
import pytest

from portico.api import crds, validation
from portico.api.model import parse_portal
from portico.controller import handlers
from portico.controller.operator import Operator
from portico.core import custom_domain, decide, entitlement, names, render
from portico.core.observed import SecretView
from portico.core.reasons import Failure
from portico.settings import Settings

NOW = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC)
SETTINGS = Settings(instance_credentials_namespaces=("portico-system",))


def secret(name: str, labelled: bool, version: str = "5") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "team", "resourceVersion": version}
    if labelled:
        meta["labels"] = {names.SECRET_LABEL: "web"}
    return {"metadata": meta, "data": {"sharedKey": base64.b64encode(b"k3y").decode()}}


class Api:
    """What the API server holds besides the store; counts every read by kind."""

    def __init__(self, secrets: dict[str, dict[str, Any]]) -> None:
        self.secrets = secrets
        self.reads: list[tuple[str, str, str]] = []  # (how, kind, name)
        self.listed: list[tuple[str, str | None, str | None]] = []

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        self.reads.append(("get", kind, name))
        return copy.deepcopy(self.secrets.get(name)) if kind == "Secret" else None

    def get_metadata(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        self.reads.append(("metadata", kind, name))
        found = self.secrets.get(name) if kind == "Secret" else None
        return copy.deepcopy(found["metadata"]) if found else None

    def each(self, kind: str, namespace: str | None = None, labels: str | None = None) -> Any:
        self.listed.append((kind, namespace, labels))
        return iter(())

    def served(self, kind: str) -> bool:
        return True


def portal(generation: int = 1, **notes: str) -> dict[str, Any]:
    return {
        "apiVersion": "portico.dev/v1alpha1",
        "kind": "Portal",
        "metadata": {
            "name": "web",
            "namespace": "team",
            "uid": "uid-web",
            "generation": generation,
            "resourceVersion": str(10 + generation + len(notes)),
            "annotations": notes,
        },
        "spec": {
            "displayName": "Web",
            "subdomain": "web",
            "instanceRef": {"name": "crm"},
            "language": "en-US",
            "administrator": "jay@contoso.com",
            "audience": "Customer",
            "template": "Community",
            "analytics": {
                "customerInsights": {
                    "hubUri": "https://hub.example.net",
                    "policyName": "writer",
                    "sharedKeySecretRef": {"name": "insights", "key": "sharedKey"},
                }
            },
        },
    }


def world(api: Api) -> Operator:
    op = Operator.build(SETTINGS, api)  # type: ignore[arg-type]
    op.instance_event(
        "ADDED",
        {
            "metadata": {"name": "crm", "resourceVersion": "1"},
            "spec": {
                "url": "https://crm.example.net",
                "credentialsSecretRef": {"namespace": "portico-system", "name": "crm-creds"},
                "languages": ["en-US"],
                "administrators": ["jay@contoso.com"],
                "allowedNamespaces": {"from": "All"},
            },
        },
    )
    op.namespace_event("ADDED", {"metadata": {"name": "team", "labels": {}}})
    op.secret_event(
        "ADDED",
        {
            "metadata": {
                "name": "crm-creds",
                "namespace": "portico-system",
                "resourceVersion": "1",
                "labels": {names.SECRET_LABEL: "crm"},
            },
            "data": {"token": "c2VjcmV0"},
        },
    )
    op.portal_event("ADDED", portal())
    return op


def insights(op: Operator) -> SecretView | None:
    observed = op.observer.observe("team", "web", NOW)
    assert observed is not None
    return observed.secrets["insights"]


def analytics_reason(op: Operator) -> tuple[str, str]:
    observed = op.observer.observe("team", "web", NOW)
    assert observed is not None
    (condition,), _ = entitlement.mounted_secrets(observed)
    return condition.reason, condition.message


def test_an_unlabelled_secret_is_named_and_its_data_never_read() -> None:
    api = Api({"insights": secret("insights", labelled=False)})
    op = world(api)
    view = insights(op)
    assert view is not None and not view.labelled
    assert view.data == {} and view.keys == frozenset()
    assert api.reads == [("metadata", "Secret", "insights")], "metadata only, never the data"
    reason, message = analytics_reason(op)
    assert reason == Failure.SECRET_NOT_LABELLED
    assert f"kubectl -n team label secret insights {names.SECRET_LABEL}=web" in message
    # And the whole decision fails with that reason (phase Failed, a person must act).
    observed = op.observer.observe("team", "web", NOW)
    assert observed is not None
    plan = decide.decide(observed, SETTINGS, NOW)
    reasons = {c["reason"] for c in plan.status["conditions"]}
    assert Failure.SECRET_NOT_LABELLED in reasons, reasons


def test_an_unchanged_portal_reads_an_unlabelled_secret_once() -> None:
    api = Api({"insights": secret("insights", labelled=False)})
    op = world(api)
    for _ in range(5):  # resyncs of an unchanged portal
        insights(op)
    assert api.reads == [("metadata", "Secret", "insights")]


@pytest.mark.parametrize(
    "change",
    [
        {"generation": 2},
        {names.RECHECK: "2026-12-06T12:00:00Z"},
        {names.RESTART: "1"},
    ],
    ids=["spec edit", "re-check annotation", "restart annotation"],
)
def test_a_change_of_the_portal_looks_again(change: dict[str, Any]) -> None:
    api = Api({})  # missing at first
    op = world(api)
    assert insights(op) is None
    assert analytics_reason(op)[0] == Failure.SECRET_NOT_FOUND
    api.secrets["insights"] = secret("insights", labelled=False)
    assert insights(op) is None, "no new read without a change"
    generation = int(change.pop("generation", 1))
    op.portal_event("MODIFIED", portal(generation, **change))
    view = insights(op)
    assert view is not None and not view.labelled
    assert [r[0] for r in api.reads] == ["metadata", "metadata"]


def test_missing_secret_message_asks_for_the_label() -> None:
    op = world(Api({}))
    reason, message = analytics_reason(op)
    assert reason == Failure.SECRET_NOT_FOUND
    assert f"label {names.SECRET_LABEL}=web" in message


def test_labelling_it_brings_it_through_the_watch_and_wakes_the_portal() -> None:
    api = Api({"insights": secret("insights", labelled=False)})
    op = world(api)
    assert analytics_reason(op)[0] == Failure.SECRET_NOT_LABELLED
    op.queue.forget(("Portal", "team", "web"))
    assert ("Portal", "team", "web") not in op.queue
    op.secret_event("MODIFIED", secret("insights", labelled=True, version="6"))
    assert ("Portal", "team", "web") in op.queue
    view = insights(op)
    assert view is not None and view.labelled and view.data
    assert analytics_reason(op)[0] == "Configured"
    assert api.reads == [("metadata", "Secret", "insights")], "the watch brought the data"


def test_a_labelled_fleet_costs_no_read() -> None:
    api = Api({})
    op = world(api)
    op.secret_event("ADDED", secret("insights", labelled=True))
    for _ in range(3):
        view = insights(op)
        assert view is not None and view.labelled
    assert api.reads == []


def test_priming_lists_only_labelled_secrets() -> None:
    api = Api({})
    op = Operator.build(Settings(watch_namespaces=("team-a", "team-b")), api)  # type: ignore[arg-type]
    op._prime(["Secret", "ConfigMap"])
    secrets = [(ns, sel) for kind, ns, sel in api.listed if kind == "Secret"]
    assert secrets == [("team-a", names.SECRET_SELECTOR), ("team-b", names.SECRET_SELECTOR)]
    # Only the watched namespaces are listed, never the whole cluster's namespaced kinds.
    namespaced = {ns for kind, ns, _ in api.listed if kind not in ("PortalInstance", "Namespace")}
    assert namespaced == {"team-a", "team-b"}


@pytest.mark.asyncio
async def test_the_secret_watch_selects_the_label_on_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Started:
        settings = Settings()
        kube = None
        index = type("I", (), {"entries": {}})()

        def base_domain_refusal(self) -> str:
            return ""  # no other release holds the base domain

        async def prime(self, kinds: list[str]) -> None:
            pass

        def start(self) -> None:
            pass

    monkeypatch.setattr(handlers, "OPERATOR", Started())
    monkeypatch.setattr(handlers, "serve_metrics", lambda *a, **k: None)
    settings = kopf.OperatorSettings()
    await handlers.startup(settings=settings)
    selectors = settings.watching.label_selectors

    def selected(group: str, plural: str) -> list[str]:
        resource = kopf.Resource(group, "v1", plural)
        return list(selectors.collect(resource))

    assert selected("", "secrets") == [names.SECRET_SELECTOR]
    assert selected("apps", "deployments") == [names.MANAGED_SELECTOR]


def test_portico_labels_its_own_secrets() -> None:
    body = portal()
    body["spec"]["customDomain"] = {
        "hostname": "www.contoso.test",
        "tls": {"issuerRef": {"name": "ca", "kind": "ClusterIssuer"}},
    }
    schema = crds.schema_for("Portal")
    parsed = parse_portal(validation.apply_defaults(schema, body))
    facts = render.Facts(
        instance_credentials={"token": "dA=="},
        tls_data={"tls.crt": "Yw==", "tls.key": "aw=="},
        custom_tls_secret="web-tls",
        issue_certificate=True,
        custom_host_ready=True,
    )
    made = render.children(parsed, None, Settings(cert_manager=True), facts)
    secrets = [m for m in made if m["kind"] == "Secret"]
    assert len(secrets) == 2
    for child in secrets:
        assert child["metadata"]["labels"][names.SECRET_LABEL] == "web", child["metadata"]
    (certificate,) = [m for m in made if m["kind"] == "Certificate"]
    assert certificate["spec"]["secretTemplate"]["labels"] == {names.SECRET_LABEL: "web"}
    link = names.invitation_labels("welcome", "web")
    assert link[names.SECRET_LABEL] == "welcome"


def test_certificate_secrets_unlabelled_are_named() -> None:
    for tls, name in (
        ({"pfxSecretRef": {"name": "site-pfx"}}, "site-pfx"),
        ({"secretRef": {"name": "site-pair"}}, "site-pair"),
    ):
        body = portal()
        body["spec"]["customDomain"] = {"hostname": "www.contoso.test", "tls": tls}
        parsed = parse_portal(validation.apply_defaults(crds.schema_for("Portal"), body))
        view = SecretView(name, "3", frozenset(), labelled=False)

        def never(*_: Any) -> Any:
            raise AssertionError("an unlabelled Secret is never converted")

        outcome = custom_domain.certificate(parsed, {name: view}, None, never)
        assert outcome.waiting is not None
        assert outcome.waiting.reason == Failure.SECRET_NOT_LABELLED
        assert name in outcome.waiting.message
        missing = custom_domain.certificate(parsed, {name: None}, None, never)
        assert missing.waiting is not None and missing.waiting.reason == Failure.SECRET_NOT_FOUND
        assert names.SECRET_LABEL in missing.waiting.message


def credentials_world(api: Api, watch: tuple[str, ...]) -> Operator:
    """The instance's credentials are not brought by the watch: namespaced mode (their
    namespace is not watched) or no label."""
    op = Operator.build(  # type: ignore[arg-type]
        Settings(instance_credentials_namespaces=("portico-system",), watch_namespaces=watch),
        api,
    )
    op.instance_event("ADDED", instance_body(generation=1))
    op.namespace_event("ADDED", {"metadata": {"name": "team", "labels": {}}})
    op.portal_event("ADDED", portal())
    op.secret_event("ADDED", secret("insights", labelled=True))
    return op


def instance_body(generation: int) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "crm",
            "uid": "uid-crm",
            "generation": generation,
            "resourceVersion": str(generation),
        },
        "spec": {
            "url": "https://crm.example.net",
            "credentialsSecretRef": {"namespace": "portico-system", "name": "crm-creds"},
            "languages": ["en-US"],
            "administrators": ["jay@contoso.com"],
            "allowedNamespaces": {"from": "All"},
            "solutions": [] if generation == 1 else ["FieldService"],
        },
    }


def credentials_secret(labelled: bool, version: str) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": "crm-creds",
        "namespace": "portico-system",
        "resourceVersion": version,
    }
    if labelled:
        meta["labels"] = {names.SECRET_LABEL: "crm"}
    return {"metadata": meta, "data": {"token": "c2VjcmV0"}}


@pytest.mark.parametrize(
    ("watch", "labelled"),
    [(("team",), True), (("team",), False), ((), False)],
    ids=["namespaced mode", "namespaced mode, unlabelled", "cluster-wide, unlabelled"],
)
def test_credentials_the_watch_cannot_bring_are_read_once_per_instance_change(
    watch: tuple[str, ...], labelled: bool
) -> None:
    api = Api({})
    op = credentials_world(api, watch)
    creds = {"crm-creds": credentials_secret(labelled, "1")}
    api.secrets = creds  # the Api answers Secret reads by name from here
    for _ in range(3):  # resyncs of an unchanged fleet
        observed = op.observer.observe("team", "web", NOW)
        assert observed is not None and observed.credentials is not None
        assert observed.credentials.resource_version == "1"
    assert api.reads == [("get", "Secret", "crm-creds")]
    creds["crm-creds"] = credentials_secret(labelled, "2")  # rotated where no watch sees
    op.instance_event("MODIFIED", instance_body(generation=2))
    observed = op.observer.observe("team", "web", NOW)
    assert observed is not None and observed.credentials is not None
    assert observed.credentials.resource_version == "2", "an instance change looks again"
    assert api.reads == [("get", "Secret", "crm-creds")] * 2


def test_two_portals_naming_one_unlabelled_secret_cost_no_read_at_rest() -> None:
    api = Api({"insights": secret("insights", labelled=False)})
    op = world(api)
    other = portal()
    other["metadata"].update(name="shop", uid="uid-shop", generation=7)
    other["spec"]["subdomain"] = "shop"
    op.portal_event("ADDED", other)
    for _ in range(3):  # resyncs, in turn
        for name in ("web", "shop"):
            observed = op.observer.observe("team", name, NOW)
            assert observed is not None and observed.secrets["insights"] is not None
    assert api.reads == [("metadata", "Secret", "insights")] * 2
