"""The runtime's mail login (portal.json `mail.usernameFile`/`passwordFile`, the files of
the Secret `<portal>-mail` the operator copies): used per message against a real SMTP
server that wants it, a missing or wrong login named without the password, and `tls`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from portico_runtime.config import Portal
from portico_runtime.identity import mail, settings
from portico_runtime.identity.settings import Mail
from tests.support.mailserver import running_mail_server

LOGIN = ("portal-mailer", "portal-mail-pa55-61")


def identity(raw: dict[str, Any]) -> settings.Identity:
    portal = Portal("p", "ns", "P", "https://p.example", "Customer", "Custom", "en-US", (), (),
                    (), "", "", raw=raw)  # fmt: skip
    return settings.identity(portal)


def login_files(tmp: Path, user: str, password: str) -> tuple[str, str]:
    (tmp / "username").write_text(user + "\n")
    (tmp / "password").write_text(password + "\n")
    return str(tmp / "username"), str(tmp / "password")


def test_a_reset_mail_goes_out_with_the_mounted_login(tmp_path: Path) -> None:
    with running_mail_server(login=LOGIN, require_login=True) as server:
        user, password = login_files(tmp_path, *LOGIN)
        config = {
            "mail": {
                "host": server.host,
                "port": server.port,
                "from": "portal@contoso.example",
                "tls": "opportunistic",  # the test server offers no STARTTLS
                "usernameFile": user,
                "passwordFile": password,
            }
        }
        ident = identity(config)
        assert ident.mail is not None
        mail.check(ident.mail)
        asyncio.run(mail.send(ident.mail, "ada@example.com", "Reset", "the link"))
        assert server.logins == ["portal-mailer", "portal-mailer"]
        assert server.wait_for("ada@example.com")[0].message["Subject"] == "Reset"


def test_a_wrong_or_missing_login_is_named_without_the_password(tmp_path: Path) -> None:
    with running_mail_server(login=LOGIN, require_login=True) as server:
        user, password = login_files(tmp_path, LOGIN[0], "not-the-mail-password")
        wrong = Mail(server.host, server.port, "p@contoso.example", user, password)
        with pytest.raises(mail.MailFailed) as refused:
            mail.check(wrong)
        assert "answered 535" in str(refused.value)
        assert "not-the-mail-password" not in str(refused.value)
        # The optional mount without its Secret: no files, so no login, and the server says so.
        absent = Mail(server.host, server.port, "p@contoso.example", "/nope/u", "/nope/p")
        with pytest.raises(mail.MailFailed) as unauthenticated:
            asyncio.run(mail.send(absent, "ada@example.com", "Reset", "the link"))
        assert str(server.port) in str(unauthenticated.value)
        assert server.messages_to("ada@example.com") == []


def test_starttls_required_but_not_offered_sends_nothing(tmp_path: Path) -> None:
    with running_mail_server() as server:
        strict = Mail(server.host, server.port, "p@contoso.example", tls="starttls")
        with pytest.raises(mail.MailFailed, match="does not offer STARTTLS"):
            asyncio.run(mail.send(strict, "ada@example.com", "Reset", "the link"))
        assert server.messages_to("ada@example.com") == []


def test_the_old_starttls_flag_still_means_starttls() -> None:
    config = {"mail": {"host": "smtp.example", "starttls": True}}
    ident = identity(config)
    assert ident.mail is not None and ident.mail.tls == "starttls"
