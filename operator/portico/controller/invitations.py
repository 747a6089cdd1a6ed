"""One reconcile of a PortalInvitation: observe → decide (core/invitation.py) → act.

The code is made here, once, from the OS's CSPRNG, and kept only in the invitation's
link Secret `<invitation>-link` (owned by the invitation, for both deliveries): the
e-mail is sent from it, so a restart between making the code and sending it loses
nothing and never makes a second code. The instance gets only the code's hash.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime
import hashlib
import logging
import secrets
import urllib.parse
from dataclasses import dataclass
from typing import Any

from portico.api import crds, validation
from portico.api.model import Invitation, parse_instance, parse_invitation
from portico.controller import metrics
from portico.controller.act import FIELD_MANAGER, Writer
from portico.controller.instance_api import InstanceClient, InstanceError, portal_path
from portico.controller.kube import RESOURCES, ApiError
from portico.controller.mail import MailError, MailLogin, login_from, send
from portico.controller.observe import Observer, parse
from portico.controller.store import Store, controller_uid
from portico.core import invitation_mail, names, render
from portico.core.conditions import false, to_status
from portico.core.invitation import Delivery, Observed, Plan, decide, expiry, sending_marker
from portico.settings import Settings

log = logging.getLogger("portico.invitations")
CODE_BYTES = 32  # secrets.token_urlsafe: 32 random bytes, 43 URL-safe characters


def code_hash(code: str) -> str:
    return "sha256:" + hashlib.sha256(code.encode()).hexdigest()


def code_of(link: str) -> str:
    query = urllib.parse.urlsplit(link).query
    return urllib.parse.parse_qs(query).get("invitation", [""])[0]


def parse_invitation_obj(obj: dict[str, Any]) -> Invitation:
    schema = crds.schema_for("PortalInvitation")
    return parse_invitation(validation.apply_defaults(schema, copy.deepcopy(obj)))


@dataclass
class Invitations:
    settings: Settings
    store: Store
    observer: Observer
    writer: Writer

    # ---- observe -----------------------------------------------------------

    def observe(self, namespace: str, name: str) -> Observed | None:
        obj = self.store.invitations.get((namespace, name))
        if obj is None:
            return None
        inv = parse_invitation_obj(obj)
        portal_obj = self.store.portals.get((namespace, inv.portal))
        portal = parse(portal_obj) if portal_obj else None
        instance_obj = self.store.instance(portal.instance) if portal else None
        instance = parse_instance(instance_obj) if instance_obj else None
        credentials = self.observer.credentials(instance) if instance else None
        o = Observed(
            obj=obj,
            invitation=inv,
            portal=portal,
            instance_found=instance is not None,
            credentials_found=credentials is not None,
            link_hash=self._link_hash(inv),
            mail_configured=bool(self.settings.mail_host),
        )
        if instance is None or credentials is None or portal is None:
            return o
        if o.link_hash is None and not inv.deleting:
            return o  # nothing registered yet: the code is made first
        try:
            remote = self.client(inv).get_invitation(portal_path(namespace, inv.portal), inv.uid)
        except InstanceError as err:
            return dataclasses.replace(o, remote_error=str(err))
        return dataclasses.replace(o, remote=remote)

    def client(self, inv: Invitation) -> InstanceClient:
        portal = parse(self.store.portals[(inv.namespace, inv.portal)])
        instance_obj = self.store.instance(portal.instance)
        assert instance_obj is not None
        instance = parse_instance(instance_obj)
        credentials = self.observer.credentials(instance)
        assert credentials is not None
        return InstanceClient(instance.url, credentials, instance.insecure)

    def _link(self, inv: Invitation) -> str | None:
        """The link from the invitation's own Secret (one it controls), else None."""
        key = (inv.namespace, names.invitation_link_name(inv.name))
        packed = self.store.children["Secret"].packed.get(key)
        if packed is None or packed.controller != inv.uid:
            return None
        raw = (packed.unpack().get("data") or {}).get("link", "")
        return base64.b64decode(raw).decode(errors="replace") if raw else None

    def _link_hash(self, inv: Invitation) -> str | None:
        link = self._link(inv)
        code = code_of(link) if link else ""
        return code_hash(code) if code else None

    # ---- act ---------------------------------------------------------------

    def reconcile(
        self, namespace: str, name: str, now: datetime.datetime | None = None
    ) -> float | None:
        """Returns when to come back (None: not until something changes)."""
        now = now or datetime.datetime.now(datetime.UTC)
        o: Observed | None = None
        try:
            for _ in range(3):  # after making the link, decide again with it
                o = self.observe(namespace, name)
                if o is None:
                    return None
                plan = self._decide(o, now)
                if plan.make_link:
                    self._make_link(o)
                    continue
                return self._carry_out(o, plan, now)
            raise RuntimeError("the link Secret did not appear after it was made")
        except Exception as err:  # reported in status; the queue backs off
            self._report(o, err, now)
            raise

    def _decide(self, o: Observed, now: datetime.datetime) -> Plan:
        s = self.settings
        return decide(o, now, s.invitation_poll_seconds, s.invitation_retry_seconds)

    def _carry_out(self, o: Observed, plan: Plan, now: datetime.datetime) -> float | None:
        inv = o.invitation
        if plan.add_finalizer:
            self._finalizers(o, [*inv.finalizers, names.INVITATION_FINALIZER])
        try:
            self._instance_writes(o, plan)
        except InstanceError as err:  # decided again: the failure is the instance's
            plan = self._decide(dataclasses.replace(o, remote=None, remote_error=str(err)), now)
        if plan.remove_finalizer:
            self._finalizers(o, [f for f in inv.finalizers if f != names.INVITATION_FINALIZER])
            return None
        if plan.send is not None:
            o = self._send(o, plan.send, now)
            plan = self._decide(o, now)
        if plan.status is not None:
            self._status(o, plan.status)
        for event in plan.events:
            self.writer.event(dict(o.obj), event.type, event.reason, event.message)
        return plan.requeue_after

    def _instance_writes(self, o: Observed, plan: Plan) -> None:
        if plan.register is None and not plan.undo:
            return
        inv = o.invitation
        client, path = self.client(inv), portal_path(inv.namespace, inv.portal)
        if plan.register is not None:
            client.put_invitation(path, inv.uid, plan.register)
        for contact in plan.undo:
            client.undo_redemption(path, inv.uid, contact)
            log.info(
                "undid the redemption of %s on invitation %s/%s", contact, inv.namespace, inv.name
            )

    def _make_link(self, o: Observed) -> None:
        """The code, made once: the Secret is created, never replaced (a second code
        would leave the first one's e-mail dead)."""
        inv, portal = o.invitation, o.portal
        assert portal is not None
        code = secrets.token_urlsafe(CODE_BYTES)
        status = portal_obj_status(self.store, inv)
        base = (
            status.get("customDomainUrl")
            or status.get("url")
            or render.default_url(portal, self.settings)
        )
        link = f"{base.rstrip('/')}/register?invitation={code}"
        secret_name = names.invitation_link_name(inv.name)
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": secret_name,
                "namespace": inv.namespace,
                "labels": names.invitation_labels(inv.name, inv.portal),
                "ownerReferences": [inv.owner_reference()],
            },
            "type": "Opaque",
            "data": {"link": base64.b64encode(link.encode()).decode()},
        }
        path = RESOURCES["Secret"].path(inv.namespace)
        try:
            made = self.writer.kube.request("POST", path, body, {"fieldManager": FIELD_MANAGER})
            metrics.WRITES.labels(kind="Secret", verb="POST").inc()
        except ApiError as err:
            if err.status != 409:
                raise
            made = self.writer.kube.get("Secret", inv.namespace, secret_name)
            if made is None or controller_uid(made) != inv.uid:
                raise RuntimeError(
                    f"Secret {secret_name} exists and is not this invitation's; delete or "
                    "rename it, or rename the invitation"
                ) from None
        self.store.put_child("Secret", made)

    def _send(self, o: Observed, round_: str, now: datetime.datetime) -> Observed:
        """Mark the round in flight, hand the message over, and return what happened."""
        inv, portal = o.invitation, o.portal
        assert portal is not None and inv.contact is not None
        link = self._link(inv) or ""
        old = dict(o.status)
        marked = {**old, "sending": sending_marker(round_)}
        result = self.writer.patch_status("PortalInvitation", inv.namespace, inv.name, old, marked)
        if result is not None:
            self.store.put_invitation(result)
        obj = {**o.obj, "status": marked}
        message = invitation_mail.compose(
            language=portal.language,
            portal=portal.display_name,
            contact=inv.contact,
            link=link,
            expires=names.iso(expiry(inv)),
            sender=self.settings.mail_from,
        )
        try:
            send(self.settings, message, self._login())
            outcome = Delivery(round_, True)
            log.info("invitation %s/%s e-mailed to %s", inv.namespace, inv.name, inv.contact.email)
        except MailError as err:
            said = str(err).replace(code_of(link), "[redacted]") if code_of(link) else str(err)
            outcome = Delivery(round_, False, said)
            log.warning("invitation %s/%s not delivered: %s", inv.namespace, inv.name, said)
        return dataclasses.replace(o, obj=obj, delivery=outcome)

    def _login(self) -> MailLogin | None:
        return login_from(self.settings, self.writer.kube)

    def _finalizers(self, o: Observed, finalizers: list[str]) -> None:
        inv = o.invitation
        body = {
            "metadata": {
                "finalizers": finalizers,
                "resourceVersion": o.obj["metadata"].get("resourceVersion"),
            }
        }
        path = RESOURCES["PortalInvitation"].path(inv.namespace, inv.name)
        result = self.writer.kube.request("PATCH", path, body, None, "application/merge-patch+json")
        metrics.WRITES.labels(kind="PortalInvitation", verb="PATCH").inc()
        if isinstance(result, dict) and "metadata" in result:
            self.store.put_invitation(result)

    def _status(self, o: Observed, status: dict[str, Any]) -> None:
        inv = o.invitation
        current = self.store.invitations.get((inv.namespace, inv.name)) or o.obj
        old = dict(current.get("status") or o.status)
        result = self.writer.patch_status("PortalInvitation", inv.namespace, inv.name, old, status)
        if result is not None:
            self.store.put_invitation(result)

    def _report(self, o: Observed | None, err: Exception, now: datetime.datetime) -> None:
        """An unexpected failure: logged, and Synced=False in the invitation's status."""
        metrics.RECONCILE_ERRORS.inc()
        trace = None if isinstance(err, ApiError | InstanceError) else err
        what = (
            str(err)
            if isinstance(err, ApiError | InstanceError | RuntimeError)
            else (f"internal error ({type(err).__name__}); see the operator's log")
        )
        if o is None:
            log.error("reconcile of an invitation failed: %s", what, exc_info=trace)
            return
        inv = o.invitation
        log.error(
            "reconcile of invitation %s/%s failed: %s",
            inv.namespace,
            inv.name,
            what,
            exc_info=trace,
        )
        old = dict(o.status)
        kept_conditions = [c for c in old.get("conditions") or () if c.get("type") != "Synced"]
        synced = to_status(
            [false("Synced", "ReconcileError", what)],
            old.get("conditions") or (),
            inv.generation,
            names.iso(now),
        )
        try:
            self.writer.patch_status(
                "PortalInvitation",
                inv.namespace,
                inv.name,
                old,
                {**old, "conditions": [*kept_conditions, *synced]},
            )
        except Exception as unrecorded:
            log.warning(
                "could not record the failure of %s/%s: %s", inv.namespace, inv.name, unrecorded
            )


def portal_obj_status(store: Store, inv: Invitation) -> dict[str, Any]:
    obj = store.portals.get((inv.namespace, inv.portal)) or {}
    return dict(obj.get("status") or {})
