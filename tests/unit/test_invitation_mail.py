"""The invitation e-mail through a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import pytest

from portico.api.model import Contact
from portico.controller.mail import MailError, MailLogin, send
from portico.core import invitation_mail
from portico.settings import Settings
from tests.support.mailserver import running_mail_server

LINK = "https://contoso.portals.test/register?invitation=c0de-for-the-test-only"


def message(language: str = "de-DE", to: str = "ann@example.com") -> invitation_mail.EmailMessage:
    return invitation_mail.compose(
        language=language,
        portal="Contoso Support",
        contact=Contact(to, "Ann", "Lee"),
        link=LINK,
        expires="2030-01-17T00:00:00Z",
        sender="portals@contoso.test",
    )


def settings(port: int, **more: object) -> Settings:
    return Settings(mail_host="127.0.0.1", mail_port=port, mail_from="portals@contoso.test", **more)  # type: ignore[arg-type]


def test_the_message_reaches_the_server_in_the_portals_language() -> None:
    with running_mail_server() as server:
        send(settings(server.port), message(), None)
        [got] = server.wait_for("ann@example.com")
    assert got.sender == "portals@contoso.test"
    assert got.message["Subject"] == "Ihre Einladung zu Contoso Support"
    assert got.message["Content-Language"] == "de-DE"
    assert "Hallo Ann Lee," in got.text and LINK in got.text


@pytest.mark.parametrize(
    ("language", "subject"),
    [
        ("en-US", "Your invitation to Contoso Support"),
        ("fr-FR", "Votre invitation à Contoso Support"),
        ("pt-BR", "Your invitation to Contoso Support"),  # no wording: English
    ],
)
def test_the_wording_follows_the_language(language: str, subject: str) -> None:
    assert message(language)["Subject"] == subject


def test_a_refused_recipient_is_the_servers_own_answer() -> None:
    refusal = "550 5.1.1 <gone@example.com>: mailbox unavailable"
    with (
        running_mail_server(refuse={"gone@example.com": refusal}) as server,
        pytest.raises(MailError) as caught,
    ):
        send(settings(server.port), message(to="gone@example.com"), None)
    said = str(caught.value)
    assert "550 5.1.1 <gone@example.com>: mailbox unavailable" in said
    assert "c0de-for-the-test-only" not in said


def test_a_server_that_is_down_is_named() -> None:
    with running_mail_server() as server:
        port = server.port
    with pytest.raises(MailError) as caught:
        send(settings(port, mail_timeout=2.0), message(), None)
    assert f"the mail server at 127.0.0.1:{port} could not be reached" in str(caught.value)


def test_login_from_the_credentials_and_a_refused_login_hides_the_password() -> None:
    with running_mail_server(login=("portico", "mail-pa55word")) as server:
        send(settings(server.port), message(), MailLogin("portico", "mail-pa55word"))
        assert server.logins == ["portico"]
        with pytest.raises(MailError) as caught:
            send(settings(server.port), message(), MailLogin("portico", "wrong-pa55word"))
    assert "refused the login" in str(caught.value)
    assert "pa55word" not in str(caught.value)
    assert "pa55word" not in repr(MailLogin("portico", "mail-pa55word"))


def test_starttls_required_but_not_offered_is_refused_before_anything_is_sent() -> None:
    with running_mail_server() as server:
        with pytest.raises(MailError, match="does not offer STARTTLS"):
            send(settings(server.port, mail_tls="starttls"), message(), None)
        assert server.received == []
