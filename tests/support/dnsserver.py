"""A real authoritative DNS server (NSD) on loopback, for tests.

Usage in a test module (or a conftest)::

    from tests.support.dnsserver import dns_server  # the fixture

    def test_x(dns_server):
        dns_server.set_zone("contoso.test", ["support IN CNAME web.portals.test."])
        settings = dns_server.settings()        # a portico ResolverSettings
        ...
        dns_server.set_zone("contoso.test", [...])  # rewrite + reload, waits until served
        dns_server.stop(); dns_server.start()

or, for one server shared by many tests, `with running_dns(dir, zones) as server:`
in a module- or session-scoped fixture (one start for every zone).

Each zone gets an SOA, an NS `ns.<zone>` and `ns.<zone> A 127.0.0.1`, so the
authoritative resolver mode finds this same server. Records are zone-file
lines relative to the origin. NSD reloads changed zone files on SIGHUP but
only reads its zone list at start, so adding a zone restarts it (same port).

Without the `nsd` binary the fixture skips with the reason, or fails when
PORTICO_REQUIRE_CONTROLPLANE=1 (CI installs it with .ci/install-system-packages).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from portico.domain import ResolverSettings

ADDRESS = "127.0.0.1"
START_TIMEOUT = 15.0


def find_nsd() -> str | None:
    return shutil.which("nsd") or next(
        (p for p in ("/usr/sbin/nsd", "/usr/local/sbin/nsd") if os.access(p, os.X_OK)), None
    )


def _free_port() -> int:
    """A port free for both UDP and TCP on loopback (NSD needs both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((ADDRESS, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((ADDRESS, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free loopback port for the DNS server")


class AuthoritativeDNS:
    """NSD serving the zones given to `set_zone` on ADDRESS:port."""

    def __init__(self, workdir: Path, binary: str) -> None:
        self.workdir = workdir
        self.binary = binary
        self.address = ADDRESS
        self.port = _free_port()
        self.zones: dict[str, list[str]] = {}
        self._serial = int(time.time())
        self._mtime = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    # --- lifecycle -------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        self._write_config()
        log = self.workdir / "nsd.log"
        log.unlink(missing_ok=True)
        self._process = subprocess.Popen(
            [self.binary, "-d", "-c", str(self.workdir / "nsd.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Serving "." (REFUSED) proves the sockets; each zone's SOA proves it loaded.
        self._wait_until(
            lambda: self._answers(".") and all(self._soa_serial(z) for z in self.zones), "start"
        )

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    close = stop

    # --- zones -----------------------------------------------------------
    def set_zone(self, origin: str, records: Iterable[str] = ()) -> None:
        """Serve origin with these records; returns once the new serial is served."""
        self.set_zones({origin: records})

    def set_zones(self, zones: Mapping[str, Iterable[str]]) -> None:
        """Replace the records of several zones with one reload (or one restart if any is new)."""
        serials: dict[str, int] = {}
        new = False
        for origin, records in zones.items():
            origin = origin.rstrip(".").lower()
            new = new or origin not in self.zones
            self.zones[origin] = list(records)
            serials[origin] = self._write_zone(origin)
        if not self.running:
            return
        if new:
            self.stop()
            self.start()
        else:
            assert self._process is not None
            self._process.send_signal(signal.SIGHUP)
        self._wait_until(
            lambda: all(self._soa_serial(o) == n for o, n in serials.items()), "reload zones"
        )

    def settings(self, *, timeout: float = 2.0, authoritative: bool = False) -> ResolverSettings:
        """Resolver settings that point portico's checks at this server."""
        return ResolverSettings(
            nameservers=(f"{self.address}:{self.port}",),
            port=self.port,
            timeout=timeout,
            authoritative=authoritative,
        )

    def operator_env(self) -> dict[str, str]:
        """The operator's settings that point its checks at this server, with the short
        timeout and re-check the tests wait on."""
        return {
            "PORTICO_DNS_NAMESERVERS": f"{self.address}:{self.port}",
            "PORTICO_DNS_TIMEOUT": "1",
            "PORTICO_DNS_RECHECK_SECONDS": "0.5",
        }

    # --- internals -------------------------------------------------------
    def _write_zone(self, origin: str) -> int:
        self._serial += 1
        lines = [
            f"$ORIGIN {origin}.",
            "$TTL 1",
            f"@ IN SOA ns.{origin}. hostmaster.{origin}. {self._serial} 60 60 60 1",
            f"@ IN NS ns.{origin}.",
            f"ns IN A {self.address}",
            *self.zones[origin],
        ]
        path = self.workdir / f"{origin}.zone"
        path.write_text("\n".join(lines) + "\n")
        # NSD reloads by modification time: make it move even within one second.
        self._mtime = max(self._mtime + 1, time.time())
        os.utime(path, (self._mtime, self._mtime))
        return self._serial

    def _write_config(self) -> None:
        d = self.workdir
        zones = "".join(f'zone:\n  name: "{z}"\n  zonefile: "{d / z}.zone"\n' for z in self.zones)
        (d / "nsd.conf").write_text(
            "server:\n"
            f"  ip-address: {self.address}@{self.port}\n"
            '  username: ""\n'
            '  chroot: ""\n'
            f'  zonesdir: "{d}"\n'
            f'  pidfile: "{d / "nsd.pid"}"\n'
            '  database: ""\n'
            f'  zonelistfile: "{d / "zone.list"}"\n'
            f'  xfrdfile: "{d / "xfrd.state"}"\n'
            f'  xfrdir: "{d}"\n'
            f'  logfile: "{d / "nsd.log"}"\n'
            "  server-count: 1\n"
            "  verbosity: 1\n"
            "  reuseport: no\n"
            "remote-control:\n"
            "  control-enable: no\n" + zones
        )

    def _query(self, name: str, rdtype: dns.rdatatype.RdataType) -> dns.message.Message | None:
        try:
            return dns.query.udp(
                dns.message.make_query(name, rdtype), self.address, timeout=0.3, port=self.port
            )
        except (dns.exception.DNSException, OSError):
            return None

    def _answers(self, name: str) -> bool:
        return self._query(name, dns.rdatatype.SOA) is not None

    def _soa_serial(self, origin: str) -> int | None:
        response = self._query(origin + ".", dns.rdatatype.SOA)
        if response is None or response.rcode() != dns.rcode.NOERROR or not response.answer:
            return None
        return int(response.answer[0][0].serial)

    def _wait_until(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not self.running:
                break
            if ready():
                return
            time.sleep(0.05)
        log = self.workdir / "nsd.log"
        tail = log.read_text()[-2000:] if log.exists() else "(no log)"
        self.stop()
        raise RuntimeError(f"NSD did not {what} on {self.address}:{self.port}:\n{tail}")


def require_nsd() -> str:
    """The nsd binary, or skip (fail under PORTICO_REQUIRE_CONTROLPLANE=1)."""
    binary = find_nsd()
    if binary is None:
        reason = "NSD (Debian package nsd) is not installed; run .ci/install-system-packages"
        if os.environ.get("PORTICO_REQUIRE_CONTROLPLANE") == "1":
            pytest.fail(reason + " (required: PORTICO_REQUIRE_CONTROLPLANE=1)")
        pytest.skip(reason)
    return binary


@contextmanager
def running_dns(
    workdir: Path, zones: Mapping[str, Iterable[str]] | None = None
) -> Iterator[AuthoritativeDNS]:
    """Start NSD with these zones (one start, however many), stop it on exit.

    For a server shared by a module or session: declare every zone up front,
    then `set_zone` only reloads.
    """
    server = AuthoritativeDNS(workdir, require_nsd())
    server.set_zones(zones or {})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def dns_server(tmp_path: Path) -> Iterator[AuthoritativeDNS]:
    """A started NSD with no zones on a random loopback port, stopped after the test."""
    with running_dns(tmp_path / "nsd") as server:
        yield server
