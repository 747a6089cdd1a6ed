"""Handing an invitation e-mail to the operator's mail server (SMTP), blocking.

A failure is one line with the mail server's own answer (code and text) or why it
could not be reached; never the message, the code or the credentials.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

from portico.settings import Settings


class MailError(Exception):
    pass


@dataclass(frozen=True)
class MailLogin:
    username: str
    password: str  # never printed: the repr below hides it

    def __repr__(self) -> str:
        return f"MailLogin({self.username!r}, ***)"


def _answer(code: int, text: bytes | str) -> str:
    said = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(said.split())}"[:500]


def send(settings: Settings, message: EmailMessage, login: MailLogin | None) -> None:
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
        raise MailError(f"{where} could not be reached ({why})") from None
