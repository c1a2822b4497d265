"""The fee total's rule and the gateway's wire step in round-up, end to end on a store."""

from __future__ import annotations

from datetime import date

import pytest
from paid_events import config as pe_config
from paid_events.service import PaidEvents
from paid_events.store import Store

import gateway_core.fake
from gateway_core import Capabilities, CurrencyRule, Feature, Money, Source, WireFormat

from .conftest import Clock
from .helpers import eur, fake_of, make_event, manager_with, pay


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
    event_id = make_event(service, price=Money.of("1000.50", "HUF"), gateways=["forints"])
    service.add_promo_code(event_id, "DEEP", percent="95")
    deep = service.quote(event_id, "DEEP")
    assert deep.discounted == Money.of("50.02", "HUF")  # 1000.50 - 950.48 (95 % = 950.475, HALF_UP)
    assert (deep.final, deep.rounded_up) == (Money.of("175", "HUF"), True)
    full = service.quote(event_id)  # the list price itself is off the step
    assert (full.final, full.rounded_up) == (Money.of("1001", "HUF"), True)
    result = service.checkout(event_id, "ann@example.com", "DEEP", accept_price=Money.of("175", "HUF"))
    assert result.quote.final == Money.of("175", "HUF")
