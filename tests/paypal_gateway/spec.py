"""Validate request bodies against PayPal's published OpenAPI specs (jsonschema; no Prism needed).

The specs are OpenAPI 3.0.3; their schemas are validated as JSON Schema draft 4 (what OpenAPI 3.0's
schema object is based on). ``$ref`` s resolve inside the same spec document.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPECS = Path(__file__).parent / "data" / "specs"
FILES = ("checkout_orders_v2.json", "payments_payment_v2.json", "notifications_webhooks_v1.json")


@cache
def _spec(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SPECS / name).read_text(encoding="utf-8"))
    return data


@cache
def _operations() -> list[tuple[str, re.Pattern[str], str, dict[str, Any]]]:
    ops = []
    for name in FILES:
        for template, item in _spec(name)["paths"].items():
            pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
            for method, operation in item.items():
                if isinstance(operation, dict) and "responses" in operation:
                    ops.append((method.upper(), pattern, name, operation))
    return ops


def operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The spec file and operation object for ``method path``; AssertionError when the spec has none."""
    for op_method, pattern, name, op in _operations():
        if op_method == method and pattern.match(path):
            return name, op
    raise AssertionError(f"{method} {path} is not an operation in PayPal's published specs")


def request_schema(method: str, path: str) -> tuple[str, dict[str, Any], bool] | None:
    """(spec file, JSON body schema, whether a body is required), or ``None`` for no JSON body."""
    name, op = operation(method, path)
    request_body = op.get("requestBody") or {}
    media = (request_body.get("content") or {}).get("application/json")
    if media is None:
        return None
    return name, media["schema"], bool(request_body.get("required"))


def validate_request(method: str, path: str, body: Any) -> None:
    """Raise ``jsonschema.ValidationError`` if ``body`` is not what the spec accepts for the operation."""
    found = request_schema(method, path)
    if found is None:
        assert body in (None, {}), f"{method} {path} takes no JSON body, got {body!r}"
        return
    name, schema, required = found
    if body is None:
        assert not required, f"{method} {path} requires a body"
        return
    registry: Registry[Any] = Registry().with_resource(name, Resource.from_contents(_spec(name), DRAFT4))
    ref = schema.get("$ref")
    root = {"$ref": f"{name}{ref}"} if ref else schema
    jsonschema.Draft4Validator(root, registry=registry).validate(body)
