"""Voids: what a void after a partial capture leaves, and a void of an order id (a checkout).

A void after a partial capture (``final_capture`` false) voids only what is still held; what was
captured stays captured (PayPal's "Void Authorization" guide:
developer.paypal.com/beta/payments/void-authorization). So the void, and the status by every id
of the payment, says the money that was taken, never "canceled, nothing captured".

PayPal has no call that cancels or expires an order (Orders v2 has create, get, patch, confirm,
authorize and capture only): a void of an open checkout's order id is ``CapabilityNotSupported``,
which ``contrib/paid_events`` reads as "this gateway cannot close a checkout"; never ``NotFound``
(the plugin issued the id) nor ``InvalidRequest`` ("no longer open").
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from structlog.testing import capture_logs

from gateway_core.errors import CapabilityNotSupported, InvalidRequest, NotFound
from gateway_core.manager import GatewayManager
from gateway_core.models import AuthorizeRequest, CaptureRequest, PaymentState, RefundRequest, VoidRequest
from gateway_core.money import Money
from tests.paypal_gateway.conftest import GATEWAY, StandIn
from tests.paypal_gateway.test_checkout import checkout, key, posts


def authorized(manager: GatewayManager, standin: StandIn, amount: Money) -> tuple[str, str]:
    """An approved authorize-only checkout, authorized: (order id, authorization id)."""
    order_id = checkout(manager, amount, capture=False)
    standin.approve(order_id)
    return order_id, manager.authorize(GATEWAY, AuthorizeRequest(amount, order_id), idempotency_key=key()).id


# -- a void after a partial capture ---------------------------------------------------------------
def test_a_void_after_a_partial_capture_reports_what_was_captured(manager: GatewayManager, standin: StandIn) -> None:
    order_id, auth_id = authorized(manager, standin, Money.of("10.00", "EUR"))
    part = manager.capture(GATEWAY, CaptureRequest(auth_id, Money.of("4.00", "EUR")), idempotency_key=key())
    void = manager.void(GATEWAY, VoidRequest(auth_id), idempotency_key=key())
    assert (void.payment_id, void.state) == (auth_id, PaymentState.SUCCEEDED)
    for payment_id in (auth_id, order_id, part.id):
        status = manager.payment_status(GATEWAY, payment_id)
        assert (status.state, status.amount_captured, status.amount_refunded) == (
            PaymentState.SUCCEEDED,
            Money.of("4.00", "EUR"),
            Money.zero("EUR"),
        ), payment_id
    assert manager.payment_status(GATEWAY, auth_id).raw["status"] == "VOIDED"


def test_a_void_after_a_partial_capture_refunded_reports_the_refunds(manager: GatewayManager, standin: StandIn) -> None:
    _, auth_id = authorized(manager, standin, Money.of("10.00", "EUR"))
    part = manager.capture(GATEWAY, CaptureRequest(auth_id, Money.of("4.00", "EUR")), idempotency_key=key())
    manager.refund(GATEWAY, RefundRequest(part.id, Money.of("1.00", "EUR")), idempotency_key=key())
    void = manager.void(GATEWAY, VoidRequest(auth_id), idempotency_key=key())
    assert void.state is PaymentState.PARTIALLY_REFUNDED
    status = manager.payment_status(GATEWAY, auth_id)
    assert (status.state, status.amount_captured, status.amount_refunded) == (
        PaymentState.PARTIALLY_REFUNDED,
        Money.of("4.00", "EUR"),
        Money.of("1.00", "EUR"),
    )
    manager.refund(GATEWAY, RefundRequest(part.id), idempotency_key=key())
    assert manager.payment_status(GATEWAY, auth_id).state is PaymentState.REFUNDED


def test_a_void_before_any_capture_is_canceled(manager: GatewayManager, standin: StandIn) -> None:
    _, auth_id = authorized(manager, standin, Money.of("10.00", "EUR"))
    void = manager.void(GATEWAY, VoidRequest(auth_id), idempotency_key=key())
    assert (void.payment_id, void.state) == (auth_id, PaymentState.CANCELED)
    status = manager.payment_status(GATEWAY, auth_id)
    assert (status.state, status.amount_captured) == (PaymentState.CANCELED, Money.zero("EUR"))


def test_a_void_whose_read_back_fails_is_still_the_void_and_claims_no_state(
    make_manager: Callable[..., GatewayManager], standin: StandIn
) -> None:
    """PayPal voided; what was captured could not be read: PENDING (read the status), never an error."""
    manager = make_manager(max_retries=0)
    order_id, auth_id = authorized(manager, standin, Money.of("10.00", "EUR"))
    manager.capture(GATEWAY, CaptureRequest(auth_id, Money.of("4.00", "EUR")), idempotency_key=key())
    standin.fault("GET", f"/v2/checkout/orders/{order_id}", "500", count=1)
    with capture_logs() as logs:
        void = manager.void(GATEWAY, VoidRequest(auth_id), idempotency_key=key())
    assert (void.payment_id, void.state) == (auth_id, PaymentState.PENDING)
    assert any(entry["event"] == "paypal.void.captures_unread" for entry in logs)
    status = manager.payment_status(GATEWAY, auth_id)
    assert (status.raw["status"], status.state, status.amount_captured) == (
        "VOIDED",
        PaymentState.SUCCEEDED,
        Money.of("4.00", "EUR"),
    )
    assert len(posts(standin, f"/authorizations/{auth_id}/void")) == 1


def test_an_authorization_expired_after_a_partial_capture_reads_its_captures(
    manager: GatewayManager, standin: StandIn
) -> None:
    _, auth_id = authorized(manager, standin, Money.of("10.00", "EUR"))
    manager.capture(GATEWAY, CaptureRequest(auth_id, Money.of("4.00", "EUR")), idempotency_key=key())
    standin.expire_authorization(auth_id)
    status = manager.payment_status(GATEWAY, auth_id)
    assert (status.state, status.amount_captured) == (PaymentState.SUCCEEDED, Money.of("4.00", "EUR"))


def test_an_authorization_with_no_capture_is_read_without_its_order(manager: GatewayManager, standin: StandIn) -> None:
    order_id, auth_id = authorized(manager, standin, Money.of("10.00", "EUR"))
    before = len(standin.requests())
    status = manager.payment_status(GATEWAY, auth_id)
    assert status.state is PaymentState.AUTHORIZED
    assert not [r for r in standin.requests()[before:] if r["path"] == f"/v2/checkout/orders/{order_id}"]


# -- a void of an order id ------------------------------------------------------------------------
@pytest.mark.parametrize("capture", [True, False])
@pytest.mark.parametrize("approved", [False, True])
def test_a_void_of_an_open_checkout_is_not_supported_and_changes_nothing(
    manager: GatewayManager, standin: StandIn, capture: bool, approved: bool
) -> None:
    order_id = checkout(manager, Money.of("10.00", "EUR"), capture=capture)
    if approved:
        standin.approve(order_id)
    before = manager.payment_status(GATEWAY, order_id)
    with pytest.raises(CapabilityNotSupported) as caught:
        manager.void(GATEWAY, VoidRequest(order_id), idempotency_key=key())
    assert not isinstance(caught.value, (NotFound, InvalidRequest))
    assert order_id in caught.value.message
    assert "3 hours" in caught.value.message
    after = manager.payment_status(GATEWAY, order_id)
    assert (after.state, after.raw["status"]) == (before.state, before.raw["status"])
    assert standin.counts()["authorizations"] == 0


def test_a_void_of_an_authorized_checkout_voids_its_authorization_once(
    manager: GatewayManager, standin: StandIn
) -> None:
    """As Stripe cancels a completed authorize-only session's PaymentIntent; a retry voids nothing twice."""
    order_id, auth_id = authorized(manager, standin, Money.of("10.00", "EUR"))
    void_key = key()
    void = manager.void(GATEWAY, VoidRequest(order_id), idempotency_key=void_key)
    assert (void.payment_id, void.state) == (auth_id, PaymentState.CANCELED)
    again = manager.void(GATEWAY, VoidRequest(order_id), idempotency_key=void_key)
    assert (again.payment_id, again.state) == (auth_id, PaymentState.CANCELED)
    voids = posts(standin, f"/authorizations/{auth_id}/void")
    assert len({v["request_id"] for v in voids}) == 1
    assert voids[0]["request_id"] != void_key
    status = manager.payment_status(GATEWAY, order_id)
    assert (status.state, status.raw["purchase_units"][0]["payments"]["authorizations"][0]["status"]) == (
        PaymentState.CANCELED,
        "VOIDED",
    )
    # Under another key: PayPal's PREVIOUSLY_VOIDED, read back as the void asked for.
    third = manager.void(GATEWAY, VoidRequest(order_id), idempotency_key=key())
    assert (third.payment_id, third.state) == (auth_id, PaymentState.CANCELED)


def test_a_void_of_a_paid_checkout_is_no_longer_open(manager: GatewayManager, standin: StandIn) -> None:
    order_id = checkout(manager, Money.of("10.00", "EUR"))
    standin.approve(order_id)
    manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key=key())
    with pytest.raises(InvalidRequest, match="refund"):
        manager.void(GATEWAY, VoidRequest(order_id), idempotency_key=key())
    assert manager.payment_status(GATEWAY, order_id).state is PaymentState.SUCCEEDED


def test_a_void_of_an_unknown_id_is_not_found(manager: GatewayManager, standin: StandIn) -> None:
    with pytest.raises(NotFound, match="NOSUCHID000000000"):
        manager.void(GATEWAY, VoidRequest("NOSUCHID000000000"), idempotency_key=key())
