"""Whose base domain is it? (pure: judge the claim the operator reads at start)

Two releases with one base domain would route, certify and page the same hosts, and
each release's host policy would refuse the other's operator. The chart's host policy
(`portico-hosts.<baseDomain>`, cluster-scoped) is the base domain's claim: the API
server keeps its name unique, and its annotation names the release that holds it.
The operator starts only when the claim is its own release's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RELEASE_ANNOTATION = "portico.dev/release"


def refusal(
    policy: Mapping[str, Any] | None, policy_name: str, release: str, base_domain: str
) -> str | None:
    """Why this release must not start, or None when the claim is its own."""
    if policy is None:
        return (
            f"the host policy {policy_name} (the claim on base domain {base_domain}) does "
            f"not exist: install or upgrade the chart's release {release} so that it is "
            "created, or set hostPolicy.enabled=false"
        )
    annotations = (policy.get("metadata") or {}).get("annotations") or {}
    holder = str(annotations.get(RELEASE_ANNOTATION) or "")
    if holder == release:
        return None
    held_by = f"release {holder}" if holder else "an object not made by a Portico release"
    return (
        f"base domain {base_domain} is held by {held_by} (ValidatingAdmissionPolicy "
        f"{policy_name}); two Portico releases must not share a base domain: give release "
        f"{release} another baseDomain, or uninstall the other release"
    )
