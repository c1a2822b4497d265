"""A denied authorization's or declined capture's ``status_details.reason`` is read by its spec shape.

``PaymentDeclined.decline_code`` is ``str | None`` (the core's contract) and hosts show and log it:
a reason that is not a string of PayPal's documented shape (Payments v2 / Orders v2
``capture_status_details`` and ``authorization_status_details``: ``^[A-Z_]+$``, 1 to 64 characters for a capture;
tests/paypal_gateway/data/specs/payments_payment_v2.json) is absent, and the decline code is the status.
Driven through the real plugin against the stand-in, whose answer is replaced (``garbage_after``) by
one carrying the reason under test after PayPal acted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from gateway_core.errors import PaymentDeclined
from gateway_core.manager import GatewayManager
from gateway_core.models import AuthorizeRequest, CaptureRequest
from gateway_core.money import Money
from tests.paypal_gateway.conftest import GATEWAY, StandIn
from tests.paypal_gateway.test_checkout import checkout, key

_ABSENT = object()

#: Reasons of the documented shape: passed on as the decline code.
GOOD = {
    "enum": "PENDING_REVIEW",
    "other_shape": "BUYER_COMPLAINT",
}
#: Anything else reads as absent: the decline code is the status.
MALFORMED: dict[str, Any] = {
    "absent": _ABSENT,
    "null": None,
    "empty": "",
    "int": 7,
    "bool": True,
    "float": 1.5,
    "object": {"reason": "DENIED"},
    "list": ["DENIED"],
    "over_long": "A" * 65,
    "lowercase": "declined",
    "free_text": "Card declined by issuer",
    "trailing_newline": "DENIED\n",
    "control_char": "DEN\x1b[31mIED",
    "nul": "DEN\x00IED",
    "non_ascii": "DÉCLINÉ",
}
CASES = [pytest.param(reason, reason, id=f"good-{name}") for name, reason in GOOD.items()] + [
    pytest.param(reason, None, id=f"malformed-{name}") for name, reason in MALFORMED.items()
]
#: ``capture_status_details.reason`` may be 64 characters long (both spec copies). For an
#: authorization the copies say 24, PayPal's generated SDK docs 64; the plugin reads both as
#: captures are read (at most 64), so no case between 25 and 64 is pinned for authorizations.
CAPTURE_CASES = [*CASES, pytest.param("A" * 64, "A" * 64, id="good-longest")]


def _with_reason(resource: dict[str, Any], reason: Any) -> dict[str, Any]:
    if reason is not _ABSENT:
        resource["status_details"] = {"reason": reason}
    return resource


def _answer(standin: StandIn, path: str, body: dict[str, Any]) -> None:
    standin.fault("POST", path, "garbage_after", status=201, body=json.dumps(body), content_type="application/json")


def _check(info: pytest.ExceptionInfo[PaymentDeclined], expected: str | None, status: str) -> None:
    code = info.value.decline_code
    assert isinstance(code, str)
    assert code == (expected if expected is not None else status)
    assert info.value.provider_code == status


@pytest.mark.parametrize(("reason", "expected"), CASES)
def test_a_denied_authorization_s_reason_is_read_by_shape(
    make_manager: Callable[..., GatewayManager], standin: StandIn, reason: Any, expected: str | None
) -> None:
    manager = make_manager(max_retries=0)
    amount = Money.of("10.00", "EUR")
    order_id = checkout(manager, amount, capture=False)
    standin.approve(order_id)
    denied = _with_reason(
        {"id": "0VF52814937998046", "status": "DENIED", "amount": {"currency_code": "EUR", "value": "10.00"}}, reason
    )
    order = {"id": order_id, "status": "COMPLETED", "purchase_units": [{"payments": {"authorizations": [denied]}}]}
    _answer(standin, f"/orders/{order_id}/authorize", order)
    with pytest.raises(PaymentDeclined) as info:
        manager.authorize(GATEWAY, AuthorizeRequest(amount, order_id), idempotency_key=key())
    _check(info, expected, "DENIED")


@pytest.mark.parametrize(("reason", "expected"), CAPTURE_CASES)
def test_a_declined_order_capture_s_reason_is_read_by_shape(
    make_manager: Callable[..., GatewayManager], standin: StandIn, reason: Any, expected: str | None
) -> None:
    manager = make_manager(max_retries=0)
    order_id = checkout(manager, Money.of("10.00", "EUR"))
    standin.approve(order_id)
    declined = _with_reason(
        {"id": "2GG279541U471931P", "status": "DECLINED", "amount": {"currency_code": "EUR", "value": "10.00"}}, reason
    )
    order = {"id": order_id, "status": "COMPLETED", "purchase_units": [{"payments": {"captures": [declined]}}]}
    _answer(standin, f"/orders/{order_id}/capture", order)
    with pytest.raises(PaymentDeclined) as info:
        manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key=key())
    _check(info, expected, "DECLINED")


@pytest.mark.parametrize(("reason", "expected"), CAPTURE_CASES)
def test_a_declined_authorization_capture_s_reason_is_read_by_shape(
    make_manager: Callable[..., GatewayManager], standin: StandIn, reason: Any, expected: str | None
) -> None:
    manager = make_manager(max_retries=0)
    amount = Money.of("10.00", "USD")
    order_id = checkout(manager, amount, capture=False)
    standin.approve(order_id)
    auth = manager.authorize(GATEWAY, AuthorizeRequest(amount, order_id), idempotency_key=key())
    declined = _with_reason(
        {"id": "7TK53561MB803214N", "status": "DECLINED", "amount": {"currency_code": "USD", "value": "10.00"}}, reason
    )
    _answer(standin, f"/authorizations/{auth.id}/capture", declined)
    with pytest.raises(PaymentDeclined) as info:
        manager.capture(GATEWAY, CaptureRequest(auth.id), idempotency_key=key())
    _check(info, expected, "DECLINED")
