"""The guarantees under real concurrency: threads against one store, on PostgreSQL and on SQLite.

Each test releases its workers together (a barrier) so the attempts truly overlap. Nothing here
is timed; the assertions are on counts.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest
import sqlalchemy as sa
from paid_events import outbox
from paid_events.errors import SoldOut
from paid_events.service import PaidEvents, WebhookOutcome
from paid_events.store import OutboxRow, RegistrationRow, Store

from gateway_core import CheckoutSession, Money

from .conftest import Clock
from .helpers import deliver, fake_of

T = TypeVar("T")


def run_together(workers: int, jobs: list[Callable[[], T]]) -> list[T | Exception]:
    """Run ``jobs`` on ``workers`` threads; the first wave starts at once. Returns results or exceptions."""
    barrier = threading.Barrier(min(workers, len(jobs)))
    started = threading.local()

    def wrap(job: Callable[[], T]) -> T | Exception:
        if not getattr(started, "done", False):
            started.done = True
            barrier.wait(timeout=120)  # never hang the suite: a broken barrier fails the test
        try:
            return job()
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(wrap, jobs))


def new_event(service: PaidEvents, capacity: int) -> str:
    return service.create_event(
        organizer="org",
        title="Busy webinar",
        kind="one_off",
        price=Money.of("20", "EUR"),
        capacity=capacity,
        gateways=["stripe-like"],
        starts_at=service.clock() + timedelta(days=15),
    ).id


def platform_hold(service: PaidEvents) -> int:
    return service.config.hold_minutes


def statuses(store: Store, event_id: str) -> Counter[str]:
    with store.transaction() as s:
        return Counter(s.scalars(sa.select(RegistrationRow.status).where(RegistrationRow.event_id == event_id)).all())


def test_1000_attempts_by_32_workers_confirm_exactly_50_of_50_seats(service: PaidEvents, store: Store) -> None:
    event_id = new_event(service, capacity=50)
    fake = fake_of(service.gateways, "stripe-like")

    def attempt(i: int) -> str:
        result = service.checkout(event_id, f"p{i}@example.com")
        fake.complete_checkout(result.checkout_id or "")
        deliver(service, "stripe-like")  # whatever webhooks are pending, from any worker
        return result.registration_id

    results = run_together(32, [partial(attempt, i) for i in range(1000)])
    deliver(service, "stripe-like")
    errors = Counter(type(r).__name__ for r in results if isinstance(r, Exception))
    assert errors == Counter({"SoldOut": 950})
    assert statuses(store, event_id) == Counter({"confirmed": 50})
    assert service.event(event_id).seats_taken == 50
    assert fake.payments_made() == 50
    with store.transaction() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(OutboxRow).where(OutboxRow.kind == "confirmation")) == 50


def test_promo_limited_to_50_uses_tried_by_200_concurrent_checkouts_is_redeemed_50_times(
    service: PaidEvents, store: Store
) -> None:
    event_id = new_event(service, capacity=500)
    service.add_promo_code(event_id, "FIFTY", percent="20", max_uses=50)
    fake = fake_of(service.gateways, "stripe-like")

    def attempt(i: int) -> str:
        result = service.checkout(event_id, f"p{i}@example.com", "FIFTY")
        fake.complete_checkout(result.checkout_id or "")  # every holder pays
        deliver(service, "stripe-like")
        return result.registration_id

    results = run_together(200, [partial(attempt, i) for i in range(200)])  # 200 threads, one barrier
    deliver(service, "stripe-like")
    assert Counter(type(r).__name__ for r in results if isinstance(r, Exception)) == Counter(
        {"PromoCodeExhausted": 150}
    )
    with store.transaction() as s:
        redeemed = s.scalar(
            sa.select(sa.func.count())
            .select_from(RegistrationRow)
            .where(
                RegistrationRow.promo_id.is_not(None),
                RegistrationRow.status == "confirmed",
                RegistrationRow.paid_at.is_not(None),
            )
        )
    assert redeemed == 50  # paid registrations that used the code, not holds
    assert service.promo_code(event_id, "FIFTY").uses == 50
    assert service.event(event_id).seats_taken == 50  # a refused promo holds no seat
    assert fake.payments_made() == 50
    assert statuses(store, event_id) == Counter({"confirmed": 50})


def test_concurrent_bulk_refunds_refund_each_payment_exactly_once(service: PaidEvents, store: Store) -> None:
    event_id = new_event(service, capacity=30)
    fake = fake_of(service.gateways, "stripe-like")
    paid = []
    for i in range(20):
        result = service.checkout(event_id, f"p{i}@example.com")
        fake.complete_checkout(result.checkout_id or "")
        paid.append(result.registration_id)
    deliver(service, "stripe-like")
    runs = run_together(4, [partial(service.refund_all, event_id) for _ in range(4)])  # two organizers, two tabs each
    outcomes = [o for run in runs if not isinstance(run, Exception) for o in run]
    assert len(outcomes) == sum(len(run) for run in runs if not isinstance(run, Exception))
    assert not [run for run in runs if isinstance(run, Exception)]
    refunded = Counter(o.registration_id for o in outcomes if o.state == "refunded")
    assert refunded == Counter(dict.fromkeys(paid, 1))  # each payment refunded by exactly one run
    assert {o.state for o in outcomes} <= {"refunded", "already_refunded", "in_progress"}
    assert fake.refunds_made() == 20
    keys = [key for operation, key in fake.requests if operation == "refund"]
    assert len(keys) == len(set(keys)) == 20  # only the run holding a payment's claim sent its refund
    with store.transaction() as s:
        states = Counter(s.scalars(sa.select(RegistrationRow.refund_state)).all())
    assert states == Counter({"refunded": 20})
    assert service.refund_all(event_id) == []


def test_one_webhook_delivered_20_times_concurrently_fulfils_once_and_sends_one_message(
    service: PaidEvents, store: Store, tmp_path: Path
) -> None:
    event_id = new_event(service, capacity=5)
    result = service.checkout(event_id, "ann@example.com")
    fake = fake_of(service.gateways, "stripe-like")
    fake.complete_checkout(result.checkout_id or "")
    deliveries = fake.drain_webhooks()
    succeeded = next(d for d in deliveries if d.type == "payment.succeeded")
    outcomes = run_together(
        20, [lambda: service.handle_webhook("stripe-like", succeeded.headers, succeeded.body) for _ in range(20)]
    )
    assert Counter(outcomes) == Counter({WebhookOutcome.PROCESSED: 1, WebhookOutcome.DUPLICATE: 19})
    completed = next(d for d in deliveries if d.type == "checkout.completed")  # the other event: no second fulfilment
    again = run_together(
        20, [lambda: service.handle_webhook("stripe-like", completed.headers, completed.body) for _ in range(20)]
    )
    assert Counter(again) == Counter({WebhookOutcome.IGNORED: 1, WebhookOutcome.DUPLICATE: 19})
    assert statuses(store, event_id) == Counter({"confirmed": 1})
    mailbox = tmp_path / "mailbox.txt"
    sent = run_together(4, [lambda: outbox.drain(store, outbox.FileSender(mailbox)) for _ in range(4)])
    assert sum(n for n in sent if isinstance(n, int)) == 1
    assert mailbox.read_text(encoding="utf-8").count("--- message") == 1


def test_a_payment_after_rejection_reported_ten_ways_at_once_tells_its_payer_once(
    service: PaidEvents, store: Store
) -> None:
    """Both webhooks of a payment that landed after the rejection, each delivered five times, and
    the payer's return (check_payment) four times, all at once: one notice that it will be refunded."""
    event_id = new_event(service, capacity=5)
    ann = service.checkout(event_id, "ann@example.com")
    fake = fake_of(service.gateways, "stripe-like")
    fake.complete_checkout(ann.checkout_id or "")
    service.reject(ann.registration_id)
    deliveries = fake.drain_webhooks()
    assert sorted(d.type for d in deliveries) == ["checkout.completed", "payment.succeeded"]
    jobs: list[Callable[[], object]] = [
        *(partial(service.handle_webhook, "stripe-like", d.headers, d.body) for d in deliveries * 5),
        *(partial(service.check_payment, ann.registration_id) for _ in range(4)),
    ]
    results = run_together(len(jobs), jobs)
    assert not [r for r in results if isinstance(r, Exception)]
    assert results.count(WebhookOutcome.PROCESSED) <= 1  # none when a status check recorded it first
    assert results.count(WebhookOutcome.DUPLICATE) == 8
    with store.transaction() as s:
        kinds = s.scalars(sa.select(OutboxRow.kind).order_by(OutboxRow.id)).all()
    assert kinds == ["rejection", "paid_after_rejection"]  # was ["rejection"]: the payer was never told


def test_seats_of_abandoned_and_expired_checkouts_come_back(service: PaidEvents, store: Store, clock: Clock) -> None:
    event_id = new_event(service, capacity=10)
    fake = fake_of(service.gateways, "stripe-like")
    first = run_together(10, [partial(service.checkout, event_id, f"a{i}@example.com") for i in range(10)])
    checkouts = [r.checkout_id for r in first if not isinstance(r, Exception)]
    assert len(checkouts) == 10
    with pytest.raises(SoldOut):
        service.checkout(event_id, "late@example.com")
    for checkout_id in checkouts[:5]:
        fake.abandon_checkout(checkout_id or "")
    deliveries = fake.drain_webhooks(duplicate=True)
    run_together(10, [partial(service.handle_webhook, "stripe-like", d.headers, d.body) for d in deliveries])
    assert service.event(event_id).seats_taken == 5
    second = run_together(10, [partial(service.checkout, event_id, f"b{i}@example.com") for i in range(10)])
    assert sum(not isinstance(r, Exception) for r in second) == 5
    assert all(isinstance(r, SoldOut) for r in second if isinstance(r, Exception))
    assert service.event(event_id).seats_taken == 10
    assert statuses(store, event_id) == Counter({"pending": 10, "expired": 5})
    clock.advance(minutes=platform_hold(service) + 1)  # every remaining hold lapses
    reports = run_together(4, [service.reconcile for _ in range(4)])
    assert sum(r.released for r in reports if not isinstance(r, Exception)) == 10
    assert service.event(event_id).seats_taken == 0
    assert statuses(store, event_id) == Counter({"expired": 15})


def test_concurrent_reconcilers_recover_a_crash_without_a_second_charge(
    service: PaidEvents, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    event_id = new_event(service, capacity=50)
    fake = fake_of(service.gateways, "stripe-like")

    def crash(registration_id: str, session: CheckoutSession) -> None:
        raise RuntimeError("process died after the provider answered")

    monkeypatch.setattr(service, "_record_checkout", crash)
    crashed = run_together(8, [partial(service.checkout, event_id, f"c{i}@example.com") for i in range(8)])
    monkeypatch.undo()
    assert all(isinstance(r, RuntimeError) for r in crashed)
    assert fake.payments_made() == 8
    reports = run_together(8, [service.reconcile for _ in range(8)])
    assert not [r for r in reports if isinstance(r, Exception)]
    assert fake.payments_made() == 8
    with store.transaction() as s:
        rows = s.scalars(sa.select(RegistrationRow).where(RegistrationRow.event_id == event_id)).all()
    assert all(r.checkout_id is not None for r in rows)
    for row in rows:
        fake.complete_checkout(row.checkout_id or "")
    run_together(8, [service.reconcile for _ in range(8)])
    assert statuses(store, event_id) == Counter({"confirmed": 8})
    assert fake.payments_made() == 8
