"""Dates: one-off events close after their start, dates move only forward, series have sessions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from paid_events import outbox
from paid_events.errors import EventClosed, InvalidDate, InvalidInput, RegistrationClosed, UnknownSession
from paid_events.service import PaidEvents
from paid_events.store import Store

from .conftest import Clock
from .helpers import STARTS_IN, Mailbox, deliver, fake_of, make_event, pay, snapshot

# -- one-off events ----------------------------------------------------------------------------


def test_registration_closes_after_the_late_join_window(service: PaidEvents, clock: Clock) -> None:
    assert service.config.late_join_minutes == 10
    event_id = make_event(service)
    clock.advance(seconds=STARTS_IN.total_seconds())  # the webinar has just started
    late = service.checkout(event_id, "late@example.com")  # joining a few minutes late is fine
    assert late.status == "pending"
    clock.advance(minutes=10)
    with pytest.raises(RegistrationClosed):
        service.quote(event_id)
    with pytest.raises(RegistrationClosed):
        service.checkout(event_id, "later@example.com")
    clock.advance(days=30)  # long over
    with pytest.raises(RegistrationClosed):
        service.checkout(event_id, "much-later@example.com")
    assert service.event(event_id).seats_taken == 1


def test_moving_a_started_event_into_the_future_reopens_registration(service: PaidEvents, clock: Clock) -> None:
    event_id = make_event(service, starts_at=timedelta(hours=1))
    clock.advance(hours=2)
    with pytest.raises(RegistrationClosed):
        service.checkout(event_id, "ann@example.com")
    service.change_date(event_id, clock.now + timedelta(days=7))
    assert service.checkout(event_id, "ann@example.com").status == "pending"


def test_a_date_change_into_the_past_or_on_an_on_demand_event_is_refused(
    service: PaidEvents, store: Store, clock: Clock
) -> None:
    one_off = make_event(service)
    on_demand = make_event(service, kind="on_demand")
    service.checkout(one_off, "ann@example.com")
    before = snapshot(store)
    for event_id, when, error in (
        (one_off, clock.now - timedelta(days=1), InvalidDate),
        (one_off, clock.now, InvalidDate),
        (on_demand, clock.now + timedelta(days=1), InvalidDate),
    ):
        with pytest.raises(error):
            service.change_date(event_id, when)
    with pytest.raises(InvalidDate):
        service.change_date(one_off, clock.now + timedelta(days=1), session_id="x")  # a one-off has no sessions
    assert snapshot(store) == before  # nobody was told of a refused change


def test_a_cancelled_event_is_not_quoted_promoted_confirmed_or_moved(service: PaidEvents, clock: Clock) -> None:
    event_id = make_event(service)
    ann = service.checkout(event_id, "ann@example.com")
    service.cancel_event(event_id)
    with pytest.raises(EventClosed):
        service.quote(event_id)
    with pytest.raises(EventClosed):
        service.add_promo_code(event_id, "LATE", percent="10")
    with pytest.raises(EventClosed):
        service.confirm(ann.registration_id)
    with pytest.raises(EventClosed):
        service.change_date(event_id, clock.now + timedelta(days=1))
    with pytest.raises(EventClosed):
        service.checkout(event_id, "bob@example.com")


# -- permanent events: a series of sessions ------------------------------------------------------


def test_one_ticket_admits_to_every_session_of_the_series(service: PaidEvents, store: Store, clock: Clock) -> None:
    series = make_event(service, kind="permanent", sessions=[timedelta(days=2), timedelta(days=9)])
    first, second = service.sessions(series)
    assert first.starts_at == clock.now + timedelta(days=2)
    ann = service.checkout(series, "ann@example.com")
    pay(service, "stripe-like", ann.checkout_id)
    mailbox = Mailbox()
    outbox.drain(store, mailbox)
    confirmation = mailbox.messages[-1].body
    assert "every session of the series" in confirmation
    assert (clock.now + timedelta(days=2)).strftime("%Y-%m-%d") in confirmation  # the sessions are listed
    token = mailbox.token("ann@example.com")
    added = service.add_session(series, clock.now + timedelta(days=16))
    for session in (first, second, added):
        assert service.admit(series, token, session_id=session.id)
    other_series = make_event(service, kind="permanent", sessions=[timedelta(days=3)])
    assert not service.admit(series, token, session_id=service.sessions(other_series)[0].id)
    assert not service.admit(other_series, token, session_id=service.sessions(other_series)[0].id)
    assert not service.admit(series, token + "x", session_id=first.id)
    with pytest.raises(InvalidInput, match="session"):
        service.admit(series, token)
    service.refund(ann.registration_id)
    assert not service.admit(series, token, session_id=first.id)


def test_a_series_participant_is_told_of_a_new_session_and_of_each_session_moved(
    service: PaidEvents, store: Store, clock: Clock
) -> None:
    series = make_event(service, kind="permanent", sessions=[timedelta(days=2)])
    ann = service.checkout(series, "ann@example.com")
    pay(service, "stripe-like", ann.checkout_id)
    service.checkout(series, "bob@example.com")  # holds a seat, has not paid: told too
    outbox.drain(store, Mailbox())
    added = service.add_session(series, clock.now + timedelta(days=9))
    assert service.change_date(series, clock.now + timedelta(days=10), session_id=added.id) == 2
    assert [s.starts_at for s in service.sessions(series)] == [
        clock.now + timedelta(days=2),
        clock.now + timedelta(days=10),
    ]
    mailbox = Mailbox()
    outbox.drain(store, mailbox)
    assert sorted((m.kind, m.recipient) for m in mailbox.messages) == [
        ("date_change", "ann@example.com"),
        ("date_change", "bob@example.com"),
        ("session_added", "ann@example.com"),
        ("session_added", "bob@example.com"),
    ]
    moved = next(m for m in mailbox.messages if m.kind == "date_change")
    assert (clock.now + timedelta(days=10)).strftime("%Y-%m-%d") in moved.body


def test_bad_session_input_is_refused_and_changes_nothing(service: PaidEvents, store: Store, clock: Clock) -> None:
    series = make_event(service, kind="permanent", sessions=[timedelta(days=2)])
    other = make_event(service, kind="permanent", sessions=[timedelta(days=4)])
    one_off = make_event(service)
    before = snapshot(store)
    soon = clock.now + timedelta(days=3)
    with pytest.raises(InvalidDate):
        service.add_session(series, clock.now - timedelta(hours=1))
    with pytest.raises(InvalidDate):
        service.add_session(one_off, soon)
    with pytest.raises(InvalidDate, match="session_id"):
        service.change_date(series, soon)
    with pytest.raises(UnknownSession):
        service.change_date(series, soon, session_id="no-such-session")
    with pytest.raises(UnknownSession):  # a session of another series
        service.change_date(series, soon, session_id=service.sessions(other)[0].id)
    with pytest.raises(InvalidDate):
        make_event(service, kind="permanent", sessions=[timedelta(days=-1)])
    assert snapshot(store) == before


def test_a_participant_who_has_not_paid_is_told_of_changes_without_being_promised_a_ticket(
    service: PaidEvents, store: Store, clock: Clock
) -> None:
    one_off = make_event(service)
    series = make_event(service, kind="permanent", sessions=[timedelta(days=2)])
    for event_id in (one_off, series):
        ann = service.checkout(event_id, "ann@example.com")
        pay(service, "stripe-like", ann.checkout_id)
        service.checkout(event_id, "bob@example.com")  # holds a seat, has not paid
        gone = service.checkout(event_id, "cat@example.com")
        fake_of(service.gateways, "stripe-like").abandon_checkout(gone.checkout_id or "")
        deliver(service, "stripe-like")  # cat's checkout expired: nothing held, nothing to tell
    outbox.drain(store, Mailbox())
    assert service.change_date(one_off, clock.now + STARTS_IN + timedelta(days=1)) == 2
    added = service.add_session(series, clock.now + timedelta(days=9))
    assert service.change_date(series, clock.now + timedelta(days=10), session_id=added.id) == 2
    service.cancel_event(one_off)
    mailbox = Mailbox()
    outbox.drain(store, mailbox)
    by_recipient = {
        who: [(m.kind, m.body) for m in mailbox.messages if m.recipient == f"{who}@example.com"]
        for who in ("ann", "bob", "cat")
    }
    kinds = ["date_change", "session_added", "date_change", "cancellation"]
    assert [kind for kind, _ in by_recipient["ann"]] == kinds
    assert [kind for kind, _ in by_recipient["bob"]] == kinds
    assert by_recipient["cat"] == []
    assert "Your ticket stays valid." in by_recipient["ann"][0][1]
    assert "Your access token admits you to it." in by_recipient["ann"][1][1]
    assert "Your access token stays valid" in by_recipient["ann"][2][1]
    for kind, body in by_recipient["bob"]:
        assert "valid" not in body, (kind, body)  # was "Your ticket stays valid." to a payer who never paid
        assert "access token" not in body, (kind, body)  # bob has none
    assert "once your payment is confirmed" in by_recipient["bob"][0][1]
    assert "once your payment is confirmed" in by_recipient["bob"][1][1]
    assert "once your payment is confirmed" in by_recipient["bob"][2][1]
    assert "If you paid, the organizer will refund you." in by_recipient["bob"][3][1]
