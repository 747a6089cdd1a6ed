"""Sending a message through the portal's mail server (portal.json `mail`)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from portico_runtime.identity.settings import Mail

TIMEOUT = 15.0


class MailFailed(Exception):
    """The server refused or could not be reached; the message holds its answer, no secret."""


def _read(path: str) -> str:
    return Path(path).read_text(encoding="utf-8").strip() if path else ""


def _send(settings: Mail, message: EmailMessage) -> None:
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=TIMEOUT) as smtp:
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
            user = _read(settings.username_file)
            if user:
                smtp.login(user, _read(settings.password_file))
            smtp.send_message(message)
    except smtplib.SMTPResponseException as exc:
        raise MailFailed(f"{settings.host}:{settings.port} answered {exc.smtp_code}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise MailFailed(f"{settings.host}:{settings.port}: {type(exc).__name__}") from None


async def send(settings: Mail, to: str, subject: str, body: str) -> None:
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    await run_in_threadpool(_send, settings, message)


def check(settings: Mail) -> None:
    """Connect and greet (and log in when credentials are set): `provision` uses it."""
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=TIMEOUT) as smtp:
            smtp.ehlo()
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
            user = _read(settings.username_file)
            if user:
                smtp.login(user, _read(settings.password_file))
    except smtplib.SMTPResponseException as exc:
        raise MailFailed(f"{settings.host}:{settings.port} answered {exc.smtp_code}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise MailFailed(f"{settings.host}:{settings.port}: {type(exc).__name__}") from None
