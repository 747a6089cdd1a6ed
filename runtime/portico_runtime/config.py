"""`portal.json`, read when it is used: the kubelet updates a mounted ConfigMap in place."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PATH = "/etc/portico/portal.json"


class ConfigError(Exception):
    """The configuration is missing or unusable; the message says what to fix."""


@dataclass(frozen=True)
class Portal:
    """The fields of portal.json the runtime acts on; `raw` keeps the rest."""

    name: str
    namespace: str
    display_name: str
    url: str
    audience: str
    template: str
    language: str
    languages: tuple[str, ...]
    features: tuple[str, ...]
    solutions: tuple[str, ...]
    instance_url: str
    credentials_dir: str
    custom_domain: str = ""
    # The PortalInstance allows plain http (spec.insecure): for test instances only.
    instance_insecure: bool = False
    secret_files: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def config_path() -> Path:
    return Path(os.environ.get("PORTICO_CONFIG", DEFAULT_PATH))


def _str(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}.{key} is missing or empty")
    return value


def _strings(data: dict[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{key} must be a list of strings")
    return tuple(value)


def parse(data: Any) -> Portal:
    """Check the shape Portico writes; every problem is one line naming the field."""
    if not isinstance(data, dict):
        raise ConfigError("portal.json is not a JSON object")
    portal = data.get("portal")
    instance = data.get("instance")
    if not isinstance(portal, dict) or not isinstance(instance, dict):
        raise ConfigError("portal.json needs the objects 'portal' and 'instance'")
    secret_files = [
        idp.get("clientSecretFile", "")
        for idp in (data.get("authentication") or {}).get("identityProviders") or []
        if isinstance(idp, dict)
    ]
    insights = (data.get("analytics") or {}).get("customerInsights") or {}
    if isinstance(insights, dict) and insights.get("sharedKeyFile"):
        secret_files.append(insights["sharedKeyFile"])
    events = (data.get("analytics") or {}).get("cloudEvents") or {}
    if isinstance(events, dict) and events.get("headersFile"):
        secret_files.append(events["headersFile"])
    return Portal(
        name=_str(portal, "name", "portal"),
        namespace=_str(portal, "namespace", "portal"),
        display_name=_str(portal, "displayName", "portal"),
        url=_str(portal, "url", "portal"),
        audience=_str(portal, "audience", "portal"),
        template=_str(portal, "template", "portal"),
        custom_domain=str(portal.get("customDomain") or ""),
        language=_str(data, "language", "portal.json"),
        languages=_strings(data, "languages"),
        features=_strings(data, "features"),
        solutions=_strings(data, "solutions"),
        instance_url=str(instance.get("url") or ""),
        credentials_dir=str(instance.get("credentialsDir") or ""),
        instance_insecure=instance.get("insecure") is True,
        secret_files=tuple(str(f) for f in secret_files),
        raw=data,
    )


def load(path: Path | None = None) -> Portal:
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no configuration at {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return parse(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not JSON (line {exc.lineno}: {exc.msg})") from None


class Reader:
    """The current configuration, re-read when the file changes (checked per request)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_path()
        self._stamp: tuple[int, int] | None = None
        self._value: Portal | ConfigError = ConfigError("not read yet")

    def get(self) -> Portal:
        """The configuration, or ConfigError; a ConfigMap update is seen on the next call."""
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if stamp is None or stamp != self._stamp:
            try:
                self._value = load(self.path)
            except ConfigError as exc:
                self._value = exc
            self._stamp = stamp
        if isinstance(self._value, ConfigError):
            raise self._value
        return self._value
