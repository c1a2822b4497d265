"""``host_completes_checkout = true``: the fake behaves as PayPal, where approval moves no money.

On PayPal the payer's approval of a hosted checkout (an Orders v2 order with intent ``CAPTURE``)
captures nothing: the merchant's ``POST /v2/checkout/orders/{id}/capture`` does, and an approved
order nobody captures lapses. A fake with the setting declares ``host_completes_checkout`` and
does the same, so a host tested against it learns to capture. Without it nothing changes.
Driven through the manager, as a host would.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway_core import (
    AuthenticationRequired,
    CaptureRequest,
    CheckoutRequest,
    CheckoutSession,
    CheckoutStatus,
    ConfigurationError,
    EventType,
    GatewayManager,
    InvalidRequest,
    Money,
    PaymentState,
    RefundRequest,
    VoidRequest,
)
from gateway_core.fake import FakeGateway

from .conftest import build_manager, fake, fake_table


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def paypal_like(**settings: Any) -> GatewayManager:
    return build_manager({"fake": fake_table(settings={"host_completes_checkout": True, **settings})})


@pytest.fixture
def manager() -> GatewayManager:
    return paypal_like()


@pytest.fixture
def f(manager: GatewayManager) -> FakeGateway:
    return fake(manager, "fake")


def checkout(manager: GatewayManager, *, capture: bool = True) -> CheckoutSession:
    request = CheckoutRequest.single(
        "Ticket", eur("10.00"), "https://shop.example/ok", "https://shop.example/no", capture=capture
    )
    return manager.create_checkout("fake", request, idempotency_key="co")


def event_types(manager: GatewayManager, f: FakeGateway) -> list[EventType]:
    return [manager.parse_webhook("fake", d.headers, d.body).type for d in f.drain_webhooks()]


def test_the_setting_declares_the_capability(manager: GatewayManager) -> None:
    assert manager.gateway("fake").capabilities.host_completes_checkout is True
    default = build_manager({"fake": fake_table()})
    assert default.gateway("fake").capabilities.host_completes_checkout is False


@pytest.mark.parametrize("value", ["true", 1, ["yes"]])
def test_a_setting_that_is_not_a_boolean_is_refused(value: object) -> None:
    with pytest.raises(ConfigurationError, match="host_completes_checkout must be true or false"):
        paypal_like(host_completes_checkout=value)


def test_without_capture_the_host_could_not_complete_a_checkout() -> None:
    with pytest.raises(ConfigurationError, match="needs the authorize_capture feature"):
        paypal_like(features=["hosted_checkout", "refund"])


def test_approval_moves_no_money(manager: GatewayManager, f: FakeGateway) -> None:
    session = checkout(manager)
    f.complete_checkout(session.id)
    assert f.checkout(session.id).status is CheckoutStatus.COMPLETE
    status = manager.payment_status("fake", session.id)
    assert (status.state, status.amount_captured, status.is_paid) == (PaymentState.PENDING, eur("0.00"), False)
    assert event_types(manager, f) == [EventType.CHECKOUT_COMPLETED]


def test_the_hosts_capture_moves_it_once(manager: GatewayManager, f: FakeGateway) -> None:
    session = checkout(manager)
    f.complete_checkout(session.id)
    f.drain_webhooks()
    captured = manager.capture("fake", CaptureRequest(session.id), operation_id="capture:o-1")
    assert (captured.state, captured.amount) == (PaymentState.SUCCEEDED, eur("10.00"))
    [delivery] = f.drain_webhooks()
    event = manager.parse_webhook("fake", delivery.headers, delivery.body)
    assert (event.type, event.amount, event.checkout_id) == (EventType.PAYMENT_SUCCEEDED, eur("10.00"), session.id)
    # a retry (the webhook redelivered, the payer's return page) by either id captures nothing more
    again = manager.capture("fake", CaptureRequest(session.id), operation_id="capture:o-1")
    assert again == captured
    by_payment = manager.capture("fake", CaptureRequest(captured.payment_id), operation_id="capture:o-1")
    assert by_payment == captured
    assert f.drain_webhooks() == []
    status = manager.payment_status("fake", session.id)
    assert (status.state, status.amount_captured) == (PaymentState.SUCCEEDED, eur("10.00"))
    manager.refund("fake", RefundRequest(session.id), idempotency_key="r")  # now there is money to refund
    assert manager.payment_status("fake", session.id).state is PaymentState.REFUNDED


def test_a_capture_before_approval_sends_the_payer_to_approve(manager: GatewayManager, f: FakeGateway) -> None:
    session = checkout(manager)
    with pytest.raises(AuthenticationRequired) as raised:
        manager.capture("fake", CaptureRequest(session.id), operation_id="capture:o-1")
    assert (raised.value.payment_id, raised.value.action_url) == (session.id, session.url)
    assert manager.payment_status("fake", session.id).state is PaymentState.PENDING  # nothing changed
    f.complete_checkout(session.id)
    # the same operation, once approved, captures: the refusal was not stored under the key
    captured = manager.capture("fake", CaptureRequest(session.id), operation_id="capture:o-1")
    assert captured.state is PaymentState.SUCCEEDED


def test_an_approval_nobody_captures_lapses(manager: GatewayManager, f: FakeGateway) -> None:
    session = checkout(manager)
    f.complete_checkout(session.id)
    assert session.expires_at is not None
    lapsed = session.expires_at.timestamp() + 1
    f.clock = lambda: lapsed
    assert manager.payment_status("fake", session.id).state is PaymentState.CANCELED
    assert f.checkout(session.id).status is CheckoutStatus.EXPIRED
    with pytest.raises(InvalidRequest):
        manager.capture("fake", CaptureRequest(session.id), operation_id="capture:o-1")
    assert f.payments_made() == 1


def test_a_settling_payment_settles_only_after_the_capture(manager: GatewayManager, f: FakeGateway) -> None:
    session = checkout(manager)
    f.complete_checkout(session.id, settle=False)
    with pytest.raises(InvalidRequest):
        f.settle_payment(session.id)  # nothing was captured: nothing can settle
    assert manager.capture("fake", CaptureRequest(session.id), idempotency_key="c").state is PaymentState.PENDING
    assert f.settle_payment(session.id).state is PaymentState.SUCCEEDED


def test_an_authorize_only_checkout_is_authorized_by_the_payer_as_before(
    manager: GatewayManager, f: FakeGateway
) -> None:
    session = checkout(manager, capture=False)
    f.complete_checkout(session.id)
    assert manager.payment_status("fake", session.id).state is PaymentState.AUTHORIZED


def test_a_void_releases_an_approval_not_captured(manager: GatewayManager, f: FakeGateway) -> None:
    session = checkout(manager)
    f.complete_checkout(session.id)
    assert manager.void("fake", VoidRequest(session.id), idempotency_key="v").state is PaymentState.CANCELED
    assert f.checkout(session.id).status is CheckoutStatus.EXPIRED


def test_without_the_setting_the_payer_pays(one_fake: GatewayManager) -> None:
    f = fake(one_fake, "fake")
    session = checkout(one_fake)
    f.complete_checkout(session.id)
    assert one_fake.payment_status("fake", session.id).state is PaymentState.SUCCEEDED
    assert event_types(one_fake, f) == [EventType.CHECKOUT_COMPLETED, EventType.PAYMENT_SUCCEEDED]
