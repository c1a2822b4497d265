"""Refunds: only provider-confirmed payments are refundable, and the provider's refund status is kept.

A payment is *paid* once the provider confirmed it (``paid_at``), not when a checkout names its
intended payment. A refund the provider reports pending stays pending until a webhook, a status
poll (``reconcile``) or ``refund()`` again settles it; a failed one can be asked again under a new key.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from paid_events import config as pe_config
from paid_events import outbox
from paid_events.errors import InvalidTransition
from paid_events.service import PaidEvents, WebhookOutcome
from paid_events.store import RegistrationRow, Store

import gateway_core.fake
from gateway_core import (
    AmountOutOfRange,
    CapabilityNotSupported,
    ConfigurationError,
    EventType,
    Feature,
    GatewayError,
    InvalidAmount,
    InvalidRequest,
    Money,
    OperationContext,
    OutcomeUnknown,
    PaymentDeclined,
    PaymentState,
    PermissionDenied,
    ProviderDefinition,
    Refund,
    RefundRequest,
    RefundStatus,
    hookimpl,
)
from gateway_core.fake import FakeGateway, Outcome, Scripted, default_capabilities

from .conftest import Clock
from .helpers import Mailbox, deliver, eur, fake_of, make_event, manager_with, pay


class SlowRefunds(FakeGateway):
    """A fake whose refunds are not immediate (as a bank transfer's): ``pending`` until settled.

    ``finish_refund(refund_id, succeeded=...)`` settles one and queues ``refund.succeeded`` or
    ``refund.failed``; ``instant_failure = True`` makes the provider answer ``failed`` at once.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pending: dict[str, Refund] = {}
        self.instant_failure = False

    @hookimpl
    def gateway_refund(self, request: RefundRequest, context: OperationContext) -> Refund:
        def perform() -> Refund:
            payment = self._payment(request.payment_id)
            status = RefundStatus.FAILED if self.instant_failure else RefundStatus.PENDING
            refund = Refund(
                self.name, f"fake_re_{uuid.uuid4().hex[:24]}", payment.id, payment.amount, status, live=False
            )
            if status is RefundStatus.PENDING:
                self.pending[refund.id] = refund
            return refund

        return self._request(context, request, perform)  # type: ignore[no-any-return]

    def finish_refund(self, refund_id: str, *, succeeded: bool) -> None:
        with self._lock:
            refund = self.pending.pop(refund_id)
            payment = self._payments[refund.payment_id]
            if succeeded:
                payment.refunded = payment.refunded + refund.amount
                payment.state = PaymentState.REFUNDED
            event = EventType.REFUND_SUCCEEDED if succeeded else EventType.REFUND_FAILED
            self._emit(event, payment, refund_id=refund.id, amount=refund.amount)


_G = TypeVar("_G", bound=FakeGateway)


class _OneProvider:
    """Declares one fake provider whose gateways are ``gateway_class`` (a fake with a twist)."""

    def __init__(self, name: str, gateway_class: type[FakeGateway], description: str) -> None:
        self.definition = ProviderDefinition(
            name, default_capabilities(features=set(Feature)), gateway_class.from_settings, description
        )

    @hookimpl
    def gateway_providers(self) -> Sequence[ProviderDefinition]:
        return [self.definition]


def _service_on(plugin: _OneProvider, store: Store, clock: Clock) -> PaidEvents:
    """paid_events whose one gateway, ``bank``, is of ``plugin``'s provider."""
    bank_table = {"provider": plugin.definition.name, "settings": {"test_mode": True}}
    manager = manager_with({"bank": bank_table}, plugin, clock=clock)
    return PaidEvents(store, manager, pe_config.load()[0], clock=clock)


def _bank_of(service: PaidEvents, gateway_class: type[_G]) -> _G:
    obj = service.gateways.gateway_object("bank")
    assert isinstance(obj, gateway_class)
    return obj


@pytest.fixture
def slow(store: Store, clock: Clock) -> PaidEvents:
    return _service_on(_OneProvider("fake-slow-refunds", SlowRefunds, "pending refunds"), store, clock)


def bank(service: PaidEvents) -> SlowRefunds:
    return _bank_of(service, SlowRefunds)


def reg(store: Store, registration_id: str) -> RegistrationRow:
    with store.transaction() as s:
        row = s.get(RegistrationRow, registration_id)
        assert row is not None
        return row


def refund_calls(fake: FakeGateway) -> list[str | None]:
    return [key for operation, key in fake.requests if operation == "refund"]


# -- paid means confirmed by the provider --------------------------------------------------


def test_rejecting_before_payment_refunds_nothing_and_lets_the_event_go(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    result = service.checkout(event_id, "ann@example.com")
    assert reg(store, result.registration_id).payment_id is not None  # the checkout's intended payment...
    assert not service.participants(event_id)[0].paid  # ... is not a payment
    service.reject(result.registration_id, "not a member")
    fake = fake_of(service.gateways, "stripe-like")
    assert fake.checkout(result.checkout_id or "").status == "expired"  # closed: it cannot be paid now
    with pytest.raises(InvalidTransition, match="no confirmed payment"):
        service.refund(result.registration_id)
    assert service.refund_all(event_id) == []
    assert refund_calls(fake) == []
    assert service.fee_report(event_id).lines == ()
    service.cancel_event(event_id)
    with pytest.raises(InvalidTransition, match="not sent"):  # the rejection is still in the outbox
        service.delete_event(event_id)
    assert outbox.drain(store, Mailbox()) == 1
    service.delete_event(event_id)  # nothing paid, nothing unsent: the event can go


def test_a_payment_that_lands_after_rejection_is_paid_and_refundable(store: Store, clock: Clock) -> None:
    no_void = gateway_core.fake.provider("fake-no-void", default_capabilities(features=set(Feature) - {Feature.VOID}))
    manager = manager_with(
        {"novoid": {"provider": "fake-no-void", "settings": {"test_mode": True}}}, no_void, clock=clock
    )
    service = PaidEvents(store, manager, pe_config.load()[0], clock=clock)
    event_id = make_event(service, gateways=["novoid"])
    result = service.checkout(event_id, "ann@example.com")
    service.reject(result.registration_id)  # the checkout cannot be closed on this gateway
    assert pay(service, "novoid", result.checkout_id).count(WebhookOutcome.PROCESSED) == 1
    row = reg(store, result.registration_id)
    assert (row.status, row.paid_at is not None) == ("rejected", True)
    mailbox = Mailbox()
    outbox.drain(store, mailbox)
    # told it will be refunded (was: the rejection only, with no word about the money)
    assert [m.kind for m in mailbox.messages] == ["rejection", "paid_after_rejection"]
    with pytest.raises(InvalidTransition, match="unrefunded"):
        service.delete_event(event_id)
    assert [o.state for o in service.refund_all(event_id)] == ["refunded"]
    service.delete_event(event_id)


# -- the provider's refund status is kept -----------------------------------------------------


def test_a_pending_refund_stays_pending_until_the_provider_confirms_it(slow: PaidEvents, store: Store) -> None:
    event_id = make_event(slow, gateways=["bank"])
    result = slow.checkout(event_id, "ann@example.com")
    pay(slow, "bank", result.checkout_id)
    mailbox = Mailbox()
    outbox.drain(store, mailbox)
    outcome = slow.refund(result.registration_id)
    assert outcome.state == "pending"
    row = reg(store, result.registration_id)
    assert (row.refund_state, row.refund_id, row.status) == ("pending", outcome.refund_id, "confirmed")
    assert slow.admit(event_id, mailbox.token("ann@example.com"))  # not refunded yet
    assert slow.refund(result.registration_id).state == "pending"  # asking again polls; nothing is sent
    assert len(refund_calls(bank(slow))) == 1
    assert outcome.refund_id is not None
    bank(slow).finish_refund(outcome.refund_id, succeeded=True)
    assert deliver(slow, "bank") == [WebhookOutcome.PROCESSED]  # refund.succeeded
    row = reg(store, result.registration_id)
    assert (row.refund_state, row.status) == ("refunded", "refunded")
    assert not slow.admit(event_id, mailbox.token("ann@example.com"))
    assert slow.event(event_id).seats_taken == 0


def test_reconcile_polls_a_pending_refund_whose_webhook_was_missed(slow: PaidEvents, store: Store) -> None:
    event_id = make_event(slow, gateways=["bank"])
    result = slow.checkout(event_id, "ann@example.com")
    pay(slow, "bank", result.checkout_id)
    refund_id = slow.refund(result.registration_id).refund_id
    assert refund_id is not None
    report = slow.reconcile()
    assert (report.refunds_pending, report.refunds_completed) == (1, 0)
    bank(slow).finish_refund(refund_id, succeeded=True)  # its webhook never arrives
    report = slow.reconcile()
    assert (report.refunds_pending, report.refunds_completed) == (0, 1)
    assert reg(store, result.registration_id).refund_state == "refunded"
    assert len(refund_calls(bank(slow))) == 1


def test_a_refund_that_fails_at_the_provider_can_be_asked_again_under_a_new_key(slow: PaidEvents, store: Store) -> None:
    event_id = make_event(slow, gateways=["bank"])
    result = slow.checkout(event_id, "ann@example.com")
    pay(slow, "bank", result.checkout_id)
    first = slow.refund(result.registration_id)
    assert first.refund_id is not None
    bank(slow).finish_refund(first.refund_id, succeeded=False)
    assert deliver(slow, "bank") == [WebhookOutcome.PROCESSED]  # refund.failed
    row = reg(store, result.registration_id)
    assert (row.refund_state, row.status) == ("failed", "confirmed")
    assert [o.registration_id for o in slow.refund_all(event_id)] == [result.registration_id]  # refundable again
    keys = refund_calls(bank(slow))
    assert len(keys) == 2
    assert keys[0] != keys[1]  # the same key would only return the failed refund
    second = reg(store, result.registration_id)
    assert second.refund_state == "pending"
    assert second.refund_id is not None
    assert second.refund_id != first.refund_id
    bank(slow).finish_refund(second.refund_id, succeeded=True)
    deliver(slow, "bank")
    assert reg(store, result.registration_id).refund_state == "refunded"


def test_a_refund_the_provider_refuses_at_once_is_recorded_failed(slow: PaidEvents, store: Store) -> None:
    event_id = make_event(slow, gateways=["bank"])
    result = slow.checkout(event_id, "ann@example.com")
    pay(slow, "bank", result.checkout_id)
    bank(slow).instant_failure = True
    outcome = slow.refund(result.registration_id)
    assert outcome.state == "failed"
    assert outcome.error is not None
    row = reg(store, result.registration_id)
    assert (row.refund_state, row.status, row.token_hash is not None) == ("failed", "confirmed", True)
    assert slow.event(event_id).seats_taken == 1
    assert slow.fee_report(event_id).total_fee == eur("1.00")  # still the platform's until refunded


def test_a_second_caller_while_a_refund_is_in_flight_sends_nothing(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    result = service.checkout(event_id, "ann@example.com")
    pay(service, "stripe-like", result.checkout_id)
    with store.transaction() as s:  # a first caller's request is on its way to the provider
        s.execute(sa.update(RegistrationRow).values(refund_state="requested", refund_requested_at=service.clock()))
    assert service.refund(result.registration_id).state == "in_progress"
    assert refund_calls(fake_of(service.gateways, "stripe-like")) == []


def test_a_refund_the_bank_returns_later_is_refunded_again_under_a_new_key(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    result = service.checkout(event_id, "ann@example.com")
    pay(service, "stripe-like", result.checkout_id)
    fake = fake_of(service.gateways, "stripe-like")
    first = service.refund(result.registration_id)
    assert first.state == "refunded"
    assert first.refund_id is not None
    deliver(service, "stripe-like")  # refund.succeeded: nothing more
    fake.fail_refund(first.refund_id)  # the payer's bank sends the money back
    assert deliver(service, "stripe-like") == [WebhookOutcome.PROCESSED]  # refund.failed
    assert reg(store, result.registration_id).refund_state == "failed"
    with pytest.raises(InvalidTransition, match="unrefunded"):
        service.delete_event(event_id)
    again = service.refund_all(event_id)
    assert [o.state for o in again] == ["refunded"]
    assert again[0].refund_id != first.refund_id
    keys = refund_calls(fake)
    assert len(keys) == len(set(keys)) == 2
    assert fake.refunds_made() == 2
    assert service.refund(result.registration_id).state == "already_refunded"


# -- refunds made at the provider, outside the platform ----------------------------------------


def test_a_partial_refund_at_the_provider_leaves_the_rest_for_refund_all(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    result = service.checkout(event_id, "ann@example.com", gateway="stripe-like")
    pay(service, "stripe-like", result.checkout_id)
    mailbox = Mailbox()
    outbox.drain(store, mailbox)
    payment_id = reg(store, result.registration_id).payment_id
    assert payment_id is not None
    # the organizer refunds 5 of the 20 EUR in the provider's dashboard (a goodwill gesture)
    service.gateways.refund("stripe-like", RefundRequest(payment_id, amount=eur("5")), operation_id="dashboard-1")
    assert deliver(service, "stripe-like") == [WebhookOutcome.IGNORED]  # refund.succeeded, for 5 EUR only
    row = reg(store, result.registration_id)
    assert (row.status, row.refund_state) == ("confirmed", "none")  # still a ticket, 15 EUR still paid
    assert service.admit(event_id, mailbox.token("ann@example.com"))
    assert service.event(event_id).seats_taken == 1
    service.cancel_event(event_id)
    outcomes = service.refund_all(event_id)
    assert [(o.state, o.amount) for o in outcomes] == [("refunded", eur("15"))]  # what this refund returned
    assert service.gateways.payment_status("stripe-like", payment_id).amount_refunded == eur("20")
    deliver(service, "stripe-like")
    assert reg(store, result.registration_id).refund_state == "refunded"
    assert service.refund(result.registration_id).state == "already_refunded"


def test_partial_refunds_at_the_provider_that_add_up_to_the_price_refund_it(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    result = service.checkout(event_id, "ann@example.com", gateway="stripe-like")
    pay(service, "stripe-like", result.checkout_id)
    payment_id = reg(store, result.registration_id).payment_id
    assert payment_id is not None
    for n, (part, outcome) in enumerate((("5", WebhookOutcome.IGNORED), ("15", WebhookOutcome.PROCESSED))):
        service.gateways.refund("stripe-like", RefundRequest(payment_id, amount=eur(part)), operation_id=f"dash-{n}")
        assert deliver(service, "stripe-like") == [outcome]  # the second: 15 EUR, and 20 EUR refunded in all
    row = reg(store, result.registration_id)
    assert (row.status, row.refund_state) == ("refunded", "refunded")
    assert service.event(event_id).seats_taken == 0
    assert service.refund_all(event_id) == []
    assert len(refund_calls(fake_of(service.gateways, "stripe-like"))) == 2  # the two made in the dashboard


class NothingRemains(FakeGateway):
    """A fake that refuses to refund a payment refunded in full as Stripe or PayPal does.

    ``provider_code``: Stripe answers ``charge_already_refunded``, PayPal ``CAPTURE_FULLY_REFUNDED``
    ("The capture has already been fully refunded", developer.paypal.com/api/payments/v2/errors);
    their plugins raise ``AmountOutOfRange`` for both (stripe_gateway/errors.py,
    paypal_gateway/errors.py). ``None`` keeps the fake's own ``InvalidRequest``, the shape the
    conformance suite asks of every gateway. ``refusals`` are raised first, one a request.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.provider_code: str | None = None
        self.refusals: list[Exception] = []

    @hookimpl
    def gateway_refund(self, request: RefundRequest, context: OperationContext) -> Refund:
        if self.refusals:
            with self._lock:
                self.requests.append(("refund", context.idempotency_key))
            raise self.refusals.pop(0)
        try:
            return FakeGateway.gateway_refund(self, request, context)
        except InvalidRequest as exc:
            if self.provider_code is None or self.status(request.payment_id).state is not PaymentState.REFUNDED:
                raise
            raise AmountOutOfRange(
                f"fake: {self.provider_code}: nothing remains to refund",
                gateway=self.name,
                provider_code=self.provider_code,
                http_status=400 if self.provider_code == "charge_already_refunded" else 422,  # Stripe's, PayPal's
            ) from exc


def nothing_remains(store: Store, clock: Clock, provider_code: str | None) -> tuple[PaidEvents, NothingRemains]:
    """paid_events on a ``bank`` of :class:`NothingRemains`, refusing as ``provider_code`` says."""
    service = _service_on(_OneProvider("fake-nothing-remains", NothingRemains, "refunded is refused"), store, clock)
    provider = _bank_of(service, NothingRemains)
    provider.provider_code = provider_code
    return service, provider


def refunded_elsewhere(service: PaidEvents, store: Store, amount: Money | None = None) -> tuple[str, str, str]:
    """Ann's paid ticket on ``bank``, then refunded (``amount`` of it, or all) in the provider's dashboard.

    The dashboard refund's webhook is lost (no endpoint, or its retries ran out): paid_events
    knows nothing of it. Returns (event id, registration id, payment id).
    """
    event_id = make_event(service, gateways=["bank"])
    result = service.checkout(event_id, "ann@example.com")
    pay(service, "bank", result.checkout_id)
    payment_id = reg(store, result.registration_id).payment_id
    assert payment_id is not None
    service.gateways.refund("bank", RefundRequest(payment_id, amount=amount), operation_id="dashboard-1")
    _bank_of(service, FakeGateway).drain_webhooks()  # lost
    return event_id, result.registration_id, payment_id


@pytest.mark.parametrize(
    "provider_code", [None, "charge_already_refunded", "CAPTURE_FULLY_REFUNDED"], ids=["fake", "stripe", "paypal"]
)
def test_a_payment_refunded_in_full_at_the_provider_is_already_refunded(
    store: Store, clock: Clock, provider_code: str | None
) -> None:
    service, provider = nothing_remains(store, clock, provider_code)
    mailbox = Mailbox()
    event_id, registration_id, payment_id = refunded_elsewhere(service, store)
    outbox.drain(store, mailbox)
    outcome = service.refund(registration_id)  # refused: nothing remains
    assert (outcome.state, outcome.amount, outcome.error) == ("already_refunded", eur("20"), None)  # was "failed"
    row = reg(store, registration_id)
    assert (row.refund_state, row.status, row.token_hash) == ("refunded", "refunded", None)
    assert not service.admit(event_id, mailbox.token("ann@example.com"))
    assert service.event(event_id).seats_taken == 0
    assert service.refund_all(event_id) == []  # nothing left to ask
    report = service.reconcile()
    assert (report.refunds_failed, report.refunds_unknown, report.refunds_pending) == (0, 0, 0)
    assert service.refund(registration_id).state == "already_refunded"
    assert len(refund_calls(provider)) == 2  # the dashboard's, and the one refused: never a new key
    assert provider.refunds_made() == 1
    assert service.gateways.payment_status("bank", payment_id).amount_refunded == eur("20")


def test_a_refusal_of_a_payment_refunded_in_part_at_the_provider_says_so(store: Store, clock: Clock) -> None:
    service, provider = nothing_remains(store, clock, "CAPTURE_FULLY_REFUNDED")
    event_id, registration_id, payment_id = refunded_elsewhere(service, store, eur("5"))
    # PayPal caps the refunds of one capture (MAX_NUMBER_OF_REFUNDS_EXCEEDED, an AmountOutOfRange
    # in paypal_gateway/errors.py): support made too many partial ones in the dashboard
    provider.refusals = [
        AmountOutOfRange("fake: too many refunds of this capture", provider_code="MAX_NUMBER_OF_REFUNDS_EXCEEDED")
    ]
    outcome = service.refund(registration_id)
    assert outcome.state == "failed"  # 15 EUR was never given back: not refunded
    assert outcome.error is not None
    assert outcome.error.startswith("AmountOutOfRange: fake: too many refunds")
    assert "MAX_NUMBER_OF_REFUNDS_EXCEEDED" in outcome.error
    assert "status shows 5.00 EUR of the 20.00 EUR price refunded (payment partially_refunded)" in outcome.error
    row = reg(store, registration_id)
    assert (row.refund_state, row.status) == ("failed", "confirmed")  # the ticket stands
    # the organizer has PayPal lift the cap and asks again: the rest goes back, under a new key
    assert [(o.state, o.amount) for o in service.refund_all(event_id)] == [("refunded", eur("15"))]
    assert service.gateways.payment_status("bank", payment_id).amount_refunded == eur("20")
    keys = refund_calls(provider)
    assert len(keys) == len(set(keys)) == 3


def test_a_refusal_whose_status_cannot_be_read_is_not_taken_for_a_refund(store: Store, clock: Clock) -> None:
    service, provider = nothing_remains(store, clock, "charge_already_refunded")
    event_id, registration_id, payment_id = refunded_elsewhere(service, store)
    provider.script(Scripted(Outcome.UNAVAILABLE, "status"))  # the provider's status API is down once
    outcome = service.refund(registration_id)
    assert outcome.state == "failed"  # never "refunded" on the provider's refusal alone
    assert outcome.error is not None
    assert outcome.error.startswith("AmountOutOfRange: fake: charge_already_refunded")
    assert "status, which tells whether it is refunded already, could not be read (GatewayUnavailable:" in (
        outcome.error
    )
    row = reg(store, registration_id)
    assert (row.refund_state, row.status) == ("failed", "confirmed")
    assert service.event(event_id).seats_taken == 1
    # asked again (the refusal proved the first key refunded nothing): refused again, status read
    assert [o.state for o in service.refund_all(event_id)] == ["already_refunded"]
    assert reg(store, registration_id).refund_state == "refunded"
    assert provider.refunds_made() == 1
    assert service.gateways.payment_status("bank", payment_id).amount_refunded == eur("20")
    assert service.refund_all(event_id) == []
    assert len(refund_calls(provider)) == 3  # the dashboard's and two refused


def test_a_re_send_refused_as_nothing_remains_is_refunded(store: Store, clock: Clock) -> None:
    service, provider = nothing_remains(store, clock, "charge_already_refunded")
    _, registration_id, _ = refunded_elsewhere(service, store)
    with store.transaction() as s:  # an earlier refund() died in flight: its outcome is unknown
        s.execute(sa.update(RegistrationRow).values(refund_state="requested", refund_requested_at=None))
    provider.script(Scripted(Outcome.UNAVAILABLE, "status"))  # the read before the re-send fails
    outcome = service.refund(registration_id)  # re-sent under its key, refused, the status read
    assert (outcome.state, outcome.error) == ("refunded", None)  # was "unknown", until a later read
    assert reg(store, registration_id).refund_state == "refunded"
    assert len(refund_calls(provider)) == 2  # the dashboard's and the re-send


@pytest.mark.parametrize("expired_first", [False, True], ids=["pending", "hold-expired"])
def test_a_payment_that_lands_after_cancellation_gets_no_ticket_and_is_refundable(
    service: PaidEvents, store: Store, expired_first: bool
) -> None:
    event_id = make_event(service)
    result = service.checkout(event_id, "ann@example.com", gateway="stripe-like")
    fake = fake_of(service.gateways, "stripe-like")
    assert result.checkout_id is not None
    fake.complete_checkout(result.checkout_id)  # the payer pays as the organizer cancels
    if expired_first:  # its hold lapsed and was released before the webhooks arrive
        with store.transaction() as s:
            s.execute(sa.update(RegistrationRow).values(status="expired"))
            s.execute(sa.text("UPDATE pe_events SET seats_taken = 0"))
    service.cancel_event(event_id)  # too late to close the checkout: it is paid
    # reported by both its webhooks, each delivered twice, then by a status check and a sweep
    for delivery in fake.drain_webhooks(duplicate=True):
        service.handle_webhook("stripe-like", delivery.headers, delivery.body)
    assert service.check_payment(result.registration_id) == "paid_no_seat"
    service.reconcile()
    row = reg(store, result.registration_id)
    assert (row.status, row.paid_at is not None, row.token_hash) == ("paid_no_seat", True, None)
    mailbox = Mailbox()
    outbox.drain(store, mailbox)
    # no ticket; the payer is told once (was not told at all: nor was an expired one of the cancellation)
    assert [m.kind for m in mailbox.messages] == ([] if expired_first else ["cancellation"]) + ["paid_no_seat"]
    assert (mailbox.messages[-1].subject, mailbox.messages[-1].body) == (
        "Your payment for Pricing webinar will be refunded",
        "Your payment of 20.00 EUR for Pricing webinar arrived after the organizer cancelled the event, "
        "so there is no seat for this payment. The organizer will refund your payment.",
    )
    assert service.event(event_id).seats_taken == 0
    assert [(o.state, o.amount) for o in service.refund_all(event_id)] == [("refunded", eur("20"))]
    deliver(service, "stripe-like")
    service.delete_event(event_id)


def test_a_refund_succeeded_delivered_after_its_failure_does_not_mark_it_refunded(
    service: PaidEvents, store: Store
) -> None:
    event_id = make_event(service)
    result = service.checkout(event_id, "ann@example.com", gateway="stripe-like")
    pay(service, "stripe-like", result.checkout_id)
    fake = fake_of(service.gateways, "stripe-like")
    first = service.refund(result.registration_id)
    assert (first.state, first.refund_id is not None) == ("refunded", True)
    fake.fail_refund(first.refund_id or "")  # the payer's bank sends the money back
    # the provider's two webhooks arrive out of order: refund.failed, then refund.succeeded
    outcomes = [service.handle_webhook("stripe-like", d.headers, d.body) for d in fake.drain_webhooks(reverse=True)]
    assert outcomes == [WebhookOutcome.PROCESSED, WebhookOutcome.IGNORED]
    assert reg(store, result.registration_id).refund_state == "failed"  # the payer still has no money back
    assert [o.state for o in service.refund_all(event_id)] == ["refunded"]
    assert fake.refunds_made() == 2


def test_a_refund_webhook_that_overtakes_the_payments_gives_no_ticket(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    result = service.checkout(event_id, "ann@example.com", gateway="stripe-like")
    fake = fake_of(service.gateways, "stripe-like")
    status = fake.complete_checkout(result.checkout_id or "")
    # the organizer refunds it at once in the provider's dashboard; the webhooks arrive in reverse
    service.gateways.refund("stripe-like", RefundRequest(status.payment_id), operation_id="dashboard-1")
    deliveries = fake.drain_webhooks(reverse=True)
    assert deliveries[0].type == "refund.succeeded"
    for d in deliveries:
        service.handle_webhook("stripe-like", d.headers, d.body)
    row = reg(store, result.registration_id)
    assert (row.status, row.refund_state, row.paid_at is not None, row.token_hash) == (
        "refunded",
        "refunded",
        True,
        None,
    )
    assert service.event(event_id).seats_taken == 0
    mailbox = Mailbox()
    outbox.drain(store, mailbox)
    assert mailbox.messages == []  # no ticket for a payment already refunded
    assert service.refund_all(event_id) == []
    assert service.fee_report(event_id).lines == ()


class _WebhookFirst(SlowRefunds):
    """A bank whose pending refund settles, and whose webhook is handled, before its answer returns."""

    deliver_now: Any = None

    @hookimpl
    def gateway_refund(self, request: RefundRequest, context: OperationContext) -> Refund:
        refund = super().gateway_refund(request, context)
        self.finish_refund(refund.id, succeeded=True)
        if self.deliver_now is not None:
            self.deliver_now()
        return refund


class _WebhookFirstPlugin:
    @hookimpl
    def gateway_providers(self) -> Sequence[ProviderDefinition]:
        caps = default_capabilities(features=set(Feature))
        return [ProviderDefinition("fake-webhook-first", caps, _WebhookFirst.from_settings, "webhook first")]


def test_a_refund_settled_by_its_webhook_before_the_call_returns_is_reported_refunded(
    store: Store, clock: Clock
) -> None:
    manager = manager_with(
        {"bank": {"provider": "fake-webhook-first", "settings": {"test_mode": True}}},
        _WebhookFirstPlugin(),
        clock=clock,
    )
    service = PaidEvents(store, manager, pe_config.load()[0], clock=clock)
    event_id = make_event(service, gateways=["bank"])
    result = service.checkout(event_id, "ann@example.com")
    pay(service, "bank", result.checkout_id)
    fake = manager.gateway_object("bank")
    assert isinstance(fake, _WebhookFirst)
    fake.deliver_now = lambda: deliver(service, "bank")
    outcome = service.refund(result.registration_id)  # the provider answers "pending", but it is done
    assert reg(store, result.registration_id).refund_state == "refunded"
    assert outcome.state == "refunded"  # was "pending", for a refund already settled


# -- a refund whose outcome the provider cannot tell ------------------------------------------


class FiveHundredRefunds(SlowRefunds):
    """Refunds that answer a 500 after they were made, as Stripe can on a POST.

    The error is ``OutcomeUnknown`` with ``retryable=False``: Stripe saves the 500 for the
    idempotency key and replays it to a retry with that key. ``immediate`` refunds at once (the
    payment's refunded total shows it); otherwise the refund is pending (a bank transfer) and the
    total shows nothing until :meth:`SlowRefunds.finish_refund`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.immediate = False
        self.saved_500: dict[str | None, OutcomeUnknown] = {}
        self.keys: list[str | None] = []  # every refund request's idempotency key, replays included

    @hookimpl
    def gateway_refund(self, request: RefundRequest, context: OperationContext) -> Refund:
        key = context.idempotency_key
        self.keys.append(key)
        if key in self.saved_500:
            raise self.saved_500[key]
        if self.immediate:
            FakeGateway.gateway_refund(self, request, context)
        else:
            SlowRefunds.gateway_refund(self, request, context)
        self.saved_500[key] = OutcomeUnknown(
            "fake: 500 Internal Server Error", gateway=self.name, http_status=500, retryable=False
        )
        raise self.saved_500[key]


@pytest.fixture
def flaky(store: Store, clock: Clock) -> PaidEvents:
    return _service_on(_OneProvider("fake-500-refunds", FiveHundredRefunds, "refunds answer 500"), store, clock)


def five_hundred(service: PaidEvents) -> FiveHundredRefunds:
    return _bank_of(service, FiveHundredRefunds)


def test_a_refund_whose_outcome_is_unknown_is_never_asked_again_under_a_new_key(
    flaky: PaidEvents, store: Store
) -> None:
    event_id = make_event(flaky, gateways=["bank"])
    result = flaky.checkout(event_id, "ann@example.com")
    pay(flaky, "bank", result.checkout_id)
    provider = five_hundred(flaky)
    first = flaky.refund(result.registration_id)
    assert first.state == "unknown"  # not "failed": the refund may have been made (it was)
    assert reg(store, result.registration_id).refund_state == "requested"
    assert flaky.refund(result.registration_id).state == "unknown"  # the refunded total shows nothing yet
    assert flaky.reconcile().refunds_unknown == 1
    assert len(provider.keys) == 3
    assert len(set(provider.keys)) == 1  # one key: the provider replays its 500
    assert len(provider.pending) == 1  # one refund at the provider, never a second
    (refund_id,) = provider.pending
    provider.finish_refund(refund_id, succeeded=True)
    assert deliver(flaky, "bank") == [WebhookOutcome.PROCESSED]  # refund.succeeded
    row = reg(store, result.registration_id)
    assert (row.refund_state, row.status) == ("refunded", "refunded")
    assert flaky.refund(result.registration_id).state == "already_refunded"
    assert len(provider.keys) == 3


def test_a_refund_whose_outcome_is_unknown_is_settled_by_the_payments_refunded_total(
    flaky: PaidEvents, store: Store
) -> None:
    event_id = make_event(flaky, gateways=["bank"])
    result = flaky.checkout(event_id, "ann@example.com")
    pay(flaky, "bank", result.checkout_id)
    provider = five_hundred(flaky)
    provider.immediate = True
    assert flaky.refund(result.registration_id).state == "unknown"
    again = flaky.refund(result.registration_id)  # the status says the money went back: nothing is sent
    assert (again.state, again.amount) == ("refunded", eur("20"))
    assert len(provider.keys) == 1
    row = reg(store, result.registration_id)
    assert (row.refund_state, row.status) == ("refunded", "refunded")
    assert flaky.event(event_id).seats_taken == 0


# -- only an error that proves no refund was made is a failure ---------------------------------


class TrippingRefunds(SlowRefunds):
    """Pending refunds (a bank transfer's) through a plugin that trips up.

    ``before`` holds one entry a request: raised before anything is sent (``None``: sent).
    ``after`` is raised every time the provider has made the refund, replays of its key included,
    as by a plugin that cannot read the provider's answer. ``keys`` has every request's key.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.before: list[Exception | None] = []
        self.after: Exception | None = None
        self.keys: list[str | None] = []

    @hookimpl
    def gateway_refund(self, request: RefundRequest, context: OperationContext) -> Refund:
        self.keys.append(context.idempotency_key)
        if self.before and (refusal := self.before.pop(0)) is not None:
            raise refusal
        refund = super().gateway_refund(request, context)
        if self.after is not None:
            raise self.after
        return refund


class _UnreadableAnswer(GatewayError):
    """A plugin's own error class, which paid_events knows nothing about."""


@pytest.fixture
def tripping(store: Store, clock: Clock) -> PaidEvents:
    return _service_on(_OneProvider("fake-tripping-refunds", TrippingRefunds, "plugin trips up"), store, clock)


def paid_ticket(service: PaidEvents) -> tuple[str, str, TrippingRefunds]:
    """An event on ``bank`` and ann's paid registration: (event id, registration id, the bank)."""
    event_id = make_event(service, gateways=["bank"])
    result = service.checkout(event_id, "ann@example.com")
    pay(service, "bank", result.checkout_id)
    return event_id, result.registration_id, _bank_of(service, TrippingRefunds)


def settle_once(service: PaidEvents, store: Store, registration_id: str, provider: TrippingRefunds) -> None:
    """The provider's one refund finishes; its webhook refunds the registration, and 20 EUR went back."""
    (refund_id,) = provider.pending  # one refund at the provider, never a second
    provider.finish_refund(refund_id, succeeded=True)
    assert deliver(service, "bank") == [WebhookOutcome.PROCESSED]  # refund.succeeded
    row = reg(store, registration_id)
    assert (row.refund_state, row.status) == ("refunded", "refunded")
    assert row.payment_id is not None
    assert service.gateways.payment_status("bank", row.payment_id).amount_refunded == eur("20")
    assert service.refund(registration_id).state == "already_refunded"


@pytest.mark.parametrize(
    ("after", "reported"),
    [
        (KeyError("status"), "GatewayError: gateway plugin raised KeyError"),  # the core's bare, unmapped one
        (_UnreadableAnswer("fake: the refund's answer has no status"), "_UnreadableAnswer:"),
        (InvalidAmount("fake: the answer's amount is off the wire step"), "InvalidAmount:"),
        (PermissionDenied("fake: no permission to read the refund made"), "PermissionDenied:"),
    ],
    ids=["unmapped", "unknown-subclass", "invalid-amount-read", "permission-denied-read"],
)
def test_a_refund_that_ends_in_an_error_it_does_not_prove_is_made_once(
    tripping: PaidEvents, store: Store, after: Exception, reported: str
) -> None:
    event_id, registration_id, provider = paid_ticket(tripping)
    provider.after = after
    first = tripping.refund(registration_id)
    assert first.state == "unknown"  # was "failed", and the next refund went out under a new key
    assert first.error is not None
    assert first.error.startswith(reported)
    row = reg(store, registration_id)
    assert (row.refund_state, row.status) == ("requested", "confirmed")  # the ticket stands until settled
    assert tripping.refund(registration_id).state == "unknown"  # the refunded total shows nothing yet
    assert [o.state for o in tripping.refund_all(event_id)] == ["unknown"]
    assert tripping.reconcile().refunds_unknown == 1
    assert len(provider.keys) == 4
    assert len(set(provider.keys)) == 1  # every re-send under the first key
    settle_once(tripping, store, registration_id, provider)
    assert len(provider.keys) == 4


@pytest.mark.parametrize(
    "refusal",
    [
        InvalidRequest("fake: a refund needs a request id"),
        PaymentDeclined("fake: the refund was declined", provider_code="refund_declined"),
        CapabilityNotSupported("fake: refunds are switched off"),
        ConfigurationError("fake: the refund account is not set up"),
    ],
    ids=["invalid-request", "declined", "not-supported", "configuration"],
)
def test_a_refund_refused_before_it_was_made_is_asked_again_under_a_new_key(
    tripping: PaidEvents, store: Store, refusal: Exception
) -> None:
    _, registration_id, provider = paid_ticket(tripping)
    provider.before = [refusal]
    first = tripping.refund(registration_id)
    assert (first.state, reg(store, registration_id).refund_state) == ("failed", "failed")
    assert first.error is not None
    assert type(refusal).__name__ in first.error
    assert provider.pending == {}  # nothing was made
    assert tripping.refund(registration_id).state == "pending"  # the organizer asks again: sent
    assert len(provider.keys) == len(set(provider.keys)) == 2  # under a new key
    settle_once(tripping, store, registration_id, provider)


def test_a_re_send_refused_before_it_was_sent_keeps_the_first_key(tripping: PaidEvents, store: Store) -> None:
    _, registration_id, provider = paid_ticket(tripping)
    provider.after = KeyError("status")
    assert tripping.refund(registration_id).state == "unknown"  # the refund was made
    provider.after = None
    provider.before = [ConfigurationError("fake: the gateway's settings are broken")]  # the operator's slip
    assert tripping.refund(registration_id).state == "unknown"  # not "failed": the first may have refunded
    assert tripping.refund(registration_id).state == "pending"  # fixed: the first key replays the refund
    assert len(provider.keys) == 3
    assert len(set(provider.keys)) == 1
    settle_once(tripping, store, registration_id, provider)


def test_a_refusal_after_a_retried_lost_answer_keeps_the_key(tripping: PaidEvents, store: Store) -> None:
    _, registration_id, provider = paid_ticket(tripping)
    # the first request times out after the provider made the refund; its retry, with the same
    # key, is refused before it is sent
    provider.script(Scripted(Outcome.TIMEOUT_AFTER_SUCCESS, "refund"))
    provider.before = [None, InvalidRequest("fake: a refund needs a request id")]
    assert tripping.refund(registration_id).state == "unknown"
    assert tripping.refund(registration_id).state == "pending"  # re-sent: the first key replays the refund
    assert len(provider.keys) == 3
    assert len(set(provider.keys)) == 1
    settle_once(tripping, store, registration_id, provider)


def test_a_status_outage_while_polling_one_pending_refund_does_not_stop_refund_all(
    slow: PaidEvents, store: Store
) -> None:
    event_id = make_event(slow, gateways=["bank"])
    ids = []
    for email in ("ann@example.com", "bob@example.com"):
        result = slow.checkout(event_id, email)
        pay(slow, "bank", result.checkout_id)
        ids.append(result.registration_id)
    assert [o.state for o in slow.refund_all(event_id)] == ["pending", "pending"]
    bank(slow).script(Scripted(Outcome.UNAVAILABLE, "status"))  # the provider's status API is down once
    progress: list[int] = []
    outcomes = slow.refund_all(event_id, lambda done, _total, _o: progress.append(done))
    assert progress == [1, 2]  # the bulk refund went on past the outage
    assert sorted(o.registration_id for o in outcomes) == sorted(ids)
    assert [o.state for o in outcomes] == ["pending", "pending"]
    assert outcomes[0].error is not None  # the first one polled met the outage
    assert "GatewayUnavailable" in outcomes[0].error
    assert outcomes[1].error is None
    assert len(refund_calls(bank(slow))) == 2  # polling sends nothing
    for registration_id in ids:
        assert reg(store, registration_id).refund_state == "pending"
