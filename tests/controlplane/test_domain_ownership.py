"""The ownership TXT record against subdomain takeover, with the real DNS server on loopback,
the real API server and the real cert-manager: nothing is routed or certified for a custom
host until `_portico-challenge.<host>` holds the portal's token (domainOwnership Required,
the session operator's default), and everything is with the CNAME alone when Optional."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from portico.cli import main
from portico.domain import ownership
from portico_dev import ControlPlane
from tests.support import reliability as rel
from tests.support.certmanager import CertManager
from tests.support.certs import custom, ingress_hosts, tls_secret
from tests.support.certs import ownership as published
from tests.support.controlplane import BASE_DOMAIN, Cluster, wait_for
from tests.support.dnsserver import AuthoritativeDNS
from tests.support.portals import portal


def recheck(cluster: Cluster, namespace: str, name: str, token: str) -> dict[str, Any]:
    """`portico restart --recheck`: the operator looks DNS up now; returns the portal after."""
    cluster.plane.kubectl(
        "annotate",
        "portal",
        name,
        "-n",
        namespace,
        "--overwrite",
        f"portico.dev/reconcile-requested-at={token}",
    )
    return wait_for(
        f"the re-check {token}",
        lambda: (
            obj
            if (obj := cluster.portal(namespace, name))["status"].get("lastHandledReconcileAt")
            == token
            else None
        ),
    )


def domain_verified(cluster: Cluster, obj: dict[str, Any]) -> dict[str, Any]:
    return cluster.condition(obj, "DomainVerified")


def test_routing_and_certificate_wait_for_the_record(
    cluster: Cluster,
    namespace: str,
    instance: str,
    dns: AuthoritativeDNS,
    cert_manager: CertManager,
) -> None:
    zone, host = f"{namespace}.test", f"own.{namespace}.test"
    target = f"own-{namespace}.{BASE_DOMAIN}"
    cname = f"own CNAME {target}."
    dns.set_zone(zone, [cname])  # the CNAME is right from the start: only the TXT is missing

    def own(hostname: str) -> dict[str, Any]:
        tls = custom(hostname, issuerRef=cert_manager.issuer)
        return portal("own", namespace, instance, subdomain=f"own-{namespace}", customDomain=tls)

    cluster.apply(own(host))
    waiting = cluster.wait_phase(namespace, "own", "Configuring", "OwnershipUnverified")
    token = ownership.token(waiting["metadata"]["uid"], host)
    record = waiting["status"]["customDomain"]
    assert {k: record["ownership"][k] for k in ("name", "type", "value", "required", "state")} == {
        "name": f"_portico-challenge.{host}",
        "type": "TXT",
        "value": token,
        "required": True,
        "state": "Misconfigured",
    }
    assert record["state"] == "Verified" and record["chain"] == [target]
    assert "verifiedHostname" not in record
    message = domain_verified(cluster, waiting)["message"]
    assert message.startswith(
        f'Please add a TXT record _portico-challenge.{host} with the value "{token}"'
    )
    assert cluster.get("certificate", "own", namespace) is None, "no certificate before the TXT"
    assert host not in ingress_hosts(cluster, namespace, "own")

    # Another portal's token (a stale challenge, or a contender's): not ownership.
    stale = ownership.token(str(uuid.uuid4()), host)
    dns.set_zone(zone, [cname, ownership.record_line(host, stale)])
    wrong = recheck(cluster, namespace, "own", "wrong-token")
    assert domain_verified(cluster, wrong)["reason"] == "OwnershipUnverified"
    assert "not this portal's token" in domain_verified(cluster, wrong)["message"]
    conflicts = wrong["status"]["customDomain"]["conflicts"]
    assert any(stale in c and "stale challenge" in c for c in conflicts), conflicts
    assert cluster.get("certificate", "own", namespace) is None

    # The owner publishes the record the status names: verified untouched (the re-check
    # schedule finds it), then cert-manager is asked, then the host is routed.
    dns.set_zone(zone, [cname, ownership.record_line(host, token)])
    requested = wait_for(
        "the Certificate request", lambda: cluster.get("certificate", "own", namespace), 90
    )
    assert requested["spec"]["dnsNames"] == [host]
    ready = cluster.wait_phase(namespace, "own", "Ready", timeout=120)
    record = ready["status"]["customDomain"]
    assert record["ownership"]["state"] == "Verified" and record["ownership"]["verifiedAt"]
    assert record["verifiedHostname"] == host and "conflicts" not in record
    assert domain_verified(cluster, ready)["status"] == "True"
    assert host in ingress_hosts(cluster, namespace, "own")
    # `portico check-domain --portal` reads the token (and target) from the cluster.
    checked = CliRunner().invoke(
        main,
        [
            *("check-domain", host, "--portal", "own", "-n", namespace),
            *("--kubeconfig", str(cluster.plane.kubeconfig)),
            *("--nameserver", f"{dns.address}:{dns.port}"),
        ],
    )
    assert checked.exit_code == 0, checked.output
    assert f"_portico-challenge.{host}: Verified (OwnershipVerified)" in checked.output

    # DNS goes away: an inconclusive lookup never un-verifies the record.
    dns.stop()
    try:
        down = recheck(cluster, namespace, "own", "dns-down")
        assert domain_verified(cluster, down)["status"] == "True"
        assert down["status"]["customDomain"]["ownership"]["state"] == "Verified"
        assert host in ingress_hosts(cluster, namespace, "own")
    finally:
        dns.start()

    # A changed host starts unverified, with a token of its own: the old record proves
    # nothing for it, and nothing is routed or certified for it meanwhile.
    moved = f"shop.{zone}"
    dns.set_zone(zone, [cname, ownership.record_line(host, token), f"shop CNAME {target}."])
    cluster.apply(own(moved))
    obj = cluster.wait_phase(namespace, "own", "Configuring", "OwnershipUnverified")
    record = obj["status"]["customDomain"]
    assert record["hostname"] == moved and "verifiedHostname" not in record
    assert record["ownership"]["value"] == ownership.token(obj["metadata"]["uid"], moved) != token
    assert moved not in ingress_hosts(cluster, namespace, "own")
    certificate = cluster.get("certificate", "own", namespace)
    assert certificate is None or moved not in certificate["spec"]["dnsNames"]


def test_a_contender_cannot_present_the_owners_record(
    cluster: Cluster, namespace: str, other_namespace: str, instance: str, dns: AuthoritativeDNS
) -> None:
    """The takeover: the owner's CNAME and TXT stay in DNS after it is deleted, and the
    contender points the CNAME at itself too. Its own token differs: no route, no
    certificate (the reservation aside, which ends after claimGraceSeconds)."""
    zone, host = f"{namespace}.test", f"take.{namespace}.test"
    cluster.apply(tls_secret("pair", other_namespace, host))
    target = f"take-b-{namespace}.{BASE_DOMAIN}"
    owner_token = ownership.token(str(uuid.uuid4()), host)  # a deleted owner's record
    dns.set_zone(zone, [f"take CNAME {target}.", ownership.record_line(host, owner_token)])
    cluster.apply(
        portal(
            "take-b",
            other_namespace,
            instance,
            subdomain=f"take-b-{namespace}",
            customDomain=custom(host, secretRef={"name": "pair"}),
        )
    )
    waiting = cluster.wait_phase(other_namespace, "take-b", "Configuring", "OwnershipUnverified")
    assert published(cluster, other_namespace, "take-b")["value"] != owner_token
    assert "not this portal's token" in domain_verified(cluster, waiting)["message"]
    assert host not in ingress_hosts(cluster, other_namespace, "take-b")


def test_optional_routes_on_the_cname_and_still_shows_the_record(
    own_control_plane: ControlPlane, own_namespace: str, dns: AuthoritativeDNS, tmp_path: Path
) -> None:
    """domainOwnership Optional (an upgraded install): today's behaviour, with the record
    published so owners can add it before the platform team requires it."""
    plane, namespace = own_control_plane, own_namespace
    cluster = Cluster(plane)
    zone, host = f"{namespace}.test", f"www.{namespace}.test"
    target = f"opt-{namespace}.{BASE_DOMAIN}"
    dns.set_zone(zone, [f"www CNAME {target}."])
    op = rel.operator(
        plane,
        tmp_path,
        "portico-optional",
        **dns.operator_env(),
        PORTICO_DOMAIN_OWNERSHIP="Optional",
    )
    instance = rel.new_instance(cluster)
    op.start()
    try:
        cluster.apply(tls_secret("pair", namespace, host))
        cluster.apply(
            portal(
                "opt",
                namespace,
                instance,
                subdomain=f"opt-{namespace}",
                customDomain=custom(host, secretRef={"name": "pair"}),
            )
        )
        ready = cluster.wait_phase(namespace, "opt", "Ready", timeout=120)
        condition = domain_verified(cluster, ready)
        assert (condition["status"], condition["reason"]) == ("True", "CNAMEVerified")
        record = ready["status"]["customDomain"]
        assert record["ownership"]["required"] is False
        assert record["ownership"]["value"] == ownership.token(ready["metadata"]["uid"], host)
        assert record["ownership"]["state"] == "Misconfigured"
        assert record["verifiedHostname"] == host
        assert host in ingress_hosts(cluster, namespace, "opt")
    finally:
        op.stop()
