"""Security headers on every response (the outermost middleware of the runtime and the
page server): a restrictive Content-Security-Policy that forbids framing, nosniff, a
Referrer-Policy, and Strict-Transport-Security on requests that arrived over HTTPS.

A header the application already set is left as it is (a feature may need a wider
policy for one response; the page server passes a portal's own headers through).
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portico_runtime import html


def inline_styles() -> list[str]:
    """Portico's own inline styles: the bare pages' (html.py) and each feature's template
    <style> blocks (plain CSS, rendered as written: no template syntax inside)."""
    styles = [html.STYLE]
    for template in sorted(Path(__file__).parent.glob("*/templates/*.html")):
        styles += re.findall(r"<style>(.*?)</style>", template.read_text(), re.S)
    return styles


def _style_hashes() -> str:
    digests = (hashlib.sha256(style.encode()).digest() for style in inline_styles())
    return " ".join(sorted({f"'sha256-{base64.b64encode(d).decode()}'" for d in digests}))


# Nothing runs but what the page is: no scripts, styles only Portico's own (by hash or
# from the same origin), forms post only to the portal, and no page may frame it.
CSP = (
    "default-src 'none'; "
    f"style-src 'self' {_style_hashes()}; "
    "img-src 'self' data:; "
    "form-action 'self'; "
    "base-uri 'none'; "
    "frame-ancestors 'none'"
)
HSTS = "max-age=31536000"
_HSTS = ((b"strict-transport-security", HSTS.encode()),)
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


def over_https(scope: Scope) -> bool:
    """HTTPS to the server itself, or to the ingress in front of it (which terminates TLS
    and says so in X-Forwarded-Proto, as Traefik and ingress-nginx do)."""
    if scope.get("scheme") == "https":
        return True
    for name, value in scope.get("headers") or ():
        if name == b"x-forwarded-proto":
            return bool(value.split(b",")[0].strip().lower() == b"https")
    return False


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = HEADERS + (
            ((b"strict-transport-security", HSTS.encode()),) if over_https(scope) else ()
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or ())
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in extra if n not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
