"""Sign-in pages: local accounts (sign-up, sign-in with back-off, password reset by mail),
invitation redemption (`/register?invitation=CODE`), the profile and sign-out."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico_runtime.config import ConfigError, Portal, Reader
from portico_runtime.identity import backend as instance
from portico_runtime.identity import mail, rules, sessions, settings, views
from portico_runtime.identity.backend import Backend, Unavailable
from portico_runtime.identity.flows import (
    FormRejected,
    form,
    go,
    no_sessions,
    redeem_pending,
    rejected,
    safe_next,
    start_session,
    unavailable,
)
from portico_runtime.visitor import signed_in

log = logging.getLogger("portico.identity")

# The profile fields a person edits: (form name, catalogue key, autocomplete token).
PROFILE_FIELDS = (
    ("firstName", "firstName", "given-name"),
    ("lastName", "lastName", "family-name"),
    ("phone", "phone", "tel"),
    ("jobTitle", "jobTitle", "organization-title"),
)
INVITATION_STATUS = {"Unknown": 404, "Used": 409, "Expired": 410, "Revoked": 410}

Handler = Callable[[Request, Portal, settings.Identity], Awaitable[Response]]


def client_address(request: Request) -> str:
    """The visitor's address: the right-most X-Forwarded-For entry (the one the ingress
    in front of the pod added; entries left of it come from the client and prove nothing),
    else the peer."""
    forwarded = request.headers.get("x-forwarded-for", "")
    if forwarded.strip():
        return forwarded.split(",")[-1].strip()
    return request.client.host if request.client else "unknown"


def routes(reader: Reader, backend: Backend, backoff: rules.Backoff) -> list[Route]:
    def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                portal = reader.get()
            except ConfigError:
                return Response("not configured\n", 503, headers={"Retry-After": "30"})
            if not sessions.sessions_work(request):
                return no_sessions(request, portal)
            try:
                return await handler(request, portal, settings.identity(portal))
            except FormRejected:
                return rejected(request, portal)
            except Unavailable as exc:
                log.warning("the instance could not be asked: %s", exc)
                return unavailable(request, portal)

        return endpoint

    def sign_in_page(
        request: Request, portal: Portal, ident: settings.Identity, status: int = 200, **extra: Any
    ) -> Response:
        context: dict[str, Any] = {
            "providers": ident.providers,
            "local": ident.local_sign_in,
            "next": safe_next(request.query_params.get("next")),
            "email": "",
            "may_sign_up": ident.registration != rules.DISABLED,
        }
        context.update(extra)
        return views.render(request, portal, "signin.html", status, **context)

    def sign_up_page(
        request: Request, portal: Portal, ident: settings.Identity, status: int = 200, **extra: Any
    ) -> Response:
        context: dict[str, Any] = {
            "providers": ident.providers,
            "local": ident.local_sign_in,
            "invitation": bool(request.session.get("inv")),
            "email": "",
            "first_name": "",
            "last_name": "",
        }
        context.update(extra)
        return views.render(request, portal, "signup.html", status, **context)

    async def pending_state(portal: Portal, request: Request) -> str | None:
        code = request.session.get("inv")
        if not isinstance(code, str) or not code:
            return None
        return instance.invitation_state(await backend.check_invitation(portal, code))

    async def signin(request: Request, portal: Portal, ident: settings.Identity) -> Response:
        if request.method == "GET":
            return sign_in_page(request, portal, ident)
        data = await form(request)
        if not ident.local_sign_in:
            return sign_in_page(request, portal, ident, 403, error="localSignInOff")
        email, password = data.get("email", "").strip(), data.get("password", "")
        now = time.monotonic()
        keys = (f"account:{email.lower()}", f"address:{client_address(request)}")
        wait = max(backoff.wait(k, now) for k in keys)
        if wait > 0:
            # Not even checked: a locked account cannot be guessed at while it waits.
            seconds = str(int(wait) + 1)
            return sign_in_page(
                request, portal, ident, 429, error="tooManyAttempts",
                error_values={"seconds": seconds}, email=email,
            )  # fmt: skip
        answer = await backend.check_password(portal, email, password)
        contact = answer.data.get("contact")
        if (
            answer.status != 200
            or answer.data.get("valid") is not True
            or not isinstance(contact, dict)
        ):
            for k in keys:
                backoff.failed(k, now)
            return sign_in_page(request, portal, ident, 401, error="wrongPassword", email=email)
        for k in keys[:1]:
            backoff.succeeded(k)
        granted = await backend.invitation_roles(portal, str(contact["id"]))
        start_session(request, contact, granted)
        problem = await redeem_pending(request, portal, backend, str(contact["id"]))
        if problem:
            return views.message(
                request, portal, 409, "invitationTitle", problem, ("/profile", "profile")
            )
        return go(safe_next(data.get("next")))

    async def signup(request: Request, portal: Portal, ident: settings.Identity) -> Response:
        decision = rules.sign_up(ident.registration, await pending_state(portal, request))
        if request.method == "GET" or not decision.allowed:
            if not decision.allowed:
                if request.method == "POST":
                    await form(request)
                link = ("/signin", "signIn")
                return views.message(
                    request, portal, 403, "signUpClosedTitle", decision.reason, link
                )
            return sign_up_page(request, portal, ident)
        data = await form(request)
        if not ident.local_sign_in:
            return sign_up_page(request, portal, ident, 403, error="localSignInOff")
        email = data.get("email", "").strip()
        names = {
            "firstName": data.get("firstName", "")[:200],
            "lastName": data.get("lastName", "")[:200],
        }
        again = {"email": email, "first_name": names["firstName"], "last_name": names["lastName"]}
        if "@" not in email or len(email) > 254:
            return sign_up_page(request, portal, ident, 422, error="emailInvalid", **again)
        problem = rules.password_problem(data.get("password", ""))
        if problem:
            return sign_up_page(request, portal, ident, 422, error=problem, **again)
        # A typed address is not a verified one, invitation or not (a Group code is shared):
        # e-mail rules apply once the mailbox is shown (a reset link, a provider's claim).
        created = await backend.create_contact(portal, {"email": email, **names})
        if created.status == 409:
            return sign_up_page(request, portal, ident, 409, error="emailTaken", **again)
        if created.status != 201:
            return sign_up_page(request, portal, ident, 422, error="emailInvalid", **again)
        contact = created.data
        # Redeem before the password is set: if the code was used up meanwhile, the
        # contact has no way to sign in and the person is told why.
        start_session(request, contact, [])
        problem_key = await redeem_pending(request, portal, backend, str(contact["id"]))
        if problem_key:
            # The code was used up meanwhile: the contact made for it goes again, so nothing
            # (a reset link, a provider's verified e-mail) can turn it into an account.
            await backend.delete_contact(portal, str(contact["id"]))
            request.session.clear()
            return views.message(
                request, portal, 409, "invitationTitle", problem_key, ("/signin", "signIn")
            )
        await backend.set_password(portal, str(contact["id"]), data.get("password", ""))
        log.info("contact %s signed up with a local account", contact["id"])
        return go("/profile")

    async def register(request: Request, portal: Portal, ident: settings.Identity) -> Response:
        contact = signed_in(request)
        if request.method == "POST":
            await form(request)
            if contact is None:
                return go("/signin")
            problem = await redeem_pending(request, portal, backend, contact.id)
            if problem:
                return views.message(
                    request, portal, 409, "invitationTitle", problem, ("/profile", "profile")
                )
            return go("/profile")
        code = request.query_params.get("invitation", "").strip()
        if not code:
            code = str(request.session.get("inv") or "")
        if not code:
            return views.message(
                request, portal, 400, "invitationTitle", "invitationMissing", ("/signin", "signIn")
            )
        state = instance.invitation_state(await backend.check_invitation(portal, code))
        if state != "Valid":
            request.session.pop("inv", None)
            link = ("/signin", "signIn")
            key = f"invitation{state}"
            return views.message(
                request, portal, INVITATION_STATUS[state], "invitationTitle", key, link
            )
        request.session["inv"] = code
        if "invitation" in request.query_params:
            # The code leaves the address bar (history, Referer, access logs): the session has it.
            return go("/register")
        if contact is not None:
            return views.render(request, portal, "accept.html")
        if ident.registration == rules.DISABLED:
            return sign_in_page(request, portal, ident, note="invitationSignIn")
        return sign_up_page(request, portal, ident)

    async def signout(request: Request, portal: Portal, ident: settings.Identity) -> Response:
        if request.method == "GET":
            return go("/")
        await form(request)
        provider = ident.provider(str(request.session.get("idp") or ""))
        request.session.clear()
        if provider is not None:
            from portico_runtime.identity import oidc  # late: only when a provider is used

            end = await oidc.end_session_url(portal, provider)
            if end:
                return go(end)
        return go("/")

    async def profile(request: Request, portal: Portal, ident: settings.Identity) -> Response:
        contact = signed_in(request)
        if contact is None:
            return go("/signin?next=/profile")
        note = None
        if request.method == "POST":
            data = await form(request)
            # Only this person's own record, only the fields the portal lets them edit.
            fields = {name: data.get(name, "").strip()[:200] for name, _, _ in PROFILE_FIELDS}
            answer = await backend.update_contact(portal, contact.id, fields)
            if answer.status != 200:
                return views.message(
                    request, portal, 422, "profile", "profileNotSaved", ("/profile", "profile")
                )
            request.session["fn"], request.session["ln"] = fields["firstName"], fields["lastName"]
            note = "profileSaved"
        found = await backend.contact(portal, contact.id)
        if found is None:  # removed from the instance: the session no longer names anyone
            request.session.clear()
            return go("/signin")
        return views.render(
            request, portal, "profile.html", note=note, fields=PROFILE_FIELDS, values=found,
            roles=sorted(contact.roles),
        )  # fmt: skip

    async def forgot(request: Request, portal: Portal, ident: settings.Identity) -> Response:
        if not ident.local_sign_in:
            return views.message(
                request, portal, 404, "forgotPassword", "localSignInOff", ("/signin", "signIn")
            )
        if ident.mail is None:
            return views.message(
                request, portal, 503, "forgotPassword", "resetNoMail", ("/signin", "signIn")
            )
        if request.method == "GET":
            return views.render(request, portal, "forgot.html")
        data = await form(request)
        email = data.get("email", "").strip()
        answer = await backend.start_reset(portal, email)
        if answer.status == 201:
            link = (
                f"{portal.url.rstrip('/')}/password/reset?token={quote(str(answer.data['token']))}"
            )
            language = views.language_of(request, portal)
            name = portal.display_name
            subject = views.text(language, "resetMailSubject", name=name)
            text = views.text(language, "resetMailBody", name=name, link=link)
            try:
                await mail.send(ident.mail, email, subject, text)
            except mail.MailFailed as exc:
                log.warning("password reset mail not sent: %s", exc)
                return views.message(
                    request, portal, 503, "forgotPassword", "resetMailFailed", ("/signin", "signIn")
                )
        # The same answer whether or not the address has an account (no account probing).
        return views.message(
            request, portal, 200, "forgotPassword", "resetSent", ("/signin", "signIn")
        )

    async def reset(request: Request, portal: Portal, ident: settings.Identity) -> Response:
        if request.method == "GET":
            if "token" in request.query_params:
                # Like an invitation code: kept in the session, out of the address bar.
                request.session["reset"] = request.query_params["token"][:200]
                return go("/password/reset")
            if not request.session.get("reset"):
                link = ("/password/forgot", "forgotPassword")
                return views.message(request, portal, 404, "forgotPassword", "resetUnknown", link)
            return views.render(request, portal, "reset.html")
        data = await form(request)
        password = data.get("password", "")
        problem = rules.password_problem(password)
        if problem:
            return views.render(request, portal, "reset.html", 422, error=problem)
        token = str(request.session.get("reset") or "")
        answer = await backend.finish_reset(portal, token, password)
        if answer.status != 200:
            key = {"Used": "resetUsed", "Expired": "resetExpired"}.get(
                answer.reason, "resetUnknown"
            )
            return views.message(
                request,
                portal,
                answer.status,
                "forgotPassword",
                key,
                ("/password/forgot", "forgotPassword"),
            )
        return views.message(
            request, portal, 200, "forgotPassword", "resetDone", ("/signin", "signIn")
        )

    both = ["GET", "POST"]
    return [
        Route("/signin", page(signin), methods=both),
        Route("/signup", page(signup), methods=both),
        Route("/register", page(register), methods=both),
        Route("/signout", page(signout), methods=both),
        Route("/profile", page(profile), methods=both),
        Route("/password/forgot", page(forgot), methods=both),
        Route("/password/reset", page(reset), methods=both),
    ]
