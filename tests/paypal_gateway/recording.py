"""The one vcrpy configuration for recording PayPal interactions: secrets are scrubbed before writing.

Use it when re-recording against the sandbox (see docs/paypal.md)::

    @pytest.fixture
    def vcr_config():
        return recording.vcr_config()
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MATCH_ON", "scrub_response", "vcr_config"]

#: PayPal-Request-Id differs per run and bodies carry fresh ids: match on the request line only.
MATCH_ON = ["method", "scheme", "host", "port", "path", "query"]
_SECRET_HEADERS = ["authorization", "paypal-auth-assertion"]
_TOKEN_RE = re.compile(rb'"access_token"\s*:\s*"[^"]*"')


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Replace the OAuth ``access_token`` in a recorded response body with ``REDACTED``."""
    body = response.get("body", {}).get("string")
    if isinstance(body, str):
        body = body.encode()
    if isinstance(body, bytes) and b"access_token" in body:
        response["body"]["string"] = _TOKEN_RE.sub(b'"access_token":"REDACTED"', body)
    return response


def vcr_config() -> dict[str, Any]:
    return {
        "match_on": MATCH_ON,
        "filter_headers": [(name, "REDACTED") for name in _SECRET_HEADERS],
        "before_record_response": scrub_response,
        "decode_compressed_response": True,
    }
