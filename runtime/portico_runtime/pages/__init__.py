"""`portico-runtime pages`: the one page server for every portal (docs/runtime-contract.md).

It watches Portals and the portals' EndpointSlices read-only (watch.py), keeps what a
visitor may see of each (sites.py), and answers each request for a portal's host with
the portal's public page, or, once the portal is Ready, with the portal itself
(app.py, proxy.py).
"""

from __future__ import annotations

import threading

from starlette.applications import Starlette

from portico_runtime.pages import watch
from portico_runtime.pages.app import create_app
from portico_runtime.pages.sites import Directory, Site, site


def serve_app(api: watch.Api | None = None) -> tuple[Starlette, threading.Event]:
    """The app with its watches started; set the event to stop them."""
    api = api or watch.Api.from_env()
    directory, stop = Directory(), threading.Event()
    watch.start(api, directory, stop)

    def refresh(key: tuple[str, str]) -> Site | None:
        obj = watch.fresh_site(api, key)
        new = site(obj) if obj else None
        directory.put_site(key, new)
        return new

    def reroute(key: tuple[str, str]) -> None:
        for slice_ in watch.fresh_slices(api, key):
            directory.put_slice(slice_)

    return create_app(directory, refresh, reroute), stop


__all__ = ["Directory", "create_app", "serve_app"]
