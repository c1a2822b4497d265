"""Check every request the plugin sends against Stripe's published OpenAPI spec (spec3.yaml).

Stripe's requests are form-encoded; they are decoded into nested data, coerced to the types the
operation's schema names (form values are all strings), and validated with jsonschema. Objects are
closed: a key the spec does not list fails, even where the spec leaves ``additionalProperties``
unset. The spec is API version 2023-08-16; the plugin pins 2026-10-28, so parameters introduced
since need an entry in :data:`ALLOWED_NEWER`, with a reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import jsonschema

from tests.stripe_gateway.formcodec import decode
from tests.stripe_gateway.spec_subset import SUBSET_PATH

#: (method, path template, dotted parameter) -> why it is allowed although the 2023 spec lacks it.
ALLOWED_NEWER: Mapping[tuple[str, str, str], str] = {
    ("POST", "/v1/checkout/sessions", "locale=hi-IN"): "Hindi (India) added to Checkout after 2023-08-16",
}


class SpecViolation(AssertionError):
    """A request the spec does not allow."""


class Spec:
    def __init__(self, document: Mapping[str, Any]) -> None:
        self.doc = document
        #: One validator per schema, its schema checked once: ``jsonschema.validate`` re-checks the
        #: whole schema (with every component) against the meta-schema on each call, which made a
        #: request check cost a quarter of a second.
        self._validators: dict[object, Any] = {}
        self._routes: list[tuple[re.Pattern[str], str]] = []
        for template in document["paths"]:
            pattern = re.sub(r"\{[^}]+\}", r"[^/]+", template)
            self._routes.append((re.compile(f"^{pattern}$"), template))

    def template(self, path: str) -> str:
        matches = [t for rx, t in self._routes if rx.match(path)]
        if not matches:
            raise SpecViolation(
                f"{path} is not a path in Stripe's spec (or not in the subset kept in the repository: "
                "see tests/stripe_gateway/spec_subset.py)"
            )
        # Prefer the most literal template (/v1/checkout/sessions/{s}/expire over /{a}/{b}/{c}).
        return min(matches, key=lambda t: (t.count("{"), -len(t)))

    def _resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in schema:
            ref = str(schema["$ref"]).removeprefix("#/").split("/")
            node: Any = self.doc
            for part in ref:
                node = node[part]
            schema = node
        return schema

    def _validate(self, instance: Any, schema: Mapping[str, Any], key: object) -> None:
        validator = self._validators.get(key)
        if validator is None:
            full = {**schema, "components": self.doc["components"]}
            cls = jsonschema.validators.validator_for(full)
            cls.check_schema(full)
            validator = self._validators[key] = cls(full)
        error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
        if error is not None:
            raise error

    def check(self, method: str, url: str, body: str | None) -> str:
        """Raise :class:`SpecViolation` unless the request is allowed; return the path template."""
        split = urlsplit(url)
        template = self.template(split.path)
        operation = self.doc["paths"][template].get(method.lower())
        if operation is None:
            raise SpecViolation(f"{method} {template} is not an operation in Stripe's spec")
        if method == "POST":
            schema = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
            data = decode(body or "")
        else:
            params = {p["name"]: p["schema"] for p in operation.get("parameters", []) if p["in"] == "query"}
            schema = {"type": "object", "properties": params, "additionalProperties": False}
            data = decode(split.query)
        allowed = {k.split("=")[0]: k for (m, t, k) in ALLOWED_NEWER if m == method and t == template}
        coerced = self._coerce(data, schema, "", allowed)
        try:
            self._validate(coerced, schema, (method, template))
        except jsonschema.ValidationError as exc:
            raise SpecViolation(f"{method} {template}: {exc.message} at {list(exc.absolute_path)}") from None
        return template

    def _coerce(self, value: Any, schema: Mapping[str, Any], where: str, allowed: Mapping[str, str]) -> Any:
        schema = self._resolve(schema)
        if "anyOf" in schema:
            errors = []
            for option in schema["anyOf"]:
                try:
                    candidate = self._coerce(value, option, where, allowed)
                    resolved = self._resolve(option)
                    self._validate(candidate, resolved, id(resolved))
                    return candidate
                except (SpecViolation, jsonschema.ValidationError) as exc:
                    errors.append(str(exc).splitlines()[0])
            raise SpecViolation(f"{where or 'body'}: no alternative of the spec matches ({'; '.join(errors)})")
        kind = schema.get("type")
        if kind == "object":
            if not isinstance(value, dict):
                raise SpecViolation(f"{where}: expected an object, got {value!r}")
            props = schema.get("properties", {})
            extra = schema.get("additionalProperties")
            out = {}
            for key, item in value.items():
                path = f"{where}.{key}" if where else key
                if key in props:
                    out[key] = self._coerce(item, props[key], path, allowed)
                elif isinstance(extra, dict):
                    out[key] = self._coerce(item, extra, path, allowed)
                else:
                    raise SpecViolation(f"unknown parameter {path!r}")
            return out
        if kind == "array":
            if isinstance(value, dict):
                raise SpecViolation(f"{where}: expected a list")
            return [self._coerce(v, schema.get("items", {}), f"{where}[]", allowed) for v in value]
        if kind == "integer":
            if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
                raise SpecViolation(f"{where}: expected an integer, got {value!r}")
            return int(value)
        if kind == "boolean":
            if value not in ("true", "false"):
                raise SpecViolation(f"{where}: expected true/false, got {value!r}")
            return value == "true"
        if kind == "string" and "enum" in schema and value not in schema["enum"]:
            key = allowed.get(where)
            if key is not None and key == f"{where}={value}":
                return schema["enum"][0]
        if kind == "number":
            raise SpecViolation(f"{where}: the plugin must not send a float-typed parameter ({value!r})")
        return value


@cache
def load_spec() -> Spec:
    """Load the spec subset once per test session."""
    with SUBSET_PATH.open(encoding="utf-8") as handle:
        return Spec(json.load(handle))
