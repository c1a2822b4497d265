"""The fake gateway models the cases hosts must handle: late settlement, 3-D Secure, failed refunds,
refunds that settle later, disputes, held-back webhooks, provider outages on reads, and a
deployment's narrower features. Driven through the manager, as a host would."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from gateway_core import (
    AmountOutOfRange,
    AuthenticationRequired,
    AuthorizeRequest,
    CapabilityNotSupported,
    CaptureRequest,
    CheckoutRequest,
    CheckoutStatus,
    ConfigurationError,
    EventType,
    Feature,
    GatewayManager,
    GatewayUnavailable,
    IdempotencyConflict,
    InvalidRequest,
    Money,
    NotFound,
    PaymentDeclined,
    PaymentState,
    PluginLoadError,
    RateLimited,
    Refund,
    RefundRequest,
    RefundStatus,
    WebhookEvent,
)
from gateway_core.fake import FakeGateway, Outcome, Scripted, WebhookDelivery, default_capabilities, provider

from .conftest import build_manager, fake, fake_table


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def checkout(amount: str = "10.00", *, capture: bool = True) -> CheckoutRequest:
    return CheckoutRequest.single(
        "Ticket", eur(amount), "https://shop.example/ok", "https://shop.example/no", capture=capture
    )


def events(manager: GatewayManager, deliveries: list[WebhookDelivery]) -> list[WebhookEvent]:
    return [manager.parse_webhook("fake", d.headers, d.body) for d in deliveries]


def types(manager: GatewayManager, f: FakeGateway) -> list[EventType]:
    return [e.type for e in events(manager, f.drain_webhooks())]


@pytest.fixture
def f(one_fake: GatewayManager) -> FakeGateway:
    return fake(one_fake, "fake")


# --------------------------------------------------------------------------------------------
# (a) A checkout completed with the payment still pending
# --------------------------------------------------------------------------------------------


def test_a_checkout_completed_unsettled_is_not_paid_until_it_settles(one_fake: GatewayManager, f: FakeGateway) -> None:
    session = one_fake.create_checkout("fake", checkout(), idempotency_key="co")
    status = f.complete_checkout(session.id, settle=False)
    assert status.state is PaymentState.PENDING
    assert not status.is_paid
    assert f.checkout(session.id).status is CheckoutStatus.COMPLETE
    assert types(one_fake, f) == [EventType.CHECKOUT_COMPLETED, EventType.PAYMENT_PENDING]
    assert one_fake.payment_status("fake", session.id).amount_captured == eur("0.00")

    settled = f.settle_payment(session.id)
    assert settled.state is PaymentState.SUCCEEDED
    assert settled.amount_captured == eur("10.00")
    [event] = events(one_fake, f.drain_webhooks())
    assert (event.type, event.payment_id, event.amount) == (
        EventType.PAYMENT_SUCCEEDED,
        settled.payment_id,
        eur("10.00"),
    )
    assert one_fake.payment_status("fake", settled.payment_id).is_paid


def test_a_pending_payment_can_fail_later(one_fake: GatewayManager, f: FakeGateway) -> None:
    session = one_fake.create_checkout("fake", checkout(), idempotency_key="co")
    pending = f.complete_checkout(session.id, settle=False)
    f.drain_webhooks()
    failed = f.fail_payment(pending.payment_id, failure_code="debit_returned")
    assert failed.state is PaymentState.FAILED
    [event] = events(one_fake, f.drain_webhooks())
    assert (event.type, event.failure_code) == (EventType.PAYMENT_FAILED, "debit_returned")
    with pytest.raises(InvalidRequest, match="cannot refund a payment that is failed"):
        one_fake.refund("fake", RefundRequest(pending.payment_id), idempotency_key="r")
    with pytest.raises(InvalidRequest, match="not a completed checkout's pending payment"):
        f.settle_payment(pending.payment_id)  # it is over


def test_an_authorize_only_checkout_settles_into_an_authorization(one_fake: GatewayManager, f: FakeGateway) -> None:
    session = one_fake.create_checkout("fake", checkout(capture=False), idempotency_key="co")
    f.complete_checkout(session.id, settle=False)
    f.drain_webhooks()
    assert f.settle_payment(session.id).state is PaymentState.AUTHORIZED
    assert types(one_fake, f) == [EventType.PAYMENT_AUTHORIZED]


def test_only_a_completed_checkouts_pending_payment_settles(one_fake: GatewayManager, f: FakeGateway) -> None:
    session = one_fake.create_checkout("fake", checkout(), idempotency_key="co")
    with pytest.raises(InvalidRequest, match="not a completed checkout's pending payment"):
        f.settle_payment(session.id)  # the payer has not finished
    f.complete_checkout(session.id)
    with pytest.raises(InvalidRequest, match=r"\(succeeded\)"):
        f.fail_payment(session.id)
    with pytest.raises(NotFound):
        f.settle_payment("fake_pi_000000000000000000000000")


def test_settling_by_default_is_as_before(one_fake: GatewayManager, f: FakeGateway) -> None:
    session = one_fake.create_checkout("fake", checkout(), idempotency_key="co")
    assert f.complete_checkout(session.id).state is PaymentState.SUCCEEDED
    assert types(one_fake, f) == [EventType.CHECKOUT_COMPLETED, EventType.PAYMENT_SUCCEEDED]


# --------------------------------------------------------------------------------------------
# (b) Refund failure and disputes
# --------------------------------------------------------------------------------------------


def paid(manager: GatewayManager, f: FakeGateway, amount: str = "10.00") -> str:
    session = manager.create_checkout("fake", checkout(amount), idempotency_key=f"co-{amount}")
    payment_id = f.complete_checkout(session.id).payment_id
    f.drain_webhooks()
    return payment_id


def test_a_failed_refund_is_reported_and_the_money_counts_as_kept(one_fake: GatewayManager, f: FakeGateway) -> None:
    payment_id = paid(one_fake, f)
    refund = one_fake.refund("fake", RefundRequest(payment_id, eur("4.00")), idempotency_key="r1")
    f.drain_webhooks()
    assert one_fake.payment_status("fake", payment_id).state is PaymentState.PARTIALLY_REFUNDED

    failed = f.fail_refund(refund.id, failure_code="expired_or_canceled_card")
    assert failed.status is RefundStatus.FAILED
    assert f.refund(refund.id).status is RefundStatus.FAILED
    [event] = events(one_fake, f.drain_webhooks())
    assert (event.type, event.refund_id, event.amount, event.failure_code) == (
        EventType.REFUND_FAILED,
        refund.id,
        eur("4.00"),
        "expired_or_canceled_card",
    )
    status = one_fake.payment_status("fake", payment_id)
    assert (status.state, status.amount_refunded) == (PaymentState.SUCCEEDED, eur("0.00"))
    # the money is the payer's to get back another way: a new refund of all of it is possible
    again = one_fake.refund("fake", RefundRequest(payment_id), idempotency_key="r2")
    assert again.amount == eur("10.00")
    with pytest.raises(InvalidRequest, match="is failed"):
        f.fail_refund(refund.id)


def test_a_retried_refund_after_its_failure_replays_the_original_answer(
    one_fake: GatewayManager, f: FakeGateway
) -> None:
    payment_id = paid(one_fake, f)
    refund = one_fake.refund("fake", RefundRequest(payment_id), idempotency_key="r1")
    f.fail_refund(refund.id)
    assert one_fake.refund("fake", RefundRequest(payment_id), idempotency_key="r1") == refund  # same key: same result
    assert f.refunds_made() == 1


# A refund that settles later: Stripe answers a refund ``pending`` (its Refund ``status``), PayPal
# ``PENDING`` (payments v2 ``refund_status``); it succeeds or fails afterwards.

PENDING_REFUND = Scripted(Outcome.PENDING, operation="refund")


def test_a_pending_refund_is_counted_until_it_settles(one_fake: GatewayManager, f: FakeGateway) -> None:
    f.script(PENDING_REFUND)  # scoped to refunds: the checkout and payment before it are untouched
    payment_id = paid(one_fake, f)
    refund = one_fake.refund("fake", RefundRequest(payment_id, eur("4.00")), idempotency_key="r1")
    assert (refund.status, refund.amount) == (RefundStatus.PENDING, eur("4.00"))
    assert f.refund(refund.id).status is RefundStatus.PENDING
    [event] = events(one_fake, f.drain_webhooks())
    assert (event.type, event.refund_id, event.payment_id, event.amount) == (
        EventType.REFUND_PENDING,
        refund.id,
        payment_id,
        eur("4.00"),
    )
    status = one_fake.payment_status("fake", payment_id)
    assert (status.state, status.amount_refunded) == (PaymentState.PARTIALLY_REFUNDED, eur("4.00"))
    # what waits is not refundable a second time
    with pytest.raises(AmountOutOfRange, match=re.escape("6.00 EUR of 10.00 EUR remains")):
        one_fake.refund("fake", RefundRequest(payment_id, eur("6.01")), idempotency_key="r2")

    settled = f.settle_refund(refund.id)
    assert (settled.id, settled.status) == (refund.id, RefundStatus.SUCCEEDED)
    assert f.refund(refund.id).status is RefundStatus.SUCCEEDED
    [event] = events(one_fake, f.drain_webhooks())
    assert (event.type, event.refund_id, event.amount) == (EventType.REFUND_SUCCEEDED, refund.id, eur("4.00"))
    status = one_fake.payment_status("fake", payment_id)
    assert (status.state, status.amount_refunded) == (PaymentState.PARTIALLY_REFUNDED, eur("4.00"))
    # the next refund is not pending: the scripted outcome was used once
    assert one_fake.refund("fake", RefundRequest(payment_id), idempotency_key="r3").status is RefundStatus.SUCCEEDED
    assert one_fake.payment_status("fake", payment_id).state is PaymentState.REFUNDED


def test_a_pending_refund_retried_under_its_key_is_the_same_refund(one_fake: GatewayManager, f: FakeGateway) -> None:
    payment_id = paid(one_fake, f)
    f.script(PENDING_REFUND)
    refund = one_fake.refund("fake", RefundRequest(payment_id), operation_id="refund-1")
    retried = one_fake.refund("fake", RefundRequest(payment_id), operation_id="refund-1")
    assert retried == refund
    assert retried.status is RefundStatus.PENDING
    assert f.refunds_made() == 1
    assert f.pending_webhooks() == ["refund.pending"]  # one refund, one event
    with pytest.raises(IdempotencyConflict):  # the same key for another refund is refused, as for any
        one_fake.refund("fake", RefundRequest(payment_id, eur("1.00")), operation_id="refund-1")
    status = one_fake.payment_status("fake", payment_id)
    assert (status.state, status.amount_refunded) == (PaymentState.REFUNDED, eur("10.00"))
    f.settle_refund(refund.id)
    # still the first answer, as Stripe replays a key's stored response; the fake's refund() is current
    assert one_fake.refund("fake", RefundRequest(payment_id), operation_id="refund-1") == refund
    assert f.refund(refund.id).status is RefundStatus.SUCCEEDED
    assert f.refunds_made() == 1


def test_a_pending_refund_that_fails_makes_the_money_refundable_again(one_fake: GatewayManager, f: FakeGateway) -> None:
    payment_id = paid(one_fake, f)
    f.script(PENDING_REFUND)
    refund = one_fake.refund("fake", RefundRequest(payment_id), idempotency_key="r1")
    assert one_fake.payment_status("fake", payment_id).state is PaymentState.REFUNDED
    f.drain_webhooks()

    failed = f.fail_refund(refund.id, failure_code="insufficient_funds")
    assert (failed.id, failed.status) == (refund.id, RefundStatus.FAILED)
    [event] = events(one_fake, f.drain_webhooks())
    assert (event.type, event.refund_id, event.amount, event.failure_code) == (
        EventType.REFUND_FAILED,
        refund.id,
        eur("10.00"),
        "insufficient_funds",
    )
    status = one_fake.payment_status("fake", payment_id)
    assert (status.state, status.amount_refunded) == (PaymentState.SUCCEEDED, eur("0.00"))
    # a retry under the same key replays its answer and refunds nothing; a new refund may take it all
    assert one_fake.refund("fake", RefundRequest(payment_id), idempotency_key="r1") == refund
    again = one_fake.refund("fake", RefundRequest(payment_id), idempotency_key="r2")
    assert (again.amount, again.status) == (eur("10.00"), RefundStatus.SUCCEEDED)
    assert f.refunds_made() == 2


def succeeded_refund(manager: GatewayManager, f: FakeGateway) -> str:
    return manager.refund("fake", RefundRequest(paid(manager, f)), idempotency_key="r-done").id


def settled_refund(manager: GatewayManager, f: FakeGateway) -> str:
    f.script(PENDING_REFUND)
    refund_id = manager.refund("fake", RefundRequest(paid(manager, f)), idempotency_key="r-settled").id
    f.settle_refund(refund_id)
    return refund_id


def failed_refund(manager: GatewayManager, f: FakeGateway) -> str:
    f.script(PENDING_REFUND)
    refund_id = manager.refund("fake", RefundRequest(paid(manager, f)), idempotency_key="r-failed").id
    f.fail_refund(refund_id)
    return refund_id


@pytest.mark.parametrize(
    ("make", "settle", "said"),
    [
        (succeeded_refund, FakeGateway.settle_refund, "is succeeded, not pending"),
        (settled_refund, FakeGateway.settle_refund, "is succeeded, not pending"),  # settled twice
        (failed_refund, FakeGateway.settle_refund, "is failed, not pending"),
        (failed_refund, FakeGateway.fail_refund, "is failed"),  # failed twice
    ],
    ids=["not-pending", "settled-twice", "settle-failed", "failed-twice"],
)
def test_settling_a_refund_that_is_not_pending_is_refused_and_changes_nothing(
    one_fake: GatewayManager,
    f: FakeGateway,
    make: Callable[[GatewayManager, FakeGateway], str],
    settle: Callable[[FakeGateway, str], Refund],
    said: str,
) -> None:
    refund_id = make(one_fake, f)
    f.drain_webhooks()
    before = (f.refund(refund_id), one_fake.payment_status("fake", f.refund(refund_id).payment_id))
    with pytest.raises(InvalidRequest, match=f"fake: refund {refund_id} {said}"):
        settle(f, refund_id)
    assert (f.refund(refund_id), one_fake.payment_status("fake", before[0].payment_id)) == before
    assert f.pending_webhooks() == []


@pytest.mark.parametrize("settle", [FakeGateway.settle_refund, FakeGateway.fail_refund], ids=["settle", "fail"])
def test_settling_an_unknown_refund_is_not_found(f: FakeGateway, settle: Callable[[FakeGateway, str], Refund]) -> None:
    with pytest.raises(NotFound, match=re.escape("fake: no refund 'fake_re_000000000000000000000000'")):
        settle(f, "fake_re_000000000000000000000000")
    with pytest.raises(NotFound, match=re.escape("no refund (not an id the fake issued)")):
        settle(f, "4242424242424242")  # arbitrary input is never echoed
    assert f.pending_webhooks() == []


@pytest.mark.parametrize("operation", [None, "checkout", "authorize", "capture", "void"])
def test_only_a_refund_can_be_scripted_pending(operation: str | None) -> None:
    # anywhere else it would be dropped unseen, and the test would believe something waits
    with pytest.raises(
        ValueError,
        match=re.escape('only a refund can be scripted pending: Scripted(Outcome.PENDING, operation="refund")'),
    ):
        Scripted(Outcome.PENDING, operation=operation)


def test_a_script_with_one_refused_outcome_queues_none(one_fake: GatewayManager, f: FakeGateway) -> None:
    with pytest.raises(ValueError, match="only a refund can be scripted pending"):
        f.script(Outcome.DECLINE, Outcome.PENDING)
    payment_id = paid(one_fake, f)  # the decline before the refused outcome was not queued either
    assert one_fake.refund("fake", RefundRequest(payment_id), idempotency_key="r").status is RefundStatus.SUCCEEDED


def test_a_dispute_is_reported_for_a_paid_payment(one_fake: GatewayManager, f: FakeGateway) -> None:
    payment_id = paid(one_fake, f)
    dispute_id = f.open_dispute(payment_id, reason="product_not_received")
    [event] = events(one_fake, f.drain_webhooks())
    assert (event.type, event.payment_id, event.amount) == (EventType.DISPUTE_OPENED, payment_id, eur("10.00"))
    assert (event.raw["data"]["dispute_id"], event.raw["data"]["reason"]) == (dispute_id, "product_not_received")
    assert f.open_dispute(payment_id, amount=eur("2.50")).startswith("fake_dp_")
    assert events(one_fake, f.drain_webhooks())[0].amount == eur("2.50")


def test_an_unpaid_payment_cannot_be_disputed(one_fake: GatewayManager, f: FakeGateway) -> None:
    session = one_fake.create_checkout("fake", checkout(), idempotency_key="co")
    with pytest.raises(InvalidRequest, match="cannot dispute a payment that is pending"):
        f.open_dispute(session.payment_id or "")
    payment_id = paid(one_fake, f)
    with pytest.raises(InvalidRequest, match=r"cannot dispute 10\.01 EUR"):
        f.open_dispute(payment_id, amount=eur("10.01"))


# --------------------------------------------------------------------------------------------
# (c) 3-D Secure the test completes or fails
# --------------------------------------------------------------------------------------------


def authorize_3ds(manager: GatewayManager, f: FakeGateway) -> str:
    f.script(Outcome.REQUIRES_3DS)
    with pytest.raises(AuthenticationRequired) as info:
        manager.authorize("fake", AuthorizeRequest(eur("25.00"), "pm_card_3ds"), idempotency_key="a")
    assert info.value.payment_id is not None
    return info.value.payment_id


def test_three_d_secure_completed_authorizes_and_can_be_captured(one_fake: GatewayManager, f: FakeGateway) -> None:
    payment_id = authorize_3ds(one_fake, f)
    assert one_fake.payment_status("fake", payment_id).state is PaymentState.REQUIRES_ACTION
    with pytest.raises(InvalidRequest, match="not authorized"):
        one_fake.capture("fake", CaptureRequest(payment_id), idempotency_key="c0")
    assert f.complete_3ds(payment_id).state is PaymentState.AUTHORIZED
    assert types(one_fake, f) == [EventType.PAYMENT_AUTHORIZED]
    capture = one_fake.capture("fake", CaptureRequest(payment_id), idempotency_key="c1")
    assert capture.state is PaymentState.SUCCEEDED
    assert f.payments_made() == 1


def test_three_d_secure_failed_fails_the_payment(one_fake: GatewayManager, f: FakeGateway) -> None:
    payment_id = authorize_3ds(one_fake, f)
    assert f.fail_3ds(payment_id).state is PaymentState.FAILED
    [event] = events(one_fake, f.drain_webhooks())
    assert (event.type, event.failure_code) == (EventType.PAYMENT_FAILED, "authentication_failed")
    with pytest.raises(InvalidRequest, match="not awaiting 3-D Secure"):
        f.complete_3ds(payment_id)


# --------------------------------------------------------------------------------------------
# (d) Holding webhooks back to deliver them late
# --------------------------------------------------------------------------------------------


def test_held_event_types_stay_for_a_later_drain(one_fake: GatewayManager, f: FakeGateway) -> None:
    session = one_fake.create_checkout("fake", checkout(), idempotency_key="co")
    f.complete_checkout(session.id)
    first = f.drain_webhooks(hold={"payment.succeeded"})
    assert [d.type for d in first] == ["checkout.completed"]
    assert f.pending_webhooks() == ["payment.succeeded"]
    late = f.drain_webhooks()
    assert [e.type for e in events(one_fake, late)] == [EventType.PAYMENT_SUCCEEDED]  # still verifies: signed now
    assert f.pending_webhooks() == []


def test_a_predicate_holds_chosen_deliveries(one_fake: GatewayManager, f: FakeGateway) -> None:
    for i in range(3):
        session = one_fake.create_checkout("fake", checkout(f"1{i}.00"), idempotency_key=f"co{i}")
        f.complete_checkout(session.id)
    now = f.drain_webhooks(hold=lambda d: b'"amount": "11.00"' in d.body, duplicate=True)
    assert len(now) == 8  # two checkouts, two events each, each delivered twice
    assert [e.amount for e in events(one_fake, f.drain_webhooks())] == [eur("11.00"), eur("11.00")]


def test_hold_takes_event_types_as_enum_values_too(one_fake: GatewayManager, f: FakeGateway) -> None:
    session = one_fake.create_checkout("fake", checkout(), idempotency_key="co")
    f.complete_checkout(session.id)
    assert [d.type for d in f.drain_webhooks(hold=[EventType.CHECKOUT_COMPLETED], reverse=True)] == [
        "payment.succeeded"
    ]


@pytest.mark.parametrize(
    ("hold", "said"),
    [
        ("payment.succeeded", "hold takes a collection of event types, not one str (use {'payment.succeeded'})"),
        (EventType.PAYMENT_SUCCEEDED, "hold takes a collection of event types, not one str"),
        ({"payment.succeded"}, "hold names unknown event types: 'payment.succeded'; known: checkout.completed"),
        (["payment.succeeded", 3], "hold names unknown event types: 3"),
    ],
    ids=["str", "enum", "typo", "int"],
)
def test_a_hold_that_would_hold_nothing_is_refused_and_drains_nothing(
    one_fake: GatewayManager, f: FakeGateway, hold: object, said: str
) -> None:
    # a str would be read letter by letter and a misspelt type matches no event: both held nothing
    session = one_fake.create_checkout("fake", checkout(), idempotency_key="co")
    f.complete_checkout(session.id)
    with pytest.raises(InvalidRequest, match=re.escape(said)):
        f.drain_webhooks(hold=hold)  # type: ignore[arg-type]
    assert f.pending_webhooks() == ["checkout.completed", "payment.succeeded"]


# --------------------------------------------------------------------------------------------
# (e) Reads the provider fails to answer
# --------------------------------------------------------------------------------------------


def test_a_status_lookup_can_be_scripted_unavailable_once(one_fake: GatewayManager, f: FakeGateway) -> None:
    payment_id = paid(one_fake, f)
    f.script(Scripted(Outcome.UNAVAILABLE, operation="status"), Scripted(Outcome.RATE_LIMITED, operation="status"))
    with pytest.raises(GatewayUnavailable) as info:
        one_fake.payment_status("fake", payment_id)
    assert info.value.retryable
    with pytest.raises(RateLimited):
        one_fake.payment_status("fake", payment_id)
    assert one_fake.payment_status("fake", payment_id).is_paid


def test_webhook_verification_can_be_scripted_unavailable(one_fake: GatewayManager, f: FakeGateway) -> None:
    session = one_fake.create_checkout("fake", checkout(), idempotency_key="co")
    f.complete_checkout(session.id)
    first, *_ = f.drain_webhooks()
    f.script(Scripted(Outcome.UNAVAILABLE, operation="webhook"))
    with pytest.raises(GatewayUnavailable):
        one_fake.parse_webhook("fake", first.headers, first.body)
    assert one_fake.parse_webhook("fake", first.headers, first.body).id == first.event_id


def test_unscoped_outcomes_are_for_mutating_operations_only(one_fake: GatewayManager, f: FakeGateway) -> None:
    payment_id = paid(one_fake, f)
    f.script(Outcome.UNAVAILABLE)
    assert one_fake.payment_status("fake", payment_id).is_paid  # the read is not affected
    with pytest.raises(GatewayUnavailable):
        one_fake.refund("fake", RefundRequest(payment_id), idempotency_key="r")


@pytest.mark.parametrize(
    "outcome", [Outcome.DECLINE, Outcome.REQUIRES_3DS, Outcome.TIMEOUT_AFTER_SUCCESS, Outcome.PENDING]
)
def test_a_read_takes_only_outcomes_where_nothing_happened(outcome: Outcome) -> None:
    with pytest.raises(ValueError, match="can only be scripted rate_limited or unavailable"):
        Scripted(outcome, operation="status")


@pytest.mark.parametrize("operation", ["create_checkout", "refunds", "payment_status", ""])
def test_an_outcome_for_an_operation_the_fake_does_not_have_is_refused(operation: str) -> None:
    # it would wait for ever, and the operation the test meant would succeed
    with pytest.raises(
        InvalidRequest, match=f"no operation {operation!r}; the fake's are: authorize, capture, checkout"
    ):
        Scripted(Outcome.DECLINE, operation=operation)


def test_a_scripted_outcome_for_a_named_operation_applies_to_it(one_fake: GatewayManager, f: FakeGateway) -> None:
    f.script(Scripted(Outcome.DECLINE, operation="checkout"))
    with pytest.raises(PaymentDeclined):
        one_fake.create_checkout("fake", checkout(), idempotency_key="co")


# --------------------------------------------------------------------------------------------
# (f) A deployment narrows the fake's features (to stand in for a provider that lacks some)
# --------------------------------------------------------------------------------------------

#: What the PayPal plugin declares: everything but an application fee.
PAYPAL_LIKE = [f.value for f in Feature if f is not Feature.APPLICATION_FEE]


def test_features_narrow_what_one_fake_gateway_declares() -> None:
    manager = build_manager(
        {
            "paypal-like": fake_table(settings={"features": PAYPAL_LIKE, "checkout_expiry_minutes": False}),
            "full": fake_table(),
        }
    )
    narrowed = manager.gateway("paypal-like")
    assert narrowed.capabilities.features == frozenset(Feature) - {Feature.APPLICATION_FEE}
    assert narrowed.capabilities.checkout_expiry is None  # both settings apply
    assert narrowed.declared.features == frozenset(Feature)  # the provider's own figure is kept
    assert manager.gateway("full").capabilities.features == frozenset(Feature)  # per gateway, not per provider
    with_fee = CheckoutRequest.single(
        "Ticket", eur("10.00"), "https://shop.example/ok", "https://shop.example/no", application_fee=eur("0.50")
    )
    with pytest.raises(CapabilityNotSupported, match="application fee"):
        manager.create_checkout("paypal-like", with_fee, idempotency_key="fee")
    assert fake(manager, "paypal-like").requests == []  # refused before the provider was asked
    assert manager.create_checkout("full", with_fee, idempotency_key="fee").url
    assert manager.create_checkout("paypal-like", checkout(), idempotency_key="plain").url


def test_a_fake_without_refunds_refuses_them_before_the_provider() -> None:
    manager = build_manager({"fake": fake_table(settings={"features": ["hosted_checkout", "payment_status"]})})
    f = fake(manager, "fake")
    payment_id = paid(manager, f)
    sent = len(f.requests)
    with pytest.raises(CapabilityNotSupported):
        manager.refund("fake", RefundRequest(payment_id), idempotency_key="r")
    assert len(f.requests) == sent
    assert manager.payment_status("fake", payment_id).is_paid


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("refund", "not str"),
        ([1, "refund"], "not a list of 2"),
        ({"refund": True}, "not dict"),
        (["hosted_checkout", "refunds"], "unknown features ('refunds')"),
        (["hosted_checkout", "Refund", "sk_live_Ab1"], "unknown features (2 other entries)"),
    ],
)
def test_a_bad_features_setting_is_a_configuration_error(value: object, said: str) -> None:
    with pytest.raises(ConfigurationError, match="features") as info:
        build_manager({"g": fake_table(settings={"features": value})})
    message = str(info.value)
    assert said in message
    assert "known: hosted_checkout, authorize_capture" in message
    assert "sk_live" not in message  # an entry that is no feature name is never echoed
    assert info.value.gateway == "g"
    assert not isinstance(info.value, PluginLoadError)


@pytest.mark.parametrize("typo", ["minimum", "tolerence", "chekout_expiry_minutes"])
def test_a_setting_the_fake_does_not_take_is_a_configuration_error(typo: str) -> None:
    # "minimum" for "minimums" would silently drop the minimum the test deployment stands in for
    with pytest.raises(ConfigurationError, match=f"unknown settings '{typo}'") as info:
        build_manager({"g": fake_table(settings={typo: {"EUR": "5.00"}})})
    assert "minimums" in str(info.value)  # the message lists what the fake takes
    assert "5.00" not in str(info.value)
    assert info.value.gateway == "g"


@pytest.mark.parametrize("value", [5, "checkout.example/pay", ["https://x.example"]])
def test_a_checkout_base_url_that_is_no_url_is_a_configuration_error(value: object) -> None:
    with pytest.raises(ConfigurationError, match="checkout_base_url must be an http"):
        build_manager({"g": fake_table(settings={"checkout_base_url": value})})


def test_features_may_only_narrow_and_must_stay_consistent() -> None:
    no_fee = default_capabilities(["EUR"], features=set(Feature) - {Feature.APPLICATION_FEE})
    with pytest.raises(ConfigurationError, match="may only narrow") as info:
        build_manager(
            {
                "g": {
                    "provider": "fake-no-fee",
                    "settings": {"test_mode": True, "features": ["hosted_checkout", "application_fee"]},
                }
            },
            plugins=[provider("fake-no-fee", no_fee)],
        )
    assert "adds undeclared features application_fee" in str(info.value)
    with pytest.raises(ConfigurationError, match="inconsistent capabilities") as info:
        build_manager({"g": fake_table(settings={"features": ["hosted_checkout", "partial_refund"]})})
    assert "partial_refund declared without refund" in str(info.value)
    with pytest.raises(ConfigurationError, match="nothing can be paid"):
        build_manager({"g": fake_table(settings={"features": []})})
