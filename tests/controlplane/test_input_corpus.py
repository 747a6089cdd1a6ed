"""The bad-input corpus (tests/support/badinput.py) through the real API server and operator,
in bulk.

Admission cases go to the API server in one server-side dry run; operator cases
are applied together with a healthy portal, which must reach Ready on time
while every bad one ends in its named reason with an actionable message — and
no traceback or secret value in status, Events or the operator log.

A broken PEM pair's message ("put the certificate chain as -----BEGIN CERTIFICATE-----
blocks") lands in the shared operator log; the other modules look there for PEM bodies,
never the marker alone, so the modules run in any order.
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

from portico.domain import ownership
from tests.support import badinput
from tests.support.badinput import Bad, Where, secret
from tests.support.certs import make_leaf, make_pfx
from tests.support.controlplane import BASE_DOMAIN, Cluster, Operator, wait_for
from tests.support.corpus import merge_patch
from tests.support.dnsserver import AuthoritativeDNS

PASSWORD = "bi-pfx-passw0rd"
HEALTHY_WITHIN = 90.0


def test_the_corpus_has_sixty_cases_with_unique_names() -> None:
    cases = badinput.corpus()
    assert len(cases) >= 60, len(cases)
    assert len({c.name for c in cases}) == len(cases)
    assert {c.layer for c in cases} == {"admission", "reference", "certificate", "dns", "runtime"}


def test_admission_rejects_each_naming_the_field(cluster: Cluster, namespace: str) -> None:
    docs, names = [], {}
    for bad in badinput.admission_cases():
        assert bad.case is not None
        obj = copy.deepcopy(bad.case.obj)
        name = obj["metadata"]["name"]
        if not bad.reason.startswith("metadata."):  # else the name itself is the mistake
            name = obj["metadata"]["name"] = f"bi-{bad.name}"[:63].rstrip("-")
        if bad.case.kind in ("Portal", "PortalInvitation"):  # the namespaced kinds
            obj["metadata"]["namespace"] = namespace
        docs.append(obj)
        names[name] = bad
    result = cluster.plane.kubectl(
        "create", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(docs), check=False
    )
    assert result.returncode != 0
    errors, unnamed = {}, []
    for line in result.stderr.splitlines():
        found = re.search(r'"([a-z0-9.-]+)" is invalid', line)
        if found:
            errors[found.group(1)] = line
        elif line.startswith("Error from server"):
            unnamed.append(line)  # e.g. strict decoding: "unknown field" names no object
    for name, bad in names.items():
        line = errors.get(name) or next((u for u in unnamed if bad.reason in u), "")
        assert line, f"{bad.name} was admitted:\n{result.stdout}\n{result.stderr}"
        assert bad.reason in line, f"{bad.name} does not name {bad.reason}: {line}"


# -- operator cases ---------------------------------------------------------------------


def _subdomain(name: str, namespace: str) -> str:
    return f"{name}-{namespace}"[:63].rstrip("-")


def _certificate_objects(bad: Bad, w: Where) -> list[dict[str, Any]]:
    name, host, ns = bad.name, w.host(bad.name), w.namespace
    if name == "pfx-secret-missing":
        return []
    if name == "tls-pair-garbage":
        return [secret(f"{name}-tls-in", ns, **{"tls.crt": "x", "tls.key": "y"})]
    password, data = PASSWORD, b""
    if name == "pfx-wrong-password":
        data, password = make_pfx(host, PASSWORD)[0], "not-it"
    elif name == "pfx-garbage":
        data = os.urandom(900)
    elif name == "pfx-other-host":
        data = make_pfx("other.example.org", PASSWORD)[0]
    elif name == "pfx-expired":
        data = make_pfx(host, PASSWORD, days=0)[0]
    elif name == "pfx-no-key":
        _, leaf, ca = make_leaf(host)
        encryption = BestAvailableEncryption(PASSWORD.encode())
        data = pkcs12.serialize_key_and_certificates(b"portal", None, leaf, [ca], encryption)
    if not data:  # pfx-key-missing: the Secret has the password only
        return [secret(f"{name}-pfx", ns, password=password)]
    return [secret(f"{name}-pfx", ns, password=password, **{"certificate.pfx": data})]


def _resolve(value: Any, bad: Bad, w: Where, healthy: str) -> Any:
    """The case's placeholders (@...) made concrete for this namespace."""
    if isinstance(value, dict):
        return {k: _resolve(v, bad, w, healthy) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, bad, w, healthy) for v in value]
    host = w.host(bad.name)
    return (
        {
            "@restricted": w.restricted,
            "@nocreds": w.nocreds,
            "@healthy": _subdomain(healthy, w.namespace),
            "@self": f"{bad.name}-s",
            "@base": f"{bad.name}.{BASE_DOMAIN}",
            "@pfx": {"hostname": host, "tls": {"pfxSecretRef": {"name": f"{bad.name}-pfx"}}},
            "@tls": {"hostname": host, "tls": {"secretRef": {"name": f"{bad.name}-tls-in"}}},
        }.get(value, value)
        if isinstance(value, str)
        else value
    )


def portal(name: str, w: Where, spec: dict[str, Any]) -> dict[str, Any]:
    base = {
        "displayName": f"Portal {name}",
        "subdomain": _subdomain(name, w.namespace),
        "instanceRef": {"name": w.instance},
        "language": "en-US",
        "administrator": "jay@contoso.com",
        "audience": "Customer",
        "template": "CustomerSelfService",
    }
    return {
        "apiVersion": "portico.dev/v1alpha1",
        "kind": "Portal",
        "metadata": {"name": name, "namespace": w.namespace},
        "spec": merge_patch(base, spec),
    }


def _records(w: Where, uids: dict[str, str] | None = None) -> list[str]:
    """The zone: each custom host's CNAME as its case asks and, once the portals exist
    (UIDS), the ownership TXT records their owners add."""
    records = ["elsewhere A 192.0.2.10"]
    for bad in badinput.OPERATOR:
        if "customDomain" not in bad.spec or bad.spec["customDomain"] not in ("@pfx", "@tls"):
            continue
        target = f"{_subdomain(bad.name, w.namespace)}.{BASE_DOMAIN}."
        records += {
            "target": [f"{bad.name} CNAME {target}"],
            "none": [],
            "elsewhere": [f"{bad.name} CNAME elsewhere.{w.zone}."],
            "address": [f"{bad.name} A 192.0.2.11"],
        }[bad.cname]
        uid = (uids or {}).get(bad.name)
        if bad.txt and uid:
            host = f"{bad.name}.{w.zone}"
            records.append(ownership.record_line(host, ownership.token(uid, host)))
    return records


def _uids(cluster: Cluster, namespace: str) -> dict[str, str]:
    found = cluster.items("portals", namespace)
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in found}


@pytest.fixture
def instances(cluster: Cluster) -> Iterator[tuple[str, str]]:
    """An instance open only to labelled namespaces, and one whose credentials are missing."""
    suffix = uuid.uuid4().hex[:6]
    restricted, nocreds = f"bi-restricted-{suffix}", f"bi-nocreds-{suffix}"
    spec = {
        "url": "https://crm.example.net",
        "credentialsSecretRef": {"namespace": "portico-system", "name": "bi-absent-credentials"},
        "languages": ["en-US"],
        "solutions": ["FieldService"],
        "administrators": ["jay@contoso.com"],
        "allowedNamespaces": {"from": "All"},
    }
    cluster.apply(
        {
            "apiVersion": "portico.dev/v1alpha1",
            "kind": "PortalInstance",
            "metadata": {"name": nocreds},
            "spec": spec,
        }
    )
    yield restricted, nocreds
    for name in (restricted, nocreds):
        cluster.plane.kubectl("delete", "portalinstance", name, "--wait=false", check=False)


def test_each_bad_input_ends_in_its_reason_and_blocks_no_one(
    cluster: Cluster,
    operator: Operator,
    namespace: str,
    instance: str,
    instances: tuple[str, str],
    dns: AuthoritativeDNS,
) -> None:
    restricted, nocreds = instances
    # A short zone: a certificate's CN holds 64 characters at most.
    w = Where(namespace, instance, restricted, nocreds, zone=f"bi{namespace[-6:]}.test")
    log_start = len(operator.log_text())
    # The restricted instance copies the healthy one but allows labelled namespaces only.
    healthy_instance = cluster.get("portalinstance", instance)
    assert healthy_instance is not None
    cluster.apply(
        {
            "apiVersion": "portico.dev/v1alpha1",
            "kind": "PortalInstance",
            "metadata": {"name": restricted},
            "spec": {
                **healthy_instance["spec"],
                "allowedNamespaces": {
                    "from": "Selector",
                    "selector": {"matchLabels": {"portals": "allowed"}},
                },
            },
        }
    )
    dns.set_zone(w.zone, _records(w))
    healthy = "healthy"
    cluster.apply(portal(healthy, w, {}))
    started = time.monotonic()
    objects: list[dict[str, Any]] = []
    portals = []
    for bad in badinput.OPERATOR:
        if bad.objects is not None:
            objects += bad.objects(w, bad.name)
        if bad.layer == "certificate":
            objects += _certificate_objects(bad, w)
        portals.append(portal(bad.name, w, _resolve(bad.spec, bad, w, healthy)))
    if objects:
        cluster.apply(*objects)
    cluster.apply(*portals)
    dns.set_zone(w.zone, _records(w, _uids(cluster, namespace)))

    cluster.wait_phase(namespace, healthy, "Ready", timeout=HEALTHY_WITHIN)
    healthy_seconds = time.monotonic() - started
    expected = {b.name: (b.phase, b.reason) for b in badinput.OPERATOR}

    def reached() -> dict[str, Any] | None:
        found = _by_name(cluster, namespace)
        pending = {
            n: (found.get(n, {}).get("phase"), _ready(found.get(n, {})).get("reason"))
            for n, want in expected.items()
            if (found.get(n, {}).get("phase"), _ready(found.get(n, {})).get("reason")) != want
        }
        return None if pending else found

    try:
        statuses = wait_for("every bad input in its reason", reached, timeout=120, every=1.0)
    except AssertionError:
        found = _by_name(cluster, namespace)
        wrong = {
            n: (found.get(n, {}).get("phase"), _ready(found.get(n, {})).get("reason"), want)
            for n, want in expected.items()
            if (found.get(n, {}).get("phase"), _ready(found.get(n, {})).get("reason")) != want
        }
        raise AssertionError(f"not in their reason (got, got, want): {wrong}") from None

    events = json.dumps(cluster.items("events", namespace))
    log = operator.log_text()[log_start:]
    for bad in badinput.OPERATOR:
        status = statuses[bad.name]
        messages = " | ".join(c.get("message", "") for c in status.get("conditions") or ())
        assert bad.fix in messages, f"{bad.name}: {bad.fix!r} not in {messages!r}"
        if bad.phase == "Failed":  # an Event per phase change: Configuring ones have none
            assert bad.reason in events, f"{bad.name}: no {bad.reason} Event"
    text = json.dumps(statuses) + events + log
    assert "Traceback" not in text, "a traceback in status, Events or the operator log"
    key_header = " ".join(("BEGIN", "PRIVATE", "KEY"))  # kept out of the repository's text
    for value in (*badinput.SECRET_VALUES, "instance-token", key_header):
        assert value not in text, "a secret value leaked"
    assert healthy_seconds < HEALTHY_WITHIN


def _ready(status: dict[str, Any]) -> dict[str, Any]:
    for c in status.get("conditions") or ():
        if c["type"] == "Ready":
            return dict(c)
    return {}


def _by_name(cluster: Cluster, namespace: str) -> dict[str, dict[str, Any]]:
    return {
        p["metadata"]["name"]: p.get("status") or {}
        for p in cluster.items("portals", namespace)
        if (p.get("status") or {}).get("observedGeneration") == p["metadata"]["generation"]
    }
