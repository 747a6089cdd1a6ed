"""Run a Pulumi program or component under Pulumi's mocks and record what it registers.

The stock MockMonitor does not tell the mocks about dependencies or parents, so
RecordingMonitor keeps each request's; no Pulumi CLI or engine is involved.
"""

from __future__ import annotations

import asyncio
import json
import runpy
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks, settings

REPO = Path(__file__).resolve().parents[2]
STACKS = REPO / "stacks"
if str(STACKS) not in sys.path:
    sys.path.insert(0, str(STACKS))

# The domain the fake cluster's operator puts in status.url: no client computes it.
CLUSTER_DOMAIN = "portals.cluster.example"
# The signature key Pulumi's wire format marks a value with (rpc.SPECIAL_SIG_KEY).
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def fake_status(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The status a Portal reaches once the operator made it Ready."""
    ready = {"type": "Ready", "status": "True", "reason": "Ready", "observedGeneration": 1}
    return {
        "phase": "Ready",
        "url": f"https://{inputs['spec']['subdomain']}.{CLUSTER_DOMAIN}",
        "observedGeneration": 1,
        "conditions": [ready],
    }


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    parent: str
    dependencies: list[str]
    read: bool = False  # a `.get()` of an existing resource, not a declaration
    request: Any = None  # the RegisterResourceRequest: options such as retainOnDelete

    def secret_paths(self) -> set[str]:
        """Top-level input properties sent as secrets."""
        fields = self.request.object.fields if self.request is not None else {}
        return {
            key
            for key, value in fields.items()
            if value.HasField("struct_value")
            and value.struct_value.fields.get(SIG_KEY) is not None
            and value.struct_value.fields[SIG_KEY].string_value == SECRET_SIG
        }


@dataclass
class Run:
    registrations: list[Registration] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_]

    def named(self, name: str) -> Registration:
        matches = [r for r in self.registrations if r.name == name]
        assert len(matches) == 1, f"{name}: {len(matches)} registrations"
        return matches[0]

    def urn(self, name: str) -> str:
        return self.named(name).urn


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self, run: Run) -> None:
        self.run = run

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == "kubernetes:portico.dev/v1alpha1:Portal":
            state["status"] = fake_status(args.inputs)
        return f"{args.name}-id", state

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        self.run.calls.append(args.token)
        # ConfigFile (v1) asks the provider to parse the YAML; do what it does.
        if args.token == "kubernetes:yaml:decode":
            return {"result": [d for d in yaml.safe_load_all(args.args["text"]) if d]}, []
        return {}, []


class _RecordingMonitor(mocks.MockMonitor):
    def __init__(self, mocks_: _Mocks, run: Run) -> None:
        super().__init__(mocks_)
        self.run = run

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.run.registrations.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    inputs=self.resources[response.urn].state if request.custom else {},
                    parent=request.parent,
                    dependencies=list(request.dependencies),
                    request=request,
                )
            )
        return response

    def ReadResource(self, request: Any) -> Any:
        response = super().ReadResource(request)  # type: ignore[no-untyped-call]
        self.run.registrations.append(
            Registration(
                type=request.type,
                name=request.name,
                urn=response.urn,
                inputs={"id": request.id},
                parent=request.parent,
                dependencies=list(request.dependencies),
                read=True,
            )
        )
        return response


def run(
    body: Callable[[], object], *, project: str = "test", config: Mapping[str, Any] | None = None
) -> Run:
    """Run `body` (which declares resources) under fresh mocks; wait for every registration."""
    result = Run()
    # Earlier async tests may leave the thread without an event loop; Pulumi needs one.
    asyncio.set_event_loop(asyncio.new_event_loop())
    settings.set_root_resource(None)  # type: ignore[arg-type]  # a new Stack per run
    mocks_ = _Mocks(result)
    pulumi.runtime.set_mocks(
        mocks_,
        project=project,
        stack="test",
        preview=False,
        monitor=_RecordingMonitor(mocks_, result),
    )
    pulumi.runtime.set_all_config(
        {
            f"{project}:{k}": v if isinstance(v, str) else json.dumps(v)
            for k, v in (config or {}).items()
        }
    )

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def declare() -> pulumi.Output[Any]:
        body()
        stack = settings.get_root_resource()
        exported: dict[str, Any] = getattr(stack, "outputs", {})
        return pulumi.Output.all(**exported).apply(result.outputs.update) if exported else None  # type: ignore[return-value]

    declare()
    return result


def run_program(name: str, config: Mapping[str, Any]) -> Run:
    """Run stacks/<name>/__main__.py as `pulumi up` would, with project config."""
    project = yaml.safe_load((STACKS / name / "Pulumi.yaml").read_text())["name"]
    program = STACKS / name / "__main__.py"
    return run(
        lambda: runpy.run_path(str(program), run_name="__main__"), project=project, config=config
    )
