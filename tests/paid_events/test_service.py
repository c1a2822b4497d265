"""The service end to end on the fake gateway, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
from paid_events import config as pe_config
from paid_events import outbox
from paid_events.errors import (
    AlreadyRegistered,
    CheckoutPending,
    EventClosed,
    InvalidDate,
    InvalidEmail,
    InvalidInput,
    InvalidPrice,
    InvalidPromoCode,
    InvalidTransition,
    PriceChanged,
    PriceLocked,
    PromoCodeExhausted,
    PromoCodeExpired,
    PromoNotAllowed,
    SoldOut,
    UnknownEvent,
    UnknownPayment,
    UnknownPromoCode,
)
from paid_events.service import PaidEvents, WebhookOutcome
from paid_events.store import EventRow, OutboxRow, RegistrationRow, Store

import gateway_core.fake
from gateway_core import (
    CheckoutRequest,
    CheckoutSession,
    GatewayManager,
    Money,
    OperationContext,
    WebhookVerificationFailed,
    hookimpl,
)
from gateway_core.fake import Outcome, Scripted

from .conftest import Clock, on_clock
from .helpers import EUR, STARTS_IN, Mailbox, audited, deliver, eur, fake_of, make_event, pay, snapshot


def registration(store: Store, registration_id: str) -> RegistrationRow:
    with store.transaction() as s:
        row = s.get(RegistrationRow, registration_id)
        assert row is not None
        return row


def seats(service: PaidEvents, event_id: str) -> int:
    return service.event(event_id).seats_taken


# -- events and prices ----------------------------------------------------------------------


def test_create_event_and_read_it_back(service: PaidEvents, clock: Clock) -> None:
    event = service.event(make_event(service, early_price=eur("15"), early_until=timedelta(days=6)))
    assert event.price == eur("20")
    assert event.early_price == eur("15")
    assert event.early_until == clock.now + timedelta(days=6)
    assert event.capacity == 50
    assert event.seats_left == 50
    assert event.gateways == ("stripe-like", "paypal-like")
    assert event.starts_at == clock.now + STARTS_IN


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"price": eur("0.50")}, InvalidPrice),
        ({"price": eur("-5")}, InvalidPrice),
        ({"price": eur("2000.01")}, InvalidPrice),
        ({"price": Money.of("1000", "HUF"), "gateways": ["paypal-like"]}, InvalidPrice),
        ({"price": Money.of("1000", "JPY")}, InvalidPrice),
        ({"capacity": 0}, InvalidInput),
        ({"capacity": 10**20}, InvalidInput),  # beyond any database integer (was SQLite's OverflowError)
        ({"capacity": 2**31}, InvalidInput),  # beyond PostgreSQL's integer column
        ({"capacity": 50.0}, InvalidInput),
        ({"gateways": ["stripe"]}, InvalidInput),
        ({"gateways": []}, InvalidInput),
        ({"kind": "weekly"}, InvalidInput),
        ({"title": " "}, InvalidInput),
        ({"title": "Pricing\nwebinar"}, InvalidInput),  # a mail header takes no line break: every message failed
        ({"title": "Pricing\r\nBcc: all@example.com"}, InvalidInput),
        ({"title": "Pricing\x00"}, InvalidInput),  # PostgreSQL's text takes no NUL (was psycopg's DataError)
        ({"organizer": "org\x001"}, InvalidInput),
        ({"starts_at": datetime(2026, 12, 10)}, InvalidInput),  # noqa: DTZ001 - naive on purpose
        ({"early_price": eur("25"), "early_until": timedelta(days=6)}, InvalidPrice),
        ({"early_price": eur("15")}, InvalidPrice),
        ({"early_price": 15.0, "early_until": timedelta(days=6)}, InvalidPrice),  # a float (was AttributeError)
        ({"early_price": Decimal(15), "early_until": timedelta(days=6)}, InvalidPrice),  # no currency
        (
            {"early_price": eur("15"), "early_from": timedelta(days=7), "early_until": timedelta(days=6)},
            InvalidPrice,
        ),
        ({"starts_at": None}, InvalidDate),  # a one-off event needs a date
        ({"starts_at": -timedelta(minutes=1)}, InvalidDate),  # ... in the future
        ({"kind": "on_demand", "starts_at": timedelta(days=1)}, InvalidDate),  # on demand: no date
        ({"kind": "permanent", "starts_at": timedelta(days=1)}, InvalidDate),  # a series: sessions
        ({"sessions": [timedelta(days=3)]}, InvalidDate),  # sessions are for a series
    ],
)
def test_bad_event_is_refused_and_changes_nothing(
    service: PaidEvents, store: Store, overrides: dict[str, Any], error: type[Exception]
) -> None:
    make_event(service)  # something in the store that must stay exactly as it is
    before = snapshot(store)
    with pytest.raises(error):
        make_event(service, **overrides)
    assert snapshot(store) == before


def test_huf_bgn_ron_sell_through_the_stripe_like_gateway(service: PaidEvents) -> None:
    for price in (Money.of("5000", "HUF"), Money.of("30", "BGN"), Money.of("60", "RON")):
        event_id = make_event(service, price=price, gateways=["stripe-like"])
        assert service.quote(event_id).gateway == "stripe-like"


def test_price_can_change_until_a_payment_is_confirmed(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    assert service.change_price(event_id, eur("25")).price == eur("25")
    result = service.checkout(event_id, "ann@example.com")
    pay(service, result.quote.gateway or "", result.checkout_id)
    with pytest.raises(PriceLocked):
        service.change_price(event_id, eur("30"))
    assert service.event(event_id).price == eur("25")
    with pytest.raises(InvalidTransition, match="refund"):
        service.delete_event(event_id)
    service.refund(result.registration_id)
    assert outbox.drain(store, Mailbox()) == 0  # her unsent confirmation's token was revoked: withdrawn
    service.delete_event(event_id)
    with pytest.raises(UnknownEvent):
        service.event(event_id)


# -- registration and payment ---------------------------------------------------------------


def test_paid_registration_is_confirmed_by_the_verified_webhook_only(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    quote = service.quote(event_id)
    assert (quote.final, quote.fee, quote.gateway) == (eur("20"), eur("1.00"), "stripe-like")
    result = service.checkout(event_id, "ann@example.com", accept_price=quote.final)
    assert result.status == "pending"
    assert result.checkout_url is not None
    assert seats(service, event_id) == 1

    fake_of(service.gateways, "stripe-like").complete_checkout(result.checkout_id or "")
    assert registration(store, result.registration_id).status == "pending"  # the browser's return is not proof

    outcomes = deliver(service, "stripe-like")
    assert WebhookOutcome.PROCESSED in outcomes
    reg = registration(store, result.registration_id)
    assert reg.status == "confirmed"
    assert reg.payment_id is not None
    assert reg.token_hash is not None

    mailbox = Mailbox()
    assert outbox.drain(store, mailbox) == 1
    token = mailbox.token("ann@example.com")
    assert service.admit(event_id, token)
    assert not service.admit(event_id, token + "x")
    with store.transaction() as s:
        assert s.scalars(sa.select(OutboxRow.secret)).all() == [None]  # erased once sent
    assert [p.status for p in service.participants(event_id)] == ["confirmed"]


def test_quoted_price_must_still_hold(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    before = snapshot(store)
    with pytest.raises(PriceChanged):
        service.checkout(event_id, "ann@example.com", accept_price=eur("19"))
    assert snapshot(store) == before
    assert seats(service, event_id) == 0


@pytest.mark.parametrize("accepted", [19.0, 20.0, Decimal(20), "20.00"], ids=repr)
def test_an_accepted_price_that_is_not_money_is_refused_as_input(
    service: PaidEvents, store: Store, accepted: object
) -> None:
    """A float is refused as a float (InvalidPrice), not compared with the price and taken for a change."""
    event_id = make_event(service)
    before = snapshot(store)
    with pytest.raises(InvalidPrice, match=rf"accept_price .* must be Money .*not {type(accepted).__name__}"):
        service.checkout(event_id, "ann@example.com", accept_price=accepted)  # type: ignore[arg-type]
    assert snapshot(store) == before
    assert seats(service, event_id) == 0


def test_change_price_refuses_a_price_that_is_not_money_and_changes_nothing(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    before = snapshot(store)
    with pytest.raises(InvalidPrice, match=r"price must be Money .*not float"):
        service.change_price(event_id, 25.0)  # type: ignore[arg-type]
    until = service.clock() + timedelta(days=1)
    with pytest.raises(InvalidPrice, match=r"early_price must be Money .*not float"):
        service.change_price(event_id, eur("25"), early_price=15.0, early_until=until)  # type: ignore[arg-type]
    assert snapshot(store) == before


def test_the_largest_capacity_and_use_limit_a_database_integer_holds_are_taken(service: PaidEvents) -> None:
    event_id = make_event(service, capacity=2**31 - 1)
    assert service.event(event_id).seats_left == 2**31 - 1
    assert service.add_promo_code(event_id, "MANY", percent="10", max_uses=2**31 - 1).max_uses == 2**31 - 1
    assert service.checkout(event_id, "ann@example.com", "MANY").quote.final == eur("18.00")


def test_same_email_cannot_have_two_tickets(service: PaidEvents) -> None:
    event_id = make_event(service)
    result = service.checkout(event_id, "ann@example.com")
    pay(service, "stripe-like", result.checkout_id)
    for address in ("ann@example.com", "ANN@Example.com"):
        with pytest.raises(AlreadyRegistered):
            service.checkout(event_id, address)
    assert seats(service, event_id) == 1


def test_ticket_cap_is_the_plan_size(service: PaidEvents) -> None:
    event_id = make_event(service, capacity=2)
    service.checkout(event_id, "a@example.com")
    service.checkout(event_id, "b@example.com")
    with pytest.raises(SoldOut):
        service.checkout(event_id, "c@example.com")
    assert seats(service, event_id) == 2


def test_checkout_routes_by_currency_and_passes_the_application_fee(store: Store, clock: Clock) -> None:
    service, audit = audited(store, clock)
    seen = audit.requests
    event_id = make_event(service, price=Money.of("5000", "HUF"), gateways=["paypal-like", "stripe-like"])
    result = service.checkout(event_id, "ann@example.com")
    assert result.quote.gateway == "stripe-like"  # paypal-like offers no HUF
    assert seen[-1].application_fee == Money.of("250", "HUF")
    assert seen[-1].reference == result.registration_id
    paypal = make_event(service, gateways=["paypal-like"])
    assert service.checkout(paypal, "bob@example.com").quote.gateway == "paypal-like"


# -- promo codes and discounts --------------------------------------------------------------


def test_promo_codes_percent_fixed_and_early_bird(service: PaidEvents, clock: Clock) -> None:
    event_id = make_event(service, early_price=eur("16"), early_until=clock.now + timedelta(days=3))
    service.add_promo_code(event_id, "ten", percent="10")
    service.add_promo_code(event_id, "FIVE-OFF", amount=eur("5"))
    assert service.quote(event_id).final == eur("16")
    assert service.quote(event_id, "ten").final == eur("14.40")  # applied to the early-bird price
    assert service.quote(event_id, "five-off").final == eur("11")
    clock.advance(days=4)
    assert service.quote(event_id, "TEN").final == eur("18")


def test_a_discount_period_in_the_future_starts_later(service: PaidEvents, clock: Clock) -> None:
    event_id = make_event(
        service,
        early_price=eur("12"),
        early_from=clock.now + timedelta(days=1),
        early_until=clock.now + timedelta(days=2),
    )
    assert service.event(event_id).early_from == clock.now + timedelta(days=1)
    assert service.quote(event_id).final == eur("20")
    clock.advance(days=1)
    assert service.quote(event_id).final == eur("12")
    clock.advance(days=1)
    assert service.quote(event_id).final == eur("20")


def test_discount_below_the_gateway_minimum_is_rounded_up_and_shown(service: PaidEvents) -> None:
    event_id = make_event(service, price=eur("5"))
    service.add_promo_code(event_id, "NINETYFIVE", percent=Decimal(95))
    quote = service.quote(event_id, "NINETYFIVE")
    assert quote.discounted == eur("0.25")
    assert quote.final == eur("0.50")  # stripe-like's EUR minimum
    assert quote.rounded_up
    assert quote.fee == eur("0.03")
    paypal_quote = service.quote(event_id, "NINETYFIVE", gateway="paypal-like")
    assert paypal_quote.final == eur("1.00")
    result = service.checkout(event_id, "ann@example.com", "ninetyfive", accept_price=eur("0.50"))
    assert result.quote.final == eur("0.50")


def test_free_ticket_needs_no_checkout(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    service.add_promo_code(event_id, "FREE", percent="100")
    fake = fake_of(service.gateways, "stripe-like")
    result = service.checkout(event_id, "ann@example.com", "FREE")
    assert result.status == "confirmed"
    assert result.quote.free
    assert result.checkout_url is None
    assert fake.payments_made() == 0
    assert seats(service, event_id) == 1
    with pytest.raises(InvalidTransition):
        service.refund(result.registration_id)
    assert outbox.drain(store, Mailbox()) == 1


def test_promo_use_limit_and_expiry(service: PaidEvents, clock: Clock, store: Store) -> None:
    event_id = make_event(service)
    service.add_promo_code(event_id, "ONCE", percent="50", max_uses=1)
    service.add_promo_code(event_id, "SOON", percent="50", expires_at=clock.now + timedelta(hours=1))
    service.checkout(event_id, "a@example.com", "ONCE")
    with pytest.raises(PromoCodeExhausted):
        service.checkout(event_id, "b@example.com", "ONCE")
    clock.advance(hours=2)
    with pytest.raises(PromoCodeExpired):
        service.checkout(event_id, "b@example.com", "SOON")
    with pytest.raises(UnknownPromoCode):
        service.checkout(event_id, "b@example.com", "NOPE")
    assert seats(service, event_id) == 1
    assert service.promo_code(event_id, "once").uses == 1


def test_promo_codes_are_refused_for_permanent_and_on_demand_events(service: PaidEvents) -> None:
    for kind in ("permanent", "on_demand"):
        event_id = make_event(service, kind=kind)
        with pytest.raises(PromoNotAllowed):
            service.add_promo_code(event_id, "TEN", percent="10")


def test_bad_promo_definitions_are_refused(service: PaidEvents, store: Store, clock: Clock) -> None:
    event_id = make_event(service)
    service.add_promo_code(event_id, "TEN", percent="10")
    before = snapshot(store)
    for kwargs in (
        {"percent": "10"},
        {"percent": "0"},
        {"amount": Money.of("5", "USD")},
        {"percent": "abc"},
        {"percent": "1_5"},  # Decimal() reads 15: refused as Money.of refuses it (was stored as 15 %)
        {"percent": "\uff11\uff15"},  # full-width digits
        {"percent": "1.5E+1"},
        {"percent": " 15 "},
        {"amount": 5.0},  # a float (was AttributeError)
        {"amount": Decimal(5)},  # no currency
        {"amount": "5"},
        {"percent": "10", "max_uses": 10**20},  # beyond any database integer (was SQLite's OverflowError)
        {"percent": "10", "max_uses": 2**31},  # beyond PostgreSQL's integer column
        {"percent": "10", "expires_at": clock.now},  # already past: nobody could ever use it
        {"percent": "10", "expires_at": clock.now - timedelta(days=1)},
    ):
        with pytest.raises(InvalidPromoCode):
            service.add_promo_code(event_id, "TEN" if kwargs == {"percent": "10"} else "OTHER", **kwargs)
    assert snapshot(store) == before
    assert service.add_promo_code(event_id, "LATER", percent="10", expires_at=clock.now + timedelta(seconds=1))


# -- seats come back --------------------------------------------------------------------------


def test_abandoned_checkout_gives_seat_and_promo_use_back(service: PaidEvents) -> None:
    event_id = make_event(service, capacity=1)
    service.add_promo_code(event_id, "ONCE", percent="10", max_uses=1)
    result = service.checkout(event_id, "ann@example.com", "ONCE")
    fake_of(service.gateways, "stripe-like").abandon_checkout(result.checkout_id or "")
    assert WebhookOutcome.PROCESSED in deliver(service, "stripe-like")
    assert seats(service, event_id) == 0
    assert service.promo_code(event_id, "ONCE").uses == 0
    again = service.checkout(event_id, "ann@example.com", "ONCE")  # may register again
    assert again.status == "pending"


def test_expired_hold_is_swept_by_reconcile(service: PaidEvents, clock: Clock, store: Store) -> None:
    event_id = make_event(service, capacity=1)
    result = service.checkout(event_id, "ann@example.com")
    assert service.reconcile().still_pending == 1
    clock.advance(minutes=31)
    report = service.reconcile()
    assert report.released == 1
    assert registration(store, result.registration_id).status == "expired"
    assert seats(service, event_id) == 0
    deliver(service, "stripe-like")  # the provider's checkout.expired changes nothing more
    assert seats(service, event_id) == 0


def test_payment_after_the_hold_lapsed_takes_a_free_seat(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service, capacity=1)
    result = service.checkout(event_id, "ann@example.com")
    with store.transaction() as s:  # the hold lapsed on our side while the payer was still paying
        s.execute(sa.update(RegistrationRow).values(status="expired"))
        s.execute(sa.update(EventRow).values(seats_taken=0))
    pay(service, "stripe-like", result.checkout_id)
    assert registration(store, result.registration_id).status == "confirmed"
    assert seats(service, event_id) == 1


# -- webhooks ---------------------------------------------------------------------------------


def test_duplicate_and_reordered_webhooks_fulfil_once(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    result = service.checkout(event_id, "ann@example.com")
    fake = fake_of(service.gateways, "stripe-like")
    fake.complete_checkout(result.checkout_id or "")
    outcomes = [
        service.handle_webhook("stripe-like", d.headers, d.body)
        for d in fake.drain_webhooks(duplicate=True, reverse=True)
    ]
    assert outcomes.count(WebhookOutcome.DUPLICATE) == 2
    assert outcomes.count(WebhookOutcome.PROCESSED) == 1
    with store.transaction() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(OutboxRow).where(OutboxRow.kind == "confirmation")) == 1


def test_forged_webhook_is_refused_and_changes_nothing(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    result = service.checkout(event_id, "ann@example.com")
    fake = fake_of(service.gateways, "stripe-like")
    fake.complete_checkout(result.checkout_id or "")
    delivery = fake.drain_webhooks()[-1]
    before = snapshot(store)
    with pytest.raises(WebhookVerificationFailed):
        service.handle_webhook("stripe-like", {"Fake-Signature": "t=1,v1=00"}, delivery.body)
    with pytest.raises(WebhookVerificationFailed):
        service.handle_webhook("paypal-like", delivery.headers, delivery.body + b" ")
    assert snapshot(store) == before
    assert registration(store, result.registration_id).status == "pending"


def test_webhook_for_an_unknown_payment_is_refused_and_changes_nothing(service: PaidEvents, store: Store) -> None:
    make_event(service)
    fake = fake_of(service.gateways, "stripe-like")
    body = json.dumps(
        {
            "id": "fake_evt_x",
            "type": "payment.succeeded",
            "created": int(fake.clock()),
            "data": {"payment_id": "fake_pi_nope", "checkout_id": "fake_cs_nope", "amount": "20.00", "currency": EUR},
        }
    ).encode()
    service.checkout(make_event(service), "ann@example.com")  # a real pending registration stays as it is
    before = snapshot(store)
    with pytest.raises(UnknownPayment):
        service.handle_webhook("stripe-like", {"Fake-Signature": fake.sign(body)}, body)
    assert snapshot(store) == before


# -- crashes and lost answers -----------------------------------------------------------------


def test_crash_between_provider_call_and_db_write_is_reconciled_without_a_second_charge(
    service: PaidEvents, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    event_id = make_event(service)
    fake = fake_of(service.gateways, "stripe-like")

    def crash(registration_id: str, session: CheckoutSession) -> None:
        raise RuntimeError("process died after the provider answered")

    monkeypatch.setattr(service, "_record_checkout", crash)
    with pytest.raises(RuntimeError):
        service.checkout(event_id, "ann@example.com")
    monkeypatch.undo()
    reg_id = service.participants(event_id)[0].registration_id
    assert registration(store, reg_id).checkout_id is None
    assert fake.payments_made() == 1

    report = service.reconcile()
    assert report.checkouts_recovered == 1
    assert fake.payments_made() == 1  # the same operation id returned the same checkout
    checkout_id = registration(store, reg_id).checkout_id
    assert checkout_id is not None
    fake.complete_checkout(checkout_id)
    service.reconcile()  # a missed webhook: the status check confirms
    assert registration(store, reg_id).status == "confirmed"
    assert fake.payments_made() == 1
    assert deliver(service, "stripe-like").count(WebhookOutcome.PROCESSED) == 0


def test_timeout_after_success_is_retried_with_the_same_key(service: PaidEvents) -> None:
    event_id = make_event(service)
    fake = fake_of(service.gateways, "stripe-like")
    fake.script(Scripted(Outcome.TIMEOUT_AFTER_SUCCESS, "checkout"))
    result = service.checkout(event_id, "ann@example.com")
    assert result.checkout_id is not None
    assert fake.payments_made() == 1


def test_lost_answers_leave_a_pending_registration_that_reconcile_finishes(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    fake = fake_of(service.gateways, "stripe-like")
    fake.script(*[Scripted(Outcome.UNAVAILABLE, "checkout")] * 3)
    with pytest.raises(CheckoutPending):
        service.checkout(event_id, "ann@example.com", gateway="stripe-like")
    assert seats(service, event_id) == 1  # the seat stays held until the outcome is known
    assert fake.payments_made() == 0
    report = service.reconcile()
    assert report.checkouts_recovered == 1
    assert fake.payments_made() == 1


def test_declined_checkout_creation_gives_the_seat_back(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    fake_of(service.gateways, "stripe-like").script(Scripted(Outcome.DECLINE, "checkout"))
    with pytest.raises(Exception, match="declined"):
        service.checkout(event_id, "ann@example.com")
    assert seats(service, event_id) == 0
    assert [p.status for p in service.participants(event_id)] == ["failed"]


# -- the organizer ----------------------------------------------------------------------------


def test_organizer_rejects_changes_date_cancels_and_refunds(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    service.add_promo_code(event_id, "FREE", percent="100")
    ann = service.checkout(event_id, "ann@example.com")
    pay(service, "stripe-like", ann.checkout_id)
    bob = service.checkout(event_id, "bob@example.com", gateway="paypal-like")
    pay(service, "paypal-like", bob.checkout_id)
    cat = service.checkout(event_id, "cat@example.com", "FREE")
    dan = service.checkout(event_id, "dan@example.com")  # never pays

    service.reject(bob.registration_id, "duplicate account")
    assert seats(service, event_id) == 3
    with pytest.raises(InvalidTransition):
        service.reject(bob.registration_id)
    assert service.change_date(event_id, service.clock() + STARTS_IN + timedelta(days=1)) == 3  # ann, cat, dan
    assert service.cancel_event(event_id) == 3
    assert fake_of(service.gateways, "stripe-like").checkout(dan.checkout_id or "").status == "expired"
    with pytest.raises(EventClosed):
        service.checkout(event_id, "eve@example.com")

    report = service.fee_report(event_id)
    # ann and bob paid (bob's rejection refunds nothing by itself); cat was free, dan never paid
    assert {line.registration_id: line.fee for line in report.lines} == {
        ann.registration_id: eur("1.00"),
        bob.registration_id: eur("1.00"),
    }
    progress: list[tuple[int, int]] = []
    outcomes = service.refund_all(event_id, lambda done, total, _o: progress.append((done, total)))
    assert progress == [(1, 2), (2, 2)]
    assert {o.registration_id: o.state for o in outcomes} == {
        ann.registration_id: "refunded",
        bob.registration_id: "refunded",
    }
    assert fake_of(service.gateways, "stripe-like").refunds_made() == 1
    assert fake_of(service.gateways, "paypal-like").refunds_made() == 1
    assert service.refund(ann.registration_id).state == "already_refunded"
    assert service.refund_all(event_id) == []
    deliver(service, "stripe-like")
    deliver(service, "paypal-like")
    assert fake_of(service.gateways, "stripe-like").refunds_made() == 1
    with pytest.raises(InvalidTransition):
        service.refund(dan.registration_id)
    kinds = sorted(m.kind for m in _drain(store))
    # cat's; bob's was withdrawn unsent when he was rejected and ann's when she was refunded (each
    # token stopped working before its confirmation went out)
    assert kinds.count("confirmation") == 1
    assert kinds.count("rejection") == 1
    assert kinds.count("date_change") == 3
    assert kinds.count("cancellation") == 3
    assert cat.status == "confirmed"


def test_refund_retry_after_a_lost_answer_does_not_refund_twice(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    ann = service.checkout(event_id, "ann@example.com")
    pay(service, "stripe-like", ann.checkout_id)
    fake = fake_of(service.gateways, "stripe-like")
    fake.script(*[Scripted(Outcome.UNAVAILABLE, "refund")] * 3)
    assert service.refund(ann.registration_id).state == "unknown"  # the answer was lost, not a failure
    assert registration(store, ann.registration_id).refund_state == "requested"
    fake.script(Scripted(Outcome.TIMEOUT_AFTER_SUCCESS, "refund"))
    assert service.refund(ann.registration_id).state == "refunded"
    assert fake.refunds_made() == 1
    assert service.refund(ann.registration_id).state == "already_refunded"
    assert fake.refunds_made() == 1
    assert seats(service, event_id) == 0  # a refunded ticket no longer admits


def test_manual_confirm_and_reissue_gives_a_new_token_and_says_so(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    ann = service.checkout(event_id, "ann@example.com")
    service.confirm(ann.registration_id)
    with pytest.raises(InvalidTransition):
        service.confirm(ann.registration_id)
    mailbox = Mailbox()
    outbox.drain(store, mailbox)
    first = mailbox.token("ann@example.com")
    assert "replaces" not in mailbox.messages[-1].body
    service.reissue_confirmation(ann.registration_id)
    outbox.drain(store, mailbox)
    second = mailbox.token("ann@example.com")
    assert first != second
    assert not service.admit(event_id, first)
    assert service.admit(event_id, second)
    reissued = mailbox.messages[-1]
    assert "(new access token)" in reissued.subject
    assert "the earlier token no longer works" in reissued.body
    assert service.resend_confirmation == service.reissue_confirmation  # the organizer's "resend" re-issues


def test_reissuing_withdraws_an_unsent_confirmation_whose_token_it_revokes(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    ann = service.checkout(event_id, "ann@example.com")
    pay(service, "stripe-like", ann.checkout_id)
    service.reissue_confirmation(ann.registration_id)  # before the first confirmation went out
    mailbox = Mailbox()
    assert outbox.drain(store, mailbox) == 1  # only the one with a working token
    assert service.admit(event_id, mailbox.token("ann@example.com"))


def test_resending_a_confirmation_after_the_cancellation_is_refused_and_changes_nothing(
    service: PaidEvents, store: Store
) -> None:
    event_id = make_event(service)
    ann = service.checkout(event_id, "ann@example.com")
    pay(service, "stripe-like", ann.checkout_id)
    mailbox = Mailbox()
    outbox.drain(store, mailbox)
    token = mailbox.token("ann@example.com")
    service.cancel_event(event_id)
    outbox.drain(store, mailbox)
    assert [m.kind for m in mailbox.messages] == ["confirmation", "cancellation"]
    before = snapshot(store)
    with pytest.raises(EventClosed):  # "You are registered for ..." after "... is cancelled"
        service.resend_confirmation(ann.registration_id)
    assert snapshot(store) == before
    assert outbox.drain(store, mailbox) == 0
    with store.transaction() as s:
        row = s.get(RegistrationRow, ann.registration_id)
        assert row is not None
        assert row.token_hash is not None  # her ticket is as it was: refundable, token unchanged
    assert not service.admit(event_id, token)  # a cancelled event admits nobody


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("no-such-event", "ann@example.com"), UnknownEvent),
        (("{event}", "not an email"), InvalidEmail),
        (("{event}", "ann@example.com", "X" * 40), InvalidPromoCode),
        (("{event}", "ann@example.com", "TE\u0405T"), InvalidPromoCode),
    ],
)
def test_bad_registration_input_changes_nothing(
    service: PaidEvents, store: Store, args: tuple[str, ...], error: type[Exception]
) -> None:
    event_id = make_event(service)
    service.add_promo_code(event_id, "TEN", percent="10", max_uses=5)
    service.checkout(event_id, "bob@example.com", "TEN")
    before = snapshot(store)
    with pytest.raises(error):
        service.checkout(*(event_id if a == "{event}" else a for a in args))
    assert snapshot(store) == before
    assert seats(service, event_id) == 1


def test_tokens_never_reach_logs_or_errors(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    with structlog.testing.capture_logs() as logs:
        ann = service.checkout(event_id, "ann@example.com")
        pay(service, "stripe-like", ann.checkout_id)
        mailbox = Mailbox()
        outbox.drain(store, mailbox)
        service.resend_confirmation(ann.registration_id)
        outbox.drain(store, outbox.LogSender())  # takes no token: the confirmation stays queued
        outbox.drain(store, mailbox)
        service.refund(ann.registration_id)
    tokens = [m.body.rsplit(" ", 1)[-1] for m in mailbox.messages]
    assert len(tokens) == 2
    text = repr(logs)
    assert logs
    for token in tokens:
        assert token not in text
    assert "ann@example.com" not in text
    assert all("token" not in key for entry in logs for key in entry)


def _drain(store: Store) -> list[outbox.Message]:
    mailbox = Mailbox()
    outbox.drain(store, mailbox)
    return mailbox.messages


def test_status_check_on_return_confirms_only_a_paid_checkout(service: PaidEvents) -> None:
    event_id = make_event(service)
    result = service.checkout(event_id, "ann@example.com")
    assert service.check_payment(result.registration_id) == "pending"  # returned without paying
    fake_of(service.gateways, "stripe-like").complete_checkout(result.checkout_id or "")
    assert service.check_payment(result.registration_id) == "confirmed"
    assert deliver(service, "stripe-like").count(WebhookOutcome.PROCESSED) == 0


def test_a_verified_payment_of_the_wrong_amount_does_not_confirm(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    result = service.checkout(event_id, "ann@example.com")
    fake = fake_of(service.gateways, "stripe-like")
    reg = registration(store, result.registration_id)
    body = json.dumps(
        {
            "id": "fake_evt_short",
            "type": "payment.succeeded",
            "created": int(fake.clock()),
            "data": {"payment_id": reg.payment_id, "checkout_id": reg.checkout_id, "amount": "0.50", "currency": EUR},
        }
    ).encode()
    assert service.handle_webhook("stripe-like", {"Fake-Signature": fake.sign(body)}, body) is WebhookOutcome.IGNORED
    assert registration(store, result.registration_id).status == "pending"


def test_bad_arguments_of_other_kinds_are_typed_errors_and_change_nothing(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    paid = service.checkout(event_id, "ann@example.com")
    pay(service, "stripe-like", paid.checkout_id)
    pending = service.checkout(event_id, "bob@example.com")
    base: dict[str, Any] = {
        "organizer": "org-1",
        "title": "Series",
        "price": eur("20"),
        "capacity": 5,
        "gateways": ["stripe-like"],
    }
    nothing: Any = None
    five: Any = 5
    text: Any = "not a callback"
    before = snapshot(store)
    calls: list[Any] = [
        lambda: service.create_event(**base, kind="permanent", sessions=nothing),  # was TypeError
        lambda: service.create_event(**base, kind="permanent", sessions=five),
        lambda: service.create_event(**{**base, "gateways": 5}, kind="on_demand"),
        lambda: service.create_event(**{**base, "gateways": [["stripe-like"]]}, kind="on_demand"),
        lambda: service.reject(pending.registration_id, five),  # a reason that is not text
        lambda: service.reject(pending.registration_id, "spam\x00"),  # PostgreSQL's text takes no NUL
        lambda: service.refund_all(event_id, text),  # was: refunded ann, then TypeError
    ]
    for call in calls:
        with pytest.raises(InvalidInput):
            call()
    assert snapshot(store) == before
    assert fake_of(service.gateways, "stripe-like").refunds_made() == 0
    when = service.clock() + timedelta(days=3)
    series = service.create_event(**base, kind="permanent", sessions=(w for w in [when]))  # a generator: read once
    assert [s.starts_at for s in service.sessions(series.id)] == [when]  # was: checked, then dropped


# -- the organizer acting while a checkout is being opened at the provider ----------------------
# The registration is committed before the provider is called and the checkout recorded after
# it, so the organizer can cancel the event or reject the participant in between; these tests
# play the organizer from inside the provider call (a wrapper plugin): exactly that interleaving.


class DuringCheckout:
    """Runs ``action(registration_id)`` once while a checkout request is at the provider."""

    def __init__(self) -> None:
        self.action: Callable[[str], object] | None = None

    @hookimpl(wrapper=True)
    def gateway_create_checkout(
        self, request: CheckoutRequest, context: OperationContext
    ) -> Generator[None, CheckoutSession, CheckoutSession]:
        session = yield
        action, self.action = self.action, None
        if action is not None:
            assert request.reference is not None
            action(request.reference)
        return session


@pytest.fixture
def racing(store: Store, clock: Clock) -> tuple[PaidEvents, DuringCheckout]:
    during = DuringCheckout()
    platform, deployment = pe_config.load()
    manager = GatewayManager(deployment, plugins=[gateway_core.fake, during], load_entry_points=False)
    return PaidEvents(store, on_clock(manager, clock), platform, clock=clock), during


def test_a_checkout_opened_while_the_event_is_cancelled_is_closed_not_handed_out(
    racing: tuple[PaidEvents, DuringCheckout], store: Store
) -> None:
    service, during = racing
    event_id = make_event(service)
    during.action = lambda _registration_id: service.cancel_event(event_id)
    with pytest.raises(EventClosed):
        service.checkout(event_id, "ann@example.com")
    (ann,) = service.participants(event_id)
    checkout_id = registration(store, ann.registration_id).checkout_id  # recorded: a late payment is found
    assert checkout_id is not None
    assert fake_of(service.gateways, "stripe-like").checkout(checkout_id).status == "expired"  # nobody can pay it
    assert service.event(event_id).seats_taken == 0
    assert service.participants(event_id)[0].status == "expired"


def test_a_checkout_opened_while_its_participant_is_rejected_is_closed_not_handed_out(
    racing: tuple[PaidEvents, DuringCheckout], store: Store
) -> None:
    service, during = racing
    event_id = make_event(service)
    during.action = service.reject
    with pytest.raises(InvalidTransition, match="rejected"):
        service.checkout(event_id, "ann@example.com")
    (ann,) = service.participants(event_id)
    assert (ann.status, ann.paid) == ("rejected", False)
    checkout_id = registration(store, ann.registration_id).checkout_id
    assert checkout_id is not None
    assert fake_of(service.gateways, "stripe-like").checkout(checkout_id).status == "expired"
    assert service.event(event_id).seats_taken == 0
    assert service.reconcile().checkouts_recovered == 0  # nothing left open for reconcile to pay out
