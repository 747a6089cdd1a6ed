"""`portico-runtime COMMAND`: the entrypoint of the runtime image (docs/runtime-contract.md)."""

from __future__ import annotations

import argparse
import sys

from portico_runtime import config, jobs

EX_USAGE = 64


def _serve(app: object, host: str, port: int) -> None:
    import uvicorn  # late: the Jobs never need a server

    # No server header, no proxy-header trust, no reload: a plain, read-only-rootfs server.
    uvicorn.run(app, host=host, port=port, server_header=False, proxy_headers=False)  # type: ignore[arg-type]


def _job(name: str, args: argparse.Namespace) -> int:
    try:
        portal = config.load()
        if name == "provision":
            summary = jobs.provision(portal)
        else:
            summary = jobs.import_translations(portal, list(args.languages))
    except (config.ConfigError, jobs.JobFailed) as exc:
        message = str(exc)
        print(f"{name} failed: {message}", file=sys.stderr)
        jobs.write_termination_message(message)
        return 1
    print(summary)
    return 0


def _list(value: str) -> list[str]:
    return [x.strip() for x in value.split(",") if x.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="portico-runtime", description=__doc__)
    sub = p.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="serve the start page and /healthz (port 8080)")
    pages = sub.add_parser("pages", help="the page server: every portal's public pages")
    for server in (serve, pages):
        server.add_argument("--host", default="0.0.0.0")
        server.add_argument("--port", type=int, default=8080)
    sub.add_parser("provision", help="install the solutions on the instance (a Job)")
    tr = sub.add_parser("import-translations", help="import translation bundles (a Job)")
    tr.add_argument("languages", nargs="*", metavar="LANG")
    return p


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    command = args.command or "serve"
    if command == "serve":
        from portico_runtime.web import create_app

        _serve(create_app(), getattr(args, "host", "0.0.0.0"), getattr(args, "port", 8080))
    elif command == "pages":
        from portico_runtime.pages import serve_app

        _serve(serve_app()[0], args.host, args.port)
    elif command in ("provision", "import-translations"):
        sys.exit(_job(command, args))
    else:  # pragma: no cover - argparse rejects other names
        sys.exit(EX_USAGE)
