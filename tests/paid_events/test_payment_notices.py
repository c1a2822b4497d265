"""What a payer is told when a payment ends without a ticket.

* A payment that lands with no seat for it (``paid_no_seat``: the event cancelled, or the hold
  lapsed and the event sold out, the promo code was used up or the participant holds another
  ticket) tells its payer once that the organizer refunds it, however often it is reported.
"""

from __future__ import annotations

import sqlalchemy as sa
from paid_events import outbox
from paid_events.service import PaidEvents, WebhookOutcome
from paid_events.store import EventRow, OutboxRow, RegistrationRow, Store

from gateway_core.fake import WebhookDelivery

from .helpers import Mailbox, eur, fake_of, make_event, pay

TITLE = "Pricing webinar"


def row(store: Store, registration_id: str) -> RegistrationRow:
    with store.transaction() as s:
        found = s.get(RegistrationRow, registration_id)
        assert found is not None
        return found


def queued(store: Store, kind: str) -> int:
    with store.transaction() as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(OutboxRow).where(OutboxRow.kind == kind)) or 0)


def drained(store: Store) -> list[outbox.Message]:
    mailbox = Mailbox()
    outbox.drain(store, mailbox)
    return mailbox.messages


def lapse(store: Store, registration_id: str) -> None:
    """The registration's hold lapsed and was released on our side while its payer was still paying."""
    with store.transaction() as s:
        s.execute(sa.update(RegistrationRow).where(RegistrationRow.id == registration_id).values(status="expired"))
        s.execute(sa.update(EventRow).values(seats_taken=EventRow.seats_taken - 1))


def handle(service: PaidEvents, gateway: str, deliveries: list[WebhookDelivery]) -> list[WebhookOutcome]:
    return [service.handle_webhook(gateway, d.headers, d.body) for d in deliveries]


# -- paid, no seat --------------------------------------------------------------------------


def test_a_late_payment_for_a_sold_out_event_tells_its_payer_once_that_it_will_be_refunded(
    service: PaidEvents, store: Store
) -> None:
    event_id = make_event(service, capacity=1)
    ann = service.checkout(event_id, "ann@example.com", gateway="stripe-like")
    lapse(store, ann.registration_id)
    bob = service.checkout(event_id, "bob@example.com", gateway="stripe-like")
    pay(service, "stripe-like", bob.checkout_id)  # bob took the one seat ann's hold gave back
    fake = fake_of(service.gateways, "stripe-like")
    fake.complete_checkout(ann.checkout_id or "")  # ann's payment lands after all
    outcomes = handle(service, "stripe-like", fake.drain_webhooks(duplicate=True))  # and is reported again
    # checkout.completed confirms the payment (paid_no_seat); payment.succeeded reports it again
    assert outcomes == [
        WebhookOutcome.PROCESSED,
        WebhookOutcome.DUPLICATE,
        WebhookOutcome.IGNORED,
        WebhookOutcome.DUPLICATE,
    ]
    assert service.check_payment(ann.registration_id) == "paid_no_seat"
    service.reconcile()
    assert row(store, ann.registration_id).status == "paid_no_seat"
    assert queued(store, "paid_no_seat") == 1  # was 0: the payer was never told
    [notice] = [m for m in drained(store) if m.recipient == "ann@example.com"]
    assert (notice.kind, notice.subject, notice.body) == (
        "paid_no_seat",
        f"Your payment for {TITLE} will be refunded",
        f"Your payment of 20.00 EUR for {TITLE} arrived after the seat held for you was released, and the "
        "event has sold out since, so there is no seat for this payment. The organizer will refund your payment.",
    )
    assert not notice.has_secret
    # the organizer's view: ann paid and has no ticket; refund_all returns her money and bob keeps his seat
    people = {p.email: p for p in service.participants(event_id)}
    assert (people["ann@example.com"].status, people["ann@example.com"].paid) == ("paid_no_seat", True)
    assert service.event(event_id).seats_taken == 1
    assert {line.registration_id for line in service.fee_report(event_id).lines} == {
        ann.registration_id,
        bob.registration_id,
    }  # both payments were collected until ann's is refunded
    assert {(o.registration_id, o.state, o.amount) for o in service.refund_all(event_id)} == {
        (ann.registration_id, "refunded", eur("20")),
        (bob.registration_id, "refunded", eur("20")),
    }
    assert (row(store, ann.registration_id).status, row(store, ann.registration_id).refund_state) == (
        "paid_no_seat",
        "refunded",
    )
    assert service.event(event_id).seats_taken == 0
    assert queued(store, "paid_no_seat") == 1


def test_a_late_payment_of_a_participant_who_registered_again_says_so_not_sold_out(
    service: PaidEvents, store: Store
) -> None:
    event_id = make_event(service)
    first = service.checkout(event_id, "ann@example.com", gateway="stripe-like")
    lapse(store, first.registration_id)
    again = service.checkout(event_id, "ann@example.com", gateway="stripe-like")
    pay(service, "stripe-like", again.checkout_id)  # ann's ticket
    pay(service, "stripe-like", first.checkout_id)  # ... and her first payment lands too
    assert row(store, first.registration_id).status == "paid_no_seat"
    assert row(store, again.registration_id).status == "confirmed"
    assert service.event(event_id).seats_taken == 1
    notices = [m for m in drained(store) if m.kind == "paid_no_seat"]
    assert [m.body for m in notices] == [
        f"Your payment of 20.00 EUR for {TITLE} arrived after the seat held for you was released, and you hold "
        "a ticket from another registration for it, so there is no seat for this payment. "
        "The organizer will refund your payment."
    ]  # the event has 49 seats left: "sold out" would not be true
    assert service.refund(first.registration_id).state == "refunded"
    assert row(store, again.registration_id).status == "confirmed"
