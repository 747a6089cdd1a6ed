"""`provision` and `import-translations`, run as the Jobs run them: a process, a config file,
the instance credentials as files, a live instance, a termination message on failure."""

from __future__ import annotations

import http.server
import json
import os
import threading
import time
from pathlib import Path

import pytest
import yaml

from portico_dev.procs import free_port
from portico_runtime import client, jobs, translations
from tests.support.runtime import (
    credentials,
    portal_json,
    run,
    running_instance,
)


def test_provision_installs_the_solutions_on_the_instance(tmp_path: Path) -> None:
    with running_instance() as (url, state):
        config = portal_json("partner-partnerfieldservice.yaml", url, credentials(tmp_path))
        code, out, message = run(tmp_path, config, "provision")
        assert (code, message) == (0, "")
        key = f"{config['portal']['namespace']}/{config['portal']['name']}"
        assert state.installed[key] == config["solutions"]
        assert "PartnerFieldService" in out


def test_provision_fails_on_wrong_credentials_without_showing_them(tmp_path: Path) -> None:
    with running_instance() as (url, _):
        config = portal_json("customer-custom.yaml", url, credentials(tmp_path, "s3cret-wrong"))
        code, _, message = run(tmp_path, config, "provision")
    assert code == 1
    assert "rejected the portal's credentials (HTTP 401)" in message
    assert "s3cret-wrong" not in message


def test_provision_fails_when_the_instance_lacks_a_prerequisite(tmp_path: Path) -> None:
    with running_instance(solutions=()) as (url, _):
        config = portal_json("partner-partnerfieldservice.yaml", url, credentials(tmp_path))
        code, _, message = run(tmp_path, config, "provision")
    assert code == 1
    path = "/portico/v1/portals/partners/partner-field/solutions"
    assert message == (
        f"POST {url}{path} answered HTTP 409: "
        "PartnerFieldService needs FieldService installed on the instance"
    )


def test_provision_fails_when_the_instance_is_unreachable(tmp_path: Path) -> None:
    with running_instance() as (url, _):
        pass  # stopped again: nothing listens on that port now
    config = portal_json("customer-custom.yaml", url, credentials(tmp_path))
    os.environ["PORTICO_INSTANCE_CONNECT_PATIENCE"] = "2"  # tried again for 2 s, then given up
    try:
        started = time.monotonic()
        code, _, message = run(tmp_path, config, "provision")
    finally:
        del os.environ["PORTICO_INSTANCE_CONNECT_PATIENCE"]
    assert code == 1 and message.startswith(f"the instance at {url} is unreachable")
    assert time.monotonic() - started >= 1.5, "a refused connection is tried again first"


def test_a_connection_refused_at_first_is_tried_again(tmp_path: Path) -> None:
    """A Service not routed yet (kube-proxy's lag) or an instance still starting."""
    port = free_port()
    answer = json.dumps({"ok": True}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server: list[http.server.HTTPServer] = []
    later = threading.Timer(
        1.2, lambda: server.append(http.server.HTTPServer(("127.0.0.1", port), Handler))
    )
    later.start()
    (tmp_path / "token").write_text("t")
    serving = threading.Thread(
        target=lambda: (later.join(), server[0].handle_request()), daemon=True
    )
    serving.start()
    instance = client.Instance(f"http://127.0.0.1:{port}", tmp_path, insecure=True)
    assert instance.call("GET", "/x") == {"ok": True}
    serving.join(timeout=10)


def test_provision_fails_on_an_incomplete_configuration(tmp_path: Path) -> None:
    config = portal_json("customer-customerselfservice.yaml", "ftp://x", credentials(tmp_path))
    config["features"].remove("identity")
    config["features"].append("teleportation")
    code, _, message = run(tmp_path, config, "provision")
    assert code == 1
    assert message.startswith("configuration incomplete: ")
    for part in (
        "features lack identity",
        "does not implement the feature(s) teleportation",
        "instance.url 'ftp://x' is not an http(s) URL",
        "the secret file /etc/portico/secrets/",  # the analytics key and OIDC secret: not mounted
    ):
        assert part in message


def test_provision_without_configuration_or_credentials(tmp_path: Path) -> None:
    config = portal_json("customer-custom.yaml", "http://127.0.0.1:1", tmp_path / "nothing")
    code, _, message = run(tmp_path, config, "provision")
    assert code == 1 and message.startswith("no instance credentials in ")
    code, _, message = run(tmp_path, {"portal": {}}, "provision")
    assert code == 1 and "needs the objects 'portal' and 'instance'" in message


def test_import_translations_keeps_edited_strings(tmp_path: Path) -> None:
    with running_instance() as (url, state):
        config = portal_json("customer-customerselfservice.yaml", url, credentials(tmp_path))
        key = f"{config['portal']['namespace']}/{config['portal']['name']}"
        state.translations[key] = {"de-DE": {"welcome": "Hallo!"}}
        state.edited[key] = {"de-DE": {"welcome"}}
        code, out, message = run(tmp_path, config, "import-translations", "de-DE")
        assert (code, message) == (0, ""), message
        assert "1 edited strings kept" in out
        assert state.translations[key]["de-DE"]["welcome"] == "Hallo!"
        assert state.translations[key]["de-DE"]["features"] == "Funktionen"


@pytest.mark.parametrize(
    ("languages", "expected"),
    [
        (["it-IT"], "it-IT is not one of the portal's languages"),
        ([], "import-translations needs at least one language"),
    ],
)
def test_import_translations_failures(tmp_path: Path, languages: list[str], expected: str) -> None:
    config = portal_json("customer-customerselfservice.yaml", "http://x", credentials(tmp_path))
    code, _, message = run(tmp_path, config, "import-translations", *languages)
    assert code == 1 and expected in message


def test_a_language_without_a_bundle_fails(tmp_path: Path) -> None:
    config = portal_json("customer-customerselfservice.yaml", "http://x", credentials(tmp_path))
    config["languages"].append("nl-NL")
    code, _, message = run(tmp_path, config, "import-translations", "nl-NL")
    assert code == 1 and message.startswith("no translation bundle for nl-NL")


def test_every_example_language_has_a_complete_bundle() -> None:
    root = Path(__file__).resolve().parents[2]
    instance = yaml.safe_load((root / "examples" / "contoso-instance.yaml").read_text())
    languages = instance["spec"]["languages"]
    keys = set(translations.bundle("en-US"))
    for lang in languages:
        assert set(translations.bundle(lang)) == keys, lang


def test_the_runtime_implements_every_feature_the_operator_configures() -> None:
    from portico.core import features

    templates = list(features._TEMPLATE_FEATURES)
    assert len(templates) == 7
    for template in templates:
        assert set(features.features(template)) <= jobs.FEATURES, template
        assert set(jobs.REQUIRED_FEATURES) <= set(features.features(template)), template
