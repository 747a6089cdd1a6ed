"""What each template brings: runtime features and the solution packages provisioning installs."""

from __future__ import annotations

from dataclasses import dataclass

# Every template has these.
COMMON = (
    "base",
    "workflows",
    "web-notifications",
    "identity",
    "web-forms",
    "feedback",
    "theming",
    "multi-language",
)

SELF_SERVICE = (
    "content-management",
    "knowledge-management",
    "case-management",
    "forums",
    "comments",
    "faceted-search",
    "profile-management",
    "forum-thread-subscriptions",
)

PARTNER = ("knowledge-management", "project-service", "field-service", "partner-onboarding")

_TEMPLATE_FEATURES: dict[str, tuple[str, ...]] = {
    "CustomerSelfService": SELF_SERVICE,
    "EmployeeSelfService": (*SELF_SERVICE, "organization-sign-in"),
    "Community": (
        "content-management",
        "knowledge-management",
        "case-management",
        "forums",
        "comments",
        "ideas",
        "blogs",
    ),
    "Partner": PARTNER,
    "PartnerProjectService": PARTNER,
    "PartnerFieldService": PARTNER,
    "Custom": (),
}


@dataclass(frozen=True)
class Addon:
    """A solution package that needs a solution installed on the instance first."""

    package: str
    prerequisite: str


_ADDONS = {
    "PartnerProjectService": Addon("PartnerProjectService", "ProjectService"),
    "PartnerFieldService": Addon("PartnerFieldService", "FieldService"),
}

# Templates that install the Partner base package before their add-on.
_BASE_PACKAGE = {"PartnerProjectService": "Partner", "PartnerFieldService": "Partner"}


def features(template: str) -> list[str]:
    """Sorted, so the runtime configuration (and its checksum) is stable."""
    return sorted({*COMMON, *_TEMPLATE_FEATURES[template]})


def addon(template: str) -> Addon | None:
    return _ADDONS.get(template)


def solutions(template: str) -> list[str]:
    """Packages in install order: the portal base, the template's own, then its add-on."""
    packages = ["PortalBase", _BASE_PACKAGE.get(template, template)]
    if extra := addon(template):
        packages.append(extra.package)
    return packages
