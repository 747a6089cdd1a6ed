"""Handing an invitation e-mail to the operator's mail server (SMTP), blocking.

A failure is one line with the mail server's own answer (code and text) or why it
could not be reached; never the message, the code or the credentials.
"""

from __future__ import annotations

import base64
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from portico.settings import Settings


class MailError(Exception):
    """REFUSED: the server answered with an error, so it did not take the message."""

    def __init__(self, message: str, refused: bool = True) -> None:
        super().__init__(message)
        self.refused = refused


@dataclass(frozen=True)
class MailLogin:
    username: str
    password: str  # never printed: the repr below hides it

    def __repr__(self) -> str:
        return f"MailLogin({self.username!r}, ***)"


def _answer(code: int, text: bytes | str) -> str:
    said = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(said.split())}"[:500]


def login_from(settings: Settings, kube: Any) -> MailLogin | None:
    """The operator's mail login, read from its credentials Secret (one read), or None
    when none is configured."""
    ref = settings.mail_credentials_secret
    if not ref:
        return None
    namespace, name = ref.split("/", 1)
    secret = kube.get("Secret", namespace, name)
    if secret is None:
        raise MailError(f"the mail credentials Secret {ref} does not exist")
    data = secret.get("data") or {}

    def value(key: str) -> str:
        return base64.b64decode(data.get(key, "")).decode(errors="replace")

    if "username" not in data or "password" not in data:
        raise MailError(f"the mail credentials Secret {ref} needs keys username and password")
    return MailLogin(value("username"), value("password"))


def send(
    settings: Settings,
    message: EmailMessage,
    login: MailLogin | None,
    ready: Callable[[], None] | None = None,
) -> None:
    """Hand MESSAGE over. READY, when given, runs once the server has answered and taken
    the login, just before the message goes: an error there sends nothing."""
    where = f"the mail server at {settings.mail_host}:{settings.mail_port}"
    context = ssl.create_default_context()
    try:
        if settings.mail_tls == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.mail_host,
                settings.mail_port,
                timeout=settings.mail_timeout,
                context=context,
            )
        else:
            client = smtplib.SMTP(
                settings.mail_host, settings.mail_port, timeout=settings.mail_timeout
            )
        with client:
            client.ehlo()
            if settings.mail_tls in ("opportunistic", "starttls"):
                if client.has_extn("starttls"):
                    client.starttls(context=context)
                    client.ehlo()
                elif settings.mail_tls == "starttls":
                    raise MailError(f"{where} does not offer STARTTLS (mail.tls is starttls)")
            if login is not None:
                client.login(login.username, login.password)
            if ready is not None:
                ready()
            client.send_message(message)
    except MailError:
        raise
    except smtplib.SMTPRecipientsRefused as err:
        answers = "; ".join(_answer(c, t) for c, t in err.recipients.values())
        raise MailError(f"{where} refused the recipient: {answers}") from None
    except smtplib.SMTPAuthenticationError as err:
        raise MailError(
            f"{where} refused the login: {_answer(err.smtp_code, err.smtp_error)} "
            "(check mail.credentialsSecret)"
        ) from None
    except smtplib.SMTPResponseException as err:
        raise MailError(f"{where} answered {_answer(err.smtp_code, err.smtp_error)}") from None
    except (smtplib.SMTPException, OSError) as err:
        why = getattr(err, "strerror", None) or err.__class__.__name__
        raise MailError(f"{where} could not be reached ({why})", refused=False) from None
