"""The two pages a visitor can see, as escaped HTML (no template engine needed for two pages)."""

from __future__ import annotations

from html import escape

from portico_runtime.config import Portal
from portico_runtime.translations import text

# Inline, so a page needs nothing else; security.py allows exactly this style by its hash.
STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #1b1b1b; background: #f6f7f9; }
header { background: #24466b; color: #fff; padding: 2rem; }
main { padding: 2rem; max-width: 48rem; }
li { margin: .2rem 0; }
.admin { color: #555; font-size: .9rem; border-top: 1px solid #ccc; padding-top: 1rem; }
"""


def _document(language: str, title: str, body: str) -> str:
    return (
        f'<!doctype html>\n<html lang="{escape(language)}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _items(values: tuple[str, ...]) -> str:
    return "".join(f"<li>{escape(v)}</li>" for v in values)


def start_page(portal: Portal, language: str) -> str:
    """The portal's start page in LANGUAGE (one of the portal's languages)."""
    name = portal.display_name
    body = (
        f"<header>\n<h1>{escape(name)}</h1>\n"
        f"<p>{escape(text(language, 'welcome', name=name))} · "
        f"{escape(text(language, 'audiencePortal', audience=portal.audience))} · "
        f"{escape(portal.template)}</p>\n</header>\n<main>\n"
        f"<h2>{escape(text(language, 'languages'))}</h2>\n<ul>{_items(portal.languages)}</ul>\n"
        f"<h2>{escape(text(language, 'features'))}</h2>\n<ul>{_items(portal.features)}</ul>\n"
        f"<p>{escape(text(language, 'servedAt', url=portal.url))}</p>\n</main>"
    )
    return _document(language, name, body)


def setup_page(name: str, language: str) -> str:
    """The "Getting set up" page naming the portal."""
    return notice_page(name, language, "setup")


# Category (docs/runtime-contract.md, "Pages") → the title and the line a visitor reads.
NOTICES = {
    "setup": ("setupTitle", "setupBody"),
    "settings": ("failedTitle", "failedSettings"),
    "installation": ("failedTitle", "failedInstallation"),
    "certificate": ("failedTitle", "failedCertificate"),
    "unavailable": ("failedTitle", "failedUnavailable"),
    "expired": ("expiredTitle", "expiredBody"),
    "stopped": ("stoppedTitle", "stoppedBody"),
    "blocked": ("blockedTitle", "blockedBody"),
    "unknown": ("unknownTitle", "unknownBody"),
}


def notice_page(name: str, language: str, category: str) -> str:
    """A page that says only what the public may know: the portal's name, its state, and
    one generic line for the category; never a reason's details."""
    title_key, line_key = NOTICES.get(category, NOTICES["unavailable"])
    title = text(language, title_key)
    body = (
        f"<header>\n<h1>{escape(name)}</h1>\n<p>{escape(title)}</p>\n</header>\n<main>\n"
        f"<p>{escape(text(language, line_key, name=name))}</p>\n</main>"
    )
    return _document(language, f"{name} · {title}", body)


def maintenance_page(name: str, language: str, message: str) -> str:
    """The default maintenance page: the portal's name, the generic line and the owner's
    message (text, escaped like every value)."""
    title = text(language, "maintenanceTitle")
    extra = f"<p>{escape(message)}</p>\n" if message else ""
    body = (
        f"<header>\n<h1>{escape(name)}</h1>\n<p>{escape(title)}</p>\n</header>\n<main>\n"
        f"<p>{escape(text(language, 'maintenanceBody', name=name))}</p>\n{extra}</main>"
    )
    return _document(language, f"{name} · {title}", body)


def choose_language(accept: str, offered: tuple[str, ...], default: str) -> str:
    """The first language of an Accept-Language header the portal offers (q-values honoured)."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and q > 0:
            ranked.append((-q, i, tag.strip().lower()))
    by_lower = {lang.lower(): lang for lang in offered}
    for _, _, tag in sorted(ranked):
        if tag in by_lower:
            return by_lower[tag]
        # A bare "de" matches the first offered "de-*".
        for lang in offered:
            if lang.lower().split("-")[0] == tag:
                return lang
    return default
