"""Cross-checks of a Portal against the objects it refers to (pure: objects in, problems out)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from portico.api.model import Portal, PortalInstance
from portico.core import features


@dataclass(frozen=True, order=True)
class Problem:
    """A named reason (CamelCase, as in conditions and Events) and what to do about it."""

    reason: str
    message: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels AND matchExpressions)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or ():
        key, op, values = expr["key"], expr["operator"], expr.get("values") or ()
        present = key in labels
        if (
            (op == "In" and (not present or labels[key] not in values))
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def check_instance_link(
    portal: Portal,
    instance: PortalInstance | None,
    namespace_labels: Mapping[str, str] | None,
) -> list[Problem]:
    """Problems that stop a portal from linking to its instance.

    `namespace_labels` None means the labels are not known (offline), so a
    selector cannot be checked and is given the benefit of the doubt.
    """
    if instance is None:
        return [
            Problem(
                "InstanceNotFound",
                f"PortalInstance {portal.instance} does not exist; create it or set "
                "spec.instanceRef.name to an existing instance",
            )
        ]
    problems = []
    if instance.allowed_from not in ("All", "Selector"):
        problems.append(
            Problem(
                "NamespaceNotAllowed",
                f"PortalInstance {instance.name} allows no namespace (its "
                "spec.allowedNamespaces is not set); its owner must set allowedNamespaces "
                "to {from: All} or to a selector matching namespace " + portal.namespace,
            )
        )
    elif (
        instance.allowed_from == "Selector"
        and namespace_labels is not None
        and not selector_matches(instance.selector, namespace_labels)
    ):
        problems.append(
            Problem(
                "NamespaceNotAllowed",
                f"PortalInstance {instance.name} does not allow portals from namespace "
                f"{portal.namespace}; label the namespace to match the instance's "
                "spec.allowedNamespaces.selector",
            )
        )
    missing = [lang for lang in portal.languages if lang not in instance.languages]
    if missing:
        problems.append(
            Problem(
                "LanguageNotInstalled",
                f"language {', '.join(missing)} is not installed on PortalInstance "
                f"{instance.name} (installed: {', '.join(instance.languages)}); install it "
                "there or choose an installed language",
            )
        )
    if portal.administrator not in instance.administrators:
        problems.append(
            Problem(
                "AdministratorNotAllowed",
                f"{portal.administrator} is not an administrator of PortalInstance "
                f"{instance.name}; add it to the instance's spec.administrators or choose "
                "one of them",
            )
        )
    return problems


def check_prerequisites(portal: Portal, instance: PortalInstance) -> list[Problem]:
    """A template add-on needs its solution on the instance; the portal retries when it appears."""
    extra = features.addon(portal.template)
    if extra is None or extra.prerequisite in instance.solutions:
        return []
    return [
        Problem(
            "PrerequisiteMissing",
            f"template {portal.template} needs solution {extra.prerequisite} installed on "
            f"PortalInstance {instance.name}; add it to the instance's spec.solutions and "
            "the portal continues by itself",
        )
    ]


def check_hostname(portal: Portal, base_domain: str) -> list[Problem]:
    """The custom host must lie outside the operator's own base domain."""
    if portal.custom_domain is None:
        return []
    host, base = portal.custom_domain.hostname, base_domain.lower().rstrip(".")
    if host == base or host.endswith("." + base):
        return [
            Problem(
                "HostnameNotAllowed",
                f"custom hostname {host} is under the base domain {base}; the default "
                f"address https://{portal.subdomain}.{base} already serves it, so choose "
                "a host in your own domain",
            )
        ]
    return []


def check_all(
    portal: Portal,
    instance: PortalInstance | None,
    namespace_labels: Mapping[str, str] | None,
    base_domain: str,
) -> list[Problem]:
    problems = check_hostname(portal, base_domain) + check_instance_link(
        portal, instance, namespace_labels
    )
    if instance is not None:
        problems += check_prerequisites(portal, instance)
    return problems
