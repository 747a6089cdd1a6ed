"""Pages as Jinja2 templates (autoescaped), in one language; strings from the bundles."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from portico_runtime.translations import text

_env = Environment(
    loader=PackageLoader("portico_runtime.content", "templates"),
    autoescape=select_autoescape(["html"], default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def paragraphs(body: str) -> list[str]:
    """A plain-text body as paragraphs (blank-line separated); never HTML from the instance."""
    return [p.strip() for p in body.replace("\r\n", "\n").split("\n\n") if p.strip()]


def page(template: str, language: str, **context: Any) -> str:
    def t(key: str, **values: Any) -> str:
        return text(language, key, **{k: str(v) for k, v in values.items()})

    return _env.get_template(template).render(language=language, t=t, **context)
