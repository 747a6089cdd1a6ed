"""Run the chart's Argo CD health checks (charts/portico/health/*.lua) from Python.

Argo CD evaluates them with gopher-lua (Lua 5.1) with the object in the global
`obj`; lupa's Lua 5.1 runtime is the closest match.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lupa.lua51 as lupa

HEALTH_DIR = Path(__file__).resolve().parents[2] / "charts" / "portico" / "health"
SCRIPTS = {"Portal": "portal.lua", "PortalInstance": "portalinstance.lua"}


def script(kind: str) -> str:
    return (HEALTH_DIR / SCRIPTS[kind]).read_text()


def _to_lua(runtime: Any, value: Any) -> Any:
    # Nested dicts and lists become Lua tables (lists 1-based, as Argo CD's JSON decoding does).
    if isinstance(value, dict):
        return runtime.table_from({k: _to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, v) for v in value])
    return value


def health(obj: dict[str, Any]) -> dict[str, str]:
    """The health Argo CD would show for a Portal or PortalInstance: {"status", "message"}."""
    runtime = lupa.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = _to_lua(runtime, obj)
    result = runtime.execute(script(obj["kind"]))
    return {str(k): str(v) for k, v in dict(result).items()}
