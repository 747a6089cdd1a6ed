"""Server-rendered pages of sign-in: Jinja2 with autoescape, in the visitor's language.

The strings come from the identity catalogue (`identity/translations/<lang>.json`); a
language without one falls back to en-US, and so does a key missing in one.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jinja2
from starlette.requests import HTTPConnection
from starlette.responses import HTMLResponse

from portico_runtime import html
from portico_runtime.config import Portal
from portico_runtime.identity.csrf import csrf_token
from portico_runtime.visitor import Contact

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("portico_runtime.identity", "templates"),
    autoescape=True,  # every value is escaped, whatever the template
    undefined=jinja2.StrictUndefined,
    auto_reload=False,
)


@cache
def catalogue(language: str) -> dict[str, str]:
    files = resources.files(__package__).joinpath("translations")
    try:
        data: Any = json.loads(files.joinpath(f"{language}.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return {str(k): str(v) for k, v in (data.get("strings") or {}).items()}


def text(language: str, key: str, **values: Any) -> str:
    found = catalogue(language).get(key) or catalogue("en-US").get(key) or key
    return found.format(**values) if values else found


def language_of(request: HTTPConnection, portal: Portal) -> str:
    accept = request.headers.get("accept-language", "")
    return html.choose_language(accept, portal.languages, portal.language)


def render(
    request: HTTPConnection,
    portal: Portal,
    template: str,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    language = language_of(request, portal)
    contact = getattr(request.state, "contact", None)
    for optional in ("error", "error_values", "note"):
        context.setdefault(optional, None)
    page = _env.get_template(template).render(
        lang=language,
        t=lambda key, **v: text(language, key, **v),
        portal=portal,
        contact=contact if isinstance(contact, Contact) else None,
        csrf=csrf_token(request),
        **context,
    )
    headers = {"Content-Language": language, "Cache-Control": "no-store"}
    return HTMLResponse(page, status, headers=headers)


def message(
    request: HTTPConnection,
    portal: Portal,
    status: int,
    title: str,
    body: str,
    link: tuple[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    """A page that says what happened (TITLE, BODY: catalogue keys) and what to do next."""
    return render(
        request, portal, "message.html", status, title=title, body=body, link=link, values=values
    )


async def not_allowed(request: HTTPConnection, portal: Portal, contact: Contact) -> HTMLResponse:
    return message(
        request, portal, 403, "privateTitle", "privateNotAllowed", None, email=contact.email
    )
