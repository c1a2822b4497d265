"""Webhooks through the manager: verified before believed, duplicates and disorder, hosted checkout states."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from gateway_core import (
    CheckoutRequest,
    CheckoutStatus,
    EventType,
    GatewayManager,
    InvalidRequest,
    Money,
    PaymentState,
    WebhookVerificationFailed,
)
from gateway_core.errors import ErrorCode
from gateway_core.fake import WebhookDelivery
from gateway_core.fake.gateway import SIGNATURE_HEADER

from .conftest import fake


def checkout(amount: str = "10.00", **kwargs: object) -> CheckoutRequest:
    return CheckoutRequest.single(
        "Ticket", Money.of(amount, "EUR"), "https://shop.example/ok", "https://shop.example/no", **kwargs
    )


def paid_checkout(manager: GatewayManager, gateway: str = "alpha") -> tuple[str, list[WebhookDelivery]]:
    session = manager.create_checkout(gateway, checkout(reference="order-1"), idempotency_key=f"{gateway}-co")
    f = fake(manager, gateway)
    f.complete_checkout(session.id)
    return session.id, f.drain_webhooks()


def test_signed_webhooks_verify_and_are_normalized(two_fakes: GatewayManager) -> None:
    checkout_id, deliveries = paid_checkout(two_fakes)
    events = [two_fakes.parse_webhook("alpha", d.headers, d.body) for d in deliveries]
    assert [e.type for e in events] == [EventType.CHECKOUT_COMPLETED, EventType.PAYMENT_SUCCEEDED]
    for event, delivery in zip(events, deliveries, strict=True):
        assert event.gateway == "alpha"
        assert event.id == delivery.event_id
        assert event.checkout_id == checkout_id
        assert event.reference == "order-1"
        assert event.amount == Money.of("10.00", "EUR")
        assert event.live is False
        assert event.occurred_at is not None
    assert events[1].provider_type == "payment.succeeded"


def test_headers_are_matched_case_insensitively(two_fakes: GatewayManager) -> None:
    _, [delivery, *_] = paid_checkout(two_fakes)
    headers = {SIGNATURE_HEADER.lower(): delivery.headers[SIGNATURE_HEADER]}
    assert two_fakes.parse_webhook("alpha", headers, delivery.body).id == delivery.event_id


def test_a_tampered_body_is_refused(two_fakes: GatewayManager) -> None:
    _, [delivery, *_] = paid_checkout(two_fakes)
    payload = json.loads(delivery.body)
    payload["data"]["amount"] = "0.01"
    tampered = json.dumps(payload, sort_keys=True).encode()
    with pytest.raises(WebhookVerificationFailed, match="signature does not match the body") as info:
        two_fakes.parse_webhook("alpha", delivery.headers, tampered)
    assert info.value.gateway == "alpha"
    assert info.value.code is ErrorCode.WEBHOOK_VERIFICATION_FAILED
    with pytest.raises(WebhookVerificationFailed):
        two_fakes.parse_webhook("alpha", delivery.headers, delivery.body + b" ")


def test_a_webhook_signed_with_another_secret_is_refused(two_fakes: GatewayManager) -> None:
    # alpha and beta read different webhook secrets from the environment
    _, [delivery, *_] = paid_checkout(two_fakes, "alpha")
    with pytest.raises(WebhookVerificationFailed, match="signature does not match") as info:
        two_fakes.parse_webhook("beta", delivery.headers, delivery.body)
    assert info.value.gateway == "beta"


@pytest.mark.parametrize(
    ("headers", "said"),
    [
        ({}, "missing Fake-Signature header"),
        ({SIGNATURE_HEADER: ""}, "missing Fake-Signature header"),
        ({SIGNATURE_HEADER: "v1=abc"}, "no valid timestamp"),
        ({SIGNATURE_HEADER: "t=soon,v1=abc"}, "no valid timestamp"),
        ({SIGNATURE_HEADER: "t={now}"}, "does not match"),
        ({SIGNATURE_HEADER: "t={now},v1=é"}, "does not match"),
        ({SIGNATURE_HEADER: "t={now},v1=\udcff"}, "does not match"),
        # a lone surrogate that surrogateescape cannot encode (chr(): ruff reads the escape as U+DCFF's twin)
        ({SIGNATURE_HEADER: "t={now},v1=" + chr(0xD800)}, "does not match"),
    ],
)
def test_missing_or_malformed_signatures_are_refused(
    two_fakes: GatewayManager, headers: dict[str, str], said: str
) -> None:
    _, [delivery, *_] = paid_checkout(two_fakes)
    now = str(int(time.time()))
    headers = {k: v.replace("{now}", now) for k, v in headers.items()}
    with pytest.raises(WebhookVerificationFailed, match=said):
        two_fakes.parse_webhook("alpha", headers, delivery.body)


def test_a_stale_or_future_timestamp_is_refused(two_fakes: GatewayManager) -> None:
    f = fake(two_fakes, "alpha")
    now = 1_800_000_000.0
    f.clock = lambda: now
    _, [delivery, *_] = paid_checkout(two_fakes)
    assert two_fakes.parse_webhook("alpha", delivery.headers, delivery.body).id == delivery.event_id

    f.clock = lambda: now + 300  # at the tolerance: still fine
    two_fakes.parse_webhook("alpha", delivery.headers, delivery.body)
    f.clock = lambda: now + 301
    with pytest.raises(WebhookVerificationFailed, match="outside the 300 s tolerance"):
        two_fakes.parse_webhook("alpha", delivery.headers, delivery.body)
    f.clock = lambda: now - 301  # signed in the future
    with pytest.raises(WebhookVerificationFailed, match="outside the 300 s tolerance"):
        two_fakes.parse_webhook("alpha", delivery.headers, delivery.body)


def test_a_late_delivery_is_signed_when_it_is_sent(two_fakes: GatewayManager) -> None:
    f = fake(two_fakes, "alpha")
    now = 1_800_000_000.0
    f.clock = lambda: now
    session = two_fakes.create_checkout("alpha", checkout(), idempotency_key="k")
    f.complete_checkout(session.id)
    f.clock = lambda: now + 3600  # the events wait an hour before delivery
    deliveries = f.drain_webhooks()
    assert all(two_fakes.parse_webhook("alpha", d.headers, d.body) for d in deliveries)


def test_a_body_that_is_not_bytes_is_refused(two_fakes: GatewayManager) -> None:
    _, [delivery, *_] = paid_checkout(two_fakes)
    with pytest.raises(InvalidRequest, match="raw bytes"):
        two_fakes.parse_webhook("alpha", delivery.headers, delivery.body.decode())  # type: ignore[arg-type]


def test_a_verified_but_malformed_payload_is_refused(two_fakes: GatewayManager) -> None:
    f = fake(two_fakes, "alpha")
    body = b'{"id": "evt_1"}'
    with pytest.raises(WebhookVerificationFailed, match="malformed payload"):
        two_fakes.parse_webhook("alpha", {SIGNATURE_HEADER: f.sign(body)}, body)


def test_an_unmapped_event_type_is_reported_as_unknown(two_fakes: GatewayManager) -> None:
    f = fake(two_fakes, "alpha")
    body = json.dumps({"id": "evt_x", "type": "payout.paid", "created": int(time.time()), "data": {}}).encode()
    event = two_fakes.parse_webhook("alpha", {SIGNATURE_HEADER: f.sign(body)}, body)
    assert event.type is EventType.UNKNOWN
    assert event.provider_type == "payout.paid"
    assert event.amount is None


def test_duplicates_keep_the_same_event_id(two_fakes: GatewayManager) -> None:
    f = fake(two_fakes, "alpha")
    session = two_fakes.create_checkout("alpha", checkout(), idempotency_key="k")
    f.complete_checkout(session.id)
    deliveries = f.drain_webhooks(duplicate=True)
    events = [two_fakes.parse_webhook("alpha", d.headers, d.body) for d in deliveries]
    assert len(events) == 4
    assert events[0].id == events[1].id
    assert events[2].id == events[3].id
    assert events[0].id != events[2].id
    # deduplicating on (gateway, id) processes each event once
    assert len({(e.gateway, e.id) for e in events}) == 2


def test_reverse_order_delivery(two_fakes: GatewayManager) -> None:
    f = fake(two_fakes, "alpha")
    session = two_fakes.create_checkout("alpha", checkout(), idempotency_key="k")
    f.complete_checkout(session.id)
    events = [two_fakes.parse_webhook("alpha", d.headers, d.body) for d in f.drain_webhooks(reverse=True)]
    assert [e.type for e in events] == [EventType.PAYMENT_SUCCEEDED, EventType.CHECKOUT_COMPLETED]
    assert f.drain_webhooks() == []  # drained once


def test_refund_webhooks_carry_the_refund(two_fakes: GatewayManager) -> None:
    from gateway_core import RefundRequest

    f = fake(two_fakes, "alpha")
    session = two_fakes.create_checkout("alpha", checkout("30.00"), idempotency_key="k")
    status = f.complete_checkout(session.id)
    f.drain_webhooks()
    refund = two_fakes.refund("alpha", RefundRequest(status.payment_id, Money.of("12.00", "EUR")), idempotency_key="r")
    [delivery] = f.drain_webhooks()
    event = two_fakes.parse_webhook("alpha", delivery.headers, delivery.body)
    assert event.type is EventType.REFUND_SUCCEEDED
    assert event.refund_id == refund.id
    assert event.amount == Money.of("12.00", "EUR")


# --------------------------------------------------------------------------------------------
# Hosted checkout: complete, decline, abandon, expire
# --------------------------------------------------------------------------------------------


def events_of(manager: GatewayManager, gateway: str = "alpha") -> list[EventType]:
    f = fake(manager, gateway)
    return [manager.parse_webhook(gateway, d.headers, d.body).type for d in f.drain_webhooks()]


def test_checkout_complete(two_fakes: GatewayManager) -> None:
    f = fake(two_fakes, "alpha")
    session = two_fakes.create_checkout("alpha", checkout(), idempotency_key="k")
    assert session.status is CheckoutStatus.OPEN
    assert session.url.startswith("https://checkout.fake-gateway.invalid/c/")
    assert two_fakes.payment_status("alpha", session.id).state is PaymentState.PENDING
    assert not two_fakes.payment_status("alpha", session.id).is_paid

    f.complete_checkout(session.id)
    status = two_fakes.payment_status("alpha", session.id)
    assert status.state is PaymentState.SUCCEEDED
    assert status.is_paid
    assert status.amount_captured == Money.of("10.00", "EUR")
    assert status.checkout_id == session.id
    assert f.checkout(session.id).status is CheckoutStatus.COMPLETE
    assert events_of(two_fakes) == [EventType.CHECKOUT_COMPLETED, EventType.PAYMENT_SUCCEEDED]
    with pytest.raises(InvalidRequest, match="is complete"):
        f.complete_checkout(session.id)


def test_checkout_authorize_only_completes_as_authorized(two_fakes: GatewayManager) -> None:
    f = fake(two_fakes, "alpha")
    session = two_fakes.create_checkout("alpha", checkout(capture=False), idempotency_key="k")
    f.complete_checkout(session.id)
    status = two_fakes.payment_status("alpha", session.id)
    assert status.state is PaymentState.AUTHORIZED
    assert not status.is_paid
    assert status.amount_captured == Money.zero("EUR")
    assert events_of(two_fakes) == [EventType.CHECKOUT_COMPLETED, EventType.PAYMENT_AUTHORIZED]


def test_checkout_decline_leaves_the_checkout_open_and_its_payment_pending(two_fakes: GatewayManager) -> None:
    """A declined card on an open checkout is an attempt, not the payment's end: ``PENDING``, as Stripe says.

    Stripe: the PaymentIntent "returns to requires_payment_method so that the payment can be
    retried", and ``payment_intent.payment_failed`` is sent for the attempt (stripe_gateway/normalize.py
    ``payment_status``: ``PENDING`` while the session is open). ``FAILED`` would tell a host to let
    go of an order the payer is still paying for.
    """
    f = fake(two_fakes, "alpha")
    session = two_fakes.create_checkout("alpha", checkout(), idempotency_key="k")
    declined = f.decline_checkout(session.id, "insufficient_funds")
    assert declined.state is PaymentState.PENDING  # awaiting the payer, who may try another card
    for asked in (session.id, declined.payment_id):  # by the checkout's id or the payment's
        status = two_fakes.payment_status("alpha", asked)
        assert (status.state, status.is_paid) == (PaymentState.PENDING, False)
        assert status.amount_captured == Money.zero("EUR")
    assert f.checkout(session.id).status is CheckoutStatus.OPEN
    [delivery] = f.drain_webhooks()  # the attempt's failure is still reported, with its code
    event = two_fakes.parse_webhook("alpha", delivery.headers, delivery.body)
    assert event.type is EventType.PAYMENT_FAILED
    assert event.failure_code == "insufficient_funds"
    assert event.checkout_id == session.id

    f.complete_checkout(session.id)  # the payer tries another card
    assert two_fakes.payment_status("alpha", session.id).state is PaymentState.SUCCEEDED
    assert events_of(two_fakes) == [EventType.CHECKOUT_COMPLETED, EventType.PAYMENT_SUCCEEDED]


def test_each_declined_attempt_is_reported_and_the_payment_stays_pending(two_fakes: GatewayManager) -> None:
    f = fake(two_fakes, "alpha")
    session = two_fakes.create_checkout("alpha", checkout(), idempotency_key="k")
    f.decline_checkout(session.id, "card_declined")
    f.decline_checkout(session.id, "expired_card")  # Stripe sends payment_intent.payment_failed for each
    codes = [two_fakes.parse_webhook("alpha", d.headers, d.body).failure_code for d in f.drain_webhooks()]
    assert codes == ["card_declined", "expired_card"]
    assert two_fakes.payment_status("alpha", session.id).state is PaymentState.PENDING
    assert f.complete_checkout(session.id, settle=False).state is PaymentState.PENDING  # a bank debit now
    assert f.settle_payment(session.id).state is PaymentState.SUCCEEDED


def test_a_declined_checkout_then_abandoned_is_canceled(two_fakes: GatewayManager) -> None:
    f = fake(two_fakes, "alpha")
    session = two_fakes.create_checkout("alpha", checkout(), idempotency_key="k")
    f.decline_checkout(session.id)
    assert f.abandon_checkout(session.id).state is PaymentState.CANCELED  # the payer gave up: expired
    assert f.checkout(session.id).status is CheckoutStatus.EXPIRED
    assert events_of(two_fakes) == [EventType.PAYMENT_FAILED, EventType.CHECKOUT_EXPIRED]
    with pytest.raises(InvalidRequest, match="is expired"):
        f.decline_checkout(session.id)  # a closed checkout takes no attempt


def test_checkout_abandon_expires_and_cancels(two_fakes: GatewayManager) -> None:
    f = fake(two_fakes, "alpha")
    session = two_fakes.create_checkout("alpha", checkout(), idempotency_key="k")
    f.abandon_checkout(session.id)
    assert two_fakes.payment_status("alpha", session.id).state is PaymentState.CANCELED
    assert f.checkout(session.id).status is CheckoutStatus.EXPIRED
    assert events_of(two_fakes) == [EventType.CHECKOUT_EXPIRED]
    with pytest.raises(InvalidRequest, match="is expired"):
        f.complete_checkout(session.id)


def test_checkout_expires_on_the_clock(two_fakes: GatewayManager) -> None:
    f = fake(two_fakes, "alpha")
    now = 1_800_000_000.0
    f.clock = lambda: now
    expires = datetime.fromtimestamp(now, UTC) + timedelta(minutes=30)
    session = two_fakes.create_checkout("alpha", checkout(expires_at=expires), idempotency_key="k")
    assert session.expires_at == expires
    f.clock = lambda: now + 30 * 60
    assert two_fakes.payment_status("alpha", session.id).state is PaymentState.CANCELED
    assert f.checkout(session.id).status is CheckoutStatus.EXPIRED
    assert events_of(two_fakes) == [EventType.CHECKOUT_EXPIRED]


def test_void_expires_an_open_checkout(two_fakes: GatewayManager) -> None:
    from gateway_core import VoidRequest

    f = fake(two_fakes, "alpha")
    session = two_fakes.create_checkout("alpha", checkout(), idempotency_key="k")
    void = two_fakes.void("alpha", VoidRequest(session.id), idempotency_key="v")
    assert void.state is PaymentState.CANCELED
    assert f.checkout(session.id).status is CheckoutStatus.EXPIRED


def test_an_empty_webhook_secret_is_refused_not_replaced_by_the_default() -> None:
    from gateway_core import ConfigurationError

    from .conftest import build_manager, fake_table

    with pytest.raises(ConfigurationError, match=r"webhook_secret \(env:HOOK\) is empty"):
        build_manager({"f": fake_table(settings={"webhook_secret": {"env": "HOOK"}})}, environ={"HOOK": ""})


def test_a_webhook_signed_with_the_default_secret_is_refused_by_a_configured_one(two_fakes: GatewayManager) -> None:
    from gateway_core.config import Secret
    from gateway_core.fake.gateway import sign

    body = json.dumps(
        {"id": "evt_forged", "type": "payment.succeeded", "created": int(time.time()), "data": {}}
    ).encode()
    forged = sign(body, Secret("whsec_fake_test_only_alpha"), int(time.time()))
    with pytest.raises(WebhookVerificationFailed):
        two_fakes.parse_webhook("alpha", {SIGNATURE_HEADER: forged}, body)


def test_two_fakes_on_default_secrets_refuse_each_others_webhooks() -> None:
    from .conftest import build_manager, fake_table

    manager = build_manager({"a": fake_table(), "b": fake_table()})
    _, deliveries = paid_checkout(manager, "a")
    delivery = deliveries[0]
    assert manager.parse_webhook("a", delivery.headers, delivery.body).gateway == "a"
    with pytest.raises(WebhookVerificationFailed):
        manager.parse_webhook("b", delivery.headers, delivery.body)  # an endpoint wired to the wrong gateway


def test_headers_may_arrive_as_pairs_of_str_or_bytes_as_asgi_gives_them(two_fakes: GatewayManager) -> None:
    _, deliveries = paid_checkout(two_fakes)
    delivery = deliveries[0]
    pairs = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in delivery.headers.items()]
    assert two_fakes.parse_webhook("alpha", pairs, delivery.body).gateway == "alpha"
    assert two_fakes.parse_webhook("alpha", list(delivery.headers.items()), delivery.body).gateway == "alpha"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (None, "must be a mapping or"),
        ("Fake-Signature: t=1", "must be a mapping or"),
        ([("Fake-Signature",)], r"\(name, value\) pairs"),
        ([("Fake-Signature", 5)], "must be str or bytes"),
    ],
)
def test_malformed_headers_are_an_invalid_request_naming_the_gateway(
    two_fakes: GatewayManager, headers: object, message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message) as info:
        two_fakes.parse_webhook("alpha", headers, b"{}")  # type: ignore[arg-type]
    assert info.value.gateway == "alpha"


def test_a_signature_header_given_twice_with_different_values_is_refused(two_fakes: GatewayManager) -> None:
    _, deliveries = paid_checkout(two_fakes)
    delivery = deliveries[0]
    genuine = delivery.headers[SIGNATURE_HEADER]
    pairs = [(SIGNATURE_HEADER, "t=1,v1=00"), (SIGNATURE_HEADER.lower(), genuine)]
    with pytest.raises(InvalidRequest, match="given twice"):
        two_fakes.parse_webhook("alpha", pairs, delivery.body)
