"""Mapping of every ``stripe`` SDK error to the gateway-core error tree, in one place.

Modelled on httpx's ``map_httpcore_exceptions``: operations run inside :func:`map_stripe_errors`
(or the gateway's drivers call :func:`translate` directly), which raises the most specific
:mod:`gateway_core.errors` class ``from`` the SDK's error. Messages are Stripe's own text with
anything key-, secret- or card-shaped redacted. The SDK is imported when an error is mapped, not
when this module is imported.

==========================================  =====================================================
SDK error                                   gateway-core error
==========================================  =====================================================
CardError ``authentication_required``       AuthenticationRequired
CardError                                   PaymentDeclined (``decline_code``: see below)
IdempotencyError                            IdempotencyConflict (same key, other parameters)
any error with code ``lock_timeout``        GatewayUnavailable (retryable: nothing was done)
HTTP 409 (``idempotency_key_in_use``)       OutcomeUnknown when mutating (retryable), else
                                            GatewayUnavailable (retryable)
InvalidRequestError 404/``resource_missing``  NotFound
``payment_intent_unexpected_state``         OutcomeUnknown, ``retryable=False``: done before,
                                            perhaps by this operation's lost attempt; read the
                                            payment's status (see below)
InvalidRequestError amount codes            AmountOutOfRange (``charge_already_refunded``, and on a
                                            refund ``amount_too_large``: read the payment's
                                            status before refunding again)
InvalidRequestError ``rate_limit``          RateLimited
InvalidRequestError                         InvalidRequest
AuthenticationError                         AuthenticationFailed
PermissionError                             PermissionDenied (``permission`` names the missing one)
RateLimitError                              RateLimited (retryable)
APIConnectionError                          OutcomeUnknown when mutating, else GatewayUnavailable
APIError 2xx (a body that is not JSON)      OutcomeUnknown when mutating (retryable: the same key
                                            gets Stripe's saved answer whole), else GatewayUnavailable
APIError 5xx                                OutcomeUnknown when mutating (retryable unless Stripe
                                            says ``Stripe-Should-Retry: false``: see below), else
                                            GatewayUnavailable
SignatureVerificationError                  WebhookVerificationFailed
any other StripeError                       GatewayError (``provider_error``)
==========================================  =====================================================

Retries follow Stripe's own rules (stripe-python ``_http_client.py`` ``_should_retry``):

* A ``Stripe-Should-Retry`` header on the answer decides ``retryable`` (``true``/``false``).
* A 409 is another request with the same idempotency key still in flight (Stripe's
  ``idempotency_key_in_use``). It is not :class:`IdempotencyConflict` (the same key with *other*
  parameters, a caller's bug that no retry fixes): the first request may still take effect, so
  it is :class:`OutcomeUnknown`, retryable -- a retry with the same key, a moment later, returns
  the first request's result.
* A 5xx on a POST, by its ``Stripe-Should-Retry`` header, as the SDK's ``_should_retry`` reads it:

  - ``false``: Stripe saved the answer of a request that reached execution under its
    idempotency key and replays it, 500 included, for every retry with that key. Retrying with
    the same key cannot tell the host more, so the error is :class:`OutcomeUnknown` with
    ``retryable=False``, and its message says how to find out what happened (:func:`find_out`).
  - ``true``: Stripe failed before executing; :class:`OutcomeUnknown`, retryable.
  - absent: not an answer Stripe saved (a proxy's or load balancer's 502/503/504, typically), so
    a retry with the same key is safe and may succeed; :class:`OutcomeUnknown`, retryable. The
    SDK retries it too (``_should_retry`` retries any 5xx without the header), so by the time it
    reaches the host its ``max_network_retries`` were spent on it.

``payment_intent_unexpected_state`` (HTTP 400) is Stripe's answer to a capture of a PaymentIntent
that is not ``requires_capture`` (captured already, canceled) and to a cancel of one that is
``succeeded`` or ``canceled`` already; the error body carries the PaymentIntent as it is now
(``payment_intent``, the ``api_errors`` schema of Stripe's spec; real answers: the omnipay cancel
recording in ``tests/stripe_gateway/data/recorded``, grandnode/grandnode#985 for a capture). *This*
request changed nothing, but the operation's first attempt may have: one whose answer was lost and
that was retried under another idempotency key, or under the same one after Stripe pruned it
(keys may be pruned once at least 24 hours old: https://docs.stripe.com/idempotency,
``shared/provider-facts``). So it is not :class:`InvalidRequest` ("nothing was charged"), which
could make a host mark a payment failed whose money was taken, but :class:`OutcomeUnknown` with
``retryable=False`` (a retry gets the same answer): read the payment's status. The gateway looks
at that PaymentIntent and answers what it shows when that is exactly what was asked
(``gateway.py``: ``_captured_before``, ``_cancel``). ``charge_already_refunded`` stays
:class:`AmountOutOfRange` (nothing remains to refund; the conformance suite wants an
``InvalidRequest``), its message saying an earlier attempt may have refunded it. So does a
refund's ``amount_too_large`` ("greater than unrefunded amount on charge",
:data:`REFUND_EXCEEDS_CODES`): a partial refund whose answer was lost, sent again under a new or a
pruned key, finds less remaining because that first attempt refunded it. Only on a refund
(``operation="refund"``): ``amount_too_large`` on a checkout, authorization or capture implies no
earlier attempt and keeps the plain message.

``decline_code`` is Stripe's ``decline_code`` when the error has one (``insufficient_funds``);
when Stripe gives only ``code`` (older API versions, some ``card_declined`` answers) it is that
code, so a declined payment always carries a reason and ``decline_code == provider_code`` means
Stripe gave nothing more specific.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from gateway_core.errors import (
    AmountOutOfRange,
    AuthenticationFailed,
    AuthenticationRequired,
    GatewayError,
    GatewayUnavailable,
    IdempotencyConflict,
    InvalidRequest,
    NotFound,
    OutcomeUnknown,
    PaymentDeclined,
    PermissionDenied,
    RateLimited,
    WebhookVerificationFailed,
)

if TYPE_CHECKING:
    import stripe

__all__ = [
    "AMOUNT_ERROR_CODES",
    "PERMISSION_NAMES",
    "REFUND_EXCEEDS_CODES",
    "UNEXPECTED_STATE",
    "error_intent",
    "find_out",
    "map_stripe_errors",
    "permission_name",
    "redact",
    "should_retry_hint",
    "translate",
]

#: Stripe error codes that mean "this amount is not acceptable" (nothing was charged/refunded).
AMOUNT_ERROR_CODES: frozenset[str] = frozenset(
    {
        "amount_too_small",
        "amount_too_large",
        "charge_exceeds_source_limit",
        "charge_exceeds_transaction_limit",
        "charge_already_refunded",
        "refund_exceeds_charge",
    }
)

#: Codes Stripe gives a refund of more than remains to refund (``amount_too_large``: "Refund amount
#: ($25.00) is greater than unrefunded amount on charge ($21.45)", reactioncommerce/reaction#3704,
#: HealthByRo/aa-stripe#77). On a refund, unlike a charge or checkout, that may be this refund's own
#: earlier attempt having shrunk what remains (see the module docstring).
REFUND_EXCEEDS_CODES: frozenset[str] = frozenset({"amount_too_large", "refund_exceeds_charge"})

#: Stripe's code for a capture or cancel the PaymentIntent's status does not take (see the module docstring).
UNEXPECTED_STATE = "payment_intent_unexpected_state"

#: Restricted-key permission slugs Stripe names in a 403, as the Dashboard labels them.
PERMISSION_NAMES: dict[str, str] = {
    "rak_checkout_session_write": "Checkout Sessions write",
    "rak_checkout_session_read": "Checkout Sessions read",
    "rak_product_write": "Products write",
    "rak_product_read": "Products read",
    "rak_plan_write": "Prices write",
    "rak_price_write": "Prices write",
    "rak_plan_read": "Prices read",
    "rak_payment_intent_write": "PaymentIntents write",
    "rak_payment_intent_read": "PaymentIntents read",
    "rak_refund_write": "Refunds write",
    "rak_refund_read": "Refunds read",
    "rak_charge_write": "Charges write",
    "rak_charge_read": "Charges read",
}

_PERMISSION_RE = re.compile(r"\brak_[a-z_]+\b")
_REDACTIONS = (
    re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9*]+"),
    re.compile(r"\bwhsec_[A-Za-z0-9]+"),
    re.compile(r"\b[a-z]+_[A-Za-z0-9]+_secret_[A-Za-z0-9]+"),  # client secrets
    re.compile(r"\b(?:\d[ -]?){12,18}\d\b"),  # card-number-shaped digit runs
)


def redact(text: str) -> str:
    """``text`` with key-, secret-, client-secret- and card-number-shaped substrings replaced."""
    for pattern in _REDACTIONS:
        text = pattern.sub("[redacted]", text)
    return text


def permission_name(message: str) -> str | None:
    """The human name of the restricted-key permission a Stripe 403 message names, if any."""
    match = _PERMISSION_RE.search(message)
    if match is None:
        return None
    slug = match.group(0)
    return PERMISSION_NAMES.get(slug, slug.removeprefix("rak_").replace("_", " "))


def _header(err: stripe.StripeError, name: str) -> str | None:
    headers = err.headers or {}
    return next((str(v) for k, v in headers.items() if k.lower() == name), None)


def _retry_after(err: stripe.StripeError) -> float | None:
    value = _header(err, "retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def should_retry_hint(err: stripe.StripeError) -> bool | None:
    """Stripe's ``Stripe-Should-Retry`` answer header as a bool, or ``None`` when absent."""
    return {"true": True, "false": False}.get((_header(err, "stripe-should-retry") or "").strip().lower())


def _code(err: stripe.StripeError) -> str | None:
    """Stripe's error code: the SDK sets ``code`` only for some classes (not for a 409's
    ``APIError``), so the parsed error body is the fallback."""
    code = err.code or (getattr(err.error, "code", None) if err.error is not None else None)
    return code if isinstance(code, str) else None


def find_out(operation: str | None) -> str:
    """How the host learns whether a mutation took effect when a retry with its key cannot tell.

    ``operation`` is the core's name for it (``context.operation``). A new checkout or
    authorization has no id the host could ask ``payment_status`` about, so it is found by the
    request's reference; any other operation names the payment it acted on.
    """
    if operation == "checkout":
        return (
            "the host has no id for the new Checkout Session: look for one whose client_reference_id is the "
            "request's reference (in the Dashboard, or by listing the sessions created since); a session whose url "
            "the host never got cannot be paid and expires unpaid, so a new checkout with a new idempotency key is "
            "safe"
        )
    if operation == "authorize":
        return (
            "the host has no id for the new PaymentIntent: look for one whose metadata reference is the request's "
            "reference (Dashboard, or the Search API: metadata['reference']) and cancel or use it before "
            "authorizing again with a new idempotency key"
        )
    return "check the payment's status before acting again with a new idempotency key"


def error_intent(error: BaseException) -> dict[str, Any] | None:
    """The PaymentIntent in the Stripe error body ``error`` was mapped from (``error.payment_intent``), if any.

    ``error`` is the gateway-core error (its ``__cause__`` is the SDK's error, as the gateway's
    drivers and :func:`map_stripe_errors` set it) or the SDK's error itself. Stripe puts the
    PaymentIntent as it is now in a ``payment_intent_unexpected_state`` error; an error without
    one (an older or trimmed answer) gives ``None``.
    """
    cause = error.__cause__ if isinstance(error, GatewayError) else error
    body = getattr(cause, "json_body", None)
    envelope = body.get("error") if isinstance(body, dict) else None
    intent = envelope.get("payment_intent") if isinstance(envelope, dict) else None
    if isinstance(intent, dict) and isinstance(intent.get("id"), str):
        return intent
    return None


def _done_before(err: stripe.StripeError) -> str:
    """The message of a ``payment_intent_unexpected_state``: done before, perhaps by this operation."""
    intent = error_intent(err)
    status = intent.get("status") if intent is not None else None
    now = f"; its status is now {status}" if isinstance(status, str) else ""
    text = _message(err, "the PaymentIntent is not in a state that allows this").rstrip(".")
    return (
        f"{text}{now}. This request changed "
        "nothing, but an earlier attempt of this operation whose answer was lost may have done it (retried with "
        "another idempotency key, or after Stripe pruned the key, which it may once it is 24 hours old). Read the "
        "payment's status (payment_status) to learn what happened before acting again, and do not record it as a "
        "failure: a retry gets this same answer"
    )


def _fields(err: stripe.StripeError, gateway: str) -> dict[str, Any]:
    return {
        "gateway": gateway,
        "provider_code": _code(err),
        "http_status": err.http_status,
        "request_id": err.request_id,
    }


def _message(err: stripe.StripeError, fallback: str) -> str:
    text = err.user_message if isinstance(err.user_message, str) and err.user_message else fallback
    return f"stripe: {redact(text)}"


def translate(err: stripe.StripeError, gateway: str, *, mutating: bool, operation: str | None = None) -> GatewayError:
    """The gateway-core error for one SDK error (see the module docstring).

    ``operation`` (the core's ``context.operation``) tailors what an :class:`OutcomeUnknown` that
    no retry resolves tells the host to do (see :func:`find_out`).
    """
    mapped = _translate(err, gateway, mutating=mutating, operation=operation)
    hint = should_retry_hint(err)
    if hint is not None:
        mapped.retryable = hint
    return mapped


def _translate(err: stripe.StripeError, gateway: str, *, mutating: bool, operation: str | None) -> GatewayError:
    import stripe  # noqa: PLC0415  (only when an SDK error is being mapped)

    fields = _fields(err, gateway)
    error_obj = err.error
    status = err.http_status
    code = fields["provider_code"]
    if isinstance(err, stripe.CardError):
        decline_code = getattr(error_obj, "decline_code", None) if error_obj is not None else None
        if err.code == "authentication_required":
            return AuthenticationRequired(_message(err, "the payer must authenticate"), **fields)
        return PaymentDeclined(_message(err, "the card was declined"), decline_code=decline_code or err.code, **fields)
    if isinstance(err, stripe.IdempotencyError):
        return IdempotencyConflict(_message(err, "idempotency key reused with other parameters"), **fields)
    if code == "lock_timeout":
        return GatewayUnavailable(
            _message(err, "another request holds a lock on this object") + "; nothing was done, retry shortly",
            retryable=True,
            **fields,
        )
    if status == 409:
        if mutating:
            return OutcomeUnknown(
                "stripe: another request with this idempotency key is still in progress; retry later with the "
                "same key to get its result",
                retryable=True,
                **fields,
            )
        return GatewayUnavailable(_message(err, "the request conflicts with another one"), retryable=True, **fields)
    if isinstance(err, stripe.RateLimitError) or code == "rate_limit":
        return RateLimited(_message(err, "too many requests"), retry_after=_retry_after(err), **fields)
    if isinstance(err, stripe.InvalidRequestError):
        if status == 404 or err.code == "resource_missing":
            return NotFound(_message(err, "no such object"), **fields)
        if err.code == UNEXPECTED_STATE:
            return OutcomeUnknown(_done_before(err), retryable=False, **fields)
        if err.code == "charge_already_refunded":
            return AmountOutOfRange(
                _message(err, "the charge is refunded already")
                + " (nothing remains to refund, perhaps because an earlier attempt of this refund whose answer was "
                "lost refunded it: read the payment's status, payment_status, before refunding again)",
                **fields,
            )
        if err.code in REFUND_EXCEEDS_CODES and operation == "refund":
            return AmountOutOfRange(
                _message(err, "the refund is more than remains to refund").rstrip(".")
                + " (perhaps because an earlier attempt of this refund whose answer was lost refunded it, and what "
                "remains is less now: read the payment's status, payment_status, before refunding again)",
                **fields,
            )
        if err.code in AMOUNT_ERROR_CODES:
            return AmountOutOfRange(_message(err, "amount not accepted"), **fields)
        return InvalidRequest(_message(err, "invalid request"), **fields)
    if isinstance(err, stripe.AuthenticationError):
        return AuthenticationFailed(_message(err, "the API key was rejected"), **fields)
    if isinstance(err, stripe.PermissionError):
        message = err.user_message if isinstance(err.user_message, str) else ""
        permission = permission_name(message)
        text = f"stripe: the key lacks the {permission} permission" if permission else _message(err, "forbidden")
        return PermissionDenied(text, permission=permission, **fields)
    if isinstance(err, stripe.APIConnectionError):
        if mutating:
            return OutcomeUnknown(
                "stripe: the connection failed; the request may have been processed. "
                "Retry with the same idempotency key",
                **fields,
            )
        return GatewayUnavailable("stripe: could not reach Stripe", **fields)
    if isinstance(err, stripe.SignatureVerificationError):
        return WebhookVerificationFailed(_message(err, "signature did not verify"), **fields)
    if isinstance(err, stripe.APIError) and status is not None and 200 <= status < 300:
        # The SDK's "Invalid response body from API": a 2xx whose body is not JSON (cut off on the
        # way, or a proxy's page). Not echoed: it is the answer, card and client-secret fields and all.
        if mutating:
            return OutcomeUnknown(
                f"stripe: the answer (HTTP {status}) arrived unreadable, not whole JSON; the operation may have "
                "taken effect: retry with the same idempotency key to get its result",
                retryable=True,
                **fields,
            )
        return GatewayUnavailable(f"stripe: the answer (HTTP {status}) arrived unreadable, not whole JSON", **fields)
    if isinstance(err, stripe.APIError) and (status is None or status >= 500):
        if not mutating:
            return GatewayUnavailable(_message(err, "Stripe had an internal error"), **fields)
        answered = f"Stripe answered {status}" if status is not None else "Stripe's answer was an error"
        hint = should_retry_hint(err)
        if hint is False:  # Stripe saved this answer under the key and replays it to every retry
            return OutcomeUnknown(
                f"stripe: {answered} and keeps that answer for this idempotency key, replaying it to a retry, so "
                f"whether the operation took effect is unknown: {find_out(operation)}",
                retryable=False,
                **fields,
            )
        if hint is True:
            text = f"stripe: {answered} without keeping a result"
        else:  # no Stripe-Should-Retry: not Stripe's saved answer (a proxy's or load balancer's, typically)
            text = f"stripe: {answered} without Stripe-Should-Retry, so not an answer Stripe saved"
        return OutcomeUnknown(
            f"{text}; the operation may have taken effect: retry with the same idempotency key to learn its result",
            retryable=True,
            **fields,
        )
    return GatewayError(_message(err, "unexpected Stripe error"), **fields)


@contextmanager
def map_stripe_errors(gateway: str, *, mutating: bool) -> Iterator[None]:
    """Run a block of SDK calls, raising gateway-core errors ``from`` any SDK error."""
    import stripe  # noqa: PLC0415  (the block runs SDK calls: the SDK is loaded already)

    try:
        yield
    except stripe.StripeError as exc:
        raise translate(exc, gateway, mutating=mutating) from exc
