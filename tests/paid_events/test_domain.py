"""The pure rules: prices, promo codes (incl. unicode tricks), e-mail, fee, configuration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from paid_events import config as pe_config
from paid_events import domain
from paid_events.config import PlatformConfig
from paid_events.domain import Promo, PromoKind
from paid_events.errors import InvalidEmail, InvalidPrice, InvalidPromoCode, PromoNotAllowed

from gateway_core import ConfigurationError, InvalidMoney, Money, Rounding

EXAMPLE, DEPLOYMENT = pe_config.load()
ALL = set(EXAMPLE.price_limits)


def test_example_config_has_the_issue_table_and_hu_bg_ro_only_through_stripe_like() -> None:
    assert EXAMPLE.price_limit("USD") == Money.of("2000", "USD")
    assert EXAMPLE.price_limit("HUF") == Money.of("700000", "HUF")
    assert EXAMPLE.price_limit("RUB") == Money.of("200000", "RUB")
    assert len(EXAMPLE.price_limits) == 22
    assert EXAMPLE.fee_percent == Decimal(5)
    assert EXAMPLE.fee_rounding is Rounding.HALF_UP
    by_name = {g.name: g for g in DEPLOYMENT.gateways}
    stripe, paypal = by_name["stripe-like"].currencies, by_name["paypal-like"].currencies
    assert stripe is not None
    assert paypal is not None
    assert {"HUF", "BGN", "RON"} <= set(stripe)
    assert not {"HUF", "BGN", "RON"} & set(paypal)


#: The issue's table of the platform's price limits, copied from it (not from the configuration).
ISSUE_PRICE_LIMITS = {
    "USD": "2000",
    "EUR": "2000",
    "GBP": "2000",
    "PLN": "8000",
    "RUB": "200000",
    "AUD": "3000",
    "CAD": "3000",
    "CZK": "46000",
    "DKK": "13000",
    "HKD": "20000",
    "ILS": "74000",
    "MXN": "40000",
    "NOK": "17000",
    "NZD": "3000",
    "PHP": "106000",
    "SGD": "2800",
    "SEK": "18000",
    "CHF": "2000",
    "THB": "66000",
    "HUF": "700000",
    "BGN": "4000",
    "RON": "8000",
}


def test_the_example_config_has_exactly_the_issues_22_price_limits() -> None:
    assert len(ISSUE_PRICE_LIMITS) == 22
    assert dict(EXAMPLE.price_limits) == {code: Money.of(limit, code) for code, limit in ISSUE_PRICE_LIMITS.items()}


@pytest.mark.parametrize(("code", "limit"), sorted(ISSUE_PRICE_LIMITS.items()))
def test_each_limit_is_sellable_and_one_minor_unit_more_is_not(code: str, limit: str) -> None:
    at_limit = Money.of(limit, code)
    domain.validate_price(at_limit, EXAMPLE, ALL)
    above = at_limit + Money.from_minor(1, code)
    with pytest.raises(InvalidPrice, match="above the platform's limit"):
        domain.validate_price(above, EXAMPLE, ALL)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"price_limits": {"EUR": 2000.0}}, "decimal string"),
        ({"price_limits": {"EUR": "2000"}, "fee_percent": 5.0}, "decimal string"),
        ({"price_limits": {"EUR": "2000"}, "fee_rounding": "NEAREST"}, "fee_rounding"),
        ({"price_limits": {"EUR": "2000"}, "fee_percent": "100"}, "fee_percent"),
        # read as strictly as an amount: Decimal() would take each of these as 15 or 1.5
        ({"price_limits": {"EUR": "2000"}, "fee_percent": "1_5"}, "fee_percent = '1_5' is not a plain decimal"),
        ({"price_limits": {"EUR": "2000"}, "fee_percent": "1.5E+1"}, "not a plain decimal"),
        ({"price_limits": {"EUR": "2000"}, "fee_percent": " 15 "}, "not a plain decimal"),
        (
            {"price_limits": {"EUR": "2000"}, "minimum_price": "\uff11"},
            "minimum_price = '\uff11' is not a plain decimal",
        ),
        ({"price_limits": {}}, "price_limits"),
        ({"price_limits": {"EUR": "2000"}, "colour": "red"}, "unknown"),
        ({"price_limits": {"EUR": "2000"}, "late_join_minutes": -1}, "late_join_minutes"),
        ({"price_limits": {"EUR": "2000"}, "late_join_minutes": "10"}, "late_join_minutes"),
        # was accepted, then every create_event in JPY failed with "0.5 has more decimals than JPY allows"
        ({"price_limits": {"EUR": "2000", "JPY": "300000"}, "minimum_price": "0.5"}, "JPY has no such amount"),
        ({"price_limits": {"EUR": "0.50"}}, r"EUR = '0.50' is below minimum_price"),  # nothing could be sold
    ],
)
def test_bad_platform_config_is_refused(body: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        PlatformConfig.from_mapping(body)


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        ("0.99", "EUR", "below the minimum"),
        ("2000.01", "EUR", "above the platform's limit"),
        ("8000.01", "PLN", "above"),
        ("5", "JPY", "does not sell"),
        ("-5", "EUR", "below the minimum"),
    ],
)
def test_price_rules(amount: str, currency: str, message: str) -> None:
    with pytest.raises(InvalidPrice, match=message):
        domain.validate_price(Money.of(amount, currency), EXAMPLE, ALL)


def test_price_at_the_limits_is_accepted() -> None:
    domain.validate_price(Money.of("1", "EUR"), EXAMPLE, ALL)
    domain.validate_price(Money.of("2000", "EUR"), EXAMPLE, ALL)
    domain.validate_price(Money.of("700000", "HUF"), EXAMPLE, ALL)


def test_currency_must_be_offered_by_an_enabled_gateway() -> None:
    with pytest.raises(InvalidPrice, match="enabled gateways offers HUF"):
        domain.validate_price(Money.of("1000", "HUF"), EXAMPLE, {"EUR", "USD"})


@pytest.mark.parametrize("raw", ["10.005", "1e3", "abc", 10.5])
def test_fractional_cent_float_or_garbage_price_is_refused(raw: object) -> None:
    with pytest.raises(InvalidPrice):
        domain.parse_price(raw, "EUR")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "raw",
    [
        "1_5",  # Decimal("1_5") == 15
        "\uff11\uff15",  # full-width "15"
        "\u0661\u0665",  # Arabic-Indic "15"
        "1.5E+1",
        "1e1",
        " 15 ",
        "15\n",
        "+15",
        "15.",
        ".5",
        "NaN",
        "Infinity",
        "",
        "15%",
    ],
    ids=repr,
)
def test_a_percent_string_money_of_would_refuse_as_an_amount_is_refused(raw: str) -> None:
    """A percent is parsed exactly as strictly as an amount (``Money.of``), not as loosely as ``Decimal``."""
    with pytest.raises(InvalidMoney):
        Money.of(raw, "EUR")  # the strictness the percent is held to
    with pytest.raises(InvalidPromoCode, match="plain decimal"):
        domain.parse_percent(raw)


@pytest.mark.parametrize("raw", ["15", "12.5", "0.01", "100", "100.00", "015"])
def test_a_plain_decimal_percent_is_parsed_as_money_of_parses_an_amount(raw: str) -> None:
    assert domain.parse_percent(raw) == Decimal(raw) == Money.of(raw, "EUR").amount
    assert domain.parse_percent(Decimal(raw)) == Decimal(raw)


@pytest.mark.parametrize("raw", [15.0, 15, True, Decimal("NaN"), Decimal("Infinity"), None])
def test_a_percent_that_is_neither_a_decimal_nor_a_string_is_refused(raw: object) -> None:
    with pytest.raises(InvalidPromoCode, match="never a float"):
        domain.parse_percent(raw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("early-bird", "EARLY-BIRD"),
        ("  save_10 ", "SAVE_10"),
        ("\uff33\uff21\uff36\uff25", "SAVE"),
        ("A" * 32, "A" * 32),
    ],
)
def test_promo_codes_are_normalized(raw: str, expected: str) -> None:
    assert domain.normalize_promo_code(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "A" * 33,
        "A" * 10_000,
        "S\u0410VE",  # Cyrillic A
        "SA\u200bVE",  # zero-width space
        "stra\u00dfe",  # would uppercase to STRASSE
        "d\u0131scount",  # dotless i would uppercase to I
        "SAVE 10",
        "SAVE;DROP",
        None,
    ],
)
def test_overlong_or_unicode_trick_promo_codes_are_refused(raw: object) -> None:
    with pytest.raises(InvalidPromoCode):
        domain.normalize_promo_code(raw)


@pytest.mark.parametrize(
    "raw", ["", "no-at-sign", "a@b", "a@@b.com", "a b@c.com", "x" * 250 + "@b.com", ".a@b.com", "\u0430@b.com", None]
)
def test_malformed_email_is_refused(raw: object) -> None:
    with pytest.raises(InvalidEmail):
        domain.normalize_email(raw)


def test_email_domain_is_lowercased_and_the_key_is_the_whole_address_lowercased() -> None:
    assert domain.normalize_email(" Ann.Lee+x@Example.COM ") == "Ann.Lee+x@example.com"
    assert domain.email_key(domain.normalize_email("Ann.Lee+x@Example.COM")) == "ann.lee+x@example.com"
    assert domain.email_key("ANN@x.com") == domain.email_key("ann@X.com".lower())


def test_percentage_promo_rounds_the_discount_with_the_named_mode() -> None:
    promo = Promo("P", PromoKind.PERCENT, percent=Decimal("33.33"))
    price = Money.of("10.01", "EUR")  # 33.33 % of 10.01 = 3.336333
    assert domain.apply_promo(price, promo, Rounding.HALF_UP) == Money.of("6.67", "EUR")
    assert domain.apply_promo(price, promo, Rounding.DOWN) == Money.of("6.68", "EUR")


def test_hundred_percent_and_oversized_fixed_promo_are_free_never_negative() -> None:
    price = Money.of("20", "EUR")
    assert domain.apply_promo(price, Promo("F", PromoKind.PERCENT, percent=Decimal(100)), Rounding.HALF_UP).amount == 0
    fixed = Promo("F", PromoKind.FIXED, amount=Money.of("25", "EUR"))
    assert domain.apply_promo(price, fixed, Rounding.HALF_UP) == Money.zero("EUR")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": PromoKind.PERCENT, "percent": Decimal(0)},
        {"kind": PromoKind.PERCENT, "percent": Decimal("100.01")},
        {"kind": PromoKind.PERCENT, "percent": Decimal("10.001")},
        {"kind": PromoKind.FIXED, "amount": Money.of("-1", "EUR")},
        {"kind": PromoKind.FIXED},
        {"kind": PromoKind.FIXED, "amount": 5.0},  # a float, not Money (was AttributeError)
        {"kind": PromoKind.PERCENT, "percent": 10.0},  # a float, not a Decimal (was AttributeError)
    ],
)
def test_bad_promo_rules_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidPromoCode):
        Promo("X", **kwargs)  # type: ignore[arg-type]


def test_promo_codes_only_for_one_off_events() -> None:
    domain.check_promo_allowed(domain.EventKind.ONE_OFF)
    for kind in (domain.EventKind.PERMANENT, domain.EventKind.ON_DEMAND):
        with pytest.raises(PromoNotAllowed):
            domain.check_promo_allowed(kind)


def test_service_fee_is_exact_with_the_configured_rounding() -> None:
    assert domain.service_fee(Money.of("19.99", "EUR"), EXAMPLE) == Money.of("1.00", "EUR")  # 0.9995 half-up
    assert domain.service_fee(Money.of("10.10", "EUR"), EXAMPLE) == Money.of("0.51", "EUR")  # 0.505 half-up
    even = PlatformConfig(EXAMPLE.price_limits, fee_percent=Decimal(5), fee_rounding=Rounding.HALF_EVEN)
    assert domain.service_fee(Money.of("10.10", "EUR"), even) == Money.of("0.50", "EUR")


def test_early_bird_price_applies_only_inside_its_window() -> None:
    now = datetime(2026, 11, 25, tzinfo=UTC)
    price, early = Money.of("50", "EUR"), Money.of("40", "EUR")
    assert domain.current_price(price, early, now + timedelta(days=1), now) == early
    assert domain.current_price(price, early, now, now) == price
    assert domain.current_price(price, None, None, now) == price
    later = now + timedelta(hours=1)
    assert domain.current_price(price, early, now + timedelta(days=1), now, early_from=later) == price  # not yet
    assert domain.current_price(price, early, now + timedelta(days=1), later, early_from=later) == early
