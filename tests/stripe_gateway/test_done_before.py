"""Done already: a capture, void or refund retried after a lost answer under another key, or a pruned one.

Stripe replays a key's first answer for at least 24 hours; a retry under a new key (or under the
same key once Stripe pruned it) reaches Stripe as a new request, which the PaymentIntent refuses:
``payment_intent_unexpected_state`` for a capture or cancel, ``charge_already_refunded`` for a
refund. None of these may read as "invalid request, nothing was charged": the first attempt may
have taken the money. The stand-in answers as Stripe does, with the PaymentIntent in the error
(``standin._unexpected_state``); every request still passes the spec check (conftest).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
import structlog.testing

from gateway_core.aio import AsyncGatewayManager
from gateway_core.errors import AmountOutOfRange, InvalidRequest, OutcomeUnknown
from gateway_core.manager import GatewayManager
from gateway_core.models import (
    AuthorizeRequest,
    CaptureRequest,
    CheckoutRequest,
    PaymentState,
    RefundRequest,
    VoidRequest,
)
from gateway_core.money import Money
from tests.stripe_gateway.conftest import StandIn, make_manager
from tests.stripe_gateway.transport import CheckedClient

GW = "stripe_test"
CAPTURE = "/v1/payment_intents/{intent}/capture"
CANCEL = "/v1/payment_intents/{intent}/cancel"
LOST = "drop_after_send"  # the request reached Stripe, its answer did not come back
UNEXPECTED = "payment_intent_unexpected_state"


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def key(what: str) -> str:
    return f"{what}-{uuid.uuid4().hex}"


def authorized(manager: GatewayManager, amount: str = "30.00") -> str:
    request = AuthorizeRequest(eur(amount), "pm_card_visa")
    return manager.authorize(GW, request, idempotency_key=key("authorize")).id


def lose_every_attempt(client: CheckedClient, template: str) -> None:
    client.targeted.extend([(template, LOST)] * 3)  # the first attempt and the SDK's two retries


def assert_read_the_status(error: OutcomeUnknown) -> None:
    assert type(error) is OutcomeUnknown
    assert error.retryable is False  # Stripe answers a retry the same way
    assert error.provider_code == UNEXPECTED
    assert error.http_status == 400
    assert "payment_status" in error.message
    assert "changed nothing" in error.message


@pytest.mark.parametrize("part", [None, "12.00"], ids=["in_full", "partial"])
def test_a_capture_whose_answer_was_lost_retried_with_a_new_key_returns_that_capture(
    part: str | None, client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    payment_id = authorized(manager)
    asked = eur(part) if part else None
    lose_every_attempt(client, CAPTURE)
    with pytest.raises(OutcomeUnknown) as lost:
        manager.capture(GW, CaptureRequest(payment_id, asked), idempotency_key=key("capture"))
    assert lost.value.retryable is True
    with structlog.testing.capture_logs() as logs:
        capture = manager.capture(GW, CaptureRequest(payment_id, asked), idempotency_key=key("capture-again"))
    captured = asked or eur("30.00")
    assert (capture.payment_id, capture.amount, capture.state) == (payment_id, captured, PaymentState.SUCCEEDED)
    assert capture.id.startswith("ch_")
    status = manager.payment_status(GW, payment_id)
    assert status.amount_captured == captured
    assert status.raw["payment_intent"]["latest_charge"]["id"] == capture.id  # the one charge
    captures = [s for s in client.posts() if s.template == CAPTURE]
    assert len(captures) == 4  # three lost attempts, one refused retry: Stripe captured once
    found = [line for line in logs if line["event"] == "stripe.found_before"]
    assert [(f["payment_id"], f["status"], f["provider_code"]) for f in found] == [
        (payment_id, "succeeded", UNEXPECTED)
    ]
    assert "secret" not in repr(logs)


def test_a_capture_retried_with_its_key_after_stripe_pruned_it_returns_the_same_capture(
    manager: GatewayManager, standin: StandIn
) -> None:
    payment_id = authorized(manager)
    capture_key = key("capture")
    first = manager.capture(GW, CaptureRequest(payment_id), idempotency_key=capture_key)
    standin.forget_keys()  # more than 24 hours later: Stripe runs the request again
    again = manager.capture(GW, CaptureRequest(payment_id), idempotency_key=capture_key)
    assert (again.id, again.payment_id, again.amount, again.state) == (
        first.id,
        first.payment_id,
        first.amount,
        first.state,
    )


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ("12.00", None),  # captured in part; a capture in full cannot be that one
        ("12.00", "10.00"),  # captured 12.00; a capture of 10.00 cannot be that one
        (None, "12.00"),  # captured in full; a partial capture cannot be that one
    ],
    ids=["part_then_full", "part_then_other_part", "full_then_part"],
)
def test_a_capture_of_another_amount_than_stripe_took_is_outcome_unknown(
    first: str | None, then: str | None, client: CheckedClient, manager: GatewayManager
) -> None:
    payment_id = authorized(manager)
    manager.capture(GW, CaptureRequest(payment_id, eur(first) if first else None), idempotency_key=key("capture"))
    with pytest.raises(OutcomeUnknown) as info:
        manager.capture(GW, CaptureRequest(payment_id, eur(then) if then else None), idempotency_key=key("capture-2"))
    assert_read_the_status(info.value)
    assert "its status is now succeeded" in info.value.message
    assert manager.payment_status(GW, payment_id).amount_captured == (eur(first) if first else eur("30.00"))


def test_a_capture_of_a_voided_authorization_captured_nothing(manager: GatewayManager) -> None:
    payment_id = authorized(manager)
    manager.void(GW, VoidRequest(payment_id), idempotency_key=key("void"))
    with pytest.raises(InvalidRequest) as info:
        manager.capture(GW, CaptureRequest(payment_id), idempotency_key=key("capture"))
    assert not isinstance(info.value, OutcomeUnknown)
    assert info.value.provider_code == UNEXPECTED
    assert "nothing was captured" in info.value.message
    assert manager.payment_status(GW, payment_id).state is PaymentState.CANCELED


@pytest.mark.parametrize("retry", ["new_key", "pruned_key"])
def test_a_void_whose_answer_was_lost_retried_is_the_void(
    retry: str, client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    payment_id = authorized(manager)
    void_key = key("void")
    lose_every_attempt(client, CANCEL)
    with pytest.raises(OutcomeUnknown):
        manager.void(GW, VoidRequest(payment_id), idempotency_key=void_key)
    if retry == "pruned_key":
        standin.forget_keys()
    else:
        void_key = key("void-again")
    void = manager.void(GW, VoidRequest(payment_id), idempotency_key=void_key)
    assert (void.payment_id, void.state) == (payment_id, PaymentState.CANCELED)
    assert manager.payment_status(GW, payment_id).state is PaymentState.CANCELED


def test_a_void_of_a_captured_payment_says_refund_it(manager: GatewayManager) -> None:
    payment_id = authorized(manager)
    manager.capture(GW, CaptureRequest(payment_id), idempotency_key=key("capture"))
    with pytest.raises(InvalidRequest) as info:
        manager.void(GW, VoidRequest(payment_id), idempotency_key=key("void"))
    assert not isinstance(info.value, OutcomeUnknown)
    assert info.value.provider_code == UNEXPECTED
    assert info.value.http_status == 400
    assert "refund it instead" in info.value.message
    assert manager.payment_status(GW, payment_id).state is PaymentState.SUCCEEDED


def test_a_void_of_a_completed_checkout_canceled_meanwhile_is_the_void(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    """The session's PaymentIntent is canceled between the plugin's read and its cancel."""
    request = CheckoutRequest.single("Held", eur("9.00"), "https://h.example/ok", "https://h.example/no", capture=False)
    session = manager.create_checkout(GW, request, idempotency_key=key("checkout"))
    payment_id = standin.pay(session.id)
    other = make_manager(client, standin.url)
    client.before_send[CANCEL] = lambda: other.void(GW, VoidRequest(payment_id), idempotency_key=key("other-void"))
    void = manager.void(GW, VoidRequest(session.id), idempotency_key=key("void"))
    assert (void.payment_id, void.state) == (payment_id, PaymentState.CANCELED)


def test_a_refund_in_full_retried_with_a_new_key_says_an_earlier_attempt_may_have_refunded_it(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    payment_id = authorized(manager)
    manager.capture(GW, CaptureRequest(payment_id), idempotency_key=key("capture"))
    before = standin.stats()["refunds"]
    lose_every_attempt(client, "/v1/refunds")
    with pytest.raises(OutcomeUnknown):
        manager.refund(GW, RefundRequest(payment_id), idempotency_key=key("refund"))
    with pytest.raises(AmountOutOfRange) as info:
        manager.refund(GW, RefundRequest(payment_id), idempotency_key=key("refund-again"))
    assert info.value.provider_code == "charge_already_refunded"
    assert "earlier attempt of this refund" in info.value.message
    assert "payment_status" in info.value.message
    assert standin.stats()["refunds"] == before + 1
    assert manager.payment_status(GW, payment_id).amount_refunded == eur("30.00")


def test_a_partial_refund_retried_with_a_new_key_says_an_earlier_attempt_may_have_refunded_it(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    """The lost first attempt refunded 20 of 30: 20 again is more than remains, and the message says why it may be."""
    payment_id = authorized(manager)
    manager.capture(GW, CaptureRequest(payment_id), idempotency_key=key("capture"))
    before = standin.stats()["refunds"]
    lose_every_attempt(client, "/v1/refunds")
    with pytest.raises(OutcomeUnknown):
        manager.refund(GW, RefundRequest(payment_id, eur("20.00")), idempotency_key=key("refund"))
    with pytest.raises(AmountOutOfRange) as info:
        manager.refund(GW, RefundRequest(payment_id, eur("20.00")), idempotency_key=key("refund-again"))
    assert info.value.provider_code == "amount_too_large"
    assert "earlier attempt of this refund" in info.value.message
    assert "payment_status" in info.value.message
    assert standin.stats()["refunds"] == before + 1
    assert manager.payment_status(GW, payment_id).amount_refunded == eur("20.00")


def test_the_async_driver_finds_the_capture_and_the_void_too(client: CheckedClient, standin: StandIn) -> None:
    async def scenario() -> None:
        async with AsyncGatewayManager(make_manager(client, standin.url)) as manager:
            request = AuthorizeRequest(eur("7.00"), "pm_card_visa")
            captured = (await manager.authorize(GW, request, idempotency_key=key("a-auth"))).id
            first = await manager.capture(GW, CaptureRequest(captured), idempotency_key=key("a-capture"))
            again = await manager.capture(GW, CaptureRequest(captured), idempotency_key=key("a-capture-2"))
            assert (again.id, again.amount) == (first.id, eur("7.00"))
            voided = (await manager.authorize(GW, request, idempotency_key=key("a-auth-2"))).id
            await manager.void(GW, VoidRequest(voided), idempotency_key=key("a-void"))
            void = await manager.void(GW, VoidRequest(voided), idempotency_key=key("a-void-2"))
            assert void.state is PaymentState.CANCELED

    asyncio.run(scenario())
    assert client.async_requests == 6  # two authorizations, two captures, two voids: all async
