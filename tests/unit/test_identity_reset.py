"""Password reset by an e-mailed single-use link, through a real SMTP server (aiosmtpd on
loopback) and the runtime on uvicorn."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from portico_dev.procs import free_port
from tests.support.identity import csrf, portal, submit

PASSWORD = "a long enough password"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(parsed)  # type: ignore[arg-type]
        return "250 OK"


@contextmanager
def mail_server() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def test_a_reset_link_works_once(tmp_path: Path) -> None:
    with mail_server() as (smtp_port, inbox):
        mail = {"host": "127.0.0.1", "port": smtp_port, "from": "portal@contoso.example"}
        with portal(tmp_path, mail=mail) as p:
            p.reconfigure(authentication={**p.config["authentication"], "registration": "Open"})
            with p.browser() as ada:
                fields = {"email": "ada@example.com", "password": PASSWORD}
                assert submit(ada, "/signup", fields).status_code == 303
            with p.browser() as ada:
                sent = submit(ada, "/password/forgot", {"email": "ada@example.com"})
                assert sent.status_code == 200 and "we sent it a link" in sent.text
                stranger = submit(ada, "/password/forgot", {"email": "nobody@example.com"})
                assert stranger.status_code == 200 and stranger.text == sent.text
                assert len(inbox.messages) == 1
                message = inbox.messages[0]
                assert message["To"] == "ada@example.com"
                body = message.get_content()
                link = re.search(r"(https://\S+/password/reset\?token=\S+)", body)
                assert link, body
                path = link.group(1).removeprefix(p.url)
                moved = ada.get(path)  # the token leaves the address bar for the session
                assert moved.status_code == 303 and moved.headers["location"] == "/password/reset"
                form = ada.get("/password/reset")
                assert form.status_code == 200 and "token" not in form.text
                short = ada.post("/password/reset", data={"csrf": csrf(form), "password": "short"})
                assert short.status_code == 422 and "at least 12" in short.text
                new = {"csrf": csrf(form), "password": "another long password"}
                assert ada.post("/password/reset", data=new).status_code == 200
                again = ada.post("/password/reset", data=new)
                assert again.status_code == 409 and "already used" in again.text
            with p.browser() as ada:
                old = submit(ada, "/signin", {"email": "ada@example.com", "password": PASSWORD})
                assert old.status_code == 401
                fresh = {"email": "ada@example.com", "password": "another long password"}
                assert submit(ada, "/signin", fresh).status_code == 303


def test_without_a_mail_server_the_page_says_so(tmp_path: Path) -> None:
    with portal(tmp_path) as p, p.browser() as visitor:
        page = visitor.get("/password/forgot")
        assert page.status_code == 503 and "not set up" in page.text


def test_a_mail_server_that_is_down_is_reported(tmp_path: Path) -> None:
    mail = {"host": "127.0.0.1", "port": free_port(), "from": "portal@contoso.example"}
    with portal(tmp_path, mail=mail) as p:
        p.reconfigure(authentication={**p.config["authentication"], "registration": "Open"})
        with p.browser() as ada:
            submit(ada, "/signup", {"email": "ada@example.com", "password": PASSWORD})
        with p.browser() as ada:
            failed = submit(ada, "/password/forgot", {"email": "ada@example.com"})
            assert failed.status_code == 503 and "could not be sent" in failed.text
