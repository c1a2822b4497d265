"""Prices end to end on a store: the fee total's rule, the application fee only where a gateway takes one,
the gateway's minimum and wire step (a discount is rounded up to them, a list price must fit them)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from paid_events import config as pe_config
from paid_events.errors import InvalidPrice
from paid_events.service import PaidEvents
from paid_events.store import Store

import gateway_core.fake
from gateway_core import (
    Capabilities,
    CurrencyRule,
    Feature,
    Money,
    Source,
    WireFormat,
)
from gateway_core.fake import default_capabilities

from .conftest import Clock
from .helpers import Audit, audited, eur, fake_of, make_event, manager_with, pay, snapshot


def test_the_fee_total_is_what_was_collected_per_payment_and_the_fee_on_the_total_is_shown(
    service: PaidEvents,
) -> None:
    event_id = make_event(service, price=eur("10.10"))
    for name in ("ann", "bob", "cat"):
        result = service.checkout(event_id, f"{name}@example.com")
        assert result.quote.fee == eur("0.51")  # 5 % of 10.10 = 0.505, HALF_UP: what this payment carries
        pay(service, "stripe-like", result.checkout_id)
    report = service.fee_report(event_id)
    assert [line.fee for line in report.lines] == [eur("0.51")] * 3
    assert report.total_sales == eur("30.30")
    assert report.total_fee == eur("1.53")  # the sum of the per-payment fees: what the platform collected
    assert report.fee_on_total == eur("1.52")  # 5 % of 30.30 rounded once
    assert report.rounding_difference == eur("0.01")


def test_the_fee_total_equals_the_fee_on_the_total_when_no_rounding_differs(service: PaidEvents) -> None:
    event_id = make_event(service, price=eur("20"))
    for name in ("ann", "bob"):
        pay(service, "stripe-like", service.checkout(event_id, f"{name}@example.com").checkout_id)
    report = service.fee_report(event_id)
    assert (report.total_fee, report.fee_on_total, report.rounding_difference) == (
        eur("2.00"),
        eur("2.00"),
        eur("0.00"),
    )


@pytest.fixture
def whole_forints(store: Store, clock: Clock) -> PaidEvents:
    """A gateway that takes HUF as Stripe does: two decimals on the wire, multiples of 100 (whole forints)."""
    rule = CurrencyRule("HUF", 2, step=100, minimum=Money.of("175", "HUF"))
    caps = Capabilities(
        [rule],
        set(Feature),
        sources=[Source("test rule", "whole forints, minimum 175 HUF", date(2026, 11, 1))],
        live=False,
    )
    manager = manager_with(
        {"forints": {"provider": "fake-huf", "settings": {"test_mode": True}}},
        gateway_core.fake.provider("fake-huf", caps),
        clock=clock,
    )
    return PaidEvents(store, manager, pe_config.load()[0], clock=clock)


def test_a_discount_is_rounded_up_to_the_gateways_step_and_the_participant_pays_that(whole_forints: PaidEvents) -> None:
    service = whole_forints
    event_id = make_event(service, price=Money.of("1000", "HUF"), gateways=["forints"])
    service.add_promo_code(event_id, "ODD", percent="12.34")
    quote = service.quote(event_id, "ODD")
    assert quote.discounted == Money.of("876.60", "HUF")  # 12.34 % off, in ISO's two decimals
    assert quote.final == Money.of("877", "HUF")  # up to the next whole forint: the provider's step
    assert quote.rounded_up
    assert quote.fee == Money.of("44", "HUF")  # 5 % = 43.85, HALF_UP onto the step: it travels as the fee
    assert WireFormat("HUF", 2, 100).accepts(quote.fee)
    result = service.checkout(event_id, "ann@example.com", "ODD", accept_price=quote.final)
    assert result.quote.final == Money.of("877", "HUF")
    pay(service, "forints", result.checkout_id)
    assert fake_of(service.gateways, "forints").checkout(result.checkout_id or "").amount == Money.of("877", "HUF")
    assert [p.status for p in service.participants(event_id)] == ["confirmed"]


def test_a_discount_below_the_minimum_is_rounded_up_to_the_minimum_on_the_step(whole_forints: PaidEvents) -> None:
    service = whole_forints
    event_id = make_event(service, price=Money.of("1001", "HUF"), gateways=["forints"])
    service.add_promo_code(event_id, "DEEP", percent="95")
    deep = service.quote(event_id, "DEEP")
    assert deep.discounted == Money.of("50.05", "HUF")  # 1001 - 950.95 (95 %)
    assert (deep.final, deep.rounded_up) == (Money.of("175", "HUF"), True)
    full = service.quote(event_id)  # the list price is charged as it is
    assert (full.final, full.rounded_up) == (Money.of("1001", "HUF"), False)
    result = service.checkout(event_id, "ann@example.com", "DEEP", accept_price=Money.of("175", "HUF"))
    assert result.quote.final == Money.of("175", "HUF")


# -- a list price is charged as it is: only a discount is rounded up ------------------------


@pytest.mark.parametrize(
    ("price", "gateways", "said"),
    [
        # the example's stripe-like takes HUF from 175.00 (paypal-like offers no HUF at all)
        (
            Money.of("1", "HUF"),
            ["stripe-like", "paypal-like"],
            "lowest price an enabled gateway takes in HUF is 175.00",
        ),
        # stripe-like takes PLN from 2.00; enabled alone, nothing takes 1.50 PLN
        (Money.of("1.50", "PLN"), ["stripe-like"], "lowest price an enabled gateway takes in PLN is 2.00 PLN"),
    ],
)
def test_a_list_price_below_every_enabled_gateways_minimum_is_refused(
    service: PaidEvents, store: Store, price: Money, gateways: list[str], said: str
) -> None:
    kept = make_event(service)
    before = snapshot(store)
    with pytest.raises(InvalidPrice, match="takes the list price") as info:
        make_event(service, price=price, gateways=gateways)
    assert said in str(info.value)
    assert "is below the" in str(info.value)  # each gateway's own reason is given
    assert snapshot(store) == before
    assert service.event(kept).price == eur("20")


def test_a_list_price_one_enabled_gateway_takes_is_sold_as_it_is(service: PaidEvents) -> None:
    event_id = make_event(service, price=Money.of("1.50", "PLN"), gateways=["stripe-like", "paypal-like"])
    quote = service.quote(event_id)
    assert (quote.final, quote.rounded_up, quote.gateway) == (Money.of("1.50", "PLN"), False, "paypal-like")
    # The participant cannot pick the gateway that would have raised it: refused, not rounded up.
    with pytest.raises(InvalidPrice, match=r"\(stripe-like\) takes the list price 1.50 PLN"):
        service.quote(event_id, gateway="stripe-like")
    result = service.checkout(event_id, "ann@example.com", accept_price=Money.of("1.50", "PLN"))
    assert result.quote.final == Money.of("1.50", "PLN")
    checkout = fake_of(service.gateways, "paypal-like").checkout(result.checkout_id or "")
    assert checkout.amount == Money.of("1.50", "PLN")


@pytest.mark.parametrize(
    ("discount", "code"),
    [
        ({}, "TENOFF"),  # 10 % off: 1.35 PLN
        ({"early_price": Money.of("1.20", "PLN"), "early_until": timedelta(days=1)}, None),  # early-bird
    ],
    ids=["promo-code", "early-bird"],
)
def test_a_named_gateway_that_would_raise_a_discount_above_the_list_price_is_refused(
    store: Store, clock: Clock, discount: dict[str, object], code: str | None
) -> None:
    """Never above the list price, also when the participant names the gateway: refused as the list price is."""
    service, audit = audited(store, clock)
    pln = "PLN"
    event_id = make_event(
        service, price=Money.of("1.50", pln), gateways=["stripe-like", "paypal-like"], **discount
    )  # stripe-like takes 2.00 PLN or more, paypal-like takes 1.50 PLN as it is
    service.add_promo_code(event_id, "TENOFF", percent="10")
    before = snapshot(store)
    said = r"\(stripe-like\) takes the discounted price 1\.[23][05] PLN .*list price 1\.50 PLN"
    with pytest.raises(InvalidPrice, match=said) as info:
        service.quote(event_id, code, gateway="stripe-like")
    assert "stripe-like would charge 2.00 PLN" in str(info.value)
    with pytest.raises(InvalidPrice, match=said):
        service.checkout(event_id, "ann@example.com", code, gateway="stripe-like")
    with pytest.raises(InvalidPrice, match=said):
        service.checkout(event_id, "ann@example.com", code, gateway="stripe-like", accept_price=Money.of("2.00", pln))
    assert snapshot(store) == before  # no seat held, no promo use taken, no registration
    assert audit.requests == []  # no checkout opened at any provider
    # Without naming a gateway the discount goes through the one that takes it as it is.
    result = service.checkout(event_id, "ann@example.com", code)
    assert (result.quote.gateway, result.quote.final, result.quote.rounded_up) == (
        "paypal-like",
        result.quote.discounted,
        False,
    )
    assert result.quote.final < result.quote.list_price
    assert [r.amount for r in audit.by_gateway["paypal-like"]] == [result.quote.final]


def test_change_price_refuses_a_list_price_no_enabled_gateway_takes(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service, price=Money.of("5000", "HUF"), gateways=["stripe-like"])
    before = snapshot(store)
    with pytest.raises(InvalidPrice, match=r"175\.00 HUF"):
        service.change_price(event_id, Money.of("100", "HUF"))
    assert snapshot(store) == before
    assert service.change_price(event_id, Money.of("175", "HUF")).price == Money.of("175", "HUF")  # the minimum itself


def test_a_list_price_off_the_gateways_step_is_refused_with_the_nearest_it_takes(
    whole_forints: PaidEvents, store: Store
) -> None:
    service = whole_forints
    with pytest.raises(InvalidPrice, match="not a multiple of") as info:
        make_event(service, price=Money.of("1000.50", "HUF"), gateways=["forints"])
    assert "the nearest one at or above 1000.50 HUF is 1001.00 HUF" in str(info.value)
    event_id = make_event(service, price=Money.of("1000", "HUF"), gateways=["forints"])
    before = snapshot(store)
    with pytest.raises(InvalidPrice, match=r"1001\.00 HUF"):
        service.change_price(event_id, Money.of("1000.50", "HUF"))
    assert snapshot(store) == before
    assert service.event(event_id).price == Money.of("1000", "HUF")


def test_an_early_bird_price_below_the_minimum_is_still_rounded_up_and_shown(service: PaidEvents) -> None:
    event_id = make_event(
        service,
        price=Money.of("500", "HUF"),
        gateways=["stripe-like"],
        early_price=Money.of("100", "HUF"),
        early_until=timedelta(days=3),
    )
    quote = service.quote(event_id)
    assert (quote.current_price, quote.final, quote.rounded_up) == (
        Money.of("100", "HUF"),
        Money.of("175", "HUF"),
        True,
    )
    result = service.checkout(event_id, "ann@example.com", accept_price=Money.of("175", "HUF"))
    checkout = fake_of(service.gateways, "stripe-like").checkout(result.checkout_id or "")
    assert checkout.amount == Money.of("175", "HUF")


def _huf_gateway(name: str, rule: CurrencyRule) -> object:
    caps = Capabilities([rule], set(Feature), sources=[Source("test rule", name, date(2026, 11, 1))], live=False)
    return gateway_core.fake.provider(name, caps)


def test_a_discount_is_rounded_up_on_the_gateway_that_raises_it_least(store: Store, clock: Clock) -> None:
    """Never above the list price: the cheapest rounding is at most the price a gateway takes as it is."""
    manager = manager_with(
        {
            "high-minimum": {"provider": "fake-175", "priority": 10, "settings": {"test_mode": True}},
            "whole-forints": {"provider": "fake-whole", "priority": 20, "settings": {"test_mode": True}},
        },
        _huf_gateway("fake-175", CurrencyRule("HUF", 2, minimum=Money.of("175", "HUF"))),
        _huf_gateway("fake-whole", CurrencyRule("HUF", 2, step=100, minimum=Money.of("100", "HUF"))),
        clock=clock,
    )
    service = PaidEvents(store, manager, pe_config.load()[0], clock=clock)
    event_id = make_event(service, price=Money.of("150", "HUF"), gateways=["high-minimum", "whole-forints"])
    service.add_promo_code(event_id, "ODD", amount=Money.of("29.50", "HUF"))
    quote = service.quote(event_id, "ODD")
    assert quote.discounted == Money.of("120.50", "HUF")  # 150 - 29.50: neither takes it as it is
    # the first gateway by priority would raise it to 175, above the 150 list price
    assert (quote.final, quote.gateway, quote.rounded_up) == (Money.of("121", "HUF"), "whole-forints", True)
    assert quote.final <= quote.list_price


# -- the application fee goes to the provider only where the gateway declares it ------------


def test_a_gateway_without_application_fees_gets_none_and_the_organizer_still_sees_the_fee(
    store: Store, clock: Clock
) -> None:
    audit = Audit()
    seen = audit.by_gateway
    no_fee = default_capabilities(["EUR"], features=set(Feature) - {Feature.APPLICATION_FEE})
    manager = manager_with(
        {
            "no-fee": {"provider": "fake-no-fee", "settings": {"test_mode": True}},
            "with-fee": {"provider": "fake", "settings": {"test_mode": True}},
        },
        gateway_core.fake.provider("fake-no-fee", no_fee),
        audit,
        clock=clock,
    )
    assert Feature.APPLICATION_FEE not in manager.gateway("no-fee").capabilities.features
    service = PaidEvents(store, manager, pe_config.load()[0], clock=clock)
    plain = make_event(service, price=eur("20"), gateways=["no-fee"])
    result = service.checkout(plain, "ann@example.com")
    assert (result.quote.gateway, result.quote.fee) == ("no-fee", eur("1.00"))  # 5 %: the platform's fee
    assert [r.application_fee for r in seen["no-fee"]] == [None]  # not sent to a gateway that takes none
    pay(service, "no-fee", result.checkout_id)
    assert [(p.amount, p.fee, p.paid) for p in service.participants(plain)] == [(eur("20"), eur("1.00"), True)]
    report = service.fee_report(plain)
    assert (report.total_sales, report.total_fee) == (eur("20"), eur("1.00"))
    # the same event on a gateway that declares the feature carries it
    with_fee = make_event(service, price=eur("20"), gateways=["with-fee"])
    service.checkout(with_fee, "bob@example.com")
    assert [r.application_fee for r in seen["with-fee"]] == [eur("1.00")]


def test_the_examples_paypal_like_declares_paypals_features_and_gets_no_fee(store: Store, clock: Clock) -> None:
    paypal = pytest.importorskip("paypal_gateway.metadata", reason="the PayPal plugin is not installed")
    service, audit = audited(store, clock)
    seen = audit.requests
    assert service.gateways.gateway("paypal-like").capabilities.features == paypal.CAPABILITIES.features
    assert Feature.APPLICATION_FEE in service.gateways.gateway("stripe-like").capabilities.features
    event_id = make_event(service, price=eur("20"), gateways=["paypal-like"])
    result = service.checkout(event_id, "ann@example.com")
    assert (result.quote.gateway, result.quote.fee) == ("paypal-like", eur("1.00"))
    assert [r.application_fee for r in seen] == [None]
    pay(service, "paypal-like", result.checkout_id)
    assert service.fee_report(event_id).total_fee == eur("1.00")
