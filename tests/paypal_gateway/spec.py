"""Check every request the plugin sends against PayPal's published OpenAPI specs (no Prism needed).

The specs are OpenAPI 3.0.3 (``data/specs``). A request is checked three ways, and any failure is a
:class:`SpecViolation`:

* **Closed body.** Every key of the JSON body must be one the schema lists at that place (its
  ``properties``, through ``$ref``, ``allOf``, ``anyOf`` and ``oneOf``), and none may be
  ``readOnly``: the specs leave ``additionalProperties`` unset almost everywhere, so a plain
  JSON Schema check would accept ``experience_context.retrun_url`` or a refund keyed ``amuont``.
* **Schema and formats.** Then the body is validated as JSON Schema draft 4 (what OpenAPI 3.0's
  schema object is based on) with a format checker: ``uri`` must be an absolute URI,
  ``date-time`` an RFC 3339 time, and PayPal's own formats (``ppaas_*``) what their names say. A
  format that a sent value uses and this module cannot check fails, so no check is skipped
  silently. Every money object's ``value`` must have the number of decimals PayPal takes for its
  ``currency_code`` (``data/provider_facts.json``; the spec's pattern allows any).
* **Headers.** Every header the operation declares (``PayPal-Request-Id``, ``Prefer``, ...) must
  match its schema (``PayPal-Request-Id`` is 1 to 108 characters on Orders), a required one must be
  present, and a ``PayPal-*`` header the operation does not declare fails, unless
  :data:`ALLOWED_NEWER` says why (the specs are from 2024-02; the SDK is newer).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

DATA = Path(__file__).parent / "data"
SPECS = DATA / "specs"
FILES = ("checkout_orders_v2.json", "payments_payment_v2.json", "notifications_webhooks_v1.json")

#: (method, path template, lower-case header) -> why it is allowed although the 2024-02 spec lacks it.
ALLOWED_NEWER: Mapping[tuple[str, str, str], str] = {
    ("POST", "/v2/payments/authorizations/{authorization_id}/void", "paypal-request-id"): (
        "PayPal's current reference lists PayPal-Request-Id for void "
        "(developer.paypal.com/api/payments/v2/authorizations-void) and paypal-server-sdk 2.4.0 sends it"
    ),
}

#: (method, path template) -> the top-level body key that echoes an object PayPal made, whose
#: read-only fields are therefore PayPal's own (still closed: unknown keys fail there too).
ECHOED: Mapping[tuple[str, str], str] = {
    ("POST", "/v1/notifications/verify-webhook-signature"): "webhook_event",
}


#: (spec file, JSON pointer of a schema) -> why its ``pattern`` is not applied: PayPal's own values
#: break it. Everything else about the schema (type, length, required) still holds.
SPEC_DEFECTS: Mapping[tuple[str, str], str] = {
    ("notifications_webhooks_v1.json", "/components/schemas/verify_webhook_signature/properties/transmission_sig"): (
        "the signature is base64 (PAYPAL-TRANSMISSION-SIG, forwarded as received), which may start with '+' or "
        "'/'; the spec's pattern ^(?!\\d+$)\\w+\\S+ refuses those, about one real signature in 32"
    ),
}


class SpecViolation(AssertionError):
    """A request PayPal's spec does not allow."""


@cache
def _spec(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SPECS / name).read_text(encoding="utf-8"))
    for (file, pointer), _why in SPEC_DEFECTS.items():
        if file == name:
            node: Any = data
            for part in pointer.strip("/").split("/"):
                node = node[part]
            del node["pattern"]
    return data


@cache
def _decimals() -> dict[str, int]:
    facts = json.loads((DATA / "provider_facts.json").read_text(encoding="utf-8"))
    table: dict[str, int] = facts["providers"]["paypal"]["decimal_places"]
    return table


@cache
def _operations() -> list[tuple[str, re.Pattern[str], str, str, dict[str, Any], dict[str, Any]]]:
    ops = []
    for name in FILES:
        for template, item in _spec(name)["paths"].items():
            pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
            for method, operation in item.items():
                if isinstance(operation, dict) and "responses" in operation:
                    ops.append((method.upper(), pattern, name, template, item, operation))
    return ops


def operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The spec file and operation object for ``method path``; :class:`SpecViolation` when the spec has none."""
    name, _, _, op = _find(method, path)
    return name, op


def _find(method: str, path: str) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    for op_method, pattern, name, template, item, op in _operations():
        if op_method == method and pattern.match(path):
            return name, template, item, op
    raise SpecViolation(f"{method} {path} is not an operation in PayPal's published specs")


def _resolve(doc: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        node: Any = doc
        for part in str(schema["$ref"]).removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def request_schema(method: str, path: str) -> tuple[str, dict[str, Any], bool] | None:
    """(spec file, JSON body schema, whether a body is required), or ``None`` for no JSON body."""
    name, op = operation(method, path)
    request_body = _resolve(_spec(name), op.get("requestBody") or {})
    media = (request_body.get("content") or {}).get("application/json")
    if media is None:
        return None
    return name, media["schema"], bool(request_body.get("required"))


# -- formats ------------------------------------------------------------------------------
_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s\x00-\x1f\x7f]+")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_LANGUAGE_RE = re.compile(r"[a-z]{2}(?:-[A-Z][a-z]{3})?(?:-(?:[A-Z]{2}|[0-9]{3}))?")
_PAYER_ID_RE = re.compile(r"[2-9A-HJ-NP-Z]{13}")
FORMATS = jsonschema.FormatChecker([])


@FORMATS.checks("uri")
def _uri(value: object) -> bool:
    if not isinstance(value, str) or not _URI_RE.fullmatch(value):
        return False
    scheme, _, rest = value.partition(":")
    if scheme.lower() in ("http", "https"):
        host = rest.removeprefix("//").split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
        return rest.startswith("//") and bool(host)
    return True


@FORMATS.checks("date-time")
@FORMATS.checks("ppaas_date_time_v3")
def _date_time(value: object) -> bool:
    if not isinstance(value, str) or "T" not in value.upper():
        return False
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return False
    return parsed.tzinfo is not None


@FORMATS.checks("ppaas_date_notime_v2")
def _date(value: object) -> bool:
    try:
        date.fromisoformat(str(value))
    except ValueError:
        return False
    return isinstance(value, str) and len(value) == 10


@FORMATS.checks("ppaas_common_email_address_v2")
@FORMATS.checks("merchant_common_email_address_v2")
def _email(value: object) -> bool:
    return isinstance(value, str) and bool(_EMAIL_RE.fullmatch(value))


@FORMATS.checks("ppaas_common_country_code_v2")
def _country(value: object) -> bool:
    return isinstance(value, str) and bool(re.fullmatch(r"[A-Z]{2}|C2", value))


@FORMATS.checks("ppaas_common_currency_code_v2")
def _currency(value: object) -> bool:
    return isinstance(value, str) and bool(re.fullmatch(r"[A-Z]{3}", value))


@FORMATS.checks("ppaas_common_language_v3")
def _language(value: object) -> bool:
    return isinstance(value, str) and bool(_LANGUAGE_RE.fullmatch(value))


@FORMATS.checks("ppaas_ip_address_v1")
def _ip(value: object) -> bool:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


@FORMATS.checks("ppaas_payer_id_v3")
@FORMATS.checks("payer_v1")
def _payer_id(value: object) -> bool:
    return isinstance(value, str) and bool(_PAYER_ID_RE.fullmatch(value))


# -- the closed walk ----------------------------------------------------------------------
def _branches(doc: Mapping[str, Any], schema: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """``schema`` and every schema it is composed of (``allOf``/``anyOf``/``oneOf``), resolved."""
    schema = _resolve(doc, schema)
    yield schema
    for word in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(word, ()):
            yield from _branches(doc, part)


def _walk(
    doc: Mapping[str, Any],
    schema: Mapping[str, Any],
    value: Any,
    where: str,
    formats: set[str],
    echoed: str | None = None,
) -> None:
    branches = list(_branches(doc, schema))
    for branch in branches:
        if "format" in branch and value is not None:
            formats.add(str(branch["format"]))
    if isinstance(value, dict):
        props: dict[str, list[Mapping[str, Any]]] = {}
        extra: list[Mapping[str, Any]] = []
        open_object = False
        for branch in branches:
            for key, sub in (branch.get("properties") or {}).items():
                props.setdefault(key, []).append(sub)
            additional = branch.get("additionalProperties")
            if isinstance(additional, dict):
                extra.append(additional)
            elif additional is True:
                open_object = True
        for key, item in value.items():
            path = f"{where}.{key}" if where else key
            if key in props:
                read_only_ok = echoed is not None and (path == echoed or path.startswith(f"{echoed}."))
                for sub in props[key]:
                    if not read_only_ok and (sub.get("readOnly") or _resolve(doc, sub).get("readOnly")):
                        raise SpecViolation(f"{path!r} is read-only: PayPal sets it, a request must not")
                    _walk(doc, sub, item, path, formats, echoed)
            elif extra:
                for sub in extra:
                    _walk(doc, sub, item, path, formats, echoed)
            elif not open_object:
                raise SpecViolation(f"unknown key {path!r}: the spec lists no such field there")
        _check_money(value, where)
    elif isinstance(value, list):
        for branch in branches:
            if "items" in branch:
                for index, item in enumerate(value):
                    _walk(doc, branch["items"], item, f"{where}[{index}]", formats, echoed)


def _check_money(value: Mapping[str, Any], where: str) -> None:
    """A money object's value has the decimals PayPal takes for its currency (none for HUF, JPY, TWD)."""
    code, amount = value.get("currency_code"), value.get("value")
    if not isinstance(code, str) or not isinstance(amount, str):
        return
    decimals = _decimals().get(code)
    if decimals is None:
        raise SpecViolation(f"{where or 'body'}: PayPal takes no {code}")
    _, dot, fraction = amount.partition(".")
    if (decimals == 0 and dot) or (decimals > 0 and len(fraction) != decimals):
        raise SpecViolation(f"{where or 'body'}: {amount!r} {code} is not written with {decimals} decimals")


def validate_request(method: str, path: str, body: Any) -> None:
    """Raise :class:`SpecViolation` unless ``body`` (parsed JSON or ``None``) is what the operation accepts."""
    found = request_schema(method, path)
    if found is None:
        if body not in (None, {}):
            raise SpecViolation(f"{method} {path} takes no JSON body, got {body!r}")
        return
    name, schema, required = found
    if body is None:
        if required:
            raise SpecViolation(f"{method} {path} requires a body")
        return
    doc = _spec(name)
    _, template, _, _ = _find(method, path)
    formats: set[str] = set()
    _walk(doc, schema, body, "", formats, ECHOED.get((method, template)))
    unchecked = formats - set(FORMATS.checkers)
    if unchecked:
        raise SpecViolation(f"{method} {path}: no checker for format(s) {sorted(unchecked)}: add one to spec.py")
    registry: Registry[Any] = Registry().with_resource(name, Resource.from_contents(doc, DRAFT4))
    ref = schema.get("$ref")
    root = {"$ref": f"{name}{ref}"} if ref else schema
    validator = jsonschema.Draft4Validator(root, registry=registry, format_checker=FORMATS)
    error = jsonschema.exceptions.best_match(validator.iter_errors(body))
    if error is not None:
        raise SpecViolation(f"{method} {path}: {error.message} at {list(error.absolute_path)}")


def validate_headers(method: str, path: str, headers: Mapping[str, str]) -> None:
    """Raise :class:`SpecViolation` unless the headers sent are the ones the operation declares, as declared."""
    name, template, item, op = _find(method, path)
    doc = _spec(name)
    declared: dict[str, Mapping[str, Any]] = {}
    for listed in [*item.get("parameters", ()), *op.get("parameters", ())]:
        parameter = _resolve(doc, listed)
        if parameter.get("in") == "header":
            declared[str(parameter["name"]).lower()] = parameter
    sent = {k.lower(): v for k, v in headers.items()}
    for header, parameter in declared.items():
        if header not in sent:
            if parameter.get("required"):
                raise SpecViolation(f"{method} {template}: required header {parameter['name']} missing")
            continue
        try:
            jsonschema.Draft4Validator(parameter.get("schema") or {}, format_checker=FORMATS).validate(sent[header])
        except jsonschema.ValidationError as exc:
            raise SpecViolation(f"{method} {template}: header {parameter['name']}: {exc.message}") from None
    for header in sent:
        if header.startswith("paypal-") and header not in declared and (method, template, header) not in ALLOWED_NEWER:
            raise SpecViolation(f"{method} {template}: the spec declares no {header} header")


def check_request(method: str, path: str, headers: Mapping[str, str], body: bytes | str | None) -> None:
    """Headers and body of one request as sent (the body as its raw bytes or text)."""
    validate_headers(method, path, headers)
    parsed = json.loads(body) if body else None
    validate_request(method, path, parsed)
