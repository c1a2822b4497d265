"""What a payer is told when a payment ends without a ticket, and what ``payment.failed`` does.

* A payment that lands with no seat for it (``paid_no_seat``: the event cancelled, or the hold
  lapsed and the event sold out, the promo code was used up or the participant holds another
  ticket) tells its payer once that the organizer refunds it, however often it is reported.
* So does a payment that lands after the organizer rejected the registration (the checkout could
  not be closed in time): it stays ``rejected``, paid and refundable, and its payer is told once
  (``paid_after_rejection``). One refunded before it was reported tells nobody: nothing is owed.
* ``payment.failed`` is not believed on its own: the provider is asked about the registration's
  checkout. A final failure (a bank debit that bounced after the checkout completed) releases
  the seat and tells the payer once; a declined card on a checkout still open for another
  attempt keeps the seat (Stripe: ``payment_intent.payment_failed`` while its session is open;
  the fake: ``decline_checkout``, the payment ``PENDING``). A provider that reported such a
  checkout ``FAILED`` would have it expired before the seat is released.
"""

from __future__ import annotations

import json
from collections.abc import Generator

import attrs
import pytest
import sqlalchemy as sa
import structlog
from paid_events import config as pe_config
from paid_events import outbox
from paid_events.service import PaidEvents, WebhookOutcome
from paid_events.store import EventRow, OutboxRow, RegistrationRow, Store

import gateway_core.fake
from gateway_core import (
    CheckoutStatus,
    GatewayManager,
    GatewayUnavailable,
    InvalidRequest,
    OperationContext,
    PaymentState,
    PaymentStatus,
    RefundRequest,
    StatusRequest,
    hookimpl,
)
from gateway_core.fake import FakeGateway, Outcome, Scripted, WebhookDelivery

from .conftest import Clock, on_clock
from .helpers import Mailbox, deliver, eur, fake_of, make_event, pay, snapshot

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


# -- paid after the organizer rejected the registration -----------------------------------------


@pytest.mark.parametrize("first", ["webhook", "check_payment"])
def test_a_payment_that_lands_after_rejection_tells_its_payer_once_that_it_will_be_refunded(
    service: PaidEvents, store: Store, first: str
) -> None:
    event_id = make_event(service)
    ann = service.checkout(event_id, "ann@example.com", gateway="stripe-like")
    fake = fake_of(service.gateways, "stripe-like")
    fake.complete_checkout(ann.checkout_id or "")  # the payer pays as the organizer rejects her ...
    service.reject(ann.registration_id, "not a member")  # ... too late to close the checkout: it is paid
    assert fake.checkout(ann.checkout_id or "").status is CheckoutStatus.COMPLETE
    if first == "check_payment":  # the payer comes back from the checkout before any webhook
        fake.script(Scripted(Outcome.UNAVAILABLE, "status"))  # the provider's status API is down once
        assert service.check_payment(ann.registration_id) == "rejected"  # the status stands
        assert row(store, ann.registration_id).paid_at is None
        assert service.check_payment(ann.registration_id) == "rejected"  # back again
        assert row(store, ann.registration_id).paid_at is not None  # was None: only a webhook recorded it
    # reported by both its webhooks, each delivered twice, then by a status check and a sweep
    outcomes = handle(service, "stripe-like", fake.drain_webhooks(duplicate=True))
    found = WebhookOutcome.PROCESSED if first == "webhook" else WebhookOutcome.IGNORED
    assert outcomes == [found, WebhookOutcome.DUPLICATE, WebhookOutcome.IGNORED, WebhookOutcome.DUPLICATE]
    assert service.check_payment(ann.registration_id) == "rejected"
    service.reconcile()
    ann_row = row(store, ann.registration_id)
    assert (ann_row.status, ann_row.paid_at is not None, ann_row.token_hash) == ("rejected", True, None)
    assert queued(store, "paid_after_rejection") == 1  # was 0: the payer was never told
    messages = [m for m in drained(store) if m.recipient == "ann@example.com"]
    assert [m.kind for m in messages] == ["rejection", "paid_after_rejection"]  # in that order
    notice = messages[1]
    assert (notice.subject, notice.body) == (
        f"Your payment for {TITLE} will be refunded",
        f"Your payment of 20.00 EUR for {TITLE} arrived after the organizer declined your registration, "
        "so there is no ticket for this payment. The organizer will refund your payment.",
    )
    assert not notice.has_secret
    assert "not a member" not in notice.body  # the reason went with the rejection
    # the organizer's view: paid, no ticket, refundable; refund_all returns it and it stays rejected
    [ann_seen] = service.participants(event_id)
    assert (ann_seen.status, ann_seen.paid, ann_seen.refundable) == ("rejected", True, True)
    assert service.event(event_id).seats_taken == 0
    assert [line.registration_id for line in service.fee_report(event_id).lines] == [ann.registration_id]
    assert [(o.state, o.amount) for o in service.refund_all(event_id)] == [("refunded", eur("20"))]
    deliver(service, "stripe-like")  # the refund's webhook
    [ann_seen] = service.participants(event_id)
    assert (ann_seen.status, ann_seen.paid, ann_seen.refund_state, ann_seen.refundable) == (
        "rejected",
        True,
        "refunded",
        False,
    )
    assert queued(store, "paid_after_rejection") == 1


@pytest.mark.parametrize("before", ["reject", "confirm"])
def test_a_payment_refunded_before_it_was_reported_tells_nobody_and_raises_no_alarm(
    service: PaidEvents, store: Store, before: str
) -> None:
    """Rejected (or confirmed by hand) while its checkout was open, paid, refunded at once in the
    provider's dashboard, the refund's webhook first: nothing is owed, so nothing is promised."""
    event_id = make_event(service)
    ann = service.checkout(event_id, "ann@example.com", gateway="stripe-like")
    fake = fake_of(service.gateways, "stripe-like")
    status = fake.complete_checkout(ann.checkout_id or "")
    getattr(service, before)(ann.registration_id)
    drained(store)  # the rejection (or the ticket) is out
    service.gateways.refund("stripe-like", RefundRequest(status.payment_id), operation_id="dashboard-1")
    deliveries = fake.drain_webhooks(reverse=True)
    assert deliveries[0].type == "refund.succeeded"
    with structlog.testing.capture_logs() as logs:
        handle(service, "stripe-like", deliveries)
    ann_row = row(store, ann.registration_id)
    expected = "rejected" if before == "reject" else "refunded"
    assert (ann_row.status, ann_row.refund_state, ann_row.paid_at is not None) == (expected, "refunded", True)
    assert drained(store) == []  # no "will be refunded" for a payment refunded already
    events = [entry["event"] for entry in logs]
    assert "paid_events.registration.paid_after_refund" in events  # was paid_after_close, an error
    assert [e for e in logs if e["log_level"] == "error"] == []
    assert service.refund_all(event_id) == []


def test_a_payment_reported_after_its_refund_failed_is_owed_and_flagged(service: PaidEvents, store: Store) -> None:
    """Confirmed by hand, refunded in the dashboard (reported first), the refund failed, then the
    payment reported: no ticket and no money back, so an error for the organizer, and refund_all."""
    event_id = make_event(service)
    ann = service.checkout(event_id, "ann@example.com", gateway="stripe-like")
    fake = fake_of(service.gateways, "stripe-like")
    status = fake.complete_checkout(ann.checkout_id or "")
    service.confirm(ann.registration_id)
    dashboard = service.gateways.refund("stripe-like", RefundRequest(status.payment_id), operation_id="dashboard-1")
    late = {"checkout.completed", "payment.succeeded"}
    assert handle(service, "stripe-like", fake.drain_webhooks(hold=late)) == [WebhookOutcome.PROCESSED]
    fake.fail_refund(dashboard.id)  # the payer's bank sends the money back
    assert handle(service, "stripe-like", fake.drain_webhooks(hold=late)) == [WebhookOutcome.PROCESSED]
    assert (row(store, ann.registration_id).status, row(store, ann.registration_id).refund_state) == (
        "refunded",
        "failed",
    )
    with structlog.testing.capture_logs() as logs:
        deliver(service, "stripe-like")  # the payment's webhooks, late
    errors = [entry["event"] for entry in logs if entry["log_level"] == "error"]
    assert errors == ["paid_events.registration.paid_without_ticket"]  # was paid_after_close
    [ann_seen] = service.participants(event_id)
    assert (ann_seen.status, ann_seen.paid, ann_seen.refundable) == ("refunded", True, True)
    assert queued(store, "paid_after_rejection") + queued(store, "paid_no_seat") == 0
    assert [o.state for o in service.refund_all(event_id)] == ["refunded"]


def test_a_payment_for_a_ticket_confirmed_by_hand_is_its_ticket_s_payment(service: PaidEvents, store: Store) -> None:
    """``confirm`` leaves a pending registration's checkout open; its payment is the ticket's, not an alarm."""
    event_id = make_event(service)
    ann = service.checkout(event_id, "ann@example.com", gateway="stripe-like")
    service.confirm(ann.registration_id)
    with structlog.testing.capture_logs() as logs:
        pay(service, "stripe-like", ann.checkout_id)
    ann_row = row(store, ann.registration_id)
    assert (ann_row.status, ann_row.paid_at is not None) == ("confirmed", True)
    assert [e for e in logs if e["log_level"] == "error"] == []  # was paid_after_close
    assert "paid_events.registration.paid_after_manual_confirm" in [entry["event"] for entry in logs]
    assert [m.kind for m in drained(store)] == ["confirmation"]  # her ticket; nothing else
    [ann_seen] = service.participants(event_id)
    assert (ann_seen.paid, ann_seen.refundable) == (True, True)
    assert service.event(event_id).seats_taken == 1


# -- payment.failed ---------------------------------------------------------------------------


def test_a_bank_debit_that_fails_after_the_checkout_releases_the_seat_and_tells_the_payer_once(
    service: PaidEvents, store: Store
) -> None:
    event_id = make_event(service, capacity=1)
    service.add_promo_code(event_id, "ONCE", percent="10", max_uses=1)
    ann = service.checkout(event_id, "ann@example.com", "ONCE", gateway="stripe-like")
    fake = fake_of(service.gateways, "stripe-like")
    status = fake.complete_checkout(ann.checkout_id or "", settle=False)  # a bank debit: paid later
    assert deliver(service, "stripe-like") == [WebhookOutcome.IGNORED, WebhookOutcome.IGNORED]
    fake.fail_payment(status.payment_id, "debit_returned")  # ... or not: the debit bounced
    failed = fake.drain_webhooks(duplicate=True)
    assert handle(service, "stripe-like", failed) == [WebhookOutcome.PROCESSED, WebhookOutcome.DUPLICATE]
    assert row(store, ann.registration_id).status == "failed"  # was pending until a reconcile after the hold
    assert service.event(event_id).seats_taken == 0
    assert service.promo_code(event_id, "ONCE").uses == 0
    # Stripe sends payment_intent.payment_failed and checkout.session.async_payment_failed for one
    # failure: another event about the same payment tells nobody again
    assert handle(service, "stripe-like", [payment_only(fake, failed[0], "fake_evt_pi_failed")]) == [
        WebhookOutcome.IGNORED
    ]
    service.reconcile()
    [notice] = drained(store)
    assert (notice.kind, notice.recipient, notice.subject, notice.body) == (
        "payment_failed",
        "ann@example.com",
        f"Your payment for {TITLE} failed",
        f"Your payment of 18.00 EUR for {TITLE} failed, so you have no ticket and the seat held for you was "
        "released. You can register again while seats are left.",
    )
    assert "debit_returned" not in notice.body  # the provider's reason is not the payer's business here
    bob = service.checkout(event_id, "bob@example.com", "ONCE")  # the seat and the code's use are free again
    assert bob.status == "pending"


def test_a_payment_failed_whose_status_cannot_be_read_changes_nothing_and_its_redelivery_is_processed(
    service: PaidEvents, store: Store
) -> None:
    event_id = make_event(service)
    ann = service.checkout(event_id, "ann@example.com", gateway="stripe-like")
    fake = fake_of(service.gateways, "stripe-like")
    status = fake.complete_checkout(ann.checkout_id or "", settle=False)
    deliver(service, "stripe-like")
    fake.fail_payment(status.payment_id)
    [failed] = fake.drain_webhooks()
    before = snapshot(store)
    fake.script(Scripted(Outcome.UNAVAILABLE, "status"))  # the provider's status API is down once
    with pytest.raises(GatewayUnavailable):
        service.handle_webhook("stripe-like", failed.headers, failed.body)
    assert snapshot(store) == before  # no processed-webhook row: the redelivery is not a duplicate
    assert service.handle_webhook("stripe-like", failed.headers, failed.body) == WebhookOutcome.PROCESSED
    assert row(store, ann.registration_id).status == "failed"
    assert queued(store, "payment_failed") == 1


def test_a_payment_failed_that_overtook_the_payment_confirms_it(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    ann = service.checkout(event_id, "ann@example.com", gateway="stripe-like")
    fake = fake_of(service.gateways, "stripe-like")
    fake.decline_checkout(ann.checkout_id or "")  # the first card is declined ...
    fake.complete_checkout(ann.checkout_id or "")  # ... the second pays
    # the decline's webhook arrives first; the payment's own ones are late
    early = fake.drain_webhooks(hold={"checkout.completed", "payment.succeeded"})
    assert handle(service, "stripe-like", early) == [WebhookOutcome.PROCESSED]
    assert row(store, ann.registration_id).status == "confirmed"  # was pending: the failure did nothing
    assert deliver(service, "stripe-like") == [WebhookOutcome.IGNORED, WebhookOutcome.IGNORED]
    assert [m.kind for m in drained(store)] == ["confirmation"]


def test_a_declined_card_keeps_the_seat_and_the_payer_pays_on_the_same_checkout(
    service: PaidEvents, store: Store
) -> None:
    """The fake does what Stripe does with a declined card: the checkout stays open, the payment ``PENDING``.

    Its ``payment.failed`` reports the attempt; asked, the provider says the payment still awaits
    the payer, so the seat is kept, nobody is told the payment failed, and the payer pays.
    """
    event_id = make_event(service, capacity=1)
    ann = service.checkout(event_id, "ann@example.com", gateway="stripe-like")
    fake = fake_of(service.gateways, "stripe-like")
    fake.decline_checkout(ann.checkout_id or "", "insufficient_funds")
    assert deliver(service, "stripe-like") == [WebhookOutcome.IGNORED]  # was PROCESSED: the seat released
    assert row(store, ann.registration_id).status == "pending"
    assert service.event(event_id).seats_taken == 1
    assert fake.checkout(ann.checkout_id or "").status is CheckoutStatus.OPEN
    assert queued(store, "payment_failed") == 0
    pay(service, "stripe-like", ann.checkout_id)  # another card, on the same checkout
    assert row(store, ann.registration_id).status == "confirmed"
    assert [m.kind for m in drained(store)] == ["confirmation"]


# -- providers' status rules over the fake -------------------------------------------------------


class DeclinedAttempts:
    """A provider's status rule over the fake, for what the fake does not say itself after a declined card.

    The fake reports a checkout still open after a declined card ``PENDING`` by either id (its
    ``decline_checkout``), as Stripe does asked about the session. A test declines through
    :meth:`decline`, so the rule knows which payments had a declined attempt; :meth:`reads` says
    what this provider reports for one of them while the fake says ``PENDING``.
    """

    def __init__(self) -> None:
        self.manager: GatewayManager | None = None
        self.declined: set[str] = set()  # payment ids with a declined attempt

    def decline(self, gateway: str, checkout_id: str | None) -> None:
        assert self.manager is not None
        status = fake_of(self.manager, gateway).decline_checkout(checkout_id or "")
        self.declined.add(status.payment_id)

    def reads(self, request: StatusRequest, status: PaymentStatus) -> PaymentState:
        raise NotImplementedError

    @hookimpl(wrapper=True)
    def gateway_payment_status(
        self, request: StatusRequest, context: OperationContext
    ) -> Generator[None, PaymentStatus, PaymentStatus]:
        status = yield
        if status.state is PaymentState.PENDING and status.payment_id in self.declined:
            return attrs.evolve(status, state=self.reads(request, status))
        return status


class StripeStatuses(DeclinedAttempts):
    """A declined attempt on an open session reads ``PENDING`` by the session, ``FAILED`` by its pi_.

    Stripe's Checkout, as the Stripe plugin read it before it looked the session up by
    PaymentIntent (4dd5bde): while a Checkout Session is ``open`` a declined card is not the end
    (its PaymentIntent is back in ``requires_payment_method`` with a ``last_payment_error``, and
    the payer can try another card on the same session), so asked by the session's id the status
    is ``PENDING``; asked by the PaymentIntent's id it was ``FAILED``. Any plugin may read its
    payment ids that way: the service asks by the registration's checkout, so it keeps the seat.
    """

    def reads(self, request: StatusRequest, status: PaymentStatus) -> PaymentState:
        return PaymentState.PENDING if request.payment_id == status.checkout_id else PaymentState.FAILED


class OpenCheckoutsFailed(DeclinedAttempts):
    """A provider that reports a checkout still open after a declined card ``FAILED``, by either id.

    None that gateway-core has does (Stripe says ``PENDING`` by the session, PayPal keeps the order
    as it was); the service must still not give a seat away while its checkout can be paid.
    """

    def reads(self, request: StatusRequest, status: PaymentStatus) -> PaymentState:
        assert self.manager is not None
        checkout = fake_of(self.manager, status.gateway).checkout(status.checkout_id or "")
        return PaymentState.FAILED if checkout.status is CheckoutStatus.OPEN else status.state


def over(store: Store, clock: Clock, rule: DeclinedAttempts) -> PaidEvents:
    """The service on the example's two fake gateways, their statuses read through ``rule``."""
    base, deployment = pe_config.load()
    manager = GatewayManager(deployment, plugins=[gateway_core.fake, rule], load_entry_points=False)
    rule.manager = on_clock(manager, clock)
    return PaidEvents(store, manager, base, clock=clock)


def test_a_provider_reporting_an_open_checkout_failed_has_it_closed_before_the_seat_is_released(
    store: Store, clock: Clock
) -> None:
    """The service expires a ``FAILED`` pending registration's checkout before it gives the seat away.

    So nobody pays for a released seat, whatever a provider says about a checkout it keeps open.
    """
    rule = OpenCheckoutsFailed()
    service = over(store, clock, rule)
    event_id = make_event(service, capacity=1)
    ann = service.checkout(event_id, "ann@example.com", gateway="stripe-like")
    fake = fake_of(service.gateways, "stripe-like")
    rule.decline("stripe-like", ann.checkout_id)
    assert service.gateways.payment_status("stripe-like", ann.checkout_id or "").state is PaymentState.FAILED
    assert deliver(service, "stripe-like") == [WebhookOutcome.PROCESSED]
    assert row(store, ann.registration_id).status == "failed"
    assert service.event(event_id).seats_taken == 0
    assert fake.checkout(ann.checkout_id or "").status is CheckoutStatus.EXPIRED  # closed first
    with pytest.raises(InvalidRequest, match="expired"):
        fake.complete_checkout(ann.checkout_id or "")  # the payer cannot pay for the released seat
    assert deliver(service, "stripe-like") == [WebhookOutcome.IGNORED]  # the checkout's expiry
    assert [m.kind for m in drained(store)] == ["payment_failed"]


# -- Stripe's two payment.failed cases -----------------------------------------------------------


@pytest.fixture
def stripe_statuses() -> StripeStatuses:
    return StripeStatuses()


@pytest.fixture
def stripe_like(store: Store, clock: Clock, stripe_statuses: StripeStatuses) -> PaidEvents:
    return over(store, clock, stripe_statuses)


def payment_only(fake: FakeGateway, delivery: WebhookDelivery, event_id: str) -> WebhookDelivery:
    """``delivery`` as Stripe's ``payment_intent.payment_failed`` has it: about the PaymentIntent only.

    Its object is the PaymentIntent, so it names no Checkout Session (stripe_gateway/normalize.py ``event``).
    """
    payload = json.loads(delivery.body)
    payload["id"] = event_id
    del payload["data"]["checkout_id"]
    body = json.dumps(payload, sort_keys=True).encode()
    return WebhookDelivery(event_id, delivery.type, {"Fake-Signature": fake.sign(body)}, body)


def test_stripe_a_declined_card_on_an_open_session_keeps_the_seat(
    stripe_like: PaidEvents, stripe_statuses: StripeStatuses, store: Store
) -> None:
    service = stripe_like
    event_id = make_event(service, capacity=1)
    ann = service.checkout(event_id, "ann@example.com", gateway="stripe-like")
    fake = fake_of(service.gateways, "stripe-like")
    stripe_statuses.decline("stripe-like", ann.checkout_id)  # payment_intent.payment_failed: the session stays open
    [declined] = fake.drain_webhooks()
    payment_id = fake.status(ann.checkout_id or "").payment_id
    assert service.gateways.payment_status("stripe-like", payment_id).state is PaymentState.FAILED  # by its payment id
    assert handle(service, "stripe-like", [payment_only(fake, declined, "fake_evt_pi_declined")]) == [
        WebhookOutcome.IGNORED
    ]
    assert row(store, ann.registration_id).status == "pending"  # asked by the payment id, it would have been released
    assert service.event(event_id).seats_taken == 1
    assert fake.checkout(ann.checkout_id or "").status is CheckoutStatus.OPEN
    assert queued(store, "payment_failed") == 0
    pay(service, "stripe-like", ann.checkout_id)  # the payer tries another card on the same session
    assert row(store, ann.registration_id).status == "confirmed"
    assert [m.kind for m in drained(store)] == ["confirmation"]


def test_stripe_an_async_payment_failure_after_the_session_completed_releases_the_seat(
    stripe_like: PaidEvents, store: Store
) -> None:
    service = stripe_like
    event_id = make_event(service, capacity=1)
    ann = service.checkout(event_id, "ann@example.com", gateway="stripe-like")
    fake = fake_of(service.gateways, "stripe-like")
    status = fake.complete_checkout(ann.checkout_id or "", settle=False)  # a bank debit
    deliver(service, "stripe-like")
    fake.fail_payment(status.payment_id)  # checkout.session.async_payment_failed, and payment_intent.payment_failed
    [session_failed] = fake.drain_webhooks()
    both = [session_failed, payment_only(fake, session_failed, "fake_evt_pi_failed")]
    assert handle(service, "stripe-like", both) == [WebhookOutcome.PROCESSED, WebhookOutcome.IGNORED]
    assert row(store, ann.registration_id).status == "failed"
    assert service.event(event_id).seats_taken == 0
    assert [m.kind for m in drained(store)] == ["payment_failed"]
