"""An operation PayPal says was already done, perhaps by the operation's own lost first attempt.

A capture, authorization or void whose answer was lost, retried under another PayPal-Request-Id
(or under the same one once PayPal's retention window has passed), is refused by PayPal as done
already (``ORDER_ALREADY_CAPTURED``, ``AUTHORIZATION_ALREADY_CAPTURED``, ``ORDER_ALREADY_AUTHORIZED``,
``PREVIOUSLY_VOIDED``). That is never ``InvalidRequest`` ("nothing was charged") for money that
was taken: the plugin returns what is there when it is exactly what was asked, and otherwise
raises ``OutcomeUnknown`` with ``retryable=False`` (read the payment's status).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway_core.errors import AmountOutOfRange, InvalidRequest, OutcomeUnknown
from gateway_core.manager import GatewayManager
from gateway_core.models import AuthorizeRequest, CaptureRequest, PaymentState, RefundRequest, VoidRequest
from gateway_core.money import Money
from tests.paypal_gateway.conftest import CLIENT_ID, CLIENT_SECRET, GATEWAY, StandIn
from tests.paypal_gateway.test_checkout import checkout, key, paid_capture


def keys_sent(standin: StandIn, suffix: str) -> list[str | None]:
    return [r["request_id"] for r in standin.requests() if r["method"] == "POST" and r["path"].endswith(suffix)]


def assert_read_the_status(error: OutcomeUnknown, issue: str) -> None:
    """The error tells the host to read the payment's status, says PayPal's issue, and nothing secret."""
    assert not isinstance(error, InvalidRequest)
    assert error.retryable is False
    assert error.provider_code == issue
    assert error.http_status == 422
    assert error.request_id  # PayPal's debug_id
    assert not error.unmapped
    assert "payment_status" in error.message
    for secret in (CLIENT_ID, CLIENT_SECRET, "A21AA"):  # credentials, and the stand-in's token prefix
        assert secret not in str(error)


def serve_order(standin: StandIn, order_id: str, order: dict[str, Any]) -> None:
    """The next read of ``order_id`` answers ``order`` (what PayPal might hold instead)."""
    standin.fault(
        "GET", f"/orders/{order_id}", "garbage_after", status=200, body=json.dumps(order),
        content_type="application/json",
    )  # fmt: skip


#: The issues' descriptions in PayPal's specs (Orders v2 2.13, Payments v2 2.5).
DESCRIPTIONS = {
    "ORDER_ALREADY_CAPTURED": "Order already captured.If 'intent=CAPTURE' only one capture per order is allowed.",
    "ORDER_ALREADY_AUTHORIZED": (
        "Order already authorized.If 'intent=AUTHORIZE' only one authorization per order is allowed."
    ),
    "PREVIOUSLY_VOIDED": "Authorization has been previously voided and hence cannot be voided again.",
}


def already_refused(standin: StandIn, path: str, issue: str) -> None:
    """The next POST to ``path`` is answered PayPal's 422 ``issue`` (without PayPal acting)."""
    body = {
        "name": "UNPROCESSABLE_ENTITY",
        "message": "The requested action could not be performed, semantically incorrect, or failed business validation.",
        "debug_id": "a1b2c3d4e5f6",
        "details": [{"issue": issue, "description": DESCRIPTIONS[issue]}],
    }
    standin.fault("POST", path, "refuse", status=422, body=json.dumps(body))


# -- capture of an order ---------------------------------------------------------------------
@pytest.mark.parametrize("retry", ["another key", "the same key, once PayPal forgot it"])
def test_a_lost_order_capture_retried_gets_the_orders_one_capture(
    make_manager: Callable[..., GatewayManager], standin: StandIn, retry: str
) -> None:
    manager = make_manager(max_retries=0)
    amount = Money.of("19.99", "EUR")
    order_id = checkout(manager, amount, reference="ref-7")
    standin.approve(order_id)
    standin.fault("POST", f"/orders/{order_id}/capture", "drop_after")
    with pytest.raises(OutcomeUnknown):
        manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key="capture-1")
    assert standin.counts()["captures"] == 1  # PayPal captured; the answer was lost
    if retry == "another key":
        retry_key = "capture-2"
    else:
        standin.forget_request_ids()
        retry_key = "capture-1"
    with capture_logs() as logs:
        capture = manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key=retry_key)
    assert (capture.amount, capture.state, capture.payment_id) == (amount, PaymentState.SUCCEEDED, order_id)
    assert standin.counts()["captures"] == 1
    status = manager.payment_status(GATEWAY, order_id)
    assert (status.payment_id, status.amount_captured) == (capture.id, amount)
    assert keys_sent(standin, "/capture") == ["capture-1", retry_key]
    (found,) = [line for line in logs if line["event"] == "paypal.found_before"]
    assert (found["payment_id"], found["found"], found["provider_code"]) == (
        order_id, capture.id, "ORDER_ALREADY_CAPTURED"
    )  # fmt: skip


def test_already_captured_without_a_capture_there_reports_none(manager: GatewayManager, standin: StandIn) -> None:
    """PayPal says ORDER_ALREADY_CAPTURED, but the order lists no capture: never a capture made up."""
    order_id = checkout(manager, Money.of("5.00", "EUR"))
    standin.approve(order_id)
    already_refused(standin, f"/orders/{order_id}/capture", "ORDER_ALREADY_CAPTURED")
    with pytest.raises(OutcomeUnknown) as info:
        manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key=key())
    assert_read_the_status(info.value, "ORDER_ALREADY_CAPTURED")
    assert info.value.request_id == "a1b2c3d4e5f6"
    assert standin.counts()["captures"] == 0


def _other_amount(order: dict[str, Any]) -> None:
    order["purchase_units"][0]["payments"]["captures"][0]["amount"]["value"] = "9.99"


def _other_currency(order: dict[str, Any]) -> None:
    order["purchase_units"][0]["payments"]["captures"][0]["amount"]["currency_code"] = "USD"


def _two_captures(order: dict[str, Any]) -> None:
    captures = order["purchase_units"][0]["payments"]["captures"]
    captures.append({**captures[0], "id": "SECONDCAPTURE0001"})


def _unreadable_amount(order: dict[str, Any]) -> None:
    order["purchase_units"][0]["payments"]["captures"][0]["amount"] = {"value": 10}


@pytest.mark.parametrize("change", [_other_amount, _other_currency, _two_captures, _unreadable_amount])
def test_an_order_whose_capture_is_not_exactly_the_one_asked_for_is_outcome_unknown(
    manager: GatewayManager, standin: StandIn, change: Callable[[dict[str, Any]], None]
) -> None:
    order_id = checkout(manager, Money.of("10.00", "EUR"))
    standin.approve(order_id)
    manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key=key())
    order: dict[str, Any] = json.loads(json.dumps(manager.payment_status(GATEWAY, order_id).raw))
    change(order)
    serve_order(standin, order_id, order)
    with pytest.raises(OutcomeUnknown) as info:
        manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key=key())
    assert_read_the_status(info.value, "ORDER_ALREADY_CAPTURED")
    assert standin.counts()["captures"] == 1


def test_a_failed_read_back_is_still_outcome_unknown(
    make_manager: Callable[..., GatewayManager], standin: StandIn
) -> None:
    manager = make_manager(max_retries=0)
    order_id = checkout(manager, Money.of("10.00", "EUR"))
    standin.approve(order_id)
    manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key=key())
    standin.fault("GET", f"/orders/{order_id}", "500")
    with pytest.raises(OutcomeUnknown) as info:
        manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key=key())
    assert_read_the_status(info.value, "ORDER_ALREADY_CAPTURED")


# -- capture of an authorization -------------------------------------------------------------
def authorized(manager: GatewayManager, standin: StandIn, amount: Money) -> str:
    order_id = checkout(manager, amount, capture=False)
    standin.approve(order_id)
    return manager.authorize(GATEWAY, AuthorizeRequest(amount, order_id), idempotency_key=key()).id


def test_a_lost_capture_in_full_retried_under_another_key_gets_its_capture(
    make_manager: Callable[..., GatewayManager], standin: StandIn
) -> None:
    manager = make_manager(max_retries=0)
    amount = Money.of("30.00", "USD")
    auth_id = authorized(manager, standin, amount)
    standin.fault("POST", f"/authorizations/{auth_id}/capture", "drop_after")
    with pytest.raises(OutcomeUnknown):
        manager.capture(GATEWAY, CaptureRequest(auth_id), idempotency_key="full-1")
    capture = manager.capture(GATEWAY, CaptureRequest(auth_id), idempotency_key="full-2")
    assert (capture.amount, capture.state, capture.payment_id) == (amount, PaymentState.SUCCEEDED, auth_id)
    assert standin.counts()["captures"] == 1
    assert manager.payment_status(GATEWAY, capture.id).amount_captured == amount
    assert keys_sent(standin, "/capture") == ["full-1", "full-2"]


@pytest.mark.parametrize("earlier", ["a partial capture of it all", "the rest after a partial capture", "partial"])
def test_an_authorization_captured_in_parts_is_outcome_unknown_never_a_capture(
    make_manager: Callable[..., GatewayManager], standin: StandIn, earlier: str
) -> None:
    """Earlier captures that a capture in full cannot be told from (or a partial capture's retry)
    are reported as nothing: the host reads the status, the plugin never counts one twice."""
    manager = make_manager(max_retries=0)
    amount = Money.of("30.00", "USD")
    auth_id = authorized(manager, standin, amount)
    if earlier == "a partial capture of it all":
        manager.capture(GATEWAY, CaptureRequest(auth_id, amount), idempotency_key=key())
        retried = CaptureRequest(auth_id)
    elif earlier == "the rest after a partial capture":
        manager.capture(GATEWAY, CaptureRequest(auth_id, Money.of("10.00", "USD")), idempotency_key=key())
        standin.fault("POST", f"/authorizations/{auth_id}/capture", "drop_after")
        with pytest.raises(OutcomeUnknown):
            manager.capture(GATEWAY, CaptureRequest(auth_id), idempotency_key=key())
        retried = CaptureRequest(auth_id)
    else:
        standin.fault("POST", f"/authorizations/{auth_id}/capture", "drop_after")
        with pytest.raises(OutcomeUnknown):
            manager.capture(GATEWAY, CaptureRequest(auth_id, amount), idempotency_key=key())
        retried = CaptureRequest(auth_id, amount)
    captures = standin.counts()["captures"]
    with pytest.raises(OutcomeUnknown) as info:
        manager.capture(GATEWAY, retried, idempotency_key=key())
    assert_read_the_status(info.value, "AUTHORIZATION_ALREADY_CAPTURED")
    assert standin.counts()["captures"] == captures
    assert manager.payment_status(GATEWAY, auth_id).amount_captured == amount


# -- authorize, void, refund -----------------------------------------------------------------
def test_a_lost_order_authorization_retried_under_another_key_gets_the_one_authorization(
    make_manager: Callable[..., GatewayManager], standin: StandIn
) -> None:
    manager = make_manager(max_retries=0)
    amount = Money.of("12.00", "GBP")
    order_id = checkout(manager, amount, capture=False)
    standin.approve(order_id)
    standin.fault("POST", f"/orders/{order_id}/authorize", "drop_after")
    with pytest.raises(OutcomeUnknown):
        manager.authorize(GATEWAY, AuthorizeRequest(amount, order_id), idempotency_key=key())
    auth = manager.authorize(GATEWAY, AuthorizeRequest(amount, order_id), idempotency_key=key())
    assert (auth.amount, auth.state) == (amount, PaymentState.AUTHORIZED)
    assert standin.counts()["authorizations"] == 1
    assert manager.payment_status(GATEWAY, order_id).payment_id == auth.id


def test_already_authorized_without_an_authorization_there_reports_none(
    manager: GatewayManager, standin: StandIn
) -> None:
    amount = Money.of("12.00", "GBP")
    order_id = checkout(manager, amount, capture=False)
    standin.approve(order_id)
    already_refused(standin, f"/orders/{order_id}/authorize", "ORDER_ALREADY_AUTHORIZED")
    with pytest.raises(OutcomeUnknown) as info:
        manager.authorize(GATEWAY, AuthorizeRequest(amount, order_id), idempotency_key=key())
    assert_read_the_status(info.value, "ORDER_ALREADY_AUTHORIZED")
    assert standin.counts()["authorizations"] == 0


def test_a_lost_void_retried_under_another_key_is_voided(
    make_manager: Callable[..., GatewayManager], standin: StandIn
) -> None:
    manager = make_manager(max_retries=0)
    auth_id = authorized(manager, standin, Money.of("30.00", "USD"))
    standin.fault("POST", f"/authorizations/{auth_id}/void", "drop_after")
    with pytest.raises(OutcomeUnknown):
        manager.void(GATEWAY, VoidRequest(auth_id), idempotency_key=key())
    void = manager.void(GATEWAY, VoidRequest(auth_id), idempotency_key=key())
    assert (void.payment_id, void.state) == (auth_id, PaymentState.CANCELED)
    assert manager.payment_status(GATEWAY, auth_id).state is PaymentState.CANCELED


def test_previously_voided_of_an_authorization_not_voided_is_outcome_unknown(
    manager: GatewayManager, standin: StandIn
) -> None:
    auth_id = authorized(manager, standin, Money.of("30.00", "USD"))
    already_refused(standin, f"/authorizations/{auth_id}/void", "PREVIOUSLY_VOIDED")
    with pytest.raises(OutcomeUnknown) as info:
        manager.void(GATEWAY, VoidRequest(auth_id), idempotency_key=key())
    assert_read_the_status(info.value, "PREVIOUSLY_VOIDED")
    assert manager.payment_status(GATEWAY, auth_id).state is PaymentState.AUTHORIZED


def test_a_refund_of_a_capture_refunded_in_full_says_to_read_the_status(
    manager: GatewayManager, standin: StandIn
) -> None:
    """Still AmountOutOfRange (nothing remains; the conformance suite wants an InvalidRequest,
    as Stripe's ``charge_already_refunded`` is), but saying an earlier attempt may have refunded it."""
    capture_id = paid_capture(manager, standin, Money.of("10.00", "EUR"))
    manager.refund(GATEWAY, RefundRequest(capture_id), idempotency_key=key())
    with pytest.raises(AmountOutOfRange) as info:
        manager.refund(GATEWAY, RefundRequest(capture_id), idempotency_key=key())
    assert info.value.provider_code == "CAPTURE_FULLY_REFUNDED"
    assert "payment_status" in info.value.message
    assert standin.counts()["refunds"] == 1


def test_a_void_of_a_captured_authorization_says_to_refund(manager: GatewayManager, standin: StandIn) -> None:
    auth_id = authorized(manager, standin, Money.of("30.00", "USD"))
    manager.capture(GATEWAY, CaptureRequest(auth_id), idempotency_key=key())
    with pytest.raises(InvalidRequest, match="refund the capture instead") as info:
        manager.void(GATEWAY, VoidRequest(auth_id), idempotency_key=key())
    assert info.value.provider_code == "PREVIOUSLY_CAPTURED"
