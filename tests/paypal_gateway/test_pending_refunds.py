"""A refund PayPal makes ``PENDING`` (an eCheck-funded one, Payments v2 ``refund_status``) counts in
``amount_refunded`` from the start, as the core's contract says: it is on its way back and no
longer refundable. A ``FAILED`` or ``CANCELLED`` one does not count, and is refundable again.

PayPal does not document whether the capture's own status counts a pending refund
(``PARTIALLY_REFUNDED``/``REFUNDED``) or stays ``COMPLETED`` until the refund completes, so every
test runs against the stand-in both ways (its ``capture_counts_pending_refunds`` config): the
plugin reports the same either way.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway_core.errors import AmountOutOfRange, OutcomeUnknown
from gateway_core.manager import GatewayManager
from gateway_core.models import (
    AuthorizeRequest,
    CaptureRequest,
    PaymentState,
    PaymentStatus,
    RefundRequest,
    RefundStatus,
)
from gateway_core.money import Money
from tests.paypal_gateway.conftest import GATEWAY, StandIn
from tests.paypal_gateway.test_checkout import checkout, key, paid_capture


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


@pytest.fixture(params=[True, False], ids=["capture-counts-pending", "capture-stays-completed"])
def pending(request: pytest.FixtureRequest, standin: StandIn) -> StandIn:
    """The stand-in making every refund PENDING, its captures' status counting pending refunds or not."""
    standin.config(refund_status="PENDING", capture_counts_pending_refunds=request.param)
    return standin


def statuses(manager: GatewayManager, *ids: str) -> set[tuple[PaymentState, Money]]:
    """The (state, amount_refunded) each id reports: one element when the order, capture and authorization agree."""
    found: set[tuple[PaymentState, Money]] = set()
    for payment_id in ids:
        status: PaymentStatus = manager.payment_status(GATEWAY, payment_id)
        found.add((status.state, status.amount_refunded))
    return found


def order_of(manager: GatewayManager, capture_id: str) -> str:
    checkout_id = manager.payment_status(GATEWAY, capture_id).checkout_id
    assert checkout_id is not None
    return checkout_id


def test_a_pending_refund_counts_until_it_fails(manager: GatewayManager, pending: StandIn) -> None:
    capture_id = paid_capture(manager, pending, eur("50.00"))
    order_id = order_of(manager, capture_id)
    refund = manager.refund(GATEWAY, RefundRequest(capture_id, eur("20.00")), idempotency_key=key())
    assert (refund.status, refund.amount) == (RefundStatus.PENDING, eur("20.00"))
    assert statuses(manager, capture_id, order_id) == {(PaymentState.PARTIALLY_REFUNDED, eur("20.00"))}
    # What is on its way back is not refundable a second time: PayPal refuses it, and says so.
    with pytest.raises(AmountOutOfRange):
        manager.refund(GATEWAY, RefundRequest(capture_id, eur("30.01")), idempotency_key=key())

    pending.settle_refund(refund.id, "FAILED")
    assert statuses(manager, capture_id, order_id) == {(PaymentState.SUCCEEDED, eur("0.00"))}
    pending.config(refund_status="COMPLETED")
    again = manager.refund(GATEWAY, RefundRequest(capture_id), idempotency_key=key())  # all of it, again
    assert (again.status, again.amount) == (RefundStatus.SUCCEEDED, eur("50.00"))
    assert statuses(manager, capture_id, order_id) == {(PaymentState.REFUNDED, eur("50.00"))}


def test_a_pending_full_refund_is_refunded_before_and_after_it_completes(
    manager: GatewayManager, pending: StandIn
) -> None:
    capture_id = paid_capture(manager, pending, eur("50.00"))
    order_id = order_of(manager, capture_id)
    refund = manager.refund(GATEWAY, RefundRequest(capture_id), idempotency_key=key())
    assert (refund.status, refund.amount) == (RefundStatus.PENDING, eur("50.00"))
    assert statuses(manager, capture_id, order_id) == {(PaymentState.REFUNDED, eur("50.00"))}
    with pytest.raises(AmountOutOfRange):
        manager.refund(GATEWAY, RefundRequest(capture_id, eur("0.01")), idempotency_key=key())
    pending.settle_refund(refund.id, "COMPLETED")
    assert statuses(manager, capture_id, order_id) == {(PaymentState.REFUNDED, eur("50.00"))}
    assert pending.counts()["refunds"] == 1


def test_only_completed_and_pending_refunds_count(manager: GatewayManager, pending: StandIn) -> None:
    capture_id = paid_capture(manager, pending, eur("50.00"))
    order_id = order_of(manager, capture_id)
    refunds = [
        manager.refund(GATEWAY, RefundRequest(capture_id, eur(value)), idempotency_key=key())
        for value in ("10.00", "7.00", "5.00", "3.00")
    ]
    assert statuses(manager, capture_id, order_id) == {(PaymentState.PARTIALLY_REFUNDED, eur("25.00"))}
    for refund, outcome in zip(refunds, ("COMPLETED", "FAILED", "CANCELLED"), strict=False):
        pending.settle_refund(refund.id, outcome)
    # 10.00 completed and 3.00 pending; the failed 7.00 and the cancelled 5.00 are not refunded
    assert statuses(manager, capture_id, order_id) == {(PaymentState.PARTIALLY_REFUNDED, eur("13.00"))}
    with pytest.raises(AmountOutOfRange):
        manager.refund(GATEWAY, RefundRequest(capture_id, eur("37.01")), idempotency_key=key())
    assert manager.refund(GATEWAY, RefundRequest(capture_id), idempotency_key=key()).amount == eur("37.00")
    assert statuses(manager, capture_id, order_id) == {(PaymentState.REFUNDED, eur("50.00"))}


def test_a_pending_refund_counts_by_authorization_id(manager: GatewayManager, pending: StandIn) -> None:
    amount = Money.of("30.00", "USD")
    order_id = checkout(manager, amount, capture=False)
    pending.approve(order_id)
    auth = manager.authorize(GATEWAY, AuthorizeRequest(amount, order_id), idempotency_key=key())
    capture = manager.capture(GATEWAY, CaptureRequest(auth.id), idempotency_key=key())
    refund = manager.refund(GATEWAY, RefundRequest(capture.id, Money.of("12.00", "USD")), idempotency_key=key())
    assert refund.status is RefundStatus.PENDING
    partly = (PaymentState.PARTIALLY_REFUNDED, Money.of("12.00", "USD"))
    assert statuses(manager, auth.id, capture.id, order_id) == {partly}
    pending.settle_refund(refund.id, "CANCELLED")
    assert statuses(manager, auth.id, capture.id, order_id) == {(PaymentState.SUCCEEDED, Money.of("0.00", "USD"))}


def test_a_pending_refund_whose_answer_was_lost_shows_in_the_status(
    make_manager: Callable[..., GatewayManager], pending: StandIn
) -> None:
    """What a host (and contrib/paid_events) reads to learn whether a refund of unknown outcome was made."""
    manager = make_manager(timeout=0.5, max_retries=0)
    capture_id = paid_capture(manager, pending, eur("10.00"))
    pending.fault("POST", "/refund", "drop_after")
    with pytest.raises(OutcomeUnknown):
        manager.refund(GATEWAY, RefundRequest(capture_id, eur("4.00")), idempotency_key="lost-refund")
    assert pending.counts()["refunds"] == 1  # PayPal made it, pending
    # It was made: the status says so, so the host does not send it again under a new key.
    assert statuses(manager, capture_id) == {(PaymentState.PARTIALLY_REFUNDED, eur("4.00"))}
    retried = manager.refund(GATEWAY, RefundRequest(capture_id, eur("4.00")), idempotency_key="lost-refund")
    assert (retried.status, retried.amount) == (RefundStatus.PENDING, eur("4.00"))
    assert pending.counts()["refunds"] == 1
