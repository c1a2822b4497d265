"""One shared vcrpy / pytest-recording configuration for provider plugins' recorded HTTP tests.

Secrets are scrubbed *before* a cassette is written, and replay matches what the request says
(its method, URL and body) but not what changes on every run (idempotency keys, nonces,
timestamps, the port of a stand-in). In the plugin's ``conftest.py``::

    import os
    import pytest
    from gateway_core.testing.recording import vcr_config as recording_config

    @pytest.fixture(scope="module")
    def vcr_config():
        return recording_config(secrets=[os.environ.get("STRIPE_API_KEY")])

and mark each recorded test ``@pytest.mark.vcr``.

**Record mode.** The configuration sets no ``record_mode``: pytest-recording takes it from
``--record-mode`` (and a ``record_mode`` in ``vcr_config`` would override the command line, so a
re-record command would silently replay). Without the flag pytest-recording replays
(``"none"``): a request the cassette lacks is an error, never a call out.

**The network.** This repository's ``pyproject.toml`` puts ``--block-network
--allowed-hosts=127.0.0.1,localhost,::1`` in pytest's ``addopts``, so every run -- CI's, and the
README's ``uv run pytest`` -- replays with every connection refused except loopback (where the
stand-ins listen). pytest-recording lifts the guard only for a recorded test run with a record
mode other than ``none``. A plugin in its own repository puts the same two flags in its addopts.

**Re-recording**, one command per plugin here (then read the cassette diff before committing):

* Stripe, against localstripe (started on a free loopback port by the test module, which needs
  ``STRIPE_RECORD=1`` to start it)::

      STRIPE_RECORD=1 uv run pytest tests/stripe_gateway/test_localstripe_flows.py --record-mode=rewrite

* the example plugin, against its stand-in (started by the test when recording)::

      uv run pytest tests/example_gateway/test_recorded.py --record-mode=rewrite

* PayPal, against its stand-in (started on a free loopback port by the tests; the cassettes are
  ``tests/paypal_gateway/cassettes/standin/``; ``docs/paypal.md`` says how to record against the
  sandbox instead)::

      uv run pytest tests/paypal_gateway/test_cassettes.py --record-mode=rewrite

  (``tests/paypal_gateway/data/recorded`` are saleor's 2020 sandbox recordings besides, replayed
  as they are and never re-recorded.)

Against a real sandbox, export *test-mode* keys (never live keys) and pass them as ``secrets=``.
``--record-mode=once`` records only the cassettes that do not exist yet.

**What is scrubbed**, in requests and responses alike: the ``Authorization``,
``Proxy-Authorization``, ``Cookie``, ``User-Agent`` and ``X-Stripe-Client-User-Agent`` headers and
``Set-Cookie``; JSON fields and form parameters named like tokens and secrets
(:data:`SECRET_FIELDS`) at any depth; anything shaped like a Stripe secret or restricted key, a
webhook secret or a PayPal access token (:data:`SECRET_PATTERNS`); and every exact value passed as
``secrets=``.

**What replay matches** (:data:`MATCH_ON`): method, scheme, host, path, query and the body. Not
the port: a stand-in listens on a free port that differs on every run, so a cassette recorded
against it would never replay. Not the headers: idempotency keys and dates are new on every run.
The body is compared parsed (JSON, or form fields), after the same scrubbing, and with the
values of :data:`VOLATILE_FIELDS` (and ``volatile_fields=``) replaced by :data:`VARIES` in the
cassette and in the request alike, so a new nonce or timestamp still replays while another amount
or currency does not. ``match_body=False`` matches without the body (for a provider whose bodies
carry run-dependent values under names you cannot list).

Needs vcrpy (and pytest-recording for the fixtures and flags); neither is a runtime dependency of
gateway-core (``gateway-core[testing]`` installs them), and this module imports neither.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable
from typing import Any

__all__ = [
    "MATCH_ON",
    "REDACTED",
    "SECRET_FIELDS",
    "SECRET_HEADERS",
    "SECRET_PATTERNS",
    "VARIES",
    "VOLATILE_FIELDS",
    "scrub_text",
    "vcr_config",
]

REDACTED = "REDACTED"

#: What a volatile field's value is replaced with, in the cassette and in a request being matched.
VARIES = "VARIES-PER-RUN"

#: Request headers replaced by ``REDACTED`` (``User-Agent`` details say which machine recorded).
SECRET_HEADERS: tuple[str, ...] = (
    "authorization",
    "proxy-authorization",
    "cookie",
    "user-agent",
    "x-stripe-client-user-agent",
    "paypal-auth-assertion",
)
#: Response headers dropped from the cassette.
DROPPED_RESPONSE_HEADERS: frozenset[str] = frozenset({"set-cookie"})

#: JSON fields and form parameters whose values are replaced, wherever they appear.
SECRET_FIELDS: frozenset[str] = frozenset(
    {
        "access_token",
        "refresh_token",
        "id_token",
        "client_secret",
        "secret",
        "api_key",
        "password",
        "number",  # card number
        "cvc",
        "cvv",
        "security_code",
    }
)

#: Body fields whose values change on every run, ignored when a request is matched for replay.
VOLATILE_FIELDS: frozenset[str] = frozenset(
    {
        "idempotency_key",
        "request_id",
        "nonce",
        "timestamp",
        "transmission_id",
        "transmission_time",
        "expires_at",  # a checkout expiry is "now + a while"
    }
)

#: Shapes of secrets that must never reach a cassette, whatever field carries them.
SECRET_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9]+"),  # Stripe secret / restricted keys
    re.compile(r"\bwhsec_[A-Za-z0-9_]+"),  # webhook signing secrets
    re.compile(r"\bA21AA[A-Za-z0-9_\-]{20,}"),  # PayPal OAuth access tokens
)

#: What identifies a request for replay (see the module docstring for why not the port or headers).
MATCH_ON: tuple[str, ...] = ("method", "scheme", "host", "path", "query", "body")


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every exact secret and every secret-shaped substring replaced."""
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def _replace_json(value: Any, fields: frozenset[str], volatile: frozenset[str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            name = k.lower()
            out[k] = REDACTED if name in fields else VARIES if name in volatile else _replace_json(v, fields, volatile)
        return out
    if isinstance(value, list):
        return [_replace_json(v, fields, volatile) for v in value]
    return value


def _replace_form(text: str, fields: frozenset[str], volatile: frozenset[str]) -> str:
    """A form-encoded body with secret and volatile parameters replaced (``card[number]`` counts as ``number``)."""
    try:
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return text
    leaf = re.compile(r"[^\[\]]+")
    out = []
    for key, value in pairs:
        name = (leaf.findall(key) or [key])[-1].lower()
        out.append((key, REDACTED if name in fields else VARIES if name in volatile else value))
    return urllib.parse.urlencode(out)


def _scrub_body(
    body: bytes | str | None, secrets: tuple[str, ...], fields: frozenset[str], volatile: frozenset[str] = frozenset()
) -> bytes | str | None:
    if not body:
        return body
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        parsed = json.loads(text)
    except ValueError:
        text = _replace_form(text, fields, volatile)
    else:
        if isinstance(parsed, dict | list):
            text = json.dumps(_replace_json(parsed, fields, volatile))
    text = scrub_text(text, secrets)
    return text.encode() if isinstance(body, bytes) else text


def vcr_config(
    *,
    secrets: Iterable[str | None] = (),
    extra_headers: Iterable[str] = (),
    extra_fields: Iterable[str] = (),
    volatile_fields: Iterable[str] = (),
    match_body: bool = True,
) -> dict[str, Any]:
    """The ``vcr_config`` for pytest-recording (also valid as ``vcr.VCR(**vcr_config())``).

    ``secrets`` are exact values to scrub wherever they appear (``None`` and ``""`` are ignored,
    so ``os.environ.get("STRIPE_API_KEY")`` can be passed as is); ``extra_headers`` and
    ``extra_fields`` add provider-specific header and field names to scrub; ``volatile_fields``
    adds body fields to ignore when matching (to :data:`VOLATILE_FIELDS`); ``match_body=False``
    leaves the body out of matching altogether. The result sets no ``record_mode``: that is the
    command line's (``--record-mode``).
    """
    known = tuple(s for s in secrets if s)
    fields = SECRET_FIELDS | {f.lower() for f in extra_fields}
    volatile = (VOLATILE_FIELDS | {f.lower() for f in volatile_fields}) - fields
    headers = (*SECRET_HEADERS, *(h.lower() for h in extra_headers))

    def before_record_request(request: Any) -> Any:
        # vcrpy runs this on a copy of every request: before writing it, and before matching a
        # request against the cassette, so both sides are compared scrubbed and normalized.
        request.uri = scrub_text(request.uri, known)
        request.body = _scrub_body(request.body, known, fields, volatile)
        return request

    def before_record_response(response: dict[str, Any]) -> dict[str, Any]:
        response["headers"] = {
            name: [scrub_text(v, known) for v in values]
            for name, values in response.get("headers", {}).items()
            if name.lower() not in DROPPED_RESPONSE_HEADERS
        }
        body = response.get("body", {})
        if "string" in body:
            body["string"] = _scrub_body(body["string"], known, fields)
        return response

    return {
        "filter_headers": [(name, REDACTED) for name in headers],
        "filter_query_parameters": [(name, REDACTED) for name in sorted(fields)],
        "before_record_request": before_record_request,
        "before_record_response": before_record_response,
        "decode_compressed_response": True,
        "match_on": [m for m in MATCH_ON if match_body or m != "body"],
    }
