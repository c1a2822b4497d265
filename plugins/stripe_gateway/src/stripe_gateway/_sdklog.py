"""Keeps request and response bodies, and key-shaped text, out of the Stripe SDK's own log lines.

stripe-python logs through the standard library's logger ``stripe``. At debug it writes every
request's form body (``message='Post details' post_data=...``: payment-method tokens, e-mail
addresses, metadata values) and every response body (``message='API response body'``: a
PaymentIntent's ``client_secret``, the payer's e-mail); at info, Stripe's error messages. A host
that turns on debug logging for everything, even for an hour, would write all of it to its logs.

:func:`install` adds one :class:`HideBodies` filter to that logger. The lines stay, so the
host still sees each request, its answer code and timing; a body is replaced by its length, and
the rest of the line goes through :func:`stripe_gateway.errors.redact`. What the filter cannot
reach: ``STRIPE_LOG=debug`` (or ``stripe.log = "debug"``) makes the SDK also ``print`` the same
lines to standard error, past ``logging`` -- leave it unset in production (docs/stripe.md).
"""

from __future__ import annotations

import logging
import threading

from stripe_gateway.errors import redact

__all__ = ["SDK_LOGGER", "HideBodies", "install"]

#: The logger stripe-python writes to (``stripe._util.logger``).
SDK_LOGGER = "stripe"

# stripe-python's logfmt sorts the keys: "api_version=... message='Post details' post_data=<body>"
# and "body=<body> message='API response body'".
_POST = " message='Post details' post_data="
_RESPONSE_END = " message='API response body'"

_lock = threading.Lock()


def hide_bodies(line: str) -> str:
    """One SDK log line with its request or response body replaced by the body's length."""
    if _POST in line:
        head, _, body = line.partition(_POST)
        return f"{redact(head)}{_POST}<hidden: {len(body)} chars>"
    if line.startswith("body=") and line.endswith(_RESPONSE_END):
        body = line[len("body=") : -len(_RESPONSE_END)]
        return f"body=<hidden: {len(body)} chars>{_RESPONSE_END}"
    return redact(line)


class HideBodies(logging.Filter):
    """Rewrites each record of the ``stripe`` logger with :func:`hide_bodies`; drops none."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            line = record.getMessage()
        except Exception:  # a record this filter cannot read is left as it is
            return True
        record.msg, record.args = hide_bodies(line), ()
        return True


def install() -> None:
    """Add the filter to the SDK's logger, once per process (any number of gateways)."""
    logger = logging.getLogger(SDK_LOGGER)
    with _lock:
        if not any(isinstance(f, HideBodies) for f in logger.filters):
            logger.addFilter(HideBodies())
