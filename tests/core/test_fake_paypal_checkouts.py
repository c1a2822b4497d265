"""A fake that stands in for PayPal where a checkout cannot be closed and a lapsed one is forgotten.

``closes_checkouts = false``: PayPal has no call that cancels or expires an order (Orders v2:
create, get, patch, confirm, authorize, capture), so the PayPal plugin answers a void of a checkout
still open (not approved, or approved and not captured or authorized) ``CapabilityNotSupported``
(``ORDER_CANNOT_BE_CLOSED``) with nothing changed, and still voids the authorization of an
authorized authorize-only checkout (plugins/paypal_gateway ``gateway_void``;
tests/paypal_gateway/test_void.py).

``forgets_lapsed_checkouts = true``: PayPal forgets an order never completed once it expires, and
answers 404 ``RESOURCE_NOT_FOUND`` / ``INVALID_RESOURCE_ID`` for it (shopware/SwagPayPal#679,
shopware/shopware#6850), which the plugin raises as ``NotFound`` for a status read, a capture, an
authorization and a void alike (tests/paypal_gateway/test_errors.py, the recorded 404 of
test_recorded.py, ``test_unknown_ids_are_not_found``).

Without the settings the fake does as Stripe's plugin does (expire on void; an expired session
stays readable). Driven through the manager, as a host would.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway_core import (
    AuthorizeRequest,
    CapabilityNotSupported,
    CaptureRequest,
    CheckoutSession,
    CheckoutStatus,
    ConfigurationError,
    EventType,
    GatewayManager,
    InvalidRequest,
    Money,
    NotFound,
    PaymentState,
    RefundRequest,
    VoidRequest,
)
from gateway_core.fake import FakeGateway

from .conftest import build_manager, fake, fake_table, ticket_checkout


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def like_paypal(**settings: Any) -> GatewayManager:
    return build_manager(
        {
            "fake": fake_table(
                settings={
                    "host_completes_checkout": True,
                    "closes_checkouts": False,
                    "forgets_lapsed_checkouts": True,
                    **settings,
                }
            )
        }
    )


@pytest.fixture
def manager() -> GatewayManager:
    return like_paypal()


@pytest.fixture
def f(manager: GatewayManager) -> FakeGateway:
    return fake(manager, "fake")


def lapse(f: FakeGateway, session: CheckoutSession) -> None:
    assert session.expires_at is not None
    later = session.expires_at.timestamp() + 1
    f.clock = lambda: later


# -- closes_checkouts = false ---------------------------------------------------------------------
@pytest.mark.parametrize("value", ["false", 0, 1, None])
@pytest.mark.parametrize("setting", ["closes_checkouts", "forgets_lapsed_checkouts"])
def test_a_setting_that_is_not_a_boolean_is_refused(setting: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=f"{setting} must be true or false"):
        build_manager({"fake": fake_table(settings={setting: value})})


@pytest.mark.parametrize("capture", [True, False])
@pytest.mark.parametrize("approved", [False, True])
def test_a_void_of_an_open_checkout_is_not_supported_and_changes_nothing(
    manager: GatewayManager, f: FakeGateway, capture: bool, approved: bool
) -> None:
    session = ticket_checkout(manager, capture=capture)
    if approved:
        f.complete_checkout(session.id)
    f.drain_webhooks()
    before = manager.payment_status("fake", session.id)
    with pytest.raises(CapabilityNotSupported) as caught:
        manager.void("fake", VoidRequest(session.id), idempotency_key="v")
    assert not isinstance(caught.value, (NotFound, InvalidRequest))
    assert caught.value.provider_code == "ORDER_CANNOT_BE_CLOSED"
    assert session.id in caught.value.message
    assert "Nothing was changed" in caught.value.message
    after = manager.payment_status("fake", session.id)
    assert (after.state, after.amount_captured) == (before.state, before.amount_captured)
    assert f.checkout(session.id).status is (CheckoutStatus.COMPLETE if approved else CheckoutStatus.OPEN)
    assert f.pending_webhooks() == []
    # nothing was stored under the key: once approved, the host still completes it
    if not approved:
        f.complete_checkout(session.id)
    if capture:
        done = manager.capture("fake", CaptureRequest(session.id), idempotency_key="c")
        assert done.state is PaymentState.SUCCEEDED
    else:
        auth = manager.authorize("fake", AuthorizeRequest(eur("10.00"), session.id), idempotency_key="a")
        assert auth.state is PaymentState.AUTHORIZED


def test_a_void_of_an_authorized_checkout_still_voids_its_authorization(
    manager: GatewayManager, f: FakeGateway
) -> None:
    session = ticket_checkout(manager, capture=False)
    f.complete_checkout(session.id)
    manager.authorize("fake", AuthorizeRequest(eur("10.00"), session.id), idempotency_key="a")
    f.drain_webhooks()
    void = manager.void("fake", VoidRequest(session.id), idempotency_key="v")
    assert void.state is PaymentState.CANCELED
    assert [manager.parse_webhook("fake", d.headers, d.body).type for d in f.drain_webhooks()] == [
        EventType.PAYMENT_CANCELED
    ]


def test_a_void_of_a_paid_checkout_is_still_refused(manager: GatewayManager, f: FakeGateway) -> None:
    session = ticket_checkout(manager)
    f.complete_checkout(session.id)
    manager.capture("fake", CaptureRequest(session.id), idempotency_key="c")
    with pytest.raises(InvalidRequest, match="refund"):
        manager.void("fake", VoidRequest(session.id), idempotency_key="v")


def test_by_default_a_void_closes_an_open_checkout() -> None:
    manager = like_paypal(closes_checkouts=True)
    session = ticket_checkout(manager)
    assert manager.void("fake", VoidRequest(session.id), idempotency_key="v").state is PaymentState.CANCELED
    assert fake(manager, "fake").checkout(session.id).status is CheckoutStatus.EXPIRED


# -- forgets_lapsed_checkouts = true --------------------------------------------------------------
@pytest.mark.parametrize("approved", [False, True])
@pytest.mark.parametrize("capture", [True, False])
def test_a_lapsed_checkout_is_forgotten(manager: GatewayManager, f: FakeGateway, capture: bool, approved: bool) -> None:
    session = ticket_checkout(manager, capture=capture)
    if approved:
        f.complete_checkout(session.id)
    lapse(f, session)
    assert session.payment_id is not None
    for named in (session.id, session.payment_id):
        with pytest.raises(NotFound) as caught:
            manager.payment_status("fake", named)
        assert caught.value.http_status == 404
        with pytest.raises(NotFound):
            manager.capture("fake", CaptureRequest(named), idempotency_key=f"c-{named}")
        with pytest.raises(NotFound):
            manager.void("fake", VoidRequest(named), idempotency_key=f"v-{named}")
        with pytest.raises(NotFound):
            manager.refund("fake", RefundRequest(named), idempotency_key=f"r-{named}")
    with pytest.raises(NotFound):
        manager.authorize("fake", AuthorizeRequest(eur("10.00"), session.id), idempotency_key="a")
    assert f.payments_made() == 1


def test_a_completed_checkout_is_not_forgotten(manager: GatewayManager, f: FakeGateway) -> None:
    paid = ticket_checkout(manager)
    f.complete_checkout(paid.id)
    manager.capture("fake", CaptureRequest(paid.id), idempotency_key="c")
    lapse(f, paid)
    assert manager.payment_status("fake", paid.id).state is PaymentState.SUCCEEDED


def test_an_authorized_checkout_is_not_forgotten(manager: GatewayManager, f: FakeGateway) -> None:
    held = ticket_checkout(manager, capture=False)
    f.complete_checkout(held.id)
    auth = manager.authorize("fake", AuthorizeRequest(eur("10.00"), held.id), idempotency_key="a")
    lapse(f, held)
    assert manager.payment_status("fake", held.id).state is PaymentState.AUTHORIZED
    assert manager.capture("fake", CaptureRequest(auth.id), idempotency_key="c").state is PaymentState.SUCCEEDED


def test_by_default_a_lapsed_checkout_stays_readable_and_canceled() -> None:
    manager = like_paypal(forgets_lapsed_checkouts=False)
    f = fake(manager, "fake")
    session = ticket_checkout(manager)
    f.complete_checkout(session.id)
    lapse(f, session)
    assert manager.payment_status("fake", session.id).state is PaymentState.CANCELED
    with pytest.raises(InvalidRequest):
        manager.capture("fake", CaptureRequest(session.id), idempotency_key="c")
