"""A real SMTP server on loopback (aiosmtpd) whose received messages the tests read.

aiosmtpd rather than Mailpit: it is a PyPI wheel (no Go build), runs in the test
process, and hands each message over as it was received, so the tests read the very
bytes the operator sent. It can refuse recipients with a chosen answer and require a
login, and `stop()`/`start()` on the same port make "the mail server is down".
"""

from __future__ import annotations

import email
import email.policy
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from portico_dev.procs import free_port


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        return body.get_content() if body is not None else ""


@dataclass
class MailServer:
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    # Recipients answered with this reply instead of 250 (e.g. "550 5.1.1 no such user").
    refuse: dict[str, str] = field(default_factory=dict)
    login: tuple[str, str] | None = None
    # Refuse mail from a client that did not log in (530), as a submission server does.
    require_login: bool = False
    received: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    _controller: Controller | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # aiosmtpd handler hooks
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and self.login == (
            data.login.decode(),
            data.password.decode(),
        )
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)

    def start(self) -> None:
        kwargs: dict[str, Any] = {}
        if self.login is not None:
            # Plain-text login over loopback without TLS: a test server only.
            kwargs = {
                "authenticator": self._authenticate,
                "auth_require_tls": False,
                "auth_required": self.require_login,
            }
        self._controller = Controller(
            self, hostname=self.host, port=self.port, ready_timeout=10, **kwargs
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages_to(self, address: str) -> list[Received]:
        with self._lock:
            return [m for m in self.received if address in m.recipients]

    def wait_for(self, address: str, count: int = 1, timeout: float = 60.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.messages_to(address)
            if len(found) >= count:
                return found
            time.sleep(0.2)
        raise AssertionError(f"no {count} message(s) to {address} within {timeout:.0f}s")


@contextmanager
def running_mail_server(**kwargs: Any) -> Iterator[MailServer]:
    server = MailServer(**kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()
