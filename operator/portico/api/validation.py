"""Admission, offline: the CRD's own OpenAPI schema and CEL rules, read from `crds/`.

Nothing here restates a rule: the schema is handed to jsonschema and the
`x-kubernetes-validations` expressions to cel-python, so `portico plan` and
the API server judge from the same text.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import celpy
import jsonschema
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from portico.api import crds


@dataclass(frozen=True, order=True)
class FieldProblem:
    """One invalid field, named by its path as the API server names it."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Fill in schema defaults the way the API server does before it validates."""
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                apply_defaults(sub, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for item in value.values():
                apply_defaults(extra, item)
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            apply_defaults(schema["items"], item)
    return value


def _to_jsonschema(schema: dict[str, Any], top: bool = True) -> dict[str, Any]:
    """Translate Kubernetes' structural-schema extensions into plain JSON Schema."""
    out = {k: v for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if schema.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if "properties" in schema:
        out["properties"] = {k: _to_jsonschema(v, False) for k, v in schema["properties"].items()}
        # The API server rejects unknown fields (kubectl's strict field validation).
        out.setdefault("additionalProperties", False)
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = _to_jsonschema(schema["additionalProperties"], False)
    if "items" in schema:
        out["items"] = _to_jsonschema(schema["items"], False)
    if top:
        # metadata is validated by the API server itself, not by the CRD.
        out["properties"]["metadata"] = {"type": "object"}
    return out


@functools.cache
def _validator(kind: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(_to_jsonschema(crds.schema_for(kind)))


def _join(parts: list[str | int]) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path


def _describe(error: jsonschema.ValidationError) -> tuple[list[str | int], str]:
    """Path and wording close to the API server's for one schema error."""
    path: list[str | int] = list(error.absolute_path)
    # jsonschema types these as possibly Unset; on a reported error they are set.
    kind, limit, schema = error.validator, cast(Any, error.validator_value), error.schema
    instance = cast(Any, error.instance)
    assert isinstance(schema, dict)
    if kind == "required":
        missing = [p for p in limit if p not in instance]
        return [*path, missing[0]], "Required value"
    if kind == "additionalProperties":
        known = schema.get("properties", {})
        extra = sorted(k for k in instance if k not in known)
        return [*path, extra[0]], "unknown field"
    if kind == "enum":
        allowed = ", ".join(f'"{v}"' for v in limit)
        return path, f'Unsupported value: "{error.instance}": supported values: {allowed}'
    if kind == "maxLength":
        return path, f"Too long: may not be more than {limit} bytes"
    if kind == "minLength":
        return path, f"Invalid value: should be at least {limit} chars long"
    if kind == "maxItems":
        return path, f"Too many: must have at most {limit} items"
    if kind == "minItems":
        return path, f"Invalid value: should have at least {limit} items"
    if kind in ("maximum", "minimum"):
        word = "less" if kind == "maximum" else "greater"
        return path, f"Invalid value: {error.instance}: should be {word} than or equal to {limit}"
    if kind in ("type", "anyOf"):
        return path, f"Invalid value: {error.instance!r}: wrong type"
    return path, f"Invalid value: {error.message}"


def schema_problems(kind: str, obj: dict[str, Any]) -> list[FieldProblem]:
    problems = set()
    for error in _validator(kind).iter_errors(obj):
        path, message = _describe(error)
        problems.add(FieldProblem(_join(path), message))
    return sorted(problems)


def _parse_cidr(raw: Any) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """Kubernetes' CEL CIDR library reads a prefix as Go's netip.ParsePrefix: an address,
    a slash and a length; no zone, no IPv4-mapped IPv6, no leading zeros."""
    text = str(raw)
    if "/" not in text or "%" in text:
        raise ValueError(text)
    value = ipaddress.ip_interface(text)
    if isinstance(value, ipaddress.IPv6Interface) and value.ip.ipv4_mapped is not None:
        raise ValueError(text)
    return value


def _is_cidr(raw: Any) -> celtypes.BoolType:
    try:
        _parse_cidr(raw)
    except ValueError:
        return celtypes.BoolType(False)
    return celtypes.BoolType(True)


def _masked(value: Any) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    return ipaddress.ip_interface(str(value.network))


# The Kubernetes CEL library functions the CRDs' rules use that cel-python lacks (the API
# server has them since 1.31): isCIDR(), cidr() and CIDR.masked().
K8S_FUNCTIONS: dict[str, Any] = {"isCIDR": _is_cidr, "cidr": _parse_cidr, "masked": _masked}


@functools.cache
def _program(expression: str) -> celpy.Runner:
    env = celpy.Environment()
    return env.program(env.compile(expression), functions=K8S_FUNCTIONS)


def _rules(
    schema: dict[str, Any], value: Any, old: Any, path: list[str | int]
) -> Iterator[tuple[list[str | int], dict[str, Any], Any, Any]]:
    """Every (path, rule, self, oldSelf) that applies to VALUE, depth first."""
    for rule in schema.get("x-kubernetes-validations", []):
        yield path, rule, value, old
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                sub_old = old.get(name) if isinstance(old, dict) else None
                yield from _rules(sub, value[name], sub_old, [*path, name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, item in value.items():
                yield from _rules(extra, item, None, [*path, name])
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from _rules(schema["items"], item, None, [*path, index])


def cel_problems(
    kind: str, obj: dict[str, Any], old: dict[str, Any] | None = None
) -> list[FieldProblem]:
    """Evaluate the CRD's CEL rules. Transition rules (oldSelf) run only where OLD has the field."""
    problems = []
    for path, rule, value, old_value in _rules(crds.schema_for(kind), obj, old, []):
        expression = rule["rule"]
        activation = {"self": json_to_cel(value)}
        if "oldSelf" in expression:
            if old_value is None:
                continue
            activation["oldSelf"] = json_to_cel(old_value)
        try:
            ok = bool(_program(expression).evaluate(activation))
        except CELEvalError:
            ok = False
        if not ok:
            field = (_join(path) + rule.get("fieldPath", "")).lstrip(".") or "<root>"
            message = " ".join(rule.get("message", f"failed rule: {expression}").split())
            problems.append(FieldProblem(field, f"Invalid value: {message}"))
    return problems


def admit(
    kind: str, obj: dict[str, Any], old: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[FieldProblem]]:
    """Default, then validate like admission: schema first, CEL rules only on a sound object."""
    schema = crds.schema_for(kind)
    defaulted = apply_defaults(schema, copy.deepcopy(obj))
    problems = schema_problems(kind, defaulted)
    if problems:
        return defaulted, problems
    old_defaulted = apply_defaults(schema, copy.deepcopy(old)) if old else None
    return defaulted, cel_problems(kind, defaulted, old_defaulted)
