"""Run one Pulumi operation on a program in stacks/, in a process of its own.

The Automation API's inline mode: the `pulumi` CLI (the real engine) plans and
applies, the Kubernetes provider plugin talks to the cluster, and the program
runs here under the Python SDK's own language runtime (`pulumi up --client`),
which stands in for the `pulumi-language-python` plugin. The program is the
unchanged stacks/<name>/__main__.py; the project file is a copy of its
Pulumi.yaml, so config types and defaults are checked as `pulumi up` checks them.

Input (JSON on stdin), output (JSON on stdout): see `Request` and `main`.
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path
from typing import Any, TypedDict

from pulumi import automation as auto


class Request(TypedDict):
    program: str  # stacks/<name>
    work_dir: str  # holds Pulumi.yaml (a copy) and Pulumi.<stack>.yaml
    stack: str
    pulumi_root: str  # the directory whose bin/ holds the pulumi CLI
    env: dict[str, str]
    config: dict[str, tuple[str, bool]]  # key -> (value, secret)
    path_config: dict[str, tuple[str, bool]]  # the same, keys are paths (a.b["c/d"])
    op: str  # up | preview | destroy
    expect_no_changes: bool


def _stack(req: Request) -> auto.Stack:
    program = Path(req["program"]) / "__main__.py"
    opts = auto.LocalWorkspaceOptions(
        work_dir=req["work_dir"],
        pulumi_command=auto.PulumiCommand(root=req["pulumi_root"]),
        env_vars=req["env"],
        secrets_provider="passphrase",
    )
    return auto.create_or_select_stack(
        stack_name=req["stack"],
        project_name=Path(req["program"]).name,
        program=lambda: runpy.run_path(str(program), run_name="__main__"),
        opts=opts,
    )


def run(req: Request) -> dict[str, Any]:
    stack = _stack(req)
    for entries, path in ((req["config"], False), (req["path_config"], True)):
        if entries:
            values = {k: auto.ConfigValue(v, secret=s) for k, (v, s) in entries.items()}
            stack.set_all_config(values, path=path)
    result: dict[str, Any] = {}
    done: auto.UpResult | auto.PreviewResult | auto.DestroyResult
    if req["op"] == "up":
        done = stack.up(expect_no_changes=req["expect_no_changes"], color="never")
        result["changes"] = done.summary.resource_changes or {}
        outputs = done.outputs.items()
        result["outputs"] = {k: {"value": v.value, "secret": v.secret} for k, v in outputs}
    elif req["op"] == "preview":
        done = stack.preview(expect_no_changes=req["expect_no_changes"], diff=True, color="never")
        result["changes"] = {getattr(k, "value", k): n for k, n in done.change_summary.items()}
    elif req["op"] == "destroy":
        done = stack.destroy(color="never")
        result["changes"] = done.summary.resource_changes or {}
    else:
        raise ValueError(f"unknown op {req['op']!r}")
    # Everything the engine printed, for the test's checks (secrets never in it).
    result["output"] = f"{done.stdout}\n{done.stderr}"
    return result


def main() -> None:
    req: Request = json.load(sys.stdin)
    try:
        result = run(req)
    except auto.CommandError as exc:
        # The engine's own words (stdout and stderr of the CLI) for the test's message.
        json.dump({"error": str(exc)}, sys.stdout)
        return
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
