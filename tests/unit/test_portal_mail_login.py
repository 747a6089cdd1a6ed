"""The portals' mail login (PORTICO_MAIL_PORTAL_CREDENTIALS_SECRET): copied from the
operator's Secret into each portal's `<portal>-mail`, mounted for the runtime, named in
portal.json only as file paths, and withdrawn with the other credentials."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
from typing import Any

import pytest

from portico.core import names
from portico.core.decide import decide
from portico.core.observed import SecretView
from portico.settings import Settings, SettingsError
from tests.support.worlds import NOW, SETTINGS, UID, P, owned, world

USER, PASSWORD = (base64.b64encode(v).decode() for v in (b"portal-mailer", b"pa55-mail-77"))
LOGIN = SecretView("portal-mail", "3", frozenset({"username", "password"}),
                   {"username": USER, "password": PASSWORD})  # fmt: skip
MAILING = dataclasses.replace(
    SETTINGS,
    mail_host="smtp.contoso.example",
    mail_port=587,
    mail_from="portals@contoso.example",
    mail_tls="starttls",
    mail_portal_credentials_secret="portico-system/portal-mail",
)
KEY = ("Secret", names.mail_secret_name(P))


def config(plan_children: dict[Any, Any]) -> dict[str, Any]:
    raw = plan_children[("ConfigMap", names.config_name(P))]["data"]["portal.json"]
    parsed: dict[str, Any] = json.loads(raw)
    return parsed


def pod(plan_children: dict[Any, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = plan_children[("Deployment", P)]["spec"]["template"]["spec"]
    return spec


def test_the_login_is_copied_owned_and_mounted_where_portal_json_says() -> None:
    children = owned(decide(world(mail_credentials=LOGIN), MAILING, NOW))
    secret = children[KEY]
    assert secret["data"] == {"username": USER, "password": PASSWORD}
    assert secret["metadata"]["ownerReferences"][0]["uid"] == UID
    mail = config(children)["mail"]
    assert mail == {
        "host": "smtp.contoso.example",
        "port": 587,
        "from": "portals@contoso.example",
        "tls": "starttls",
        "usernameFile": "/etc/portico/secrets/_mail/username",
        "passwordFile": "/etc/portico/secrets/_mail/password",
    }
    volume = next(v for v in pod(children)["volumes"] if v["name"] == "mail-login")
    assert volume["secret"] == {"secretName": KEY[1], "optional": True}
    mount = next(
        m for m in pod(children)["containers"][0]["volumeMounts"] if m["name"] == "mail-login"
    )
    assert mount["mountPath"] == "/etc/portico/secrets/_mail"
    text = json.dumps(children[("ConfigMap", names.config_name(P))])
    assert USER not in text and PASSWORD not in text


def test_no_login_configured_or_found_means_no_copy() -> None:
    plain = dataclasses.replace(MAILING, mail_portal_credentials_secret="")
    children = owned(decide(world(mail_credentials=LOGIN), plain, NOW))
    assert KEY not in children
    assert "usernameFile" not in config(children)["mail"]
    assert "mail-login" not in json.dumps(pod(children))
    # Configured, but the Secret is missing or lacks a key: no copy; the paths stay, so
    # the pods do not roll when it appears (the runtime then sends without a login).
    half = SecretView("portal-mail", "4", frozenset({"username"}), {"username": USER})
    for found in (None, half):
        children = owned(decide(world(mail_credentials=found), MAILING, NOW))
        assert KEY not in children
        assert config(children)["mail"]["usernameFile"].endswith("/username")


def test_a_withdrawn_portal_loses_its_copy() -> None:
    first = decide(world(mail_credentials=LOGIN), MAILING, NOW)
    children = {k: copy.deepcopy(v) for k, v in owned(first).items()}
    gone = world(instance=None, children=children, mail_credentials=LOGIN)
    plan = decide(gone, MAILING, NOW)
    assert KEY in plan.deletes


def test_bad_secret_reference_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="PORTICO_MAIL_PORTAL_CREDENTIALS_SECRET"):
        Settings.from_env({"PORTICO_MAIL_PORTAL_CREDENTIALS_SECRET": "just-a-name"})
