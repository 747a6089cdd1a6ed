"""`portico-standin instance`: serve the stand-in instance (tests and demos only)."""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path

from portico_standin.app import create_app
from portico_standin.state import InstanceState


def authorization(credentials_dir: Path) -> str:
    """The Authorization header the instance's own credentials give: `token`, or
    `username` + `password` (the same files a PortalInstance's credentials Secret holds)."""
    token = credentials_dir / "token"
    if token.is_file():
        return "Bearer " + token.read_text(encoding="utf-8").strip()
    user, password = credentials_dir / "username", credentials_dir / "password"
    if user.is_file() and password.is_file():
        pair = f"{user.read_text().strip()}:{password.read_text().strip()}".encode()
        return "Basic " + base64.b64encode(pair).decode()
    raise SystemExit(
        f"no instance credentials in {credentials_dir}: expected a 'token' key, "
        "or 'username' and 'password'"
    )


def _list(value: str) -> list[str]:
    return [x.strip() for x in value.split(",") if x.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="portico-standin", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    inst = sub.add_parser("instance", help="a stand-in backing instance")
    inst.add_argument("--host", default="0.0.0.0")
    inst.add_argument("--port", type=int, default=8090)
    inst.add_argument("--credentials-dir", required=True, help="holds token, or username+password")
    inst.add_argument("--languages", default="en-US,de-DE,fr-FR")
    inst.add_argument("--solutions", default="", help="installed solutions, comma-separated")
    inst.add_argument("--reject", default="", help="packages whose install fails")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    import uvicorn

    state = InstanceState(
        authorization=authorization(Path(args.credentials_dir)),
        languages=tuple(_list(args.languages)),
        solutions=tuple(_list(args.solutions)),
        reject=tuple(_list(args.reject)),
    )
    uvicorn.run(create_app(state), host=args.host, port=args.port, server_header=False)
