"""A checkout the provider has forgotten (``NotFound``) can never be paid: its lapsed hold is released.

PayPal forgets an order that was never completed once it expires: "Any order that doesn't get
completed, within a set amount of time, will automatically expire. The default amount of time is
3 hours" (PayPal on paypal/Checkout-PHP-SDK#84); ``GET /v2/checkout/orders/{id}`` then answers 404
``RESOURCE_NOT_FOUND`` / ``INVALID_RESOURCE_ID`` (shopware/shopware#6850, #5776), which the PayPal
plugin raises as ``NotFound``. Before, reconcile counted such a registration ``still_pending`` on
every sweep, so an abandoned checkout whose webhook was missed held its seat and promo use for good.

:class:`Purged` plays that provider over the fake: a purged checkout id is ``NotFound`` to a status
read and to a void (as the PayPal plugin's void of an order it cannot find), and :meth:`Purged.fail`
makes the provider answer some other error instead.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest
import structlog
from paid_events import config as pe_config
from paid_events.service import PaidEvents, ReconcileReport, WebhookOutcome
from paid_events.store import RegistrationRow, Store

import gateway_core.fake
from gateway_core import (
    GatewayError,
    GatewayManager,
    GatewayUnavailable,
    NotFound,
    OperationContext,
    OutcomeUnknown,
    PaymentStatus,
    RateLimited,
    StatusRequest,
    Void,
    VoidRequest,
    hookimpl,
)

from .conftest import Clock, on_clock
from .helpers import deliver, fake_of, make_event

GATEWAY = "paypal-like"
#: Longer than the platform's 30-minute hold and PayPal's 3 hours for an order never completed.
PURGED_AFTER = {"hours": 3, "minutes": 1}


class Purged:
    """The provider forgot these checkouts (PayPal, after an order expired uncompleted)."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.error: GatewayError | None = None  # raised by every status read instead, when set

    def forget(self, checkout_id: str | None) -> None:
        assert checkout_id is not None
        self.ids.add(checkout_id)

    def fail(self, error: GatewayError | None) -> None:
        self.error = error

    def _gone(self, object_id: str) -> None:
        if object_id in self.ids:
            raise NotFound(
                f"PayPal has no order, capture or authorization {object_id}",
                gateway=GATEWAY,
                http_status=404,
                provider_code="RESOURCE_NOT_FOUND",
            )

    @hookimpl(wrapper=True)
    def gateway_payment_status(
        self, request: StatusRequest, context: OperationContext
    ) -> Generator[None, PaymentStatus, PaymentStatus]:
        if self.error is not None:
            raise self.error
        self._gone(request.payment_id)
        return (yield)

    @hookimpl(wrapper=True)
    def gateway_void(self, request: VoidRequest, context: OperationContext) -> Generator[None, Void, Void]:
        self._gone(request.payment_id)
        return (yield)


@pytest.fixture
def purged() -> Purged:
    return Purged()


@pytest.fixture
def service(store: Store, clock: Clock, purged: Purged) -> PaidEvents:
    base, deployment = pe_config.load()
    manager = GatewayManager(deployment, plugins=[gateway_core.fake, purged], load_entry_points=False)
    return PaidEvents(store, on_clock(manager, clock), base, clock=clock)


def status_of(store: Store, registration_id: str) -> str:
    with store.transaction() as s:
        found = s.get(RegistrationRow, registration_id)
        assert found is not None
        return found.status


def test_a_lapsed_hold_whose_checkout_the_provider_forgot_is_released_by_reconcile(
    service: PaidEvents, store: Store, clock: Clock, purged: Purged
) -> None:
    event_id = make_event(service, capacity=1)
    service.add_promo_code(event_id, "ONCE", percent="10", max_uses=1)
    ann = service.checkout(event_id, "ann@example.com", "ONCE", gateway=GATEWAY)
    clock.advance(**PURGED_AFTER)  # ann walked away; her checkout.expired webhook never came
    purged.forget(ann.checkout_id)
    with structlog.testing.capture_logs() as logs:
        report = service.reconcile()
    assert report == ReconcileReport(released=1)  # was still_pending=1, on every sweep
    assert status_of(store, ann.registration_id) == "expired"
    assert service.event(event_id).seats_taken == 0
    assert service.promo_code(event_id, "ONCE").uses == 0
    [gone] = [line for line in logs if line["event"] == "paid_events.checkout.gone"]
    assert (gone["log_level"], gone["registration_id"], gone["gateway"]) == ("warning", ann.registration_id, GATEWAY)
    assert service.reconcile() == ReconcileReport()  # settled: the next sweep asks nothing
    bob = service.checkout(event_id, "bob@example.com", "ONCE")  # the seat and the code's use are free
    assert bob.status == "pending"


def test_a_cancelled_event_whose_checkout_the_provider_forgot_is_released_by_reconcile(
    service: PaidEvents, store: Store, purged: Purged
) -> None:
    event_id = make_event(service)
    ann = service.checkout(event_id, "ann@example.com", gateway=GATEWAY)
    purged.forget(ann.checkout_id)
    service.cancel_event(event_id)  # its void is NotFound too: nothing closed, nothing changed
    assert status_of(store, ann.registration_id) == "pending"
    assert service.reconcile() == ReconcileReport(released=1)  # the hold has not lapsed: the event is cancelled
    assert status_of(store, ann.registration_id) == "expired"
    assert service.event(event_id).seats_taken == 0


def test_a_checkout_the_provider_does_not_know_while_its_hold_runs_keeps_its_seat(
    service: PaidEvents, store: Store, clock: Clock, purged: Purged
) -> None:
    """A provider may not know an order just made for a moment: the hold's own lapse decides."""
    event_id = make_event(service, capacity=1)
    ann = service.checkout(event_id, "ann@example.com", gateway=GATEWAY)
    clock.advance(minutes=5)
    purged.forget(ann.checkout_id)
    assert service.reconcile() == ReconcileReport(still_pending=1)
    with pytest.raises(NotFound):
        service.check_payment(ann.registration_id)
    assert status_of(store, ann.registration_id) == "pending"
    assert service.event(event_id).seats_taken == 1
    purged.ids.clear()  # the provider knows it after all, and the payer pays
    fake_of(service.gateways, GATEWAY).complete_checkout(ann.checkout_id or "")
    assert service.check_payment(ann.registration_id) == "confirmed"


@pytest.mark.parametrize(
    "error",
    [
        GatewayUnavailable("PayPal is down", gateway=GATEWAY, http_status=503),
        OutcomeUnknown("PayPal's answer was lost", gateway=GATEWAY),
        RateLimited("PayPal says slow down", gateway=GATEWAY, http_status=429),
    ],
    ids=lambda error: type(error).__name__,
)
def test_any_other_provider_error_keeps_a_lapsed_hold_pending(
    service: PaidEvents, store: Store, clock: Clock, purged: Purged, error: GatewayError
) -> None:
    event_id = make_event(service)
    ann = service.checkout(event_id, "ann@example.com", gateway=GATEWAY)
    clock.advance(**PURGED_AFTER)
    purged.fail(error)  # says nothing about the checkout: it may have been paid
    assert service.reconcile() == ReconcileReport(still_pending=1)
    with pytest.raises(type(error)):
        service.check_payment(ann.registration_id)
    assert status_of(store, ann.registration_id) == "pending"
    assert service.event(event_id).seats_taken == 1
    purged.fail(None)  # back up: the status (open, unpaid) decides, the checkout is expired first
    assert service.reconcile() == ReconcileReport(released=1)
    assert status_of(store, ann.registration_id) == "expired"


def test_check_payment_releases_a_lapsed_hold_whose_checkout_the_provider_forgot(
    service: PaidEvents, store: Store, clock: Clock, purged: Purged
) -> None:
    event_id = make_event(service)
    service.add_promo_code(event_id, "ONCE", percent="10", max_uses=1)
    ann = service.checkout(event_id, "ann@example.com", "ONCE", gateway=GATEWAY)
    clock.advance(**PURGED_AFTER)
    purged.forget(ann.checkout_id)
    assert service.check_payment(ann.registration_id) == "expired"  # was NotFound, every time
    assert service.event(event_id).seats_taken == 0
    assert service.promo_code(event_id, "ONCE").uses == 0


def test_a_returning_participant_whose_checkout_the_provider_forgot_registers_afresh(
    service: PaidEvents, store: Store, clock: Clock, purged: Purged
) -> None:
    event_id = make_event(service, capacity=1)
    first = service.checkout(event_id, "ann@example.com", gateway=GATEWAY)
    clock.advance(**PURGED_AFTER)
    purged.forget(first.checkout_id)
    again = service.checkout(event_id, "ann@example.com", gateway=GATEWAY)  # was NotFound
    assert (again.status, again.resumed) == ("pending", False)
    assert again.registration_id != first.registration_id
    assert status_of(store, first.registration_id) == "expired"
    assert service.event(event_id).seats_taken == 1  # ann's new hold, the old one given back


def test_an_approval_after_a_forgotten_checkout_was_released_is_not_captured(
    service: PaidEvents, store: Store, clock: Clock, purged: Purged
) -> None:
    event_id = make_event(service, capacity=1)
    service.add_promo_code(event_id, "ONCE", percent="10", max_uses=1)
    ann = service.checkout(event_id, "ann@example.com", "ONCE", gateway=GATEWAY)
    clock.advance(minutes=31)  # the hold lapsed; the fake keeps a checkout open for an hour
    purged.forget(ann.checkout_id)
    assert service.reconcile() == ReconcileReport(released=1)
    assert status_of(store, ann.registration_id) == "expired"
    # The provider's NotFound was wrong after all (it knew the order a moment later), and ann
    # approves the checkout, which was not voided: the provider said there was none. On PayPal
    # (host_completes_checkout) an approval moves no money until the platform captures it, and
    # it captures none for a released seat: the approval lapses, and no payment lands.
    purged.ids.clear()
    fake = fake_of(service.gateways, GATEWAY)
    fake.complete_checkout(ann.checkout_id or "")
    assert deliver(service, GATEWAY) == [WebhookOutcome.IGNORED]
    assert status_of(store, ann.registration_id) == "expired"
    assert service.event(event_id).seats_taken == 0
    assert service.promo_code(event_id, "ONCE").uses == 0
    assert [op for op, _ in fake.requests if op == "capture"] == []
    assert not service.gateways.payment_status(GATEWAY, ann.checkout_id or "").is_paid


def test_an_approval_after_such_a_release_with_the_seat_taken_moves_no_money(
    service: PaidEvents, store: Store, clock: Clock, purged: Purged
) -> None:
    event_id = make_event(service, capacity=1)
    ann = service.checkout(event_id, "ann@example.com", gateway=GATEWAY)
    clock.advance(minutes=31)  # the hold lapsed; the fake keeps a checkout open for an hour
    purged.forget(ann.checkout_id)
    assert service.reconcile() == ReconcileReport(released=1)
    bob = service.checkout(event_id, "bob@example.com", gateway=GATEWAY)  # bob takes the seat
    purged.ids.clear()
    fake = fake_of(service.gateways, GATEWAY)
    fake.complete_checkout(bob.checkout_id or "")
    fake.complete_checkout(ann.checkout_id or "")
    deliver(service, GATEWAY)
    assert status_of(store, bob.registration_id) == "confirmed"  # bob's approval captured
    assert status_of(store, ann.registration_id) == "expired"  # ann's not: nothing to refund
    assert len([op for op, _ in fake.requests if op == "capture"]) == 1
    assert service.event(event_id).seats_taken == 1
