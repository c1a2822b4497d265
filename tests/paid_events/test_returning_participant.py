"""A participant who comes back: their open checkout, or a fresh one; one registration per address."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa
from paid_events import config as pe_config
from paid_events.errors import AlreadyRegistered, CheckoutPending
from paid_events.service import PaidEvents
from paid_events.store import RegistrationRow, Store

import gateway_core.fake
from gateway_core import Feature
from gateway_core.fake import Outcome, Scripted, default_capabilities

from .conftest import Clock
from .helpers import deliver, fake_of, make_event, manager_with, pay
from .test_concurrency import run_together


def statuses(store: Store) -> Counter[str]:
    with store.transaction() as s:
        return Counter(s.scalars(sa.select(RegistrationRow.status)).all())


def test_coming_back_to_an_abandoned_checkout_returns_it(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service, capacity=1)
    first = service.checkout(event_id, "Ann@Example.com")  # walks away from the payment page
    for address in ("Ann@Example.com", "ann@example.com", "ANN@EXAMPLE.COM"):
        again = service.checkout(event_id, address)
        assert again.resumed
        assert (again.registration_id, again.checkout_id, again.checkout_url) == (
            first.registration_id,
            first.checkout_id,
            first.checkout_url,
        )
    assert service.event(event_id).seats_taken == 1  # no second seat (the event has one)
    assert fake_of(service.gateways, "stripe-like").payments_made() == 1
    assert [p.email for p in service.participants(event_id)] == ["Ann@example.com"]  # as typed, domain lowercased
    pay(service, "stripe-like", first.checkout_id)
    with pytest.raises(AlreadyRegistered):
        service.checkout(event_id, "ann@example.com")


def test_coming_back_with_other_terms_closes_the_old_checkout_and_opens_a_fresh_one(
    service: PaidEvents, store: Store
) -> None:
    event_id = make_event(service, capacity=1)
    service.add_promo_code(event_id, "ONCE", percent="10", max_uses=1)
    first = service.checkout(event_id, "ann@example.com", "ONCE")
    fresh = service.checkout(event_id, "ann@example.com", gateway="paypal-like")  # no code, another gateway
    assert not fresh.resumed
    assert fresh.registration_id != first.registration_id
    assert fake_of(service.gateways, "stripe-like").checkout(first.checkout_id or "").status == "expired"
    assert service.promo_code(event_id, "ONCE").uses == 0  # the old one's use came back
    assert service.event(event_id).seats_taken == 1
    assert statuses(store) == Counter({"pending": 1, "expired": 1})
    deliver(service, "stripe-like")  # the old checkout's expiry changes nothing more
    assert service.event(event_id).seats_taken == 1


def test_coming_back_after_the_hold_lapsed_gets_a_fresh_checkout(service: PaidEvents, clock: Clock) -> None:
    event_id = make_event(service, capacity=1)
    first = service.checkout(event_id, "ann@example.com")
    clock.advance(minutes=31)  # the hold lapsed; no reconcile ran yet
    fresh = service.checkout(event_id, "ann@example.com")
    assert not fresh.resumed
    assert fresh.checkout_id != first.checkout_id
    assert service.event(event_id).seats_taken == 1


def test_coming_back_after_the_provider_expired_the_checkout_gets_a_fresh_one(service: PaidEvents) -> None:
    event_id = make_event(service)
    first = service.checkout(event_id, "ann@example.com")
    fake_of(service.gateways, "stripe-like").abandon_checkout(first.checkout_id or "")  # webhook not delivered yet
    fresh = service.checkout(event_id, "ann@example.com")
    assert fresh.checkout_id != first.checkout_id
    assert service.event(event_id).seats_taken == 1


def test_coming_back_after_paying_before_the_webhook_is_already_registered(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    first = service.checkout(event_id, "ann@example.com")
    fake_of(service.gateways, "stripe-like").complete_checkout(first.checkout_id or "")
    with pytest.raises(AlreadyRegistered, match="just paid"):
        service.checkout(event_id, "ann@example.com")
    assert statuses(store) == Counter({"confirmed": 1})  # the status check confirmed it


def test_retrying_after_checkout_pending_finishes_the_same_registration(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    fake = fake_of(service.gateways, "stripe-like")
    fake.script(*[Scripted(Outcome.UNAVAILABLE, "checkout")] * 3)
    with pytest.raises(CheckoutPending):
        service.checkout(event_id, "ann@example.com")
    again = service.checkout(event_id, "ann@example.com")
    assert again.resumed
    assert again.checkout_url is not None
    assert fake.payments_made() == 1
    assert statuses(store) == Counter({"pending": 1})


def test_two_concurrent_checkouts_of_one_address_make_one_registration(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    results = run_together(8, [lambda: service.checkout(event_id, "ann@example.com") for _ in range(8)])
    ok = [r for r in results if not isinstance(r, Exception)]
    assert ok
    assert all(isinstance(r, AlreadyRegistered) for r in results if isinstance(r, Exception))
    assert len({r.registration_id for r in ok}) == 1
    assert statuses(store) == Counter({"pending": 1})
    assert service.event(event_id).seats_taken == 1


def test_paying_an_old_checkout_that_could_not_be_closed_closes_the_fresh_one(store: Store, clock: Clock) -> None:
    no_void = gateway_core.fake.provider("fake-no-void", default_capabilities(features=set(Feature) - {Feature.VOID}))
    manager = manager_with(
        {"novoid": {"provider": "fake-no-void", "settings": {"test_mode": True}}}, no_void, clock=clock
    )
    service = PaidEvents(store, manager, pe_config.load()[0], clock=clock)
    event_id = make_event(service, gateways=["novoid"])
    service.add_promo_code(event_id, "TEN", percent="10")
    old = service.checkout(event_id, "ann@example.com")
    fresh = service.checkout(event_id, "ann@example.com", "TEN")  # other terms; the old one stays payable
    assert fresh.registration_id != old.registration_id
    pay(service, "novoid", old.checkout_id)  # she pays the old page after all
    with store.transaction() as s:
        rows = {r.id: r.status for r in s.scalars(sa.select(RegistrationRow))}
    assert rows == {old.registration_id: "confirmed", fresh.registration_id: "expired"}
    assert service.event(event_id).seats_taken == 1
    assert service.promo_code(event_id, "TEN").uses == 0


# -- rejection gives the promo use back ---------------------------------------------------------


def test_rejecting_a_pending_or_confirmed_registration_gives_its_promo_use_back(service: PaidEvents) -> None:
    event_id = make_event(service)
    service.add_promo_code(event_id, "TWO", percent="10", max_uses=2)
    pending = service.checkout(event_id, "ann@example.com", "TWO")
    paid = service.checkout(event_id, "bob@example.com", "TWO")
    pay(service, "stripe-like", paid.checkout_id)
    assert service.promo_code(event_id, "TWO").uses == 2
    service.reject(pending.registration_id)
    assert service.promo_code(event_id, "TWO").uses == 1
    service.reject(paid.registration_id)
    assert service.promo_code(event_id, "TWO").uses == 0
    assert service.checkout(event_id, "cat@example.com", "TWO").status == "pending"  # usable again
