"""A gateway whose approved checkout moves money only once the host captures it (PayPal).

The example configuration's "paypal-like" fake declares ``host_completes_checkout = true`` and
behaves as PayPal does: ``complete_checkout`` only approves (``checkout.completed``, the payment
``PENDING`` and uncaptured) and ``capture(CaptureRequest(checkout_id))`` moves the money. paid_events
captures such a checkout under ``capture:<registration id>``, once, and confirms it; it never
captures for a lapsed hold or a cancelled event, nor on a gateway that captures by itself.
"""

from __future__ import annotations

import pytest
from paid_events.service import PaidEvents, WebhookOutcome
from paid_events.store import RegistrationRow, Store

from gateway_core import CaptureRequest, GatewayUnavailable, PaymentState
from gateway_core.fake import FakeGateway, Outcome, Scripted

from .conftest import Clock
from .helpers import deliver, eur, fake_of, make_event
from .test_concurrency import run_together

PAYPAL = "paypal-like"


def registration(store: Store, registration_id: str) -> RegistrationRow:
    with store.transaction() as s:
        row = s.get(RegistrationRow, registration_id)
        assert row is not None
        return row


def captures(fake: FakeGateway) -> list[str | None]:
    """The idempotency keys of the capture requests that reached the fake."""
    return [key for operation, key in fake.requests if operation == "capture"]


def approved(service: PaidEvents, gateway: str = PAYPAL) -> tuple[str, str, FakeGateway]:
    """A registration whose payer approved its checkout on ``gateway`` (its webhooks not delivered yet)."""
    event_id = make_event(service, gateways=[gateway])
    result = service.checkout(event_id, "ada@example.org", gateway=gateway)
    assert result.checkout_id is not None
    fake = fake_of(service.gateways, gateway)
    fake.complete_checkout(result.checkout_id)
    return event_id, result.registration_id, fake


def test_the_example_paypal_like_gateway_needs_the_host_to_capture(service: PaidEvents) -> None:
    assert service.gateways.gateway(PAYPAL).capabilities.host_completes_checkout
    assert not service.gateways.gateway("stripe-like").capabilities.host_completes_checkout
    _, registration_id, fake = approved(service)
    reg = registration(service.store, registration_id)
    assert reg.checkout_id is not None
    assert fake.pending_webhooks() == ["checkout.completed"]  # approved: no money moved
    assert service.gateways.payment_status(PAYPAL, reg.checkout_id).state is PaymentState.PENDING


def test_checkout_completed_captures_once_and_confirms(service: PaidEvents) -> None:
    event_id, registration_id, fake = approved(service)
    assert deliver(service, PAYPAL) == [WebhookOutcome.PROCESSED]
    reg = registration(service.store, registration_id)
    assert reg.status == "confirmed"
    assert reg.paid_at is not None
    assert len(captures(fake)) == 1
    assert reg.checkout_id is not None
    # It was sent as capture:<registration id>: the same operation id replays it, capturing nothing more.
    again = service.gateways.capture(PAYPAL, CaptureRequest(reg.checkout_id), operation_id=f"capture:{registration_id}")
    assert again.amount == eur("20")
    assert fake.pending_webhooks() == ["payment.succeeded"]
    assert len(set(captures(fake))) == 1
    status = service.gateways.payment_status(PAYPAL, reg.checkout_id)
    assert status.state is PaymentState.SUCCEEDED
    assert status.amount_captured == eur("20")
    # The capture's own payment.succeeded changes nothing more; reconcile captures nothing again.
    assert deliver(service, PAYPAL) == [WebhookOutcome.IGNORED]
    assert service.reconcile().confirmed == 0
    assert len(set(captures(fake))) == 1
    assert service.event(event_id).seats_taken == 1


def test_a_redelivered_checkout_completed_captures_once(service: PaidEvents) -> None:
    _, registration_id, fake = approved(service)
    outcomes = [service.handle_webhook(PAYPAL, d.headers, d.body) for d in fake.drain_webhooks(duplicate=True)]
    assert outcomes == [WebhookOutcome.PROCESSED, WebhookOutcome.DUPLICATE]
    assert registration(service.store, registration_id).status == "confirmed"
    assert fake.pending_webhooks() == ["payment.succeeded"]  # the money moved once
    keys = captures(fake)
    assert len(set(keys)) == 1  # a repeat (if any reached the provider) had the same key


def test_concurrent_deliveries_capture_once(service: PaidEvents) -> None:
    _, registration_id, fake = approved(service)
    (delivery,) = fake.drain_webhooks()
    results = run_together(4, [lambda: service.handle_webhook(PAYPAL, delivery.headers, delivery.body)] * 4)
    assert sorted(str(r) for r in results) == sorted(
        [str(WebhookOutcome.PROCESSED)] + [str(WebhookOutcome.DUPLICATE)] * 3
    )
    assert registration(service.store, registration_id).status == "confirmed"
    assert fake.pending_webhooks() == ["payment.succeeded"]  # one capture moved the money
    assert len(set(captures(fake))) == 1
    reg = registration(service.store, registration_id)
    assert reg.checkout_id is not None
    assert service.gateways.payment_status(PAYPAL, reg.checkout_id).amount_captured == eur("20")


def test_reconcile_captures_an_approval_whose_webhook_was_missed(service: PaidEvents) -> None:
    _, registration_id, fake = approved(service)
    fake.drain_webhooks()  # lost
    assert service.reconcile().confirmed == 1
    assert registration(service.store, registration_id).status == "confirmed"
    assert len(captures(fake)) == 1


def test_check_payment_captures_when_the_payer_returns(service: PaidEvents) -> None:
    _, registration_id, fake = approved(service)
    assert service.check_payment(registration_id) == "confirmed"
    assert len(captures(fake)) == 1


def test_a_capture_before_approval_keeps_the_registration_pending(service: PaidEvents) -> None:
    event_id = make_event(service, gateways=[PAYPAL])
    result = service.checkout(event_id, "ada@example.org", gateway=PAYPAL)
    assert service.reconcile().still_pending == 1  # AuthenticationRequired: not approved yet
    assert registration(service.store, result.registration_id).status == "pending"
    assert result.checkout_id is not None
    fake = fake_of(service.gateways, PAYPAL)
    fake.complete_checkout(result.checkout_id)  # the same key captures once the payer approved
    assert service.reconcile().confirmed == 1
    assert registration(service.store, result.registration_id).status == "confirmed"


def test_a_capture_error_keeps_it_pending_and_a_later_sweep_confirms(service: PaidEvents) -> None:
    _, registration_id, fake = approved(service)
    (delivery,) = fake.drain_webhooks()
    fake.script(Scripted(Outcome.UNAVAILABLE, "capture"))
    with pytest.raises(GatewayUnavailable):  # nothing recorded: the provider delivers it again
        service.handle_webhook(PAYPAL, delivery.headers, delivery.body)
    assert registration(service.store, registration_id).status == "pending"
    fake.script(Scripted(Outcome.UNAVAILABLE, "capture"))
    assert service.reconcile().still_pending == 1  # deferred
    assert registration(service.store, registration_id).status == "pending"
    assert service.reconcile().confirmed == 1
    assert registration(service.store, registration_id).status == "confirmed"
    assert service.handle_webhook(PAYPAL, delivery.headers, delivery.body) is WebhookOutcome.IGNORED
    assert fake.pending_webhooks().count("payment.succeeded") == 1  # captured once


def test_no_capture_once_the_hold_lapsed(service: PaidEvents, clock: Clock) -> None:
    event_id, registration_id, fake = approved(service)
    clock.advance(minutes=31)  # the seat hold (30 minutes) lapsed before the webhook came
    assert deliver(service, PAYPAL) == [WebhookOutcome.IGNORED]
    assert registration(service.store, registration_id).status == "pending"
    assert service.reconcile().released == 1
    assert registration(service.store, registration_id).status == "expired"
    assert captures(fake) == []
    assert service.event(event_id).seats_taken == 0


def test_no_capture_for_a_cancelled_event(service: PaidEvents) -> None:
    event_id, registration_id, fake = approved(service)
    fake.script(Scripted(Outcome.UNAVAILABLE, "void"))  # cancel_event cannot close the approved checkout
    service.cancel_event(event_id)
    assert deliver(service, PAYPAL) == [WebhookOutcome.IGNORED]
    assert service.check_payment(registration_id) == "pending"  # not captured: reconcile releases it
    assert service.reconcile().released == 1
    assert registration(service.store, registration_id).status == "expired"
    assert captures(fake) == []


def test_a_gateway_that_captures_by_itself_is_never_captured(service: PaidEvents, clock: Clock) -> None:
    _, registration_id, fake = approved(service, "stripe-like")
    assert deliver(service, "stripe-like")[0] is WebhookOutcome.PROCESSED
    assert registration(service.store, registration_id).status == "confirmed"
    # A checkout left open (PENDING) on it is not captured either, by reconcile or check_payment.
    event_id = make_event(service, gateways=["stripe-like"])
    other = service.checkout(event_id, "bob@example.org", gateway="stripe-like")
    assert service.check_payment(other.registration_id) == "pending"
    service.reconcile()
    clock.advance(minutes=1)
    assert captures(fake) == []


def test_settle_later_capture_stays_pending_until_it_settles(service: PaidEvents) -> None:
    event_id = make_event(service, gateways=[PAYPAL])
    result = service.checkout(event_id, "ada@example.org", gateway=PAYPAL)
    assert result.checkout_id is not None
    fake = fake_of(service.gateways, PAYPAL)
    fake.complete_checkout(result.checkout_id, settle=False)
    deliver(service, PAYPAL)
    assert registration(service.store, result.registration_id).status == "pending"  # captured, settling
    assert service.reconcile().still_pending == 1
    assert len(captures(fake)) == 1  # captured, settling: not sent again
    fake.settle_payment(result.checkout_id)
    assert service.reconcile().confirmed == 1
    assert registration(service.store, result.registration_id).status == "confirmed"
    assert len(set(captures(fake))) == 1
