"""Operator settings from PORTICO_* variables: typed, and a bad value is one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from portico.settings import Settings, SettingsError


def test_environment_is_typed_and_flags_win() -> None:
    env = {
        "PORTICO_BASE_DOMAIN": "portals.corp",
        "PORTICO_TRIAL_DAYS": "14",
        "PORTICO_WATCH_NAMESPACES": "a, b",
        "PORTICO_DNS_AUTHORITATIVE": "true",
        "PORTICO_DNS_TIMEOUT": "2.5",
    }
    s = Settings.from_env(env, base_domain="override.example")
    assert (s.base_domain, s.trial_days, s.watch_namespaces) == (
        "override.example",
        14.0,
        ("a", "b"),
    )
    assert s.dns_authoritative is True and s.dns_timeout == 2.5


def test_domain_ownership_is_required_unless_said_otherwise() -> None:
    """New installs close subdomain takeover; Optional is the upgrade path."""
    assert Settings().domain_ownership == "Required"
    assert Settings.from_env({}).domain_ownership == "Required"
    optional = Settings.from_env({"PORTICO_DOMAIN_OWNERSHIP": "Optional"})
    assert optional.domain_ownership == "Optional"


def test_watch_namespaces_and_its_former_name() -> None:
    assert Settings.from_env({"PORTICO_WATCH_NAMESPACES": "a,b"}).watch_namespaces == ("a", "b")
    assert Settings.from_env({"PORTICO_NAMESPACES": "old"}).watch_namespaces == ("old",)
    both = {"PORTICO_WATCH_NAMESPACES": "new", "PORTICO_NAMESPACES": "old"}
    assert Settings.from_env(both).watch_namespaces == ("new",)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"PORTICO_TRIAL_DAYS": "soon"}, "PORTICO_TRIAL_DAYS='soon': expected a number"),
        ({"PORTICO_METRICS_PORT": "http"}, "expected a whole number"),
        ({"PORTICO_DNS_AUTHORITATIVE": "maybe"}, "expected true or false"),
        ({"PORTICO_LOG_FORMAT": "xml"}, "use text or json"),
        ({"PORTICO_DOMAIN_OWNERSHIP": "required"}, "use Required or Optional"),
        ({"PORTICO_TRIAL_DAYS": "0"}, "must be positive"),
        ({"PORTICO_MAIL_TLS": "ssl"}, "use opportunistic, starttls, tls or none"),
        ({"PORTICO_MAIL_HOST": "smtp.example"}, "PORTICO_MAIL_FROM must be an e-mail address"),
        ({"PORTICO_MAIL_CREDENTIALS_SECRET": "just-a-name"}, "use NAMESPACE/NAME"),
        ({"PORTICO_INVITATION_POLL_SECONDS": "0"}, "must be positive"),
        ({"PORTICO_NOTIFICATION_EMAIL": "true"}, "PORTICO_NOTIFICATION_EMAIL needs the mail"),
        ({"PORTICO_NOTIFICATION_WEBHOOK_URL": "hooks.example"}, "WEBHOOK_URL=.hooks"),
        (
            {"PORTICO_NOTIFICATION_WEBHOOK_URL": "https://hooks.example/p"},
            "PORTICO_NOTIFICATION_WEBHOOK_SECRET must be NAMESPACE/NAME",
        ),
        ({"PORTICO_NOTIFICATION_RETRY_SECONDS": "0"}, "must be positive"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], words: str) -> None:
    with pytest.raises(SettingsError, match=words.replace("(", r"\(")):
        Settings.from_env(env)


def test_portico_run_refuses_bad_settings_without_a_traceback() -> None:
    portico = str(Path(sys.executable).with_name("portico"))
    result = subprocess.run(
        [portico, "run"],
        env={"PORTICO_TRIAL_DAYS": "soon", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert "PORTICO_TRIAL_DAYS" in result.stderr and "Traceback" not in result.stderr
