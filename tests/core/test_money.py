"""Money: exact construction, typed refusals, currency safety, named rounding, provider wire formats."""

from __future__ import annotations

import decimal
from collections.abc import Callable
from decimal import Decimal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway_core import (
    ConfigurationError,
    CurrencyMismatch,
    GatewayError,
    InvalidAmount,
    InvalidCurrency,
    InvalidMoney,
    Money,
    Rounding,
    WireFormat,
)
from gateway_core.errors import ErrorCode
from gateway_core.money import all_currencies, currency, parse_decimal

#: Hypothesis must not fail a run for being slow on a loaded machine: no timed assertions.
NO_DEADLINE = settings(deadline=None)

CURRENCIES = list(all_currencies())


# --------------------------------------------------------------------------------------------
# Construction
# --------------------------------------------------------------------------------------------


def test_of_str_is_quantized_to_the_currency_exponent() -> None:
    m = Money.of("12.5", "EUR")
    assert m.amount == Decimal("12.50")
    assert str(m.amount) == "12.50"
    assert m.currency == "EUR"
    assert str(m) == "12.50 EUR"


def test_of_decimal_and_of_str_agree() -> None:
    assert Money.of(Decimal("12.50"), "EUR") == Money.of("12.50", "EUR")
    assert Money.of(Decimal("7"), "JPY").amount == Decimal("7")


@pytest.mark.parametrize(
    ("minor", "code", "expected"),
    [
        (1250, "EUR", "12.50"),
        (1250, "JPY", "1250"),
        (1250, "KWD", "1.250"),
        (-5, "USD", "-0.05"),
        (0, "ISK", "0"),
    ],
)
def test_from_minor_uses_the_iso_exponent(minor: int, code: str, expected: str) -> None:
    m = Money.from_minor(minor, code)
    assert m.amount == Decimal(expected)
    assert str(m.amount) == expected
    assert m.to_minor() == minor


def test_from_minor_with_a_provider_exponent() -> None:
    # Stripe sends ISK with two decimals although ISO says none: 500 means 5 ISK.
    assert Money.from_minor(500, "ISK", exponent=2) == Money.of("5", "ISK")
    with pytest.raises(InvalidAmount, match="more decimals than ISK"):
        Money.from_minor(550, "ISK", exponent=2)


@pytest.mark.parametrize("exponent", [1.5, "2", Decimal(2)])
def test_from_minor_takes_only_an_int_exponent(exponent: object) -> None:
    # the exponent is the plugin's wire format, refused like WireFormat refuses one
    with pytest.raises(ConfigurationError, match="a wire exponent must be an int"):
        Money.from_minor(5, "EUR", exponent=exponent)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exponent", "said"),
    [(-3, "a wire exponent must be at least 0, got -3"), (True, "a wire exponent must be an int, not bool")],
)
def test_from_minor_refuses_a_negative_or_bool_exponent(exponent: int, said: str) -> None:
    # -3 would scale 5 up to 5000.00 EUR; True would pass for 1 and make 5 into 0.50 EUR
    with pytest.raises(ConfigurationError, match=said):
        Money.from_minor(5, "EUR", exponent=exponent)
    assert Money.from_minor(5, "EUR", exponent=0) == Money.of("5", "EUR")


@pytest.mark.parametrize("exponent", [29, 10**6, 10**30])
def test_from_minor_refuses_a_huge_exponent_naming_it(exponent: int) -> None:
    # no currency has more decimals than an amount has digits: the plugin's wire format is wrong
    with pytest.raises(ConfigurationError, match=f"a wire exponent must be at most 28, got {exponent}"):
        Money.from_minor(5, "EUR", exponent=exponent)
    with pytest.raises(ConfigurationError, match=f"invalid wire format for EUR: exponent {exponent}"):
        WireFormat("EUR", exponent, 10 ** (exponent - 2) if exponent < 100 else 1)
    assert Money.from_minor(10**28, "EUR", exponent=28) == Money.of("1", "EUR")
    assert WireFormat("EUR", 28, 10**26).quantum == Decimal("0.01")


@pytest.mark.parametrize("minor", [12.0, "12", Decimal(12), True, None])
def test_from_minor_takes_only_int(minor: object) -> None:
    with pytest.raises(InvalidAmount, match="minor units must be an int"):
        Money.from_minor(minor, "EUR")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "said"),
    [
        (12.5, "not float"),
        (0.1, "floats cannot represent money"),
        (float("nan"), "not float"),
        (float("inf"), "not float"),
        (Decimal("NaN"), "must be finite"),
        (Decimal("sNaN"), "must be finite"),
        (Decimal("Infinity"), "must be finite"),
        (Decimal("-Infinity"), "must be finite"),
        ("1e3", "no exponent"),
        ("1E3", "no exponent"),
        ("NaN", "not a plain decimal"),
        ("Infinity", "not a plain decimal"),
        ("", "not a plain decimal"),
        (" 12", "no spaces"),
        ("12.", "not a plain decimal"),
        (".5", "not a plain decimal"),
        ("+5", "not a plain decimal"),
        ("1,50", "not a plain decimal"),
        ("١٢", "not a plain decimal"),  # Arabic-Indic digits: Decimal() would take them
        (True, "not bool (True is not an amount)"),
        (False, "not bool (False is not an amount)"),
        (12, "int amount is ambiguous"),
        (0, "Money.from_minor"),
        ("12.345", "more decimals than EUR allows (2)"),
        (Decimal("0.001"), "more decimals than EUR allows"),
        (Decimal("1E+40"), "too large"),
        ([12], "not list"),
    ],
)
def test_bad_amounts_are_refused_saying_why(amount: object, said: str) -> None:
    with pytest.raises(InvalidAmount) as info:
        Money.of(amount, "EUR")  # type: ignore[arg-type]
    assert said in str(info.value)
    if not isinstance(amount, float):
        assert "float" not in str(info.value)  # the message is about what was actually passed
    assert isinstance(info.value, InvalidMoney)
    assert isinstance(info.value, ValueError)
    assert info.value.code is ErrorCode.INVALID_MONEY


@pytest.mark.parametrize(
    ("amount", "code", "error", "said"),
    [
        (1.5, "EUR", InvalidAmount, "not float (floats cannot represent money exactly"),
        ("5", "EUR", InvalidAmount, "takes a Decimal amount, not str"),
        (5, "EUR", InvalidAmount, "takes a Decimal amount, not int"),
        (None, "EUR", InvalidAmount, "not NoneType"),
        (Decimal("NaN"), "EUR", InvalidAmount, "must be finite, got NaN"),
        (Decimal("sNaN"), "EUR", InvalidAmount, "must be finite"),
        (Decimal("-Infinity"), "EUR", InvalidAmount, "must be finite, got -Infinity"),
        (Decimal("1.234"), "EUR", InvalidAmount, "takes EUR amounts with exactly 2 decimals, got 1.234"),
        (Decimal("1"), "EUR", InvalidAmount, "exactly 2 decimals, got 1 "),
        (Decimal("1E+3"), "JPY", InvalidAmount, "exactly 0 decimals, got 1E+3"),
        (Decimal("1" * 27 + ".00"), "EUR", InvalidAmount, "too large"),
        (Decimal("1.00"), "eur", InvalidCurrency, "did you mean 'EUR'?"),
        (Decimal("1.00"), "XXX", InvalidCurrency, "not an ISO 4217 currency with minor units"),
        (Decimal("1.00"), "", InvalidCurrency, "expected three uppercase letters"),
        (Decimal("1.00"), None, InvalidCurrency, "must be a str"),
    ],
)
def test_the_constructor_checks_what_it_is_given(amount: object, code: object, error: type, said: str) -> None:
    with pytest.raises(error) as info:
        Money(amount, code)  # type: ignore[arg-type]
    assert said in str(info.value)


def test_the_constructor_takes_what_the_named_constructors_make() -> None:
    assert Money(Decimal("12.50"), "EUR") == Money.of("12.5", "EUR")
    assert Money(Decimal("1500"), "JPY").to_minor() == 1500
    assert Money(Decimal("1.234"), "KWD").to_minor() == 1234
    assert Money(Decimal("9" * 26 + ".99"), "EUR").to_minor() == int("9" * 28)
    for cur in CURRENCIES:
        made = Money.from_minor(-1234, cur.code)
        assert Money(made.amount, made.currency) == made  # every value of() and from_minor() make is valid


def test_evolve_is_checked_like_the_constructor() -> None:
    with pytest.raises(InvalidAmount, match="exactly 2 decimals"):
        attrs.evolve(Money.of("1", "EUR"), amount=Decimal("0.001"))
    with pytest.raises(InvalidAmount, match="exactly 0 decimals"):
        attrs.evolve(Money.of("1", "EUR"), currency="JPY")


@pytest.mark.parametrize(
    "make",
    [
        lambda: Money.of("-0", "EUR"),
        lambda: Money.of("-0.000", "EUR"),
        lambda: Money.of(Decimal("-0"), "JPY"),
        lambda: Money(Decimal("-0.00"), "EUR"),
        lambda: -Money.zero("EUR"),
        lambda: Money.of("-1", "EUR") * 0,
        lambda: Money.of("-0.01", "EUR").scale("0.1", Rounding.HALF_EVEN),
        lambda: Money.of("-0.01", "EUR").percent("10", Rounding.DOWN),
        lambda: Money.of("-0.01", "EUR") + Money.of("0.01", "EUR"),
    ],
)
def test_zero_is_never_negative(make: Callable[[], Money]) -> None:
    zero = make()
    assert not zero.amount.is_signed()
    assert not str(zero).startswith("-")
    assert zero.to_minor() == 0


def test_decimals_are_counted_per_currency() -> None:
    assert Money.of("1.234", "KWD").amount == Decimal("1.234")
    with pytest.raises(InvalidAmount, match="more decimals than JPY allows"):
        Money.of("1.5", "JPY")
    with pytest.raises(InvalidAmount, match="more decimals than ISK allows"):
        Money.of("0.5", "ISK")


def test_trailing_zeros_beyond_the_exponent_are_exact_and_accepted() -> None:
    assert Money.of("12.5000", "EUR") == Money.of("12.50", "EUR")
    assert Money.of("100.000", "JPY").to_minor() == 100


@pytest.mark.parametrize(
    ("code", "said"),
    [
        ("€", "three uppercase letters"),
        ("", "three uppercase letters"),
        ("eur", "did you mean 'EUR'?"),
        ("Eur", "did you mean 'EUR'?"),
        ("EURO", "three uppercase letters"),
        ("XXX", "not an ISO 4217 currency with minor units"),  # "no currency"
        ("XTS", "not an ISO 4217 currency with minor units"),  # testing code
        ("XAU", "not an ISO 4217 currency with minor units"),  # gold
        ("QQQ", "not an ISO 4217 currency"),
        (None, "must be a str"),
    ],
)
def test_bad_currencies_are_refused_saying_why(code: object, said: str) -> None:
    with pytest.raises(InvalidCurrency) as info:
        Money.of("1", code)  # type: ignore[arg-type]
    assert said in str(info.value)
    with pytest.raises(InvalidCurrency):
        Money.from_minor(1, code)  # type: ignore[arg-type]


def test_bgn_is_accepted_from_the_withdrawn_table() -> None:
    bgn = currency("BGN")
    assert bgn.exponent == 2
    assert bgn.withdrawn is not None
    assert Money.of("9.99", "BGN").to_minor() == 999
    assert "BGN" in {c.code for c in all_currencies()}


def test_all_currencies_is_sorted_complete_and_usable() -> None:
    codes = [c.code for c in CURRENCIES]
    assert codes == sorted(codes)
    assert {"EUR", "USD", "JPY", "KWD", "ISK", "HUF", "BGN"} <= set(codes)
    assert not {"XXX", "XTS", "XAU", "XAG"} & set(codes)
    assert currency("JPY").exponent == 0
    assert currency("KWD").exponent == 3
    assert currency("ISK").exponent == 0


# --------------------------------------------------------------------------------------------
# Arithmetic
# --------------------------------------------------------------------------------------------


def test_arithmetic_is_exact() -> None:
    a = Money.of("0.10", "EUR")
    b = Money.of("0.20", "EUR")
    assert a + b == Money.of("0.30", "EUR")
    assert b - a == a
    assert -a == Money.of("-0.10", "EUR")
    assert a * 3 == Money.of("0.30", "EUR")
    assert 3 * a == Money.of("0.30", "EUR")
    assert sum([a] * 10, Money.zero("EUR")) == Money.of("1", "EUR")
    assert a < b
    assert b >= a
    assert not Money.zero("EUR")
    assert Money.of("0.01", "EUR").is_positive
    assert not Money.of("-0.01", "EUR").is_positive


@pytest.mark.parametrize(
    "combine",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
    ],
)
def test_combining_currencies_raises_currency_mismatch(combine: object) -> None:
    eur = Money.of("1", "EUR")
    usd = Money.of("1", "USD")
    with pytest.raises(CurrencyMismatch, match="cannot combine EUR with USD"):
        combine(eur, usd)  # type: ignore[operator]


def test_different_currencies_are_never_equal() -> None:
    assert Money.of("1", "EUR") != Money.of("1", "USD")


@pytest.mark.parametrize(
    "combine",
    [
        lambda m: m + 1,
        lambda m: 1 + m,
        lambda m: m - Decimal(1),
        lambda m: m < 1,
        lambda m: m >= None,
    ],
)
def test_money_and_a_non_money_operand_are_unsupported_operands(combine: Callable[[Money], object]) -> None:
    # Python's protocol: the method returns NotImplemented, then Python raises its own TypeError
    with pytest.raises(TypeError, match=r"unsupported operand|not supported between instances"):
        combine(Money.of("1", "EUR"))


def test_the_other_operand_gets_its_turn() -> None:
    class Ledger:
        def __radd__(self, other: object) -> str:
            return f"ledger + {other}"

        def __gt__(self, other: object) -> bool:  # Money < Ledger is asked as Ledger > Money
            return True

    money = Money.of("1", "EUR")
    assert money + Ledger() == "ledger + 1.00 EUR"
    assert money < Ledger()


@pytest.mark.parametrize("factor", [1.5, Decimal("1.5"), True])
def test_multiplication_takes_only_whole_numbers(factor: object) -> None:
    with pytest.raises(TypeError, match=r"scale\(\)"):
        Money.of("1", "EUR") * factor  # type: ignore[operator]


# --------------------------------------------------------------------------------------------
# Rounding: always named
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rounding", "expected"),
    [
        (Rounding.HALF_UP, "0.03"),
        (Rounding.HALF_EVEN, "0.02"),
        (Rounding.UP, "0.03"),
        (Rounding.DOWN, "0.02"),
        (Rounding.CEILING, "0.03"),
        (Rounding.FLOOR, "0.02"),
    ],
)
def test_percent_rounds_with_the_named_mode(rounding: Rounding, expected: str) -> None:
    # 50 % of 0.05 EUR is 0.025 EUR exactly: the mode decides the cent.
    assert Money.of("0.05", "EUR").percent("50", rounding) == Money.of(expected, "EUR")


@pytest.mark.parametrize(
    ("rounding", "expected"),
    [(Rounding.HALF_UP, "-0.03"), (Rounding.CEILING, "-0.02"), (Rounding.FLOOR, "-0.03"), (Rounding.DOWN, "-0.02")],
)
def test_rounding_modes_differ_on_negative_amounts(rounding: Rounding, expected: str) -> None:
    assert Money.of("-0.05", "EUR").percent("50", rounding) == Money.of(expected, "EUR")


def test_percent_and_scale_are_exact() -> None:
    assert Money.of("10.00", "EUR").percent("2.9", Rounding.HALF_UP) == Money.of("0.29", "EUR")
    assert Money.of("19.99", "EUR").percent("100", Rounding.DOWN) == Money.of("19.99", "EUR")
    assert Money.of("10.00", "EUR").scale("0.333", Rounding.FLOOR) == Money.of("3.33", "EUR")
    assert Money.of("10.00", "EUR").scale(Decimal("1.5"), Rounding.HALF_EVEN) == Money.of("15.00", "EUR")
    assert Money.of("1000", "JPY").percent("3.6", Rounding.HALF_UP) == Money.of("36", "JPY")
    assert Money.of("1.000", "KWD").percent("0.05", Rounding.HALF_UP) == Money.of("0.001", "KWD")


@pytest.mark.parametrize("factor", [0.5, 1, "1e-1", float("nan")])
def test_scale_refuses_inexact_factors(factor: object) -> None:
    with pytest.raises(InvalidAmount):
        Money.of("10", "EUR").scale(factor, Rounding.HALF_UP)  # type: ignore[arg-type]
    with pytest.raises(InvalidAmount):
        Money.of("10", "EUR").percent(factor, Rounding.HALF_UP)  # type: ignore[arg-type]


@NO_DEADLINE
@given(
    minor=st.integers(min_value=-(10**12), max_value=10**12),
    percent=st.decimals(min_value=0, max_value=100, places=3),
)
def test_percent_is_bounded_by_floor_and_ceiling(minor: int, percent: Decimal) -> None:
    m = Money.from_minor(minor, "EUR")
    low = m.percent(percent, Rounding.FLOOR)
    high = m.percent(percent, Rounding.CEILING)
    exact = m.amount * percent / 100
    assert low.amount <= exact <= high.amount
    assert (high - low).amount in (Decimal(0), Decimal("0.01"))


# --------------------------------------------------------------------------------------------
# Properties over every currency
# --------------------------------------------------------------------------------------------


@NO_DEADLINE
@given(minor=st.integers(min_value=-(10**24), max_value=10**24))
def test_minor_units_round_trip_exactly_for_every_currency(minor: int) -> None:
    for cur in CURRENCIES:
        m = Money.from_minor(minor, cur.code)
        assert m.to_minor() == minor, cur.code
        assert m.amount == Decimal(minor).scaleb(-cur.exponent), cur.code
        assert Money.of(str(m.amount), cur.code) == m
        assert Money.of(m.amount, cur.code) == m


@NO_DEADLINE
@given(minor=st.integers())
def test_any_int_round_trips_or_is_refused_as_too_large(minor: int) -> None:
    for code in ("EUR", "JPY", "KWD"):
        if abs(minor) < 10**25:
            assert Money.from_minor(minor, code).to_minor() == minor
            continue
        try:
            m = Money.from_minor(minor, code)
        except InvalidAmount as exc:
            refusal: InvalidAmount | None = exc
        else:
            refusal = None
            assert m.to_minor() == minor
        assert refusal is None or "too large" in str(refusal)


@NO_DEADLINE
@given(a=st.integers(-(10**15), 10**15), b=st.integers(-(10**15), 10**15), code=st.sampled_from(CURRENCIES))
def test_addition_is_exact_in_minor_units(a: int, b: int, code: object) -> None:
    c = code.code  # type: ignore[attr-defined]
    assert (Money.from_minor(a, c) + Money.from_minor(b, c)).to_minor() == a + b
    assert (Money.from_minor(a, c) - Money.from_minor(b, c)).to_minor() == a - b


# --------------------------------------------------------------------------------------------
# Provider wire formats
# --------------------------------------------------------------------------------------------

STRIPE_ISK = WireFormat("ISK", 2, 100)  # two decimals on the wire, whole krona only
STRIPE_KWD = WireFormat("KWD", 3, 10)  # three-decimal currencies in multiples of 10
PAYPAL_HUF = WireFormat("HUF", 0)  # PayPal takes forints whole
WIRE_FORMATS = [STRIPE_ISK, STRIPE_KWD, PAYPAL_HUF, WireFormat.iso("EUR"), WireFormat.iso("JPY")]


def test_wire_format_quantum() -> None:
    assert STRIPE_ISK.quantum == Decimal("1")
    assert STRIPE_KWD.quantum == Decimal("0.01")
    assert PAYPAL_HUF.quantum == Decimal("1")
    assert WireFormat.iso("EUR").quantum == Decimal("0.01")


def test_stripe_isk_is_whole_krona_with_two_zero_decimals() -> None:
    assert STRIPE_ISK.to_minor(Money.of("5", "ISK")) == 500
    assert STRIPE_ISK.to_minor(Money.of("1501", "ISK")) == 150100
    assert STRIPE_ISK.from_minor(150100) == Money.of("1501", "ISK")
    with pytest.raises(InvalidAmount):
        STRIPE_ISK.from_minor(150150)  # half a krona cannot exist


def test_kwd_off_the_step_is_refused_on_the_wire() -> None:
    assert STRIPE_KWD.to_minor(Money.of("1.010", "KWD")) == 1010
    with pytest.raises(InvalidAmount, match=r"not a multiple of 0\.010 KWD"):
        STRIPE_KWD.to_minor(Money.of("1.001", "KWD"))


def test_huf_with_filler_is_refused_by_paypal_but_not_by_iso() -> None:
    m = Money.of("1500.50", "HUF")
    assert WireFormat.iso("HUF").to_minor(m) == 150050
    with pytest.raises(InvalidAmount, match="smallest amount the provider accepts"):
        PAYPAL_HUF.to_minor(m)
    assert PAYPAL_HUF.to_minor(Money.of("1500", "HUF")) == 1500


def test_wire_format_refuses_another_currency() -> None:
    with pytest.raises(CurrencyMismatch):
        STRIPE_ISK.to_minor(Money.of("1", "EUR"))
    with pytest.raises(CurrencyMismatch):
        STRIPE_ISK.round_up(Money.of("1", "EUR"))


@pytest.mark.parametrize(
    ("wire", "amount", "rounding", "expected"),
    [
        (STRIPE_KWD, "1.001", Rounding.CEILING, "1.010"),
        (STRIPE_KWD, "1.001", Rounding.FLOOR, "1.000"),
        (STRIPE_KWD, "1.005", Rounding.HALF_UP, "1.010"),
        (STRIPE_KWD, "1.005", Rounding.HALF_EVEN, "1.000"),
        (PAYPAL_HUF, "1500.01", Rounding.CEILING, "1501"),
        (PAYPAL_HUF, "1500.50", Rounding.HALF_EVEN, "1500"),
        (STRIPE_ISK, "1501", Rounding.CEILING, "1501"),
    ],
)
def test_wire_round_up_takes_a_named_rounding(wire: WireFormat, amount: str, rounding: Rounding, expected: str) -> None:
    assert wire.round_up(Money.of(amount, wire.currency), rounding) == Money.of(expected, wire.currency)


@NO_DEADLINE
@given(wire=st.sampled_from(WIRE_FORMATS), units=st.integers(-(10**15), 10**15))
def test_wire_formats_round_trip(wire: WireFormat, units: int) -> None:
    minor = units * wire.step
    money = wire.from_minor(minor)
    assert wire.accepts(money)
    assert wire.to_minor(money) == minor
    assert wire.from_minor(wire.to_minor(money)) == money


@NO_DEADLINE
@given(wire=st.sampled_from(WIRE_FORMATS), minor=st.integers(-(10**12), 10**12))
def test_wire_round_up_lands_on_the_step_and_never_below(wire: WireFormat, minor: int) -> None:
    money = Money.from_minor(minor, wire.currency)
    up = wire.round_up(money)
    assert wire.accepts(up)
    assert up >= money
    assert (up - money).amount < wire.quantum


@pytest.mark.parametrize(
    ("code", "exponent", "step", "said"),
    [
        ("EUR", -1, 1, "invalid wire format"),
        ("EUR", 2, 0, "invalid wire format"),
        ("EUR", 3, 1, "finer than ISO 4217 allows"),
        ("ISK", 2, 10, "finer than ISO 4217 allows"),
        ("EUR", True, 1, "its exponent must be an int, not bool"),
        ("EUR", 1.5, 1, "its exponent must be an int, not float"),
        ("EUR", 2, True, "its step must be an int, not bool"),
        ("EUR", 2, 1.5, "its step must be an int, not float"),
    ],
)
def test_impossible_wire_formats_are_refused(code: str, exponent: int, step: int, said: str) -> None:
    with pytest.raises(ConfigurationError, match=said):
        WireFormat(code, exponent, step)


def test_wire_format_refuses_unknown_currency() -> None:
    with pytest.raises(InvalidCurrency):
        WireFormat("XXX", 2)


def test_money_errors_are_gateway_errors() -> None:
    for exc in (InvalidAmount, InvalidCurrency, CurrencyMismatch):
        assert issubclass(exc, GatewayError)
        assert issubclass(exc, ValueError)


# --------------------------------------------------------------------------------------------
# The caller's decimal context never changes an amount
# --------------------------------------------------------------------------------------------


def hostile_context() -> decimal.Context:
    """What a host might set for its own arithmetic: few digits, flooring, no traps."""
    return decimal.Context(prec=4, rounding=decimal.ROUND_FLOOR, traps=[])


def test_a_low_precision_caller_context_changes_nothing() -> None:
    with decimal.localcontext(hostile_context()):
        a = Money.of("12345.67", "EUR")
        b = Money.of("0.01", "EUR")
        assert (a + b).amount == Decimal("12345.68")
        assert (a - b).amount == Decimal("12345.66")
        assert (-a).amount == Decimal("-12345.67")
        assert (a * 1000).amount == Decimal("12345670.00")
        assert Money.from_minor(123456789, "EUR").amount == Decimal("1234567.89")
        assert Money.of("1234567.89", "EUR").to_minor() == 123456789
        assert a.percent("10", Rounding.HALF_UP).amount == Decimal("1234.57")
        assert a.scale("1.5", Rounding.HALF_EVEN).amount == Decimal("18518.50")
        assert STRIPE_ISK.to_minor(Money.of("123456789", "ISK")) == 12345678900
        assert STRIPE_KWD.round_up(Money.of("1234567.891", "KWD")) == Money.of("1234567.900", "KWD")
        assert STRIPE_KWD.accepts(Money.of("1234567.890", "KWD"))
        assert not STRIPE_KWD.accepts(Money.of("1234567.891", "KWD"))


def test_routing_refusals_ignore_the_caller_context() -> None:
    from gateway_core import CurrencyRule

    rule = CurrencyRule("KWD", 3, 10, minimum=Money.of("0.200", "KWD"))
    with decimal.localcontext(hostile_context()):
        assert rule.refusal(Money.of("1234567.890", "KWD")) is None
        assert rule.refusal(Money.of("1234567.891", "KWD")) == "1234567.891 KWD is not a multiple of 0.010 KWD"
        assert rule.round_up(Money.of("1234567.891", "KWD")) == Money.of("1234567.900", "KWD")


@NO_DEADLINE
@given(minor=st.integers(min_value=-(10**24), max_value=10**24), other=st.integers(-(10**24), 10**24))
def test_round_trips_and_sums_are_exact_under_any_caller_context(minor: int, other: int) -> None:
    with decimal.localcontext(hostile_context()):
        for code in ("EUR", "JPY", "KWD"):
            m = Money.from_minor(minor, code)
            assert m.to_minor() == minor
            assert (m + Money.from_minor(other, code)).to_minor() == minor + other


def test_arithmetic_that_cannot_be_exact_is_refused_not_rounded() -> None:
    largest = Money.of("9" * 26 + ".99", "EUR")  # 28 digits: the most an amount may have
    with pytest.raises(InvalidAmount, match="too large to be handled exactly"):
        _ = largest * 10**90  # beyond the exact context's precision: it would have to round
    with pytest.raises(InvalidAmount, match="too large to be handled exactly"):
        _ = largest + Money.of("0.01", "EUR")  # exact, but 29 digits
    with pytest.raises(InvalidAmount, match="too large to be handled exactly"):
        largest.scale("10", Rounding.HALF_UP)
    assert (largest - largest).amount == Decimal("0.00")


@pytest.mark.parametrize("rounding", ["ROUND_HALF_UP", decimal.ROUND_HALF_UP, None, "half_up"])
def test_rounding_must_be_named_with_rounding(rounding: object) -> None:
    m = Money.of("0.05", "EUR")
    with pytest.raises(TypeError, match=r"rounding must be a gateway_core\.Rounding"):
        m.percent("50", rounding)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"rounding must be a gateway_core\.Rounding"):
        m.scale("0.5", rounding)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"rounding must be a gateway_core\.Rounding"):
        STRIPE_KWD.round_up(Money.of("1.001", "KWD"), rounding)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["1_5", "\uff11\uff15", "1.5E+1", " 15 ", "+15", "15.", ".5", "NaN", ""])
def test_parse_decimal_refuses_what_money_of_refuses(text: str) -> None:
    # One rule for every decimal the project reads from input (amounts, a promo's percent, a
    # configured fee): what Decimal() would take as 15 is not 15 here.
    with pytest.raises(InvalidAmount):
        parse_decimal(text)
    with pytest.raises(InvalidAmount):
        Money.of(text, "EUR")


def test_parse_decimal_reads_plain_notation_exactly() -> None:
    assert parse_decimal("12.50") == Decimal("12.50")
    assert str(parse_decimal("-0.125")) == "-0.125"
    assert parse_decimal(Decimal("7.5")) == Decimal("7.5")
    for bad in (7.5, 7, True, Decimal("Infinity")):
        with pytest.raises(InvalidAmount):
            parse_decimal(bad)
