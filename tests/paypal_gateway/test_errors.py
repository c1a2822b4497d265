"""PayPal's error envelope mapped onto the core tree (status, name and first issue)."""

from __future__ import annotations

import pytest
from paypal_gateway.errors import error_from_status

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


@pytest.mark.parametrize(
    ("status", "name", "issue", "mutating", "expected", "retryable"),
    [
        (422, "UNPROCESSABLE_ENTITY", "INSTRUMENT_DECLINED", True, PaymentDeclined, False),
        (422, "UNPROCESSABLE_ENTITY", "TRANSACTION_REFUSED", True, PaymentDeclined, False),
        # Orders v2 issues whose descriptions say the payment source was declined or refused
        # ("Transaction failed. Redirect the payer to select another funding source.", ...)
        (422, "UNPROCESSABLE_ENTITY", "REDIRECT_PAYER_FOR_ALTERNATE_FUNDING", True, PaymentDeclined, False),
        (422, "UNPROCESSABLE_ENTITY", "PAYMENT_SOURCE_DECLINED_BY_PROCESSOR", True, PaymentDeclined, False),
        (422, "UNPROCESSABLE_ENTITY", "PAYMENT_SOURCE_CANNOT_BE_USED", True, PaymentDeclined, False),
        (422, "UNPROCESSABLE_ENTITY", "ALIAS_DECLINED_BY_PROCESSOR", True, PaymentDeclined, False),
        (422, "UNPROCESSABLE_ENTITY", "TRANSACTION_BLOCKED_BY_PAYEE", True, PaymentDeclined, False),
        (422, "UNPROCESSABLE_ENTITY", "REFERENCED_CARD_EXPIRED", True, PaymentDeclined, False),
        (422, "UNPROCESSABLE_ENTITY", "PAYER_ACTION_REQUIRED", True, AuthenticationRequired, False),
        (422, "UNPROCESSABLE_ENTITY", "ORDER_NOT_APPROVED", True, AuthenticationRequired, False),
        (422, "UNPROCESSABLE_ENTITY", "REFUND_AMOUNT_EXCEEDED", True, AmountOutOfRange, False),
        (422, "UNPROCESSABLE_ENTITY", "MAX_CAPTURE_AMOUNT_EXCEEDED", True, AmountOutOfRange, False),
        (422, "UNPROCESSABLE_ENTITY", "DUPLICATE_REQUEST_ID", True, IdempotencyConflict, False),
        # Done already, perhaps by the operation's own lost attempt: read the status, never "invalid"
        (422, "UNPROCESSABLE_ENTITY", "ORDER_ALREADY_CAPTURED", True, OutcomeUnknown, False),
        (422, "UNPROCESSABLE_ENTITY", "AUTHORIZATION_ALREADY_CAPTURED", True, OutcomeUnknown, False),
        (422, "UNPROCESSABLE_ENTITY", "ORDER_ALREADY_AUTHORIZED", True, OutcomeUnknown, False),
        (422, "UNPROCESSABLE_ENTITY", "ORDER_COMPLETED_OR_VOIDED", True, OutcomeUnknown, False),
        (422, "UNPROCESSABLE_ENTITY", "PREVIOUSLY_VOIDED", True, OutcomeUnknown, False),
        (422, "UNPROCESSABLE_ENTITY", "CAPTURE_FULLY_REFUNDED", True, AmountOutOfRange, False),
        (422, "UNPROCESSABLE_ENTITY", "PREVIOUSLY_CAPTURED", True, InvalidRequest, False),
        (422, "UNPROCESSABLE_ENTITY", "DUPLICATE_INVOICE_ID", True, InvalidRequest, False),
        (400, "INVALID_REQUEST", "INVALID_PARAMETER_VALUE", True, InvalidRequest, False),
        (404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", True, NotFound, False),
        (401, "AUTHENTICATION_FAILURE", None, False, AuthenticationFailed, False),
        (403, "NOT_AUTHORIZED", "PERMISSION_DENIED", False, PermissionDenied, False),
        (409, "RESOURCE_CONFLICT", None, True, OutcomeUnknown, True),
        (429, "RATE_LIMIT_REACHED", None, True, RateLimited, True),
        (500, "INTERNAL_SERVER_ERROR", None, True, OutcomeUnknown, True),
        (503, "SERVICE_UNAVAILABLE", None, False, GatewayUnavailable, True),
    ],
)
def test_mapping(
    status: int, name: str, issue: str | None, mutating: bool, expected: type[GatewayError], retryable: bool
) -> None:
    error = error_from_status(
        status, gateway="pp", operation="capture order", mutating=mutating, name=name, issue=issue, debug_id="abc123"
    )
    assert type(error) is expected
    assert error.retryable is retryable
    assert error.request_id == "abc123"
    assert error.http_status == status
    assert error.provider_code == (issue or name)
    assert error.gateway == "pp"
    if expected is PaymentDeclined:
        assert error.decline_code == issue  # type: ignore[attr-defined]


def test_read_5xx_is_unavailable_not_unknown() -> None:
    error = error_from_status(500, gateway="pp", operation="get order", mutating=False)
    assert type(error) is GatewayUnavailable


@pytest.mark.parametrize(
    "issue",
    [
        "ORDER_ALREADY_CAPTURED",
        "AUTHORIZATION_ALREADY_CAPTURED",
        "ORDER_ALREADY_AUTHORIZED",
        "ORDER_COMPLETED_OR_VOIDED",
        "PREVIOUSLY_VOIDED",
        "CAPTURE_FULLY_REFUNDED",
    ],
)
def test_done_before_tells_the_host_to_read_the_status(issue: str) -> None:
    """However the request was made (a read or not), the host is told to read the payment's status."""
    for mutating in (True, False):
        error = error_from_status(
            422, gateway="pp", operation="capture order", mutating=mutating, name="UNPROCESSABLE_ENTITY", issue=issue
        )
        assert "payment_status" in error.message
        assert error.retryable is False
        assert not isinstance(error, OutcomeUnknown) or "changed nothing" in error.message
