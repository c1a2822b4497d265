"""The provider checkout's expiry is the seat hold fitted into the gateway's declared window.

The example configuration gives "stripe-like" Stripe's window (30 minutes to 24 hours ahead) and
"paypal-like" none (as PayPal takes none). The platform holds a seat for 30 minutes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from paid_events import config as pe_config
from paid_events.config import PlatformConfig
from paid_events.errors import AlreadyRegistered
from paid_events.service import PaidEvents
from paid_events.store import RegistrationRow, Store

import gateway_core.fake
from gateway_core import (
    CheckoutExpiry,
    CheckoutSession,
    Feature,
    GatewayManager,
)
from gateway_core.fake import Outcome, Scripted, default_capabilities

from .conftest import Clock
from .helpers import audited, deliver, fake_of, make_event, manager_with, pay

STRIPE_WINDOW = CheckoutExpiry(timedelta(minutes=30), timedelta(hours=24))


class TickingClock(Clock):
    """Every read is a second later: a request takes a moment to reach the core's check."""

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def crash(registration_id: str, session: CheckoutSession) -> None:
    raise RuntimeError("process died after the provider answered")


def row(store: Store, registration_id: str) -> RegistrationRow:
    with store.transaction() as s:
        found = s.get(RegistrationRow, registration_id)
        assert found is not None
        return found


def test_the_example_gateways_declare_the_providers_windows(manager: GatewayManager) -> None:
    assert manager.gateway("stripe-like").capabilities.checkout_expiry == STRIPE_WINDOW
    assert manager.gateway("paypal-like").capabilities.checkout_expiry is None


def test_a_stripe_window_checkout_is_accepted_when_the_request_takes_a_moment(store: Store) -> None:
    clock = TickingClock()
    service, audit = audited(store, clock)
    event_id = make_event(service, gateways=["stripe-like"])
    started = clock.now
    result = service.checkout(event_id, "ann@example.com")  # 30 min ahead would arrive < 30 min ahead
    sent = audit.requests[-1].expires_at
    assert sent is not None
    assert started + timedelta(minutes=30) < sent <= started + timedelta(minutes=32)  # fitted, with a margin
    reg = row(store, result.registration_id)
    assert reg.checkout_expires_at == sent  # stored: a retry sends the same
    assert reg.hold_expires_at is not None
    assert reg.hold_expires_at < sent  # the seat hold is the platform's own clock
    assert result.checkout_id is not None


def test_a_long_hold_is_capped_at_the_window_end(store: Store, clock: Clock) -> None:
    platform = PlatformConfig(pe_config.load()[0].price_limits, hold_minutes=48 * 60)
    service, audit = audited(store, clock, platform)
    result = service.checkout(make_event(service, gateways=["stripe-like"]), "ann@example.com")
    assert audit.requests[-1].expires_at == clock.now + timedelta(hours=24) - timedelta(minutes=1)
    assert row(store, result.registration_id).hold_expires_at == clock.now + timedelta(hours=48)


def test_a_gateway_that_takes_no_expiry_gets_none(store: Store, clock: Clock) -> None:
    service, audit = audited(store, clock)
    result = service.checkout(make_event(service, gateways=["paypal-like"]), "ann@example.com")
    assert audit.requests[-1].expires_at is None  # the core refuses any expiry for such a gateway
    reg = row(store, result.registration_id)
    assert reg.checkout_expires_at is None
    assert reg.hold_expires_at == clock.now + timedelta(minutes=30)


def test_a_hold_that_lapses_first_expires_the_checkout(service: PaidEvents, clock: Clock, store: Store) -> None:
    for gateway in ("stripe-like", "paypal-like"):
        event_id = make_event(service, gateways=[gateway], capacity=1)
        result = service.checkout(event_id, f"ann-{gateway}@example.com")
        fake = fake_of(service.gateways, gateway)
        clock.advance(minutes=30, seconds=10)  # the hold lapsed; Stripe's checkout has ~50 s left, PayPal's more
        assert fake.checkout(result.checkout_id or "").status == "open"
        assert service.reconcile().released == 1
        # Stripe's is voided, so nobody pays a freed seat; PayPal cannot close an order
        # (closes_checkouts = false): it stays open until it lapses, and the seat is released all the same.
        closed = "expired" if gateway == "stripe-like" else "open"
        assert fake.checkout(result.checkout_id or "").status == closed
        assert row(store, result.registration_id).status == "expired"
        assert service.event(event_id).seats_taken == 0


def test_a_late_payment_on_a_gateway_that_cannot_void_takes_a_free_seat(store: Store, clock: Clock) -> None:
    features = set(Feature) - {Feature.VOID}
    caps = default_capabilities(features=features, checkout_expiry=STRIPE_WINDOW)
    no_void = gateway_core.fake.provider("fake-no-void", caps)
    manager = manager_with(
        {"novoid": {"provider": "fake-no-void", "settings": {"test_mode": True}}}, no_void, clock=clock
    )
    service = PaidEvents(store, manager, pe_config.load()[0], clock=clock)
    event_id = make_event(service, gateways=["novoid"], capacity=1)
    result = service.checkout(event_id, "ann@example.com")
    clock.advance(minutes=30, seconds=10)
    assert service.reconcile().released == 1  # the hold lapsed; the checkout could not be closed
    assert service.event(event_id).seats_taken == 0
    pay(service, "novoid", result.checkout_id)  # ... and the payer still pays
    assert row(store, result.registration_id).status == "confirmed"
    assert row(store, result.registration_id).paid_at is not None
    assert service.event(event_id).seats_taken == 1


def test_a_crash_recovered_while_the_stored_expiry_is_still_good_sends_the_same_request(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = TickingClock()
    service, audit = audited(store, clock)
    event_id = make_event(service, gateways=["stripe-like"])
    monkeypatch.setattr(service, "_record_checkout", crash)
    with pytest.raises(RuntimeError):
        service.checkout(event_id, "ann@example.com")
    monkeypatch.undo()
    clock.advance(seconds=20)
    assert service.reconcile().checkouts_recovered == 1
    assert audit.requests[0] == audit.requests[1]  # identical: the provider returned the same checkout
    assert fake_of(service.gateways, "stripe-like").payments_made() == 1


def test_a_crash_recovered_after_the_stored_expiry_went_stale_is_rekeyed(
    service: PaidEvents, store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    event_id = make_event(service, gateways=["stripe-like"])
    fake = fake_of(service.gateways, "stripe-like")
    monkeypatch.setattr(service, "_record_checkout", crash)
    with pytest.raises(RuntimeError):
        service.checkout(event_id, "ann@example.com")
    monkeypatch.undo()
    reg_id = service.participants(event_id)[0].registration_id
    first = row(store, reg_id)
    clock.advance(minutes=5)  # the stored expiry is now 26 minutes ahead: Stripe would refuse it
    report = service.reconcile()
    assert (report.checkouts_recovered, report.released, report.still_pending) == (1, 0, 1)  # open, unpaid
    again = row(store, reg_id)
    assert again.status == "pending"
    assert again.operation_id == f"{first.operation_id}:2"  # a new idempotency key, committed before the call
    assert again.checkout_expires_at is not None
    assert first.checkout_expires_at is not None
    assert again.checkout_expires_at > first.checkout_expires_at
    assert again.hold_expires_at == first.hold_expires_at  # the seat hold is not extended
    assert fake.payments_made() == 2  # the first checkout was never shown to anyone; it lapses unpaid
    pay(service, "stripe-like", again.checkout_id)
    assert row(store, reg_id).status == "confirmed"
    assert service.event(event_id).seats_taken == 1


def test_concurrent_reconcilers_rekey_once(
    service: PaidEvents, store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .test_concurrency import run_together

    event_id = make_event(service, gateways=["stripe-like"])
    monkeypatch.setattr(service, "_record_checkout", crash)
    with pytest.raises(RuntimeError):
        service.checkout(event_id, "ann@example.com")
    monkeypatch.undo()
    clock.advance(minutes=5)
    reports = run_together(6, [service.reconcile for _ in range(6)])
    assert not [r for r in reports if isinstance(r, Exception)]
    assert fake_of(service.gateways, "stripe-like").payments_made() == 2  # one re-keyed checkout, not six
    with store.transaction() as s:
        assert str(s.scalars(sa.select(RegistrationRow.operation_id)).one()).endswith(":2")


def test_a_lost_checkout_whose_hold_lapsed_is_released_without_a_provider_call(
    service: PaidEvents, store: Store, clock: Clock
) -> None:
    event_id = make_event(service, gateways=["stripe-like"])
    fake = fake_of(service.gateways, "stripe-like")
    fake.script(*[Scripted(Outcome.UNAVAILABLE, "checkout")] * 3)
    with pytest.raises(Exception, match="lost"):
        service.checkout(event_id, "ann@example.com")
    calls = len(fake.requests)
    clock.advance(minutes=31)
    report = service.reconcile()
    assert (report.released, report.checkouts_recovered) == (1, 0)
    assert len(fake.requests) == calls  # nobody saw a checkout, so none is made now
    assert service.event(event_id).seats_taken == 0


def test_a_payment_still_settling_when_the_hold_lapses_keeps_its_seat(
    service: PaidEvents, store: Store, clock: Clock
) -> None:
    event_id = make_event(service, gateways=["stripe-like"], capacity=1)
    result = service.checkout(event_id, "ann@example.com")
    fake = fake_of(service.gateways, "stripe-like")
    status = fake.complete_checkout(result.checkout_id or "", settle=False)  # a bank debit: paid later
    clock.advance(minutes=31)
    report = service.reconcile()
    assert (report.released, report.still_pending) == (0, 1)  # the money is on its way: no release
    assert service.event(event_id).seats_taken == 1
    with pytest.raises(AlreadyRegistered, match="being processed"):
        service.checkout(event_id, "ann@example.com", gateway="paypal-like")  # other terms: not replaced
    fake.settle_payment(status.payment_id)
    deliver(service, "stripe-like")
    assert row(store, result.registration_id).status == "confirmed"


def test_reconcile_closes_a_checkout_that_cancelling_the_event_could_not(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service, gateways=["stripe-like"])
    result = service.checkout(event_id, "ann@example.com")
    assert result.checkout_id is not None
    fake = fake_of(service.gateways, "stripe-like")
    fake.script(Scripted(Outcome.UNAVAILABLE, "void"))
    service.cancel_event(event_id)  # the provider is down as the organizer cancels: still open
    assert fake.checkout(result.checkout_id).status == "open"
    report = service.reconcile()  # well before the 30-minute hold lapses
    assert report.released == 1
    assert fake.checkout(result.checkout_id).status == "expired"  # nobody can pay for the cancelled event now
    assert row(store, result.registration_id).status == "expired"
    assert service.event(event_id).seats_taken == 0


def test_a_lost_checkout_of_a_cancelled_event_is_released_without_a_provider_call(
    service: PaidEvents, store: Store
) -> None:
    event_id = make_event(service, gateways=["stripe-like"])
    fake = fake_of(service.gateways, "stripe-like")
    fake.script(*[Scripted(Outcome.UNAVAILABLE, "checkout")] * 3)
    with pytest.raises(Exception, match="lost"):
        service.checkout(event_id, "ann@example.com")
    service.cancel_event(event_id)
    calls = len(fake.requests)
    report = service.reconcile()
    assert (report.released, report.checkouts_recovered) == (1, 0)
    assert len(fake.requests) == calls  # no checkout is opened for a cancelled event
    assert service.event(event_id).seats_taken == 0
