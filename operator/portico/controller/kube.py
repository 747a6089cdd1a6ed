"""A small, typed REST layer over the official client's connection (auth, TLS, token refresh).

Reads are used by `observe`; the write verbs are called from `act` and, for the
Lease, from `leader`. The official client blocks, so everything here runs in
worker threads.

`Kube.request` is the only place a request is repeated: the client's urllib3 pool
is told never to retry (`Retry(total=0)`; by default it repeats a PUT or DELETE
answered 429/503 with a Retry-After, out of reach of the leader's fence and past
the cap here). The guard (the leader's fence) runs before every attempt.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import kubernetes
import urllib3


@dataclass(frozen=True)
class Resource:
    prefix: str  # /api/v1 or /apis/GROUP/VERSION
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return self.prefix.removeprefix("/apis/").removeprefix("/api/")

    def path(self, namespace: str | None = None, name: str | None = None, sub: str = "") -> str:
        parts = [self.prefix]
        if self.namespaced and namespace:
            parts += ["namespaces", namespace]
        parts.append(self.plural)
        if name:
            parts.append(name)
        if sub:
            parts.append(sub)
        return "/".join(parts)


RESOURCES = {
    "Portal": Resource("/apis/portico.dev/v1alpha1", "portals"),
    "PortalInstance": Resource("/apis/portico.dev/v1alpha1", "portalinstances", namespaced=False),
    "PortalInvitation": Resource("/apis/portico.dev/v1alpha1", "portalinvitations"),
    "Namespace": Resource("/api/v1", "namespaces", namespaced=False),
    "ConfigMap": Resource("/api/v1", "configmaps"),
    "Secret": Resource("/api/v1", "secrets"),
    "Service": Resource("/api/v1", "services"),
    "Pod": Resource("/api/v1", "pods"),
    "Event": Resource("/api/v1", "events"),
    "Deployment": Resource("/apis/apps/v1", "deployments"),
    "Job": Resource("/apis/batch/v1", "jobs"),
    "Ingress": Resource("/apis/networking.k8s.io/v1", "ingresses"),
    "NetworkPolicy": Resource("/apis/networking.k8s.io/v1", "networkpolicies"),
    "Certificate": Resource("/apis/cert-manager.io/v1", "certificates"),
    "Middleware": Resource("/apis/traefik.io/v1alpha1", "middlewares"),
    "EndpointSlice": Resource("/apis/discovery.k8s.io/v1", "endpointslices"),
    "ValidatingAdmissionPolicy": Resource(
        "/apis/admissionregistration.k8s.io/v1", "validatingadmissionpolicies", namespaced=False
    ),
}


# A 429 is retried here after the server's Retry-After (capped), a few times, before
# it reaches the queue's backoff: the server said when, so waiting less only adds load.
# A read that failed on the way (a kept-alive connection the server had closed) is
# retried after a short pause; a write is left to the work queue's backoff.
THROTTLE_RETRIES, RETRY_AFTER_MAX, TRANSPORT_PAUSE = 3, 10.0, 0.2
PAGE = 500  # objects per list request
# Accept header of a metadata-only GET (the API server answers a PartialObjectMetadata).
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


class ApiError(Exception):
    """A non-2xx answer; the message carries the API server's own words, never a body we sent."""

    def __init__(self, status: int, reason: str, message: str, retry_after: float = 0.0) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


def connect(kubeconfig: str | None = None, connections: int = 10) -> kubernetes.client.ApiClient:
    """In-cluster service account when there is one, else the kubeconfig. CONNECTIONS:
    kept open to the API server, one per request that may be in flight at once."""
    configuration = None
    if kubeconfig is None:
        try:
            kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
            configuration = kubernetes.client.Configuration.get_default_copy()
        except kubernetes.config.ConfigException:
            pass
    if configuration is None:
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=configuration
        )
    return client_for(configuration, connections)


def client_for(
    configuration: kubernetes.client.Configuration, connections: int = 10
) -> kubernetes.client.ApiClient:
    """The official client on CONFIGURATION, with its pool's own retries off."""
    configuration.connection_pool_maxsize = connections
    configuration.retries = urllib3.Retry(total=0, redirect=0)
    configuration.client_go_retries = False
    return kubernetes.client.ApiClient(configuration)


class Kube:
    def __init__(self, client: kubernetes.client.ApiClient) -> None:
        self.client = client

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
        timeout: float = 30.0,
        guard: Callable[[str, str], None] | None = None,
        accept: str = "application/json",
    ) -> Any:
        """GUARD runs before every attempt: a leader's fence refuses a write there, also a
        write repeated after a 429's Retry-After. Nothing below this repeats a request."""
        guard = guard or _unguarded
        for _ in range(THROTTLE_RETRIES):
            try:
                guard(method, path)
                return self._request(method, path, body, query, content_type, timeout, accept)
            except ApiError as err:
                if err.status != 429:
                    raise
                time.sleep(min(err.retry_after or 1.0, RETRY_AFTER_MAX))
            except urllib3.exceptions.HTTPError:
                if method != "GET":
                    raise
                time.sleep(TRANSPORT_PAUSE)
        guard(method, path)
        return self._request(method, path, body, query, content_type, timeout, accept)

    def _request(
        self,
        method: str,
        path: str,
        body: Any,
        query: dict[str, str] | None,
        content_type: str,
        timeout: float,
        accept: str = "application/json",
    ) -> Any:
        """One attempt."""
        url_query = [(k, v) for k, v in (query or {}).items()]
        params = self.client.param_serialize(
            method=method,
            resource_path=path,
            query_params=url_query,
            header_params={"Content-Type": content_type, "Accept": accept},
            body=body,  # the client serialises dicts as JSON (valid YAML for apply patches)
            auth_settings=["BearerToken"],
        )
        try:
            response = self.client.call_api(*params, _request_timeout=timeout)
        except kubernetes.client.exceptions.ApiException as err:
            retry_after = (err.headers or {}).get("Retry-After")
            raise _api_error(err.status or 0, err.reason or "", err.body, retry_after) from None
        raw = response.read()  # type: ignore[no-untyped-call]
        if response.status >= 300:
            retry_after = response.getheader("Retry-After")  # type: ignore[no-untyped-call]
            raise _api_error(response.status, response.reason or "", raw, retry_after)
        return json.loads(raw) if raw else None

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            result: dict[str, Any] = self.request("GET", RESOURCES[kind].path(namespace, name))
        except ApiError as err:
            if err.status == 404:
                return None
            raise
        return result

    def get_metadata(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object's metadata alone (PartialObjectMetadata: a Secret's data never leaves
        the API server), or None when it does not exist."""
        try:
            result = self.request(
                "GET", RESOURCES[kind].path(namespace, name), accept=METADATA_ONLY
            )
        except ApiError as err:
            if err.status == 404:
                return None
            raise
        meta: dict[str, Any] = (result or {}).get("metadata") or {}
        return meta

    def list(
        self, kind: str, namespace: str | None = None, labels: str | None = None
    ) -> list[dict[str, Any]]:
        return [*self.each(kind, namespace, labels)]

    def each(
        self, kind: str, namespace: str | None = None, labels: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every object, a page at a time: a large fleet is never held as one list."""
        query = {"limit": str(PAGE)} | ({"labelSelector": labels} if labels else {})
        while True:
            try:
                result = self.request("GET", RESOURCES[kind].path(namespace), query=query)
            except ApiError as err:
                if err.status == 404:  # e.g. cert-manager's CRD is not installed
                    return
                raise
            yield from result.get("items", [])
            more = (result.get("metadata") or {}).get("continue")
            if not more:
                return
            query = {**query, "continue": more}

    def served(self, kind: str) -> bool:
        """Whether the API server serves KIND at all (a CRD may not be installed). Only a
        404 says no: a 403 (a namespaced role asked cluster-wide) names a resource it knows."""
        try:
            self.request("GET", RESOURCES[kind].path(None), query={"limit": "1"})
        except ApiError as err:
            return err.status != 404
        return True


def _unguarded(method: str, path: str) -> None:
    return None


def _api_error(status: int, reason: str, body: Any, retry_after: Any = None) -> ApiError:
    message, seconds = "", 0.0
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        message = json.loads(body).get("message", "")
    with contextlib.suppress(TypeError, ValueError):
        seconds = max(0.0, float(retry_after))  # delta-seconds; an HTTP date counts as absent
    return ApiError(status, reason, message, seconds)
