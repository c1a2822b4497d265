"""One shared vcrpy / pytest-recording configuration for provider plugins' recorded HTTP tests.

Secrets are scrubbed *before* a cassette is written, matching ignores what changes on every
request (idempotency keys, bodies), and CI replays with the network blocked. In the plugin's
``conftest.py``::

    import os
    import pytest
    from gateway_core.testing.recording import vcr_config as recording_config

    @pytest.fixture(scope="module")
    def vcr_config():
        return recording_config(secrets=[os.environ.get("STRIPE_API_KEY")])

and mark each recorded test ``@pytest.mark.vcr``. The commands:

* CI (and everyone, by default) replays, with no network but the local stand-ins::

      uv run pytest --record-mode=none --block-network --allowed-hosts=127.0.0.1

* Re-record one plugin's cassettes against the provider's sandbox with real *test* keys (never
  live keys), then read the diff of the cassettes before committing them::

      STRIPE_API_KEY=sk_test_... uv run pytest tests/stripe_gateway --record-mode=rewrite

  (``--record-mode=once`` records only cassettes that do not exist yet.)

What is scrubbed, in requests and responses alike: the ``Authorization``, ``Proxy-Authorization``,
``Cookie``, ``User-Agent`` and ``X-Stripe-Client-User-Agent`` headers and ``Set-Cookie``; JSON
fields and form parameters named like tokens and secrets (:data:`SECRET_FIELDS`) at any depth;
anything shaped like a Stripe secret or restricted key, a webhook secret or a PayPal access token
(:data:`SECRET_PATTERNS`); and every exact value passed as ``secrets=``.

Needs vcrpy (and pytest-recording for the fixtures and flags); neither is a runtime dependency of
gateway-core, and this module imports neither.
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
    "scrub_text",
    "vcr_config",
]

REDACTED = "REDACTED"

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

#: Shapes of secrets that must never reach a cassette, whatever field carries them.
SECRET_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9]+"),  # Stripe secret / restricted keys
    re.compile(r"\bwhsec_[A-Za-z0-9_]+"),  # webhook signing secrets
    re.compile(r"\bA21AA[A-Za-z0-9_\-]{20,}"),  # PayPal OAuth access tokens
)

#: What identifies a request for replay: not headers (idempotency keys, dates) and not the body.
MATCH_ON: tuple[str, ...] = ("method", "scheme", "host", "port", "path", "query")


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every exact secret and every secret-shaped substring replaced."""
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def _scrub_json(value: Any, fields: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if k.lower() in fields else _scrub_json(v, fields) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_json(v, fields) for v in value]
    return value


def _scrub_form(text: str, fields: frozenset[str]) -> str:
    """A form-encoded body with secret parameters replaced (``card[number]`` counts as ``number``)."""
    try:
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return text
    leaf = re.compile(r"[^\[\]]+")
    scrubbed = [(k, REDACTED if (leaf.findall(k) or [k])[-1].lower() in fields else v) for k, v in pairs]
    return urllib.parse.urlencode(scrubbed)


def _scrub_body(body: bytes | str | None, secrets: tuple[str, ...], fields: frozenset[str]) -> bytes | str | None:
    if not body:
        return body
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        parsed = json.loads(text)
    except ValueError:
        text = _scrub_form(text, fields)
    else:
        if isinstance(parsed, dict | list):
            text = json.dumps(_scrub_json(parsed, fields))
    text = scrub_text(text, secrets)
    return text.encode() if isinstance(body, bytes) else text


def vcr_config(
    *,
    secrets: Iterable[str | None] = (),
    extra_headers: Iterable[str] = (),
    extra_fields: Iterable[str] = (),
) -> dict[str, Any]:
    """The ``vcr_config`` for pytest-recording (also valid as ``vcr.VCR(**vcr_config())``).

    ``secrets`` are exact values to scrub wherever they appear (``None`` and ``""`` are ignored,
    so ``os.environ.get("STRIPE_API_KEY")`` can be passed as is); ``extra_headers`` and
    ``extra_fields`` add provider-specific header and field names to scrub.
    """
    known = tuple(s for s in secrets if s)
    fields = SECRET_FIELDS | {f.lower() for f in extra_fields}
    headers = (*SECRET_HEADERS, *(h.lower() for h in extra_headers))

    def before_record_request(request: Any) -> Any:
        request.uri = scrub_text(request.uri, known)
        request.body = _scrub_body(request.body, known, fields)
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
        "match_on": list(MATCH_ON),
    }
