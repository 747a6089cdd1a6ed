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
    try:
        return Path(path).read_text(encoding="utf-8").strip() if path else ""
    except FileNotFoundError:  # the login's Secret is not there (optional mount): no login
        return ""


def _connect(settings: Mail) -> smtplib.SMTP:
    """Connected, greeted, on TLS as `tls` asks, and logged in when a login is mounted."""
    context = ssl.create_default_context()
    if settings.tls == "tls":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=TIMEOUT, context=context
        )
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=TIMEOUT)
    try:
        smtp.ehlo()
        if settings.tls in ("opportunistic", "starttls"):
            if smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
            elif settings.tls == "starttls":
                raise MailFailed(f"{settings.host}:{settings.port} does not offer STARTTLS")
        user = _read(settings.username_file)
        if user:
            smtp.login(user, _read(settings.password_file))
    except BaseException:
        smtp.close()
        raise
    return smtp


def _guarded(settings: Mail, message: EmailMessage | None) -> None:
    try:
        with _connect(settings) as smtp:
            if message is not None:
                smtp.send_message(message)
    except MailFailed:
        raise
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
    await run_in_threadpool(_guarded, settings, message)


def check(settings: Mail) -> None:
    """Connect and greet (and log in when credentials are set): `provision` uses it."""
    _guarded(settings, None)
