"""Helpers of `make demo-real` for its custom-domain portal (run with the venv's python).

    demo_domain.py dns DIR ZONE RECORD...   start NSD serving ZONE on loopback, print ADDR:PORT
    demo_domain.py pfx NAMESPACE NAME HOST  print a Secret with a new .pfx for HOST (and password)

NSD keeps running after this exits (the demo's operator asks it); its pid is in DIR/nsd.pid.
The .pfx is made here, as the tests make theirs: no key is ever committed.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's tests/

from tests.support.certs import make_pfx, pfx_secret
from tests.support.dnsserver import AuthoritativeDNS, find_nsd


def dns(workdir: Path, zone: str, records: list[str]) -> None:
    binary = find_nsd()
    if binary is None:
        sys.exit("nsd is not installed (bash .ci/install-system-packages installs it)")
    server = AuthoritativeDNS(workdir, binary)
    server.set_zone(zone, records)
    server.start()
    print(f"{server.address}:{server.port}")


def pfx(namespace: str, name: str, host: str) -> None:
    password = secrets.token_urlsafe(12)
    data, _ = make_pfx(host, password)
    print(yaml.safe_dump(pfx_secret(name, namespace, data, password)))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "dns":
        dns(Path(args[0]), args[1], args[2:])
    elif command == "pfx":
        pfx(*args)
    else:
        sys.exit(__doc__)
