"""PayPal's errors mapped onto the core tree, in one context manager (httpx's ``map_httpcore_exceptions`` shape).

Imported only when a PayPal operation runs (it imports the SDK's exception classes). The mapping:

==================================================  =============================================
PayPal (``ErrorException`` name / first issue)     gateway-core
==================================================  =============================================
401, ``invalid_client`` from ``/v1/oauth2/token``   :class:`AuthenticationFailed`
403 ``NOT_AUTHORIZED`` / ``PERMISSION_DENIED``      :class:`PermissionDenied`
404 ``RESOURCE_NOT_FOUND``                          :class:`NotFound`
422 ``INSTRUMENT_DECLINED``, ``TRANSACTION_REFUSED``  :class:`PaymentDeclined` (``decline_code`` = issue;
... (see ``_DECLINED``)                             every issue whose description says the funding
                                                    source was declined or cannot pay)
422 ``PAYER_ACTION_REQUIRED``, ``ORDER_NOT_APPROVED``  :class:`AuthenticationRequired` (``action_url``:
                                                    the error's ``payer-action`` link, if any)
422 ``REFUND_AMOUNT_EXCEEDED`` ... (see ``_RANGE``)  :class:`AmountOutOfRange`
422 ``DUPLICATE_REQUEST_ID``                        :class:`IdempotencyConflict`
422 ``ORDER_ALREADY_CAPTURED``,                     :class:`OutcomeUnknown`, ``retryable=False``:
``AUTHORIZATION_ALREADY_CAPTURED``,                 done before, perhaps by this operation's lost
``ORDER_ALREADY_AUTHORIZED``,                       attempt; read the payment's status (see
``ORDER_COMPLETED_OR_VOIDED``, ``PREVIOUSLY_VOIDED``  ``_DONE_BEFORE``)
422 ``CAPTURE_FULLY_REFUNDED``                      :class:`AmountOutOfRange` (nothing remains;
                                                    read the payment's status)
422 ``PREVIOUSLY_CAPTURED`` (a void)                :class:`InvalidRequest` (refund it instead)
422 ``DUPLICATE_INVOICE_ID``                        :class:`InvalidRequest` (that ``invoice_id`` was paid)
400 / other 422                                     :class:`InvalidRequest`
409 (a duplicate request still in flight)           :class:`OutcomeUnknown` (retryable)
429                                                 :class:`RateLimited` (retryable)
5xx                                                 :class:`GatewayUnavailable`, or
                                                    :class:`OutcomeUnknown` for a POST (retryable)
connect error / connect timeout                     :class:`GatewayUnavailable` (nothing was sent)
read timeout / connection dropped after sending     :class:`OutcomeUnknown` for a POST (retryable)
body cut off mid-transfer, or not decodable         :class:`GatewayUnavailable`, or
``ChunkedEncodingError``, ``ContentDecodingError``  :class:`OutcomeUnknown` for a POST (retryable)
2xx with a body that is not a JSON object           :class:`GatewayUnavailable`, or
                                                    :class:`OutcomeUnknown` for a POST (retryable;
                                                    raised in ``client.py``)
2xx JSON object lacking a field the plugin reads    :class:`GatewayUnavailable` after reads, or
                                                    :class:`OutcomeUnknown` after a 2xx POST
                                                    (``retryable=False``: read the status; raised
                                                    by ``answer_fault`` in ``client.py``)
==================================================  =============================================

``request_id`` is PayPal's ``debug_id``. Messages are built from PayPal's ``name``, ``issue`` and
``description`` only; request bodies, tokens and credentials never reach them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from apimatic_core.exceptions.auth_validation_exception import (  # type: ignore[import-untyped]
    AuthValidationException,
)
from paypalserversdk.exceptions.api_exception import ApiException  # type: ignore[import-untyped]
from paypalserversdk.exceptions.error_exception import ErrorException  # type: ignore[import-untyped]
from paypalserversdk.exceptions.o_auth_provider_exception import (  # type: ignore[import-untyped]
    OAuthProviderException,
)

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
)

__all__ = ["error_from_status", "map_errors"]

_DECLINED = frozenset(
    {
        "INSTRUMENT_DECLINED",
        "TRANSACTION_REFUSED",
        "PAYER_CANNOT_PAY",
        "AUTHORIZATION_DENIED",
        "DECLINED_DUE_TO_RELATED_TXN",
        "PAYEE_BLOCKED_TRANSACTION",
        "PAYER_ACCOUNT_LOCKED_OR_CLOSED",
        "PAYER_ACCOUNT_RESTRICTED",
        "CARD_EXPIRED",
        "COMPLIANCE_VIOLATION",
        "MAX_NUMBER_OF_PAYMENT_ATTEMPTS_EXCEEDED",
        "REFUND_FAILED_INSUFFICIENT_FUNDS",
        # Orders v2: the payer's funding source was declined or cannot pay; the payer picks another
        # (a new order, or the approve link again), as for INSTRUMENT_DECLINED.
        "REDIRECT_PAYER_FOR_ALTERNATE_FUNDING",
        "PAYMENT_SOURCE_DECLINED_BY_PROCESSOR",
        "PAYMENT_SOURCE_CANNOT_BE_USED",
        "ALIAS_DECLINED_BY_PROCESSOR",
        "TRANSACTION_BLOCKED_BY_PAYEE",
        "REFERENCED_CARD_EXPIRED",
    }
)
_PAYER_ACTION = frozenset({"PAYER_ACTION_REQUIRED", "ORDER_NOT_APPROVED"})
_RANGE = frozenset(
    {
        "REFUND_AMOUNT_EXCEEDED",
        "MAX_CAPTURE_AMOUNT_EXCEEDED",
        "AUTHORIZATION_AMOUNT_EXCEEDED",
        "REFUND_AMOUNT_TOO_LOW",
        "CAPTURE_FULLY_REFUNDED",
        "MAX_NUMBER_OF_REFUNDS_EXCEEDED",
        "MAX_CAPTURE_COUNT_EXCEEDED",
    }
)
_PERMISSION = frozenset({"NOT_AUTHORIZED", "PERMISSION_DENIED", "CONSENT_NEEDED"})
#: Issues that say the payment is already where the request would take it: captured, authorized,
#: voided. *This* request did nothing, but an earlier attempt of the same operation may have: one
#: whose answer was lost and that was retried under another PayPal-Request-Id, or after PayPal
#: stopped keeping the first id (6 hours for Orders v2, 45 days for Payments v2:
#: ``shared/provider-facts``, idempotency). So not :class:`InvalidRequest` ("nothing was
#: charged"), which could make a host mark a payment failed whose money was taken, but
#: :class:`OutcomeUnknown` with ``retryable=False``: read the payment's status (a retry gets the
#: same answer). The gateway reads the order back and returns what is there when it is exactly
#: what was asked (``gateway.py``). Issues and descriptions: Orders v2 2.13 spec,
#: ``orders.capture-422`` ("Order already captured. If 'intent=CAPTURE' only one capture per order
#: is allowed."), ``orders.authorize-422`` (ORDER_ALREADY_AUTHORIZED, ORDER_COMPLETED_OR_VOIDED);
#: Payments v2 2.5 spec, ``422`` (AUTHORIZATION_ALREADY_CAPTURED: "Authorization has previously
#: been captured.") and ``authorizations.void-422`` (PREVIOUSLY_VOIDED); and
#: https://developer.paypal.com/api/payments/v2/errors/authorization_already_captured. Orders v2's
#: ORDER_ALREADY_COMPLETED is an answer to PATCH only, which the plugin never sends.
_DONE_BEFORE = {
    "ORDER_ALREADY_CAPTURED": "the order is already captured (PayPal takes one capture per order)",
    "AUTHORIZATION_ALREADY_CAPTURED": "the authorization is already captured in full",
    "ORDER_ALREADY_AUTHORIZED": "the order is already authorized (PayPal takes one authorization per order)",
    "ORDER_COMPLETED_OR_VOIDED": "the order is already authorized or captured, or was voided",
    "PREVIOUSLY_VOIDED": "the authorization is already voided",
}


def _first_issue(exc: Any) -> tuple[str | None, str | None]:
    details = getattr(exc, "details", None) or []
    for detail in details:
        issue = getattr(detail, "issue", None)
        if issue:
            return str(issue), getattr(detail, "description", None)
    return None, None


#: The ``rel`` of a link that sends the payer somewhere to act (Orders v2). An error's other links
#: (``information_link``: PayPal's documentation of the error) are no place to send a payer.
_PAYER_LINKS = ("payer-action", "approve")


def _payer_action_url(exc: Any) -> str | None:
    """The ``payer-action`` (or ``approve``) link in the error's ``links``, if PayPal sent one."""
    links = getattr(exc, "links", None) or []
    for rel in _PAYER_LINKS:
        for link in links:
            href = getattr(link, "href", None)
            if getattr(link, "rel", None) == rel and isinstance(href, str) and href:
                return href
    return None


def _retry_after(exc: Any) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    for key, value in dict(headers).items():
        if str(key).lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None


def _debug_id(exc: Any) -> str | None:
    debug_id = getattr(exc, "debug_id", None)
    if debug_id:
        return str(debug_id)
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    for key, value in dict(headers).items():
        if str(key).lower() == "paypal-debug-id":
            return str(value)
    return None


def error_from_status(
    status: int,
    *,
    gateway: str,
    operation: str,
    mutating: bool,
    name: str | None = None,
    message: str | None = None,
    issue: str | None = None,
    description: str | None = None,
    debug_id: str | None = None,
    retry_after: float | None = None,
    action_url: str | None = None,
) -> GatewayError:
    """The core error for a PayPal error response (status, ``name`` and first ``issue``).

    ``action_url`` is the error's ``payer-action`` link, for :class:`AuthenticationRequired`.
    """
    code = issue or name
    text = f"PayPal {operation} failed: {name or status}"
    if issue:
        text += f" / {issue}"
    if description or message:
        text += f": {description or message}"
    fields: dict[str, Any] = {
        "gateway": gateway,
        "provider_code": code,
        "http_status": status,
        "request_id": debug_id,
    }
    if status == 429 or name == "RATE_LIMIT_REACHED":
        return RateLimited(text, retry_after=retry_after, **fields)
    if status >= 500:
        if mutating:
            return OutcomeUnknown(text + " (retry with the same PayPal-Request-Id)", **fields)
        return GatewayUnavailable(text, **fields)
    if status == 409:
        return OutcomeUnknown(text + " (a request with this PayPal-Request-Id is in progress)", **fields)
    if status == 401 or name in ("AUTHENTICATION_FAILURE", "invalid_client"):
        return AuthenticationFailed(text, **fields)
    if status == 403 or name in _PERMISSION:
        return PermissionDenied(text, permission=issue, **fields)
    if status == 404 or name == "RESOURCE_NOT_FOUND":
        return NotFound(text, **fields)
    if issue == "DUPLICATE_REQUEST_ID":
        return IdempotencyConflict(text, **fields)
    if issue in _DONE_BEFORE:
        return OutcomeUnknown(
            f"PayPal {operation}: {name or status} / {issue}: {_DONE_BEFORE[issue]}, perhaps by an earlier "
            "attempt of this operation whose answer was lost; this request changed nothing. Read the payment's "
            "status (payment_status) to learn what happened before acting again, and do not record it as a "
            "failure: a retry gets this same answer",
            retryable=False,
            **fields,
        )
    if issue == "CAPTURE_FULLY_REFUNDED":
        return AmountOutOfRange(
            text + " (nothing remains to refund, perhaps because an earlier attempt of this refund whose answer "
            "was lost refunded it: read the payment's status, payment_status, before refunding again)",
            **fields,
        )
    if issue == "PREVIOUSLY_CAPTURED":
        return InvalidRequest(text + " (the authorization was captured: refund the capture instead)", **fields)
    if issue == "DUPLICATE_INVOICE_ID":
        # A PayPal account takes each invoice_id once unless its profile allows duplicates.
        return InvalidRequest(
            text + " (this invoice_id was already paid on this PayPal account: this request charged nothing; "
            "find the payment that paid the invoice before charging it again)",
            **fields,
        )
    if issue in _DECLINED:
        return PaymentDeclined(text, decline_code=issue, **fields)
    if issue in _PAYER_ACTION:
        return AuthenticationRequired(text, action_url=action_url, **fields)
    if issue in _RANGE:
        return AmountOutOfRange(text, **fields)
    if 400 <= status < 500:
        return InvalidRequest(text, **fields)
    return GatewayError(text, **fields)


def _is_connect_failure(exc: requests.ConnectionError) -> bool:
    """Whether the connection failed before the request could be sent (so nothing happened)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    text = repr(exc.args[0]) if exc.args else ""
    return any(marker in text for marker in ("NewConnectionError", "ConnectTimeoutError", "NameResolutionError"))


@contextmanager
def map_errors(gateway: str, operation: str, *, mutating: bool) -> Iterator[None]:
    """Translate SDK and transport errors raised inside the block into the core tree."""
    try:
        yield
    except GatewayError:
        raise
    except OAuthProviderException as exc:
        error = getattr(exc, "error", None) or "oauth_error"
        raise AuthenticationFailed(
            f"PayPal refused the client credentials: {error}",
            gateway=gateway,
            provider_code=str(error),
            http_status=exc.response_code,
            request_id=_debug_id(exc),
        ) from exc
    except ErrorException as exc:
        issue, description = _first_issue(exc)
        raise error_from_status(
            exc.response_code,
            gateway=gateway,
            operation=operation,
            mutating=mutating,
            name=getattr(exc, "name", None),
            message=getattr(exc, "message", None),
            issue=issue,
            description=description,
            debug_id=_debug_id(exc),
            retry_after=_retry_after(exc),
            action_url=_payer_action_url(exc),
        ) from exc
    except ApiException as exc:
        raise error_from_status(
            exc.response_code,
            gateway=gateway,
            operation=operation,
            mutating=mutating,
            debug_id=_debug_id(exc),
            retry_after=_retry_after(exc),
        ) from exc
    except AuthValidationException as exc:
        raise AuthenticationFailed("PayPal OAuth token could not be obtained", gateway=gateway) from exc
    except requests.Timeout as exc:
        if isinstance(exc, requests.ConnectTimeout) or not mutating:
            raise GatewayUnavailable(f"PayPal {operation} timed out", gateway=gateway) from exc
        raise OutcomeUnknown(
            f"PayPal {operation} timed out after the request was sent; retry with the same PayPal-Request-Id",
            gateway=gateway,
        ) from exc
    except requests.ConnectionError as exc:
        if _is_connect_failure(exc) or not mutating:
            raise GatewayUnavailable(f"PayPal {operation}: could not connect", gateway=gateway) from exc
        raise OutcomeUnknown(
            f"PayPal {operation}: connection lost after the request was sent; retry with the same PayPal-Request-Id",
            gateway=gateway,
        ) from exc
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
        # An answer arrived but its body was cut off mid-transfer (fewer bytes than Content-Length,
        # a broken chunk) or cannot be decoded: the request was sent, and PayPal may have acted.
        # Not a ConnectionError, so it needs its own case.
        if not mutating:
            raise GatewayUnavailable(
                f"PayPal {operation}: the answer was cut off or unreadable", gateway=gateway
            ) from exc
        raise OutcomeUnknown(
            f"PayPal {operation}: the answer was cut off or unreadable after the request was sent; "
            "retry with the same PayPal-Request-Id",
            gateway=gateway,
        ) from exc
    except requests.RequestException as exc:
        raise GatewayUnavailable(f"PayPal {operation}: {type(exc).__name__}", gateway=gateway) from exc
