"""Where Stripe and PayPal agree, the fake does as they do: a host tested against it learns the real thing.

* A webhook about money moved carries that money: a partial capture's ``payment.succeeded`` the
  captured amount (Stripe's ``payment_intent.succeeded`` carries ``amount_received``, PayPal's
  ``PAYMENT.CAPTURE.COMPLETED`` the capture), a refund event the refund's, a dispute the disputed.
* Capture and refund take the checkout's id as well as the payment's (the Stripe plugin resolves a
  ``cs_`` to its PaymentIntent, PayPal takes an order id for both), under one idempotency key.
* Void by checkout id follows what the checkout has become, as the Stripe plugin's does.

Driven through the manager, as a host would.
"""

from __future__ import annotations

import pytest

from gateway_core import (
    AuthorizeRequest,
    CaptureRequest,
    CheckoutRequest,
    CheckoutSession,
    CheckoutStatus,
    EventType,
    GatewayManager,
    InvalidRequest,
    Money,
    NotFound,
    PaymentState,
    RefundRequest,
    VoidRequest,
    WebhookEvent,
)
from gateway_core.fake import FakeGateway

from .conftest import fake


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


@pytest.fixture
def f(one_fake: GatewayManager) -> FakeGateway:
    return fake(one_fake, "fake")


def events(manager: GatewayManager, f: FakeGateway) -> list[WebhookEvent]:
    return [manager.parse_webhook("fake", d.headers, d.body) for d in f.drain_webhooks()]


def paid_checkout(manager: GatewayManager, f: FakeGateway, *, capture: bool = True) -> CheckoutSession:
    request = CheckoutRequest.single(
        "Ticket", eur("10.00"), "https://shop.example/ok", "https://shop.example/no", capture=capture
    )
    session = manager.create_checkout("fake", request, idempotency_key="co")
    f.complete_checkout(session.id)
    f.drain_webhooks()
    return session


# --------------------------------------------------------------------------------------------
# Webhook amounts
# --------------------------------------------------------------------------------------------


def test_a_partial_captures_webhook_carries_what_was_captured(one_fake: GatewayManager, f: FakeGateway) -> None:
    auth = one_fake.authorize("fake", AuthorizeRequest(eur("10.00"), "pm_card"), idempotency_key="a")
    f.drain_webhooks()
    one_fake.capture("fake", CaptureRequest(auth.id, eur("4.00")), idempotency_key="c")
    [event] = events(one_fake, f)
    assert (event.type, event.payment_id, event.amount) == (EventType.PAYMENT_SUCCEEDED, auth.id, eur("4.00"))
    status = one_fake.payment_status("fake", auth.id)
    assert (status.amount, status.amount_captured) == (eur("10.00"), eur("4.00"))


def test_a_full_capture_and_a_paid_checkout_carry_the_whole_amount(one_fake: GatewayManager, f: FakeGateway) -> None:
    auth = one_fake.authorize("fake", AuthorizeRequest(eur("10.00"), "pm_card"), idempotency_key="a")
    one_fake.capture("fake", CaptureRequest(auth.id), idempotency_key="c")
    request = CheckoutRequest.single("Ticket", eur("7.50"), "https://shop.example/ok", "https://shop.example/no")
    session = one_fake.create_checkout("fake", request, idempotency_key="co")
    f.complete_checkout(session.id)
    succeeded = [(e.payment_id, e.amount) for e in events(one_fake, f) if e.type is EventType.PAYMENT_SUCCEEDED]
    assert succeeded == [(auth.id, eur("10.00")), (session.payment_id, eur("7.50"))]


def test_refund_and_dispute_webhooks_carry_their_own_amounts(one_fake: GatewayManager, f: FakeGateway) -> None:
    session = paid_checkout(one_fake, f)
    refund = one_fake.refund("fake", RefundRequest(session.id, eur("3.00")), idempotency_key="r")
    f.fail_refund(refund.id)
    f.open_dispute(session.payment_id or "", amount=eur("2.50"))
    got = [(e.type, e.refund_id, e.amount) for e in events(one_fake, f)]
    assert got == [
        (EventType.REFUND_SUCCEEDED, refund.id, eur("3.00")),
        (EventType.REFUND_FAILED, refund.id, eur("3.00")),
        (EventType.DISPUTE_OPENED, None, eur("2.50")),
    ]


# --------------------------------------------------------------------------------------------
# Capture and refund by the checkout's id
# --------------------------------------------------------------------------------------------


def test_an_authorize_only_checkout_is_captured_by_its_id(one_fake: GatewayManager, f: FakeGateway) -> None:
    session = paid_checkout(one_fake, f, capture=False)
    capture = one_fake.capture("fake", CaptureRequest(session.id, eur("4.00")), idempotency_key="c")
    assert (capture.payment_id, capture.amount, capture.state) == (
        session.payment_id,
        eur("4.00"),
        PaymentState.SUCCEEDED,
    )
    [event] = events(one_fake, f)
    assert (event.type, event.checkout_id, event.amount) == (EventType.PAYMENT_SUCCEEDED, session.id, eur("4.00"))
    assert one_fake.payment_status("fake", session.id).amount_captured == eur("4.00")


def test_a_paid_checkout_is_refunded_by_its_id(one_fake: GatewayManager, f: FakeGateway) -> None:
    session = paid_checkout(one_fake, f)
    refund = one_fake.refund("fake", RefundRequest(session.id, eur("4.00")), idempotency_key="r1")
    assert (refund.payment_id, refund.amount) == (session.payment_id, eur("4.00"))
    rest = one_fake.refund("fake", RefundRequest(session.id), idempotency_key="r2")
    assert rest.amount == eur("6.00")  # all that remains, as by the payment's id
    status = one_fake.payment_status("fake", session.id)
    assert (status.state, status.amount_refunded) == (PaymentState.REFUNDED, eur("10.00"))


@pytest.mark.parametrize("first_by_checkout", [True, False])
def test_one_key_refunds_once_whichever_id_names_the_payment(
    one_fake: GatewayManager, f: FakeGateway, first_by_checkout: bool
) -> None:
    session = paid_checkout(one_fake, f)
    assert session.payment_id is not None
    ids = [session.id, session.payment_id] if first_by_checkout else [session.payment_id, session.id]
    first = one_fake.refund("fake", RefundRequest(ids[0], eur("4.00")), idempotency_key="r")
    retried = one_fake.refund("fake", RefundRequest(ids[1], eur("4.00")), idempotency_key="r")
    assert retried == first
    assert f.refunds_made() == 1
    assert one_fake.payment_status("fake", session.id).amount_refunded == eur("4.00")
    assert [e.type for e in events(one_fake, f)] == [EventType.REFUND_SUCCEEDED]


@pytest.mark.parametrize("first_by_checkout", [True, False])
def test_one_key_captures_once_whichever_id_names_the_payment(
    one_fake: GatewayManager, f: FakeGateway, first_by_checkout: bool
) -> None:
    session = paid_checkout(one_fake, f, capture=False)
    assert session.payment_id is not None
    ids = [session.id, session.payment_id] if first_by_checkout else [session.payment_id, session.id]
    first = one_fake.capture("fake", CaptureRequest(ids[0]), idempotency_key="c")
    assert one_fake.capture("fake", CaptureRequest(ids[1]), idempotency_key="c") == first
    assert [e.type for e in events(one_fake, f)] == [EventType.PAYMENT_SUCCEEDED]


@pytest.mark.parametrize(
    ("operation", "call"),
    [
        ("capture", lambda m, i: m.capture("fake", CaptureRequest(i), idempotency_key="k")),
        ("refund", lambda m, i: m.refund("fake", RefundRequest(i), idempotency_key="k")),
    ],
)
def test_an_open_checkout_has_nothing_to_capture_or_refund(
    one_fake: GatewayManager, f: FakeGateway, operation: str, call: object
) -> None:
    request = CheckoutRequest.single(
        "Ticket", eur("10.00"), "https://shop.example/ok", "https://shop.example/no", capture=operation == "refund"
    )
    session = one_fake.create_checkout("fake", request, idempotency_key="co")
    assert callable(call)
    for object_id in (session.id, session.payment_id):
        with pytest.raises(InvalidRequest, match=f"the payer has not paid yet, so there is nothing to {operation}"):
            call(one_fake, object_id)
    assert f.checkout(session.id).status is CheckoutStatus.OPEN  # nothing changed
    assert one_fake.payment_status("fake", session.id).state is PaymentState.PENDING
    assert f.pending_webhooks() == []
    f.complete_checkout(session.id)  # the payer may still pay
    f.drain_webhooks()
    if operation == "capture":  # the refused key was not spent on the refusal
        assert one_fake.capture("fake", CaptureRequest(session.id), idempotency_key="k").amount == eur("10.00")
    else:
        assert one_fake.refund("fake", RefundRequest(session.id), idempotency_key="k").amount == eur("10.00")


def test_an_unknown_id_is_still_not_found(one_fake: GatewayManager) -> None:
    missing = "fake_cs_000000000000000000000000"
    with pytest.raises(NotFound):
        one_fake.capture("fake", CaptureRequest(missing), idempotency_key="c")
    with pytest.raises(NotFound):
        one_fake.refund("fake", RefundRequest(missing), idempotency_key="r")


# --------------------------------------------------------------------------------------------
# Void by the checkout's id
# --------------------------------------------------------------------------------------------


def test_voiding_a_completed_authorize_only_checkout_cancels_its_authorization(
    one_fake: GatewayManager, f: FakeGateway
) -> None:
    session = paid_checkout(one_fake, f, capture=False)
    void = one_fake.void("fake", VoidRequest(session.id), idempotency_key="v")
    assert (void.payment_id, void.state) == (session.payment_id, PaymentState.CANCELED)
    [event] = events(one_fake, f)
    assert (event.type, event.checkout_id) == (EventType.PAYMENT_CANCELED, session.id)
    assert one_fake.payment_status("fake", session.id).state is PaymentState.CANCELED
    with pytest.raises(InvalidRequest, match="not authorized"):
        one_fake.capture("fake", CaptureRequest(session.id), idempotency_key="c")


def test_voiding_an_expired_checkout_changes_nothing_and_reports_canceled(
    one_fake: GatewayManager, f: FakeGateway
) -> None:
    request = CheckoutRequest.single("Ticket", eur("10.00"), "https://shop.example/ok", "https://shop.example/no")
    session = one_fake.create_checkout("fake", request, idempotency_key="co")
    f.abandon_checkout(session.id)
    f.drain_webhooks()
    void = one_fake.void("fake", VoidRequest(session.id), idempotency_key="v")
    assert (void.payment_id, void.state) == (session.payment_id, PaymentState.CANCELED)
    assert f.pending_webhooks() == []  # as Stripe: nothing sent, nothing to void
    assert f.checkout(session.id).status is CheckoutStatus.EXPIRED


def test_voiding_an_open_checkout_expires_it(one_fake: GatewayManager, f: FakeGateway) -> None:
    request = CheckoutRequest.single("Ticket", eur("10.00"), "https://shop.example/ok", "https://shop.example/no")
    session = one_fake.create_checkout("fake", request, idempotency_key="co")
    assert one_fake.void("fake", VoidRequest(session.id), idempotency_key="v").state is PaymentState.CANCELED
    assert [e.type for e in events(one_fake, f)] == [EventType.CHECKOUT_EXPIRED]
    assert f.checkout(session.id).status is CheckoutStatus.EXPIRED


def test_a_checkout_whose_money_was_taken_or_is_on_its_way_is_not_voided(
    one_fake: GatewayManager, f: FakeGateway
) -> None:
    paid = paid_checkout(one_fake, f)
    with pytest.raises(InvalidRequest, match="was captured; refund it instead"):
        one_fake.void("fake", VoidRequest(paid.id), idempotency_key="v1")
    request = CheckoutRequest.single("Ticket", eur("10.00"), "https://shop.example/ok", "https://shop.example/no")
    settling = one_fake.create_checkout("fake", request, idempotency_key="co2")
    f.complete_checkout(settling.id, settle=False)
    f.drain_webhooks()
    with pytest.raises(InvalidRequest, match="still processing"):
        one_fake.void("fake", VoidRequest(settling.id), idempotency_key="v2")
    assert one_fake.payment_status("fake", paid.id).state is PaymentState.SUCCEEDED
    assert one_fake.payment_status("fake", settling.id).state is PaymentState.PENDING
    assert f.pending_webhooks() == []
