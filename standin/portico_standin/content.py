"""Content: knowledge articles, blog posts and forum threads of a portal, and a search over them.

Each item has an id, a title, a body, a language and the web roles that may read it
(none: everyone who may see the site). The same id exists once per language. The
instance filters by the `roles` a caller names; the runtime applies its own gate too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portico_standin.auth import portal_caller
from portico_standin.http import PORTAL, body, error
from portico_standin.state import InstanceState, store

KINDS = ("articles", "blogposts", "forumthreads")
MAX_PAGE_SIZE = 50


@dataclass(frozen=True)
class Item:
    kind: str
    id: str
    title: str
    body: str
    language: str
    web_roles: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "title": self.title,
            "language": self.language,
            "webRoles": list(self.web_roles),
            "snippet": self.body[:160],
        }

    def full(self) -> dict[str, Any]:
        return {**self.summary(), "body": self.body}


@dataclass
class Content:
    """Per portal (`ns/name`): items by (kind, id, language), in insertion order."""

    items: dict[str, dict[tuple[str, str, str], Item]] = field(default_factory=dict)

    def of(self, portal: str) -> dict[tuple[str, str, str], Item]:
        return self.items.setdefault(portal, {})

    def put(self, portal: str, item: Item) -> None:
        self.of(portal)[(item.kind, item.id, item.language)] = item


def readable(item: Item, roles: frozenset[str] | None) -> bool:
    """`roles` None: the caller asked for everything (no gate at the instance)."""
    return roles is None or not item.web_roles or bool(roles & set(item.web_roles))


# The sample content a template's provisioning installs, per kind and language.
_SAMPLES: dict[str, list[tuple[str, tuple[str, ...], dict[str, tuple[str, str]]]]] = {
    "articles": [
        (
            "KA-01001",
            (),
            {
                "en-US": (
                    "How to reset your password",
                    "Open the sign-in page and choose "
                    "'Forgot password'. We send a link to your e-mail address.\n\n"
                    "The link is valid for one hour.",
                ),
                "de-DE": (
                    "So setzen Sie Ihr Kennwort zurück",
                    "Öffnen Sie die Anmeldeseite "
                    "und wählen Sie 'Kennwort vergessen'. Wir senden Ihnen einen Link."
                    "\n\nDer Link ist eine Stunde gültig.",
                ),
                "fr-FR": (
                    "Réinitialiser votre mot de passe",
                    "Ouvrez la page de connexion et "
                    "choisissez « Mot de passe oublié ». Nous vous envoyons un lien.\n\n"
                    "Le lien est valable une heure.",
                ),
            },
        ),
        (
            "KA-01002",
            (),
            {
                "en-US": (
                    "Opening a support case",
                    "Describe the problem, add the product "
                    "and a screenshot. A support engineer answers within one day.",
                ),
                "de-DE": (
                    "Einen Supportfall eröffnen",
                    "Beschreiben Sie das Problem, nennen "
                    "Sie das Produkt und fügen Sie einen Screenshot hinzu.",
                ),
                "fr-FR": (
                    "Ouvrir une demande de support",
                    "Décrivez le problème, indiquez le produit et ajoutez une capture d'écran.",
                ),
            },
        ),
        (
            "KA-01003",
            ("Authenticated",),
            {
                "en-US": (
                    "Warranty terms for customers",
                    "Signed-in customers see the warranty terms of the products they registered.",
                ),
                "de-DE": (
                    "Garantiebedingungen für Kunden",
                    "Angemeldete Kunden sehen die "
                    "Garantiebedingungen ihrer registrierten Produkte.",
                ),
                "fr-FR": (
                    "Conditions de garantie",
                    "Les clients connectés voient les "
                    "conditions de garantie de leurs produits enregistrés.",
                ),
            },
        ),
    ],
    "blogposts": [
        (
            "BP-0001",
            (),
            {
                "en-US": (
                    "Welcome to our community",
                    "This blog tells you what is new in our products and in the community.",
                ),
                "de-DE": (
                    "Willkommen in unserer Community",
                    "Dieser Blog berichtet, was es "
                    "Neues in unseren Produkten und in der Community gibt.",
                ),
                "fr-FR": (
                    "Bienvenue dans notre communauté",
                    "Ce blog présente les nouveautés de nos produits et de la communauté.",
                ),
            },
        ),
    ],
    "forumthreads": [
        (
            "FT-0001",
            (),
            {
                "en-US": (
                    "Password reset e-mail does not arrive",
                    "I asked for a password reset twice and got no e-mail. Any idea?",
                ),
                "de-DE": (
                    "Kennwort-E-Mail kommt nicht an",
                    "Ich habe zweimal ein neues Kennwort angefordert und keine E-Mail bekommen.",
                ),
                "fr-FR": (
                    "L'e-mail de réinitialisation n'arrive pas",
                    "J'ai demandé deux fois un nouveau mot de passe sans recevoir d'e-mail.",
                ),
            },
        ),
    ],
}


def install_samples(content: Content, portal: str, kinds: list[str], languages: list[str]) -> int:
    """Install (idempotently) the sample items of KINDS in LANGUAGES; returns how many."""
    count = 0
    for kind in kinds:
        for item_id, roles, texts in _SAMPLES.get(kind, []):
            for lang in languages:
                title, text = texts.get(lang, texts["en-US"])
                content.put(portal, Item(kind, item_id, title, text, lang, roles))
                count += 1
    return count


def _roles(request: Request) -> frozenset[str] | None:
    raw = request.query_params.get("roles")
    if raw is None:
        return None
    return frozenset(r.strip() for r in raw.split(",") if r.strip())


def _paging(request: Request) -> tuple[int, int] | None:
    try:
        page = int(request.query_params.get("page", "1"))
        size = int(request.query_params.get("pageSize", "10"))
    except ValueError:
        return None
    if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
        return None
    return page, size


def search(items: list[Item], q: str) -> list[Item]:
    """Every word of Q in the title or body (case-insensitive); title matches first."""
    words = q.lower().split()
    hits = [i for i in items if all(w in f"{i.title}\n{i.body}".lower() for w in words)]
    return sorted(hits, key=lambda i: not all(w in i.title.lower() for w in words))


def routes(state: InstanceState) -> list[Route]:
    content = store(state, Content)

    def key(request: Request) -> str:
        return f"{request.path_params['ns']}/{request.path_params['name']}"

    def selected(request: Request, kinds: tuple[str, ...]) -> list[Item]:
        language = request.query_params.get("language", "")
        roles = _roles(request)
        return [
            item
            for item in content.of(key(request)).values()
            if item.kind in kinds
            and (not language or item.language == language)
            and readable(item, roles)
        ]

    def page_of(request: Request, items: list[Item]) -> Response:
        paging = _paging(request)
        if paging is None:
            return error(400, f"page must be >= 1 and pageSize 1..{MAX_PAGE_SIZE}")
        page, size = paging
        chunk = items[(page - 1) * size : page * size]
        return JSONResponse(
            {
                "items": [i.summary() for i in chunk],
                "total": len(items),
                "page": page,
                "pageSize": size,
            }
        )

    async def listing(request: Request) -> Response:
        if portal_caller(request, state) is None:
            return error(401, "unauthorized")
        kind = request.path_params["kind"]
        if kind not in KINDS:
            return error(404, f"no such content kind {kind}")
        return page_of(request, selected(request, (kind,)))

    async def one(request: Request) -> Response:
        if portal_caller(request, state) is None:
            return error(401, "unauthorized")
        kind, item_id = request.path_params["kind"], request.path_params["id"]
        language = request.query_params.get("language", "")
        found = content.of(key(request)).get((kind, item_id, language))
        if found is None or not readable(found, _roles(request)):
            return error(404, f"no {kind} {item_id} in {language or 'no language'}")
        return JSONResponse(found.full())

    async def put(request: Request) -> Response:
        """A person writes an item (tests and demos use it to add gated content)."""
        if portal_caller(request, state) is None:
            return error(401, "unauthorized")
        kind, item_id = request.path_params["kind"], request.path_params["id"]
        data = await body(request)
        title, text, lang = data.get("title"), data.get("body"), data.get("language")
        roles = data.get("webRoles") or []
        if kind not in KINDS or not all(isinstance(v, str) and v for v in (title, text, lang)):
            return error(400, "an item needs a known kind, a title, a body and a language")
        item = Item(kind, item_id, str(title), str(text), str(lang), tuple(map(str, roles)))
        content.put(key(request), item)
        return JSONResponse(item.full())

    async def find(request: Request) -> Response:
        if portal_caller(request, state) is None:
            return error(401, "unauthorized")
        q = request.query_params.get("q", "").strip()
        if not q:
            return error(400, "q is required")
        wanted = request.query_params.get("kinds")
        kinds = tuple(k for k in wanted.split(",") if k in KINDS) if wanted else KINDS
        return page_of(request, search(selected(request, kinds), q))

    async def samples(request: Request) -> Response:
        if portal_caller(request, state) is None:
            return error(401, "unauthorized")
        data = await body(request)
        kinds = [k for k in data.get("kinds") or [] if isinstance(k, str)]
        languages = [lang for lang in data.get("languages") or [] if isinstance(lang, str)]
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown:
            return error(400, f"unknown content kinds {', '.join(unknown)}")
        absent = [lang for lang in languages if lang not in state.languages]
        if absent:
            return error(409, f"language {', '.join(absent)} is not installed on the instance")
        count = install_samples(content, key(request), kinds, languages)
        return JSONResponse({"installed": count})

    return [
        Route(f"{PORTAL}/content/samples", samples, methods=["POST"]),
        Route(f"{PORTAL}/content/search", find),
        Route(f"{PORTAL}/content/{{kind}}", listing),
        Route(f"{PORTAL}/content/{{kind}}/{{id}}", one),
        Route(f"{PORTAL}/content/{{kind}}/{{id}}", put, methods=["PUT"]),
    ]
