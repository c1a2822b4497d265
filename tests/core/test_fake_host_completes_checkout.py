"""``host_completes_checkout = true``: the fake behaves as PayPal, where approval moves no money.

On PayPal the payer's approval of a hosted checkout (an Orders v2 order with intent ``CAPTURE``)
captures nothing: the merchant's ``POST /v2/checkout/orders/{id}/capture`` does, and an approved
order nobody captures lapses. An approved order with intent ``AUTHORIZE`` (``capture=False``)
holds nothing either until the merchant's ``POST /v2/checkout/orders/{id}/authorize``, whose
authorization is then captured by its own id. A fake with the setting declares ``host_completes_checkout`` and
does the same, so a host tested against it learns to capture. Without it nothing changes.
Driven through the manager, as a host would.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway_core import (
    AmountOutOfRange,
    AuthenticationRequired,
    Authorization,
    AuthorizeRequest,
    CaptureRequest,
    CheckoutSession,
    CheckoutStatus,
    ConfigurationError,
    EventType,
    GatewayManager,
    InvalidRequest,
    Money,
    PaymentDeclined,
    PaymentState,
    RefundRequest,
    VoidRequest,
)
from gateway_core.fake import FakeGateway

from .conftest import build_manager, fake, fake_table, ticket_checkout


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
    session = ticket_checkout(manager)
    f.complete_checkout(session.id)
    assert f.checkout(session.id).status is CheckoutStatus.COMPLETE
    status = manager.payment_status("fake", session.id)
    assert (status.state, status.amount_captured, status.is_paid) == (PaymentState.PENDING, eur("0.00"), False)
    assert event_types(manager, f) == [EventType.CHECKOUT_COMPLETED]


def test_the_hosts_capture_moves_it_once(manager: GatewayManager, f: FakeGateway) -> None:
    session = ticket_checkout(manager)
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
    session = ticket_checkout(manager)
    with pytest.raises(AuthenticationRequired) as raised:
        manager.capture("fake", CaptureRequest(session.id), operation_id="capture:o-1")
    assert (raised.value.payment_id, raised.value.action_url) == (session.id, session.url)
    assert manager.payment_status("fake", session.id).state is PaymentState.PENDING  # nothing changed
    f.complete_checkout(session.id)
    # the same operation, once approved, captures: the refusal was not stored under the key
    captured = manager.capture("fake", CaptureRequest(session.id), operation_id="capture:o-1")
    assert captured.state is PaymentState.SUCCEEDED


def test_an_approval_nobody_captures_lapses(manager: GatewayManager, f: FakeGateway) -> None:
    session = ticket_checkout(manager)
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
    session = ticket_checkout(manager)
    f.complete_checkout(session.id, settle=False)
    with pytest.raises(InvalidRequest):
        f.settle_payment(session.id)  # nothing was captured: nothing can settle
    assert manager.capture("fake", CaptureRequest(session.id), idempotency_key="c").state is PaymentState.PENDING
    assert f.settle_payment(session.id).state is PaymentState.SUCCEEDED


def authorize(
    manager: GatewayManager, session: CheckoutSession, amount: str = "10.00", key: str = "a"
) -> Authorization:
    return manager.authorize("fake", AuthorizeRequest(eur(amount), session.id), idempotency_key=key)


def test_an_approved_authorize_only_checkout_holds_nothing(manager: GatewayManager, f: FakeGateway) -> None:
    session = ticket_checkout(manager, capture=False)
    f.complete_checkout(session.id)
    assert f.checkout(session.id).status is CheckoutStatus.COMPLETE
    status = manager.payment_status("fake", session.id)
    assert (status.state, status.amount_captured) == (PaymentState.PENDING, eur("0.00"))
    assert event_types(manager, f) == [EventType.CHECKOUT_COMPLETED]  # no payment.authorized: nothing is held


def test_the_hosts_authorization_holds_it_once(manager: GatewayManager, f: FakeGateway) -> None:
    session = ticket_checkout(manager, capture=False)
    f.complete_checkout(session.id)
    f.drain_webhooks()
    authorization = authorize(manager, session)
    assert (authorization.state, authorization.amount) == (PaymentState.AUTHORIZED, eur("10.00"))
    [delivery] = f.drain_webhooks()
    event = manager.parse_webhook("fake", delivery.headers, delivery.body)
    assert (event.type, event.amount, event.checkout_id) == (EventType.PAYMENT_AUTHORIZED, eur("10.00"), session.id)
    assert manager.payment_status("fake", session.id).state is PaymentState.AUTHORIZED
    # a retry (the webhook redelivered) under the same key, or another key, authorizes nothing more
    assert authorize(manager, session) == authorization
    assert authorize(manager, session, key="another") == authorization
    assert f.drain_webhooks() == []
    assert f.payments_made() == 1
    # then captured by the authorization's id, in part if need be, as on PayPal
    part = manager.capture("fake", CaptureRequest(authorization.id, eur("4.00")), idempotency_key="c")
    assert (part.state, part.amount, part.payment_id) == (PaymentState.SUCCEEDED, eur("4.00"), authorization.id)
    assert manager.payment_status("fake", session.id).amount_captured == eur("4.00")


def test_an_authorization_before_approval_sends_the_payer_to_approve(manager: GatewayManager, f: FakeGateway) -> None:
    session = ticket_checkout(manager, capture=False)
    with pytest.raises(AuthenticationRequired) as raised:
        authorize(manager, session)
    assert (raised.value.payment_id, raised.value.action_url) == (session.id, session.url)
    assert raised.value.provider_code == "ORDER_NOT_APPROVED"
    assert f.checkout(session.id).status is CheckoutStatus.OPEN  # nothing changed
    f.complete_checkout(session.id)
    # the same operation, once approved, authorizes: the refusal was not stored under the key
    assert authorize(manager, session).state is PaymentState.AUTHORIZED


def test_a_capture_checkout_is_not_authorized(manager: GatewayManager, f: FakeGateway) -> None:
    session = ticket_checkout(manager)
    f.complete_checkout(session.id)
    with pytest.raises(InvalidRequest, match="complete it with capture") as raised:
        authorize(manager, session)
    assert raised.value.provider_code == "ACTION_DOES_NOT_MATCH_INTENT"
    assert manager.payment_status("fake", session.id).state is PaymentState.PENDING  # still awaiting its capture
    assert manager.capture("fake", CaptureRequest(session.id), idempotency_key="c").state is PaymentState.SUCCEEDED


@pytest.mark.parametrize("amount", ["9.99", "10.01"])
def test_an_authorization_of_another_amount_is_refused(manager: GatewayManager, f: FakeGateway, amount: str) -> None:
    session = ticket_checkout(manager, capture=False)
    f.complete_checkout(session.id)
    with pytest.raises(AmountOutOfRange):
        authorize(manager, session, amount)
    assert manager.payment_status("fake", session.id).state is PaymentState.PENDING  # nothing changed
    assert authorize(manager, session, key="a2").state is PaymentState.AUTHORIZED


def test_an_approval_nobody_authorizes_lapses(manager: GatewayManager, f: FakeGateway) -> None:
    session = ticket_checkout(manager, capture=False)
    f.complete_checkout(session.id)
    f.drain_webhooks()
    assert session.expires_at is not None
    lapsed = session.expires_at.timestamp() + 1
    f.clock = lambda: lapsed
    assert manager.payment_status("fake", session.id).state is PaymentState.CANCELED
    assert f.checkout(session.id).status is CheckoutStatus.EXPIRED
    assert event_types(manager, f) == [EventType.CHECKOUT_EXPIRED]
    with pytest.raises(InvalidRequest):
        authorize(manager, session)
    assert manager.payment_status("fake", session.id).state is PaymentState.CANCELED


def test_an_authorization_holds_on_after_the_checkouts_expiry(manager: GatewayManager, f: FakeGateway) -> None:
    session = ticket_checkout(manager, capture=False)
    f.complete_checkout(session.id)
    authorization = authorize(manager, session)
    assert session.expires_at is not None
    later = session.expires_at.timestamp() + 1
    f.clock = lambda: later
    assert manager.payment_status("fake", session.id).state is PaymentState.AUTHORIZED
    assert (
        manager.capture("fake", CaptureRequest(authorization.id), idempotency_key="c").state is PaymentState.SUCCEEDED
    )


def test_an_authorize_only_checkout_is_captured_by_its_authorization_only(
    manager: GatewayManager, f: FakeGateway
) -> None:
    session = ticket_checkout(manager, capture=False)
    with pytest.raises(InvalidRequest, match="authorize-only") as raised:  # open
        manager.capture("fake", CaptureRequest(session.id), idempotency_key="c")
    assert raised.value.provider_code == "ACTION_DOES_NOT_MATCH_INTENT"
    f.complete_checkout(session.id)
    for named in (session.id, session.payment_id):  # approved, not authorized: no id captures it
        assert named is not None
        with pytest.raises(InvalidRequest, match="authorize-only"):
            manager.capture("fake", CaptureRequest(named), idempotency_key="c")
    assert manager.payment_status("fake", session.id).state is PaymentState.PENDING  # nothing changed
    authorization = authorize(manager, session)
    with pytest.raises(InvalidRequest, match="authorize-only"):  # PayPal captures no order of intent AUTHORIZE
        manager.capture("fake", CaptureRequest(session.id, eur("5.00")), idempotency_key="c")
    captured = manager.capture("fake", CaptureRequest(authorization.id), idempotency_key="c")
    assert (captured.state, captured.amount) == (PaymentState.SUCCEEDED, eur("10.00"))


def test_a_settling_authorization_settles_only_after_the_hosts(manager: GatewayManager, f: FakeGateway) -> None:
    session = ticket_checkout(manager, capture=False)
    f.complete_checkout(session.id, settle=False)
    with pytest.raises(InvalidRequest):
        f.settle_payment(session.id)  # nothing was authorized: nothing can settle
    assert authorize(manager, session).state is PaymentState.PENDING
    assert event_types(manager, f) == [EventType.CHECKOUT_COMPLETED, EventType.PAYMENT_PENDING]
    assert f.settle_payment(session.id).state is PaymentState.AUTHORIZED
    assert event_types(manager, f) == [EventType.PAYMENT_AUTHORIZED]


def test_an_authorization_that_failed_is_declined_when_asked_again(manager: GatewayManager, f: FakeGateway) -> None:
    session = ticket_checkout(manager, capture=False)
    f.complete_checkout(session.id, settle=False)
    authorize(manager, session)
    f.fail_payment(session.id)
    with pytest.raises(PaymentDeclined):  # PayPal's DENIED authorization, read back
        authorize(manager, session, key="another")
    assert manager.payment_status("fake", session.id).state is PaymentState.FAILED


def test_a_void_releases_an_approval_not_authorized(manager: GatewayManager, f: FakeGateway) -> None:
    session = ticket_checkout(manager, capture=False)
    f.complete_checkout(session.id)
    assert manager.void("fake", VoidRequest(session.id), idempotency_key="v").state is PaymentState.CANCELED
    assert f.checkout(session.id).status is CheckoutStatus.EXPIRED


def test_a_void_releases_an_approval_not_captured(manager: GatewayManager, f: FakeGateway) -> None:
    session = ticket_checkout(manager)
    f.complete_checkout(session.id)
    assert manager.void("fake", VoidRequest(session.id), idempotency_key="v").state is PaymentState.CANCELED
    assert f.checkout(session.id).status is CheckoutStatus.EXPIRED


def test_without_the_setting_the_payer_pays(one_fake: GatewayManager) -> None:
    f = fake(one_fake, "fake")
    session = ticket_checkout(one_fake)
    f.complete_checkout(session.id)
    assert one_fake.payment_status("fake", session.id).state is PaymentState.SUCCEEDED
    assert event_types(one_fake, f) == [EventType.CHECKOUT_COMPLETED, EventType.PAYMENT_SUCCEEDED]


def test_without_the_setting_the_payer_authorizes(one_fake: GatewayManager) -> None:
    f = fake(one_fake, "fake")
    session = ticket_checkout(one_fake, capture=False)
    f.complete_checkout(session.id)
    assert one_fake.payment_status("fake", session.id).state is PaymentState.AUTHORIZED
    assert event_types(one_fake, f) == [EventType.CHECKOUT_COMPLETED, EventType.PAYMENT_AUTHORIZED]
    assert one_fake.capture("fake", CaptureRequest(session.id), idempotency_key="c").state is PaymentState.SUCCEEDED
