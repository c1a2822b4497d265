"""A promo code's use limit holds on every path a use is taken back: late payments and manual confirmations.

A released registration (its hold lapsed, its checkout expired) gave its use back; someone else
may have taken it since. Coming back (a late payment, or the organizer's ``confirm``) must take
a use again, and may not exceed the limit: a code limited to N uses never covers N + 1 tickets.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from paid_events import config as pe_config
from paid_events import outbox
from paid_events.errors import PromoCodeExhausted
from paid_events.service import PaidEvents
from paid_events.store import RegistrationRow, Store

import gateway_core.fake
from gateway_core import CheckoutExpiry, Feature
from gateway_core.fake import default_capabilities

from .conftest import Clock
from .helpers import Mailbox, deliver, eur, fake_of, make_event, manager_with, pay, snapshot


def no_void_service(store: Store, clock: Clock) -> PaidEvents:
    """A gateway that cannot close a checkout, so a payment can still land after the hold lapsed."""
    caps = default_capabilities(
        features=set(Feature) - {Feature.VOID},
        checkout_expiry=CheckoutExpiry(timedelta(minutes=30), timedelta(hours=24)),
    )
    provider = gateway_core.fake.provider("fake-no-void", caps)
    manager = manager_with(
        {"novoid": {"provider": "fake-no-void", "settings": {"test_mode": True}}}, provider, clock=clock
    )
    return PaidEvents(store, manager, pe_config.load()[0], clock=clock)


def status(store: Store, registration_id: str) -> str:
    with store.transaction() as s:
        row = s.get(RegistrationRow, registration_id)
        assert row is not None
        return row.status


def test_a_late_payment_takes_the_code_use_back(store: Store, clock: Clock) -> None:
    service = no_void_service(store, clock)
    event_id = make_event(service, gateways=["novoid"])
    service.add_promo_code(event_id, "ONCE", percent="50", max_uses=1)
    ann = service.checkout(event_id, "ann@example.com", "ONCE")
    clock.advance(minutes=30, seconds=10)
    assert service.reconcile().released == 1
    assert service.promo_code(event_id, "ONCE").uses == 0  # the lapsed hold gave the use back
    pay(service, "novoid", ann.checkout_id)  # ... and the payer still pays, the use still free
    assert status(store, ann.registration_id) == "confirmed"
    assert service.promo_code(event_id, "ONCE").uses == 1
    with pytest.raises(PromoCodeExhausted):
        service.checkout(event_id, "bob@example.com", "ONCE")


def test_a_late_payment_whose_code_was_used_up_meanwhile_gets_no_ticket_and_is_refundable(
    store: Store, clock: Clock
) -> None:
    service = no_void_service(store, clock)
    event_id = make_event(service, gateways=["novoid"])
    service.add_promo_code(event_id, "ONCE", percent="50", max_uses=1)
    ann = service.checkout(event_id, "ann@example.com", "ONCE")
    clock.advance(minutes=30, seconds=10)
    assert service.reconcile().released == 1
    bob = service.checkout(event_id, "bob@example.com", "ONCE")  # the use ann gave back
    pay(service, "novoid", bob.checkout_id)
    pay(service, "novoid", ann.checkout_id)  # ann's payment lands after all
    assert status(store, bob.registration_id) == "confirmed"
    assert status(store, ann.registration_id) == "paid_no_seat"  # was confirmed: two tickets on a 1-use code
    assert service.promo_code(event_id, "ONCE").uses == 1
    assert service.event(event_id).seats_taken == 1  # the seat ann's payment took went back
    refund = service.refund(ann.registration_id)
    assert (refund.state, refund.amount) == ("refunded", eur("10"))
    deliver(service, "novoid")
    assert service.promo_code(event_id, "ONCE").uses == 1  # bob still holds the one use
    mailbox = Mailbox()
    outbox.drain(store, mailbox)
    [notice] = [m for m in mailbox.messages if m.recipient == "ann@example.com"]
    assert (notice.kind, notice.body) == (  # was never sent: ann paid and heard nothing
        "paid_no_seat",
        "Your payment of 10.00 EUR for Pricing webinar arrived after the seat held for you was released, and "
        "the promo code you used has been used up since, so there is no seat for this payment. "
        "The organizer will refund your payment.",
    )
    assert "ONCE" not in notice.body


def test_confirming_a_released_registration_by_hand_when_its_code_is_used_up_is_refused_and_changes_nothing(
    service: PaidEvents, store: Store
) -> None:
    event_id = make_event(service)
    service.add_promo_code(event_id, "ONCE", percent="50", max_uses=1)
    ann = service.checkout(event_id, "ann@example.com", "ONCE")
    fake_of(service.gateways, "stripe-like").abandon_checkout(ann.checkout_id or "")
    deliver(service, "stripe-like")
    assert status(store, ann.registration_id) == "expired"
    service.checkout(event_id, "bob@example.com", "ONCE")
    before = snapshot(store)
    with pytest.raises(PromoCodeExhausted):
        service.confirm(ann.registration_id)  # was confirmed with the use uncounted
    assert snapshot(store) == before
    assert service.promo_code(event_id, "ONCE").uses == 1


def test_confirming_a_released_registration_by_hand_takes_its_code_use(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    service.add_promo_code(event_id, "ONCE", percent="50", max_uses=1)
    ann = service.checkout(event_id, "ann@example.com", "ONCE")
    fake_of(service.gateways, "stripe-like").abandon_checkout(ann.checkout_id or "")
    deliver(service, "stripe-like")
    service.confirm(ann.registration_id)
    assert service.promo_code(event_id, "ONCE").uses == 1
    with pytest.raises(PromoCodeExhausted):
        service.checkout(event_id, "bob@example.com", "ONCE")
