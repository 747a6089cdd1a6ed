"""The portals' mail login on a real API server: the operator copies the Secret named by
PORTICO_MAIL_PORTAL_CREDENTIALS_SECRET into each portal's `<portal>-mail` (owned by the
Portal, mounted by its pods), follows a changed password, removes the copy when the
source goes, and never says the password in its log or an Event."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from portico.core.names import SECRET_LABEL
from tests.support.controlplane import Cluster, Operator, wait_for
from tests.support.mailserver import MailServer
from tests.support.portals import portal

FIRST, SECOND = "portal-mail-first-83", "portal-mail-second-89"


def login(namespace: str, password: str) -> dict[str, Any]:
    data = {"username": "portal-mailer", "password": password}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        # Labelled, as every Secret Portico reads must be: the label-selected watch brings it.
        "metadata": {"name": "portal-mail", "namespace": namespace, "labels": {SECRET_LABEL: "x"}},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def copied(cluster: Cluster, namespace: str) -> dict[str, str] | None:
    secret = cluster.get("secret", "mailer-mail", namespace)
    if secret is None:
        return None
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def test_the_mail_login_is_copied_followed_and_removed(
    cluster: Cluster,
    namespace: str,
    instance: str,
    operator: Operator,
    mail_server: MailServer,
    tmp_path: Path,
) -> None:
    operator.stop()  # this test's settings need an operator of its own
    own = Operator(
        cluster.plane,
        operator.kubeconfig,
        tmp_path,
        PORTICO_NAMESPACES=namespace,
        PORTICO_MAIL_HOST=mail_server.host,
        PORTICO_MAIL_PORT=str(mail_server.port),
        PORTICO_MAIL_FROM="portals@portico.test",
        PORTICO_MAIL_TLS="none",
        PORTICO_MAIL_PORTAL_CREDENTIALS_SECRET=f"{namespace}/portal-mail",
    )
    try:
        own.start()
        cluster.apply(login(namespace, FIRST), portal("mailer", namespace, instance))
        ready = cluster.wait_phase(namespace, "mailer", "Ready")
        assert copied(cluster, namespace) == {"username": "portal-mailer", "password": FIRST}
        secret = cluster.get("secret", "mailer-mail", namespace) or {}
        assert secret["metadata"]["ownerReferences"][0]["uid"] == ready["metadata"]["uid"]
        config = cluster.get("configmap", "mailer-config", namespace) or {}
        mail = json.loads(config["data"]["portal.json"])["mail"]
        assert mail["passwordFile"] == "/etc/portico/secrets/_mail/password"
        pod = (cluster.get("deployment", "mailer", namespace) or {})["spec"]["template"]["spec"]
        assert "mailer-mail" in [(v.get("secret") or {}).get("secretName") for v in pod["volumes"]]

        cluster.apply(login(namespace, SECOND))
        wait_for(
            "the copy to follow the new password",
            lambda: (copied(cluster, namespace) or {}).get("password") == SECOND,
        )
        cluster.plane.kubectl("delete", "secret", "portal-mail", "-n", namespace)
        wait_for("the copy to go with its source", lambda: copied(cluster, namespace) is None)

        said = own.log_text() + json.dumps(cluster.items("events", namespace)) + json.dumps(config)
        for password in (FIRST, SECOND):
            for form in (password, base64.b64encode(password.encode()).decode()):
                assert form not in said, f"{password!r} was said"
    finally:
        own.stop()
        operator.start()
