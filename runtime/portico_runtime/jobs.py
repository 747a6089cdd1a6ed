"""`provision` and `import-translations`: real checks and real calls to the backing instance.

Each returns normally on success or raises JobFailed with one line a person can
act on; the command line writes that line to the termination log, where the
operator reads it for the InstallFailed reason.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from urllib.parse import quote, urlsplit

from portico_runtime import translations
from portico_runtime.client import Instance, InstanceError
from portico_runtime.config import ConfigError, Portal
from portico_runtime.content.kinds import offered
from portico_runtime.identity import checks as identity_checks

# The features this runtime implements; a configuration asking for another cannot be served.
FEATURES = frozenset(
    {
        "base", "workflows", "web-notifications", "identity", "web-forms", "feedback", "theming",
        "multi-language", "content-management", "knowledge-management", "case-management",
        "forums", "comments", "faceted-search", "profile-management",
        "forum-thread-subscriptions", "organization-sign-in", "ideas", "blogs",
        "project-service", "field-service", "partner-onboarding",
    }
)  # fmt: skip
REQUIRED_FEATURES = ("base", "identity", "multi-language")


class JobFailed(Exception):
    """The step failed; the message is safe to show (no secret values)."""


def check_config(portal: Portal) -> None:
    """The configuration is complete for what the template asks of the runtime."""
    problems: list[str] = []
    if portal.language not in portal.languages:
        problems.append(f"the default language {portal.language} is not in languages")
    missing = [f for f in REQUIRED_FEATURES if f not in portal.features]
    if missing:
        problems.append(f"features lack {', '.join(missing)}")
    unknown = sorted(set(portal.features) - FEATURES)
    if unknown:
        problems.append(f"this runtime does not implement the feature(s) {', '.join(unknown)}")
    if not portal.solutions or portal.solutions[0] != "PortalBase":
        problems.append("solutions must start with PortalBase")
    if urlsplit(portal.instance_url).scheme not in ("http", "https"):
        problems.append(f"instance.url {portal.instance_url!r} is not an http(s) URL")
    for name in portal.secret_files:
        path = Path(name)
        if not path.is_file() or path.stat().st_size == 0:
            problems.append(f"the secret file {name} is missing or empty")
    if portal.language not in translations.available():
        problems.append(_no_bundle(portal.language))
    if problems:
        raise JobFailed("configuration incomplete: " + "; ".join(problems))


def _no_bundle(language: str) -> str:
    shipped = ", ".join(translations.available())
    return f"no translation bundle for {language} (this runtime ships {shipped})"


def _instance(portal: Portal) -> Instance:
    try:
        return Instance(portal.instance_url, Path(portal.credentials_dir), portal.instance_insecure)
    except InstanceError as exc:
        raise JobFailed(str(exc)) from None


def _portal_path(portal: Portal) -> str:
    return f"/portico/v1/portals/{quote(portal.namespace, safe='')}/{quote(portal.name, safe='')}"


def provision(portal: Portal) -> str:
    """Install the portal's solution packages and sample data; returns a summary line."""
    check_config(portal)
    problems = identity_checks.check(portal)
    if problems:
        raise JobFailed("sign-in is not usable: " + "; ".join(problems))
    instance = _instance(portal)
    try:
        about = instance.call("GET", "/portico/v1/instance")
        offered = about.get("languages") if isinstance(about, dict) else None
        if isinstance(offered, list):
            absent = [lang for lang in portal.languages if lang not in offered]
            if absent:
                raise JobFailed(f"the instance has no language {', '.join(absent)} installed")
        body = {
            "template": portal.template,
            "language": portal.language,
            "solutions": list(portal.solutions),
        }
        result = instance.call("POST", f"{_portal_path(portal)}/solutions", body)
        installed = result.get("installed") if isinstance(result, dict) else None
        if not isinstance(installed, list) or set(installed) != set(portal.solutions):
            missing = sorted(set(portal.solutions) - set(installed or []))
            raise JobFailed(f"the instance did not install {', '.join(missing) or 'the solutions'}")
        samples = _sample_content(instance, portal)
    except InstanceError as exc:
        raise JobFailed(str(exc)) from None
    return f"installed {', '.join(portal.solutions)} with sample data in {portal.language}{samples}"


def _sample_content(instance: Instance, portal: Portal) -> str:
    """The template's sample articles, blog posts and forum threads in every portal language
    (the instance keeps one copy per id and language, so a second run changes nothing)."""
    kinds = [k.name for k in offered(portal.features)]
    if not kinds:
        return ""
    body = {"template": portal.template, "kinds": kinds, "languages": list(portal.languages)}
    result = instance.call("POST", f"{_portal_path(portal)}/content/samples", body)
    count = result.get("installed", 0) if isinstance(result, dict) else 0
    return (
        f"; sample content: {', '.join(kinds)} ({count} items in {len(portal.languages)} languages)"
    )


def import_translations(portal: Portal, languages: list[str]) -> str:
    """Send each language's bundle; the instance keeps strings people edited."""
    if not languages:
        raise JobFailed("import-translations needs at least one language")
    problems = [
        f"{lang} is not one of the portal's languages"
        for lang in languages
        if lang not in portal.languages
    ]
    problems += [_no_bundle(lang) for lang in languages if lang not in translations.available()]
    if problems:
        raise JobFailed("; ".join(problems))
    instance = _instance(portal)
    kept = 0
    for lang in languages:
        body = {"strings": translations.bundle(lang), "overwriteEdited": False}
        try:
            result = instance.call("PUT", f"{_portal_path(portal)}/translations/{lang}", body)
        except InstanceError as exc:
            raise JobFailed(f"{lang}: {exc}") from None
        kept += int(result.get("keptEdited", 0)) if isinstance(result, dict) else 0
    return f"translations imported: {' '.join(languages)} ({kept} edited strings kept)"


def termination_log() -> Path:
    return Path(os.environ.get("PORTICO_TERMINATION_LOG", "/dev/termination-log"))


def write_termination_message(message: str) -> None:
    """Kubernetes shows the file's content as the container's termination message (4 KiB max)."""
    # Outside a pod there may be no such file: stderr still carries the message.
    with contextlib.suppress(OSError):
        termination_log().write_text(message[:4000] + "\n", encoding="utf-8")


__all__ = ["ConfigError", "JobFailed", "import_translations", "provision"]
