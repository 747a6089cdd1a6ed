"""Who claims and references what, indexed so every lookup costs the same at any fleet size.

Subdomain and custom-host claims (the oldest claim wins), the instance each
portal links to, and the Secrets each portal and instance references. Kept
current by the watch handlers; names only, never Secret values. The store's lock
guards it: every method takes it, and what a look-up returns is immutable.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field, replace

from portico.api.model import Portal
from portico.core.claims import Claimant
from portico.core.rename import HELD

NsName = tuple[str, str]


def referenced_secrets(portal: Portal) -> list[str]:
    """Every Secret in the portal's namespace whose content a reconcile looks at."""
    refs = {ref.name for ref in portal.secret_refs}
    if cd := portal.custom_domain:
        if cd.pfx:
            refs.add(cd.pfx.name)
        if cd.tls_secret:
            refs.add(cd.tls_secret)
        if cd.issuer:
            refs.add(f"{portal.name}-tls")  # issued by cert-manager, not labelled as ours
    return sorted(refs)


@dataclass(frozen=True)
class Entry:
    claimant: Claimant  # its custom host's claim (and its name, namespace, subdomain)
    instance: str
    secrets: frozenset[str]
    # Its claim on its spec's subdomain (a rename's counts from the rename, core/rename.py)
    # and on the previous subdomains it still holds (HELD: before every other claim).
    subdomain_claim: Claimant | None = None
    held: tuple[Claimant, ...] = ()

    def subdomain_claims(self) -> tuple[Claimant, ...]:
        return (self.subdomain_claim or self.claimant, *self.held)


@dataclass
class Index:
    lock: threading.RLock = field(default_factory=threading.RLock)
    entries: dict[NsName, Entry] = field(default_factory=dict)
    subdomains: dict[str, set[Claimant]] = field(default_factory=lambda: defaultdict(set))
    hosts: dict[str, set[Claimant]] = field(default_factory=lambda: defaultdict(set))
    linked: dict[str, set[NsName]] = field(default_factory=lambda: defaultdict(set))
    secret_users: dict[NsName, set[NsName]] = field(default_factory=lambda: defaultdict(set))
    # instance name → (namespace, name) of its credentials Secret
    credentials: dict[str, NsName] = field(default_factory=dict)
    credential_users: dict[NsName, set[str]] = field(default_factory=lambda: defaultdict(set))
    # The operator's Secret with the portals' mail login (settings), copied to every portal.
    mail_secret: NsName | None = None

    def put(
        self,
        portal: Portal,
        created: str,
        subdomain_since: str = "",
        held: tuple[str, ...] = (),
    ) -> Entry | None:
        """Index PORTAL, its claims counting from CREATED (its subdomain's from
        SUBDOMAIN_SINCE when given), holding the subdomains HELD too; returns the entry
        it replaced (None when new)."""
        with self.lock:
            key = (portal.namespace, portal.name)
            host = portal.custom_domain.hostname if portal.custom_domain else ""
            claimant = Claimant(created, portal.namespace, portal.name, portal.subdomain, host)
            own = Claimant(subdomain_since or created, portal.namespace, portal.name)
            entry = Entry(
                claimant,
                portal.instance,
                frozenset(referenced_secrets(portal)),
                replace(own, subdomain=portal.subdomain),
                tuple(replace(own, created=HELD, subdomain=name) for name in held),
            )
            old = self.remove(key)
            self.entries[key] = entry
            for claim in entry.subdomain_claims():
                self.subdomains[claim.subdomain].add(claim)
            if host:
                self.hosts[host].add(entry.claimant)
            self.linked[portal.instance].add(key)
            for secret in entry.secrets:
                self.secret_users[(portal.namespace, secret)].add(key)
            return old

    def remove(self, key: NsName) -> Entry | None:
        with self.lock:
            entry = self.entries.pop(key, None)
            if entry is None:
                return None
            for claim in entry.subdomain_claims():
                _discard(self.subdomains, claim.subdomain, claim)
            _discard(self.hosts, entry.claimant.hostname, entry.claimant)
            _discard(self.linked, entry.instance, key)
            for secret in entry.secrets:
                _discard(self.secret_users, (key[0], secret), key)
            return entry

    def subdomain_owner(self, subdomain: str) -> Claimant | None:
        with self.lock:
            return min(self.subdomains.get(subdomain) or (), default=None)

    def subdomain_claimants(self, subdomain: str) -> set[NsName]:
        with self.lock:
            return {(c.namespace, c.name) for c in self.subdomains.get(subdomain, ())}

    def host_owner(self, host: str) -> Claimant | None:
        with self.lock:
            return min(self.hosts.get(host) or (), default=None) if host else None

    def contenders(self, entry: Entry) -> set[NsName]:
        """Portals waiting on a claim ENTRY holds (to wake when it is released)."""
        with self.lock:
            found = {
                (c.namespace, c.name)
                for claim in entry.subdomain_claims()
                for c in self.subdomains.get(claim.subdomain, ())
            }
            if entry.claimant.hostname:
                found |= {
                    (c.namespace, c.name) for c in self.hosts.get(entry.claimant.hostname, ())
                }
            return found

    def put_instance(self, name: str, credentials: NsName | None) -> None:
        with self.lock:
            old = self.credentials.pop(name, None)
            if old:
                _discard(self.credential_users, old, name)
            if credentials:
                self.credentials[name] = credentials
                self.credential_users[credentials].add(name)

    def linked_to(self, instance: str) -> list[NsName]:
        with self.lock:
            return list(self.linked.get(instance, ()))

    def users_of(self, namespace: str, secret: str) -> tuple[list[NsName], list[str]]:
        """The portals that reference the Secret, and the instances it is the credentials of."""
        with self.lock:
            key = (namespace, secret)
            return list(self.secret_users.get(key, ())), list(self.credential_users.get(key, ()))

    def secrets_of(self, key: NsName) -> list[str]:
        with self.lock:
            entry = self.entries.get(key)
            return sorted(entry.secrets) if entry else []

    def wants_data(self, namespace: str, name: str) -> bool:
        key = (namespace, name)
        with self.lock:
            copied = key in self.credential_users or key == self.mail_secret
            return key in self.secret_users or copied

    def portals(self) -> list[NsName]:
        with self.lock:
            return list(self.entries)


def _discard(index: dict[object, set[object]] | dict, key: object, value: object) -> None:  # type: ignore[type-arg]
    members = index.get(key)
    if members is not None:
        members.discard(value)
        if not members:
            del index[key]
