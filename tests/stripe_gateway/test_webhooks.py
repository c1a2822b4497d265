"""Webhooks signed with the SDK's own helper: mapped when genuine, refused otherwise."""

from __future__ import annotations

import time
from typing import Any

import pytest
from stripe_gateway.gateway import StripeGateway

from gateway_core.config import Secret
from gateway_core.errors import ConfigurationError, WebhookVerificationFailed
from gateway_core.models import EventType, WebhookRequest
from gateway_core.money import Money
from tests.stripe_gateway.conftest import WEBHOOK_SECRET
from tests.stripe_gateway.webhooks_util import event_body, sign

GW = "stripe_test"


def gateway(**kwargs: Any) -> StripeGateway:
    kwargs.setdefault("webhook_secret", Secret(WEBHOOK_SECRET))
    return StripeGateway(GW, api_key=Secret("sk_test_webhooks"), **kwargs)


def parse(gw: StripeGateway, body: bytes, headers: dict[str, str] | None = None) -> Any:
    delivered = headers if headers is not None else dict(sign(body, WEBHOOK_SECRET).headers)
    return gw.gateway_parse_webhook(WebhookRequest(delivered, body))


SESSION = {"object": "checkout.session", "id": "cs_test_1", "amount_total": 2500, "currency": "eur",
           "payment_intent": "pi_test_1", "client_reference_id": "order-5"}  # fmt: skip


@pytest.mark.parametrize(
    ("provider_type", "obj", "expected", "amount"),
    [
        ("checkout.session.completed", {**SESSION, "payment_status": "paid"}, EventType.PAYMENT_SUCCEEDED, "25.00"),
        ("checkout.session.completed", {**SESSION, "payment_status": "unpaid"}, EventType.CHECKOUT_COMPLETED, "25.00"),
        ("checkout.session.async_payment_succeeded", SESSION, EventType.PAYMENT_SUCCEEDED, "25.00"),
        ("checkout.session.async_payment_failed", SESSION, EventType.PAYMENT_FAILED, "25.00"),
        ("checkout.session.expired", {**SESSION, "payment_intent": None}, EventType.CHECKOUT_EXPIRED, "25.00"),
        (
            "payment_intent.payment_failed",
            {"object": "payment_intent", "id": "pi_test_1", "amount": 2500, "currency": "eur",
             "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds"}},
            EventType.PAYMENT_FAILED, "25.00",
        ),
        (
            "charge.refunded",
            {"object": "charge", "id": "ch_1", "payment_intent": "pi_test_1", "amount": 2500, "amount_refunded": 1000,
             "currency": "eur"},
            EventType.REFUND_SUCCEEDED, "10.00",
        ),
        (
            "refund.updated",
            {"object": "refund", "id": "re_1", "payment_intent": "pi_test_1", "amount": 1000, "currency": "eur",
             "status": "succeeded"},
            EventType.REFUND_SUCCEEDED, "10.00",
        ),
        (
            "refund.updated",
            {"object": "refund", "id": "re_1", "payment_intent": "pi_test_1", "amount": 1000, "currency": "eur",
             "status": "canceled"},
            EventType.REFUND_FAILED, "10.00",
        ),
        (
            "refund.failed",
            {"object": "refund", "id": "re_1", "payment_intent": "pi_test_1", "amount": 1000, "currency": "eur",
             "status": "failed", "failure_reason": "expired_or_canceled_card"},
            EventType.REFUND_FAILED, "10.00",
        ),
        (
            "charge.dispute.created",
            {"object": "dispute", "id": "dp_1", "charge": "ch_1", "payment_intent": "pi_test_1", "amount": 2500,
             "currency": "eur"},
            EventType.DISPUTE_OPENED, "25.00",
        ),
        ("customer.created", {"object": "customer", "id": "cus_1"}, EventType.UNKNOWN, None),
    ],
)  # fmt: skip
def test_events_map_to_core_types(
    provider_type: str, obj: dict[str, Any], expected: EventType, amount: str | None
) -> None:
    event = parse(gateway(), event_body(provider_type, obj, "evt_test_map"))
    assert event.type is expected
    assert event.provider_type == provider_type
    assert event.id == "evt_test_map"
    assert event.gateway == GW
    assert event.amount == (Money.of(amount, "EUR") if amount else None)
    if obj["object"] == "payment_intent":
        assert event.payment_id == obj["id"]
    elif obj["object"] != "customer":
        assert event.payment_id == obj.get("payment_intent")


def test_event_details_are_carried() -> None:
    failed = parse(
        gateway(),
        event_body(
            "payment_intent.payment_failed",
            {"object": "payment_intent", "id": "pi_9", "amount": 100, "currency": "isk", "metadata": {"reference": "o-9"},
             "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds"}},
        ),
    )  # fmt: skip
    assert failed.failure_code == "insufficient_funds"
    assert failed.reference == "o-9"
    assert failed.amount == Money.of("1", "ISK")
    refund = parse(
        gateway(),
        event_body("refund.failed", {"object": "refund", "id": "re_7", "charge": "ch_7", "amount": 5, "currency": "jpy",
                                     "status": "failed", "failure_reason": "lost_or_stolen_card"}),
    )  # fmt: skip
    assert refund.refund_id == "re_7"
    assert refund.payment_id == "ch_7"
    assert refund.failure_code == "lost_or_stolen_card"
    assert refund.amount == Money.of("5", "JPY")
    checkout = parse(gateway(), event_body("checkout.session.expired", SESSION))
    assert checkout.checkout_id == "cs_test_1"
    assert checkout.reference == "order-5"
    assert checkout.occurred_at is not None


def test_tampered_body_is_refused() -> None:
    body = event_body("checkout.session.completed", {**SESSION, "payment_status": "paid"})
    headers = dict(sign(body, WEBHOOK_SECRET).headers)
    with pytest.raises(WebhookVerificationFailed):
        parse(gateway(), body.replace(b"2500", b"2"), headers)


def test_unsigned_and_malformed_signatures_are_refused() -> None:
    body = event_body("checkout.session.expired", SESSION)
    for headers in ({}, {"Stripe-Signature": ""}, {"Stripe-Signature": "garbage"}, {"Stripe-Signature": "t=1"}):
        with pytest.raises(WebhookVerificationFailed):
            parse(gateway(), body, headers)


def test_wrong_secret_is_refused() -> None:
    body = event_body("checkout.session.expired", SESSION)
    with pytest.raises(WebhookVerificationFailed):
        parse(gateway(), body, dict(sign(body, "whsec_someone_else").headers))


def test_stale_and_future_timestamps_are_refused_with_the_configured_tolerance() -> None:
    body = event_body("checkout.session.expired", SESSION)
    now = int(time.time())
    gw = gateway(webhook_tolerance=60)
    for timestamp in (now - 61, now + 61):
        with pytest.raises(WebhookVerificationFailed):
            parse(gw, body, dict(sign(body, WEBHOOK_SECRET, timestamp).headers))
    assert parse(gw, body, dict(sign(body, WEBHOOK_SECRET, now - 30).headers)).type is EventType.CHECKOUT_EXPIRED


def test_replayed_delivery_is_refused_when_stale() -> None:
    body = event_body("checkout.session.expired", SESSION)
    captured = dict(sign(body, WEBHOOK_SECRET, int(time.time())).headers)
    later = time.time() + 301
    gw = gateway(clock=lambda: later)
    with pytest.raises(WebhookVerificationFailed):
        parse(gw, body, captured)


def test_replayed_delivery_within_tolerance_is_refused_when_configured() -> None:
    body = event_body("checkout.session.expired", SESSION)
    headers = dict(sign(body, WEBHOOK_SECRET).headers)
    strict = gateway(refuse_replayed_webhooks=True)
    assert parse(strict, body, headers).type is EventType.CHECKOUT_EXPIRED
    with pytest.raises(WebhookVerificationFailed):
        parse(strict, body, headers)
    # Stripe re-signs each retry, so a genuine redelivery of the same event still passes.
    assert parse(strict, body, dict(sign(body, WEBHOOK_SECRET, int(time.time()) - 1).headers)).id


def test_signature_from_a_rolled_secret_is_accepted_among_several() -> None:
    body = event_body("checkout.session.expired", SESSION)
    old = sign(body, "whsec_old_secret").headers["Stripe-Signature"]
    new = sign(body, WEBHOOK_SECRET).headers["Stripe-Signature"]
    both = f"{old},{new.split(',')[1]}"
    assert parse(gateway(), body, {"Stripe-Signature": both}).type is EventType.CHECKOUT_EXPIRED


def test_verified_but_malformed_payload_is_refused() -> None:
    for body in (b"[]", b'{"id": "evt_1", "type": "x"}'):
        with pytest.raises(WebhookVerificationFailed):
            parse(gateway(), body)


def test_no_webhook_secret_is_a_configuration_error() -> None:
    gw = StripeGateway(GW, api_key=Secret("sk_test_x"))
    body = event_body("checkout.session.expired", SESSION)
    with pytest.raises(ConfigurationError):
        parse(gw, body)


def test_verification_errors_never_echo_the_secret_or_signature() -> None:
    body = event_body("checkout.session.expired", SESSION)
    headers = dict(sign(body, "whsec_someone_else").headers)
    with pytest.raises(WebhookVerificationFailed) as info:
        parse(gateway(), body, headers)
    text = f"{info.value} {info.value!r}"
    assert WEBHOOK_SECRET not in text
    assert headers["Stripe-Signature"].split("v1=")[1] not in text
