"""The invitation e-mail (pure): in the portal's language, with the link and nothing secret
besides it. The message is composed for sending and dropped; it is never logged."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from portico.api.model import Contact


@dataclass(frozen=True)
class Wording:
    subject: str
    greeting: str  # {name}
    greeting_anonymous: str
    body: str  # {portal}, {expires}
    action: str
    closing: str


WORDINGS = {
    "en": Wording(
        subject="Your invitation to {portal}",
        greeting="Hello {name},",
        greeting_anonymous="Hello,",
        body=(
            "you are invited to {portal}. Open the link below to register; "
            "it works until {expires}."
        ),
        action="Register",
        closing="If you did not expect this invitation, you can ignore this message.",
    ),
    "de": Wording(
        subject="Ihre Einladung zu {portal}",
        greeting="Hallo {name},",
        greeting_anonymous="Hallo,",
        body=(
            "Sie sind zu {portal} eingeladen. Öffnen Sie den folgenden Link, um sich zu "
            "registrieren; er gilt bis {expires}."
        ),
        action="Registrieren",
        closing=(
            "Falls Sie diese Einladung nicht erwartet haben, können Sie diese Nachricht ignorieren."
        ),
    ),
    "fr": Wording(
        subject="Votre invitation à {portal}",
        greeting="Bonjour {name},",
        greeting_anonymous="Bonjour,",
        body=(
            "vous êtes invité(e) à {portal}. Ouvrez le lien ci-dessous pour vous inscrire ; "
            "il est valable jusqu'au {expires}."
        ),
        action="S'inscrire",
        closing="Si vous n'attendiez pas cette invitation, vous pouvez ignorer ce message.",
    ),
}


def wording(language: str) -> Wording:
    """The portal's language (BCP 47), by its primary tag; English when there is none."""
    return WORDINGS.get(language.split("-", 1)[0].lower(), WORDINGS["en"])


def compose(
    *,
    language: str,
    portal: str,
    contact: Contact,
    link: str,
    expires: str,
    sender: str,
) -> EmailMessage:
    w = wording(language)
    name = " ".join(x for x in (contact.first_name, contact.last_name) if x)
    greeting = w.greeting.format(name=name) if name else w.greeting_anonymous
    text = "\n\n".join(
        [
            greeting,
            w.body.format(portal=portal, expires=expires),
            f"{w.action}: {link}",
            w.closing,
        ]
    )
    message = EmailMessage()
    message["Subject"] = w.subject.format(portal=portal)
    message["From"] = sender
    message["To"] = formataddr((name, contact.email)) if name else contact.email
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(text + "\n")
    message["Content-Language"] = language  # after set_content, which resets Content-*
    return message
