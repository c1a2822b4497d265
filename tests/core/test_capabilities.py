"""Capabilities and CurrencyRule: bounds, wire steps, rounding up, and the reasons given for refusals."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway_core import (
    AmountOutOfRange,
    Capabilities,
    CheckoutExpiry,
    ConfigurationError,
    CurrencyMismatch,
    CurrencyRule,
    Feature,
    InvalidAmount,
    Money,
    UnsupportedCurrency,
)
from gateway_core.capabilities import FEATURE_HOOKS
from gateway_core.hookspecs import OPERATION_HOOKS

from .conftest import SOURCE

#: Hypothesis must not fail a run for being slow on a loaded machine: no timed assertions.
NO_DEADLINE = settings(deadline=None)


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def isk(amount: str) -> Money:
    return Money.of(amount, "ISK")


#: Stripe's EUR: ISO exponent, minimum 0.50 EUR, maximum 999,999.99 EUR.
STRIPE_EUR = CurrencyRule.iso("EUR", minimum="0.50", maximum="999999.99")
#: Stripe's ISK: sent with two decimals in steps of 100, i.e. whole krona.
STRIPE_ISK = CurrencyRule("ISK", 2, 100)
#: Three-decimal currencies in Stripe go in steps of 10 (a hundredth of a dinar).
STRIPE_KWD = CurrencyRule("KWD", 3, 10, minimum=Money.of("0.200", "KWD"))
#: HUF payouts must be divisible by 100 (whole forints), with a 175 HUF minimum.
HUF_WHOLE = CurrencyRule("HUF", 2, 100, minimum=Money.of("175", "HUF"))


# --------------------------------------------------------------------------------------------
# Declaring a rule
# --------------------------------------------------------------------------------------------


def test_minimum_above_maximum_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"EUR minimum 2\.00 EUR exceeds maximum 1\.00 EUR"):
        CurrencyRule.iso("EUR", minimum="2", maximum="1")


def test_minimum_equal_to_maximum_is_allowed() -> None:
    rule = CurrencyRule.iso("EUR", minimum="1", maximum="1")
    assert rule.refusal(eur("1")) is None


@pytest.mark.parametrize(
    ("kwargs", "said"),
    [
        ({"minimum": Money.of("0.005", "KWD")}, r"minimum 0\.005 KWD is not on the wire step 0\.010"),
        ({"maximum": Money.of("99.999", "KWD")}, r"maximum 99\.999 KWD is not on the wire step"),
        ({"minimum": Money.of("0", "KWD")}, "minimum must be positive"),
        ({"maximum": Money.of("-1", "KWD")}, "maximum must be positive"),
        ({"minimum": Money.of("1", "EUR")}, "KWD minimum is in EUR"),
    ],
)
def test_bounds_must_be_positive_on_the_step_and_in_the_currency(kwargs: dict[str, Money], said: str) -> None:
    with pytest.raises(ConfigurationError, match=said):
        CurrencyRule("KWD", 3, 10, **kwargs)


def test_off_step_minimum_for_isk_is_refused() -> None:
    # ISK has no fractions at all, so an off-step ISK bound cannot even be built as Money.
    with pytest.raises(InvalidAmount):
        CurrencyRule("ISK", 2, 100, minimum=Money.of("0.5", "ISK"))


def test_a_currency_declared_twice_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="currency EUR declared twice"):
        Capabilities(
            currencies=[CurrencyRule.iso("EUR"), CurrencyRule.iso("EUR", minimum="1")],
            features={Feature.HOSTED_CHECKOUT},
        )


def test_iso_rule_uses_the_iso_exponent() -> None:
    assert CurrencyRule.iso("JPY").exponent == 0
    assert CurrencyRule.iso("KWD").exponent == 3
    assert CurrencyRule.iso("EUR").wire.quantum == eur("0.01").amount


# --------------------------------------------------------------------------------------------
# Minimums and refusals
# --------------------------------------------------------------------------------------------


def test_effective_minimum_is_the_declared_minimum_else_one_wire_quantum() -> None:
    assert STRIPE_EUR.effective_minimum == eur("0.50")
    assert CurrencyRule.iso("EUR").effective_minimum == eur("0.01")
    assert STRIPE_ISK.effective_minimum == isk("1")
    assert CurrencyRule("KWD", 3, 10).effective_minimum == Money.of("0.010", "KWD")


@pytest.mark.parametrize(
    ("rule", "amount", "reason"),
    [
        (STRIPE_EUR, eur("0.30"), "0.30 EUR is below the 0.50 EUR minimum"),
        (STRIPE_EUR, eur("0"), "0.00 EUR is below the 0.50 EUR minimum"),
        (STRIPE_EUR, eur("1000000.00"), "1000000.00 EUR is above the 999999.99 EUR maximum"),
        (STRIPE_KWD, Money.of("1.001", "KWD"), "1.001 KWD is not a multiple of 0.010 KWD"),
        (HUF_WHOLE, Money.of("175.50", "HUF"), "175.50 HUF is not a multiple of 1.00 HUF"),
        (STRIPE_EUR, Money.of("1", "USD"), "USD is not EUR"),
    ],
)
def test_refusal_says_why(rule: CurrencyRule, amount: Money, reason: str) -> None:
    assert rule.refusal(amount) == reason


@pytest.mark.parametrize(
    ("rule", "amount"),
    [
        (STRIPE_EUR, eur("0.50")),
        (STRIPE_EUR, eur("999999.99")),
        (STRIPE_ISK, isk("1501")),
        (HUF_WHOLE, Money.of("175", "HUF")),
    ],
)
def test_accepted_amounts_have_no_refusal(rule: CurrencyRule, amount: Money) -> None:
    assert rule.refusal(amount) is None
    rule.check(amount)


def test_check_raises_out_of_range_for_bounds_and_invalid_amount_for_steps() -> None:
    with pytest.raises(AmountOutOfRange, match=r"below the 0\.50 EUR minimum") as low:
        STRIPE_EUR.check(eur("0.30"), gateway="stripe_eu")
    assert low.value.gateway == "stripe_eu"
    with pytest.raises(AmountOutOfRange, match="above"):
        STRIPE_EUR.check(eur("1000000"))
    with pytest.raises(InvalidAmount, match=r"not a multiple of 0\.010 KWD"):
        STRIPE_KWD.check(Money.of("1.001", "KWD"))


# --------------------------------------------------------------------------------------------
# Rounding up to what a gateway takes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "amount", "expected"),
    [
        (STRIPE_EUR, eur("0.30"), eur("0.50")),  # raised to the minimum
        (STRIPE_EUR, eur("0.51"), eur("0.51")),  # already fine
        (STRIPE_EUR, eur("-5"), eur("0.50")),
        # ISK on Stripe: exponent 2, step 100 is one whole krona. 1501 ISK is on the step; it is
        # NOT rounded to 1600 (that would be reading the step in major units).
        (STRIPE_ISK, isk("1501"), isk("1501")),
        (STRIPE_ISK, isk("0"), isk("1")),
        (STRIPE_KWD, Money.of("0.100", "KWD"), Money.of("0.200", "KWD")),  # minimum first
        (STRIPE_KWD, Money.of("0.201", "KWD"), Money.of("0.210", "KWD")),  # then the step
        (HUF_WHOLE, Money.of("174.50", "HUF"), Money.of("175", "HUF")),
        (HUF_WHOLE, Money.of("175.01", "HUF"), Money.of("176", "HUF")),
    ],
)
def test_round_up_raises_to_the_minimum_then_to_the_step(rule: CurrencyRule, amount: Money, expected: Money) -> None:
    rounded = rule.round_up(amount)
    assert rounded == expected
    assert rule.refusal(rounded) is None


def test_isk_on_the_wire_after_rounding() -> None:
    assert STRIPE_ISK.wire.to_minor(STRIPE_ISK.round_up(isk("1501"))) == 150100


def test_round_up_in_another_currency_is_a_mismatch() -> None:
    with pytest.raises(CurrencyMismatch):
        STRIPE_EUR.round_up(Money.of("1", "USD"))


# --------------------------------------------------------------------------------------------
# Capabilities
# --------------------------------------------------------------------------------------------


def make(features: set[Feature], *, sources: bool = True, currencies: bool = True) -> Capabilities:
    return Capabilities(
        currencies=[STRIPE_EUR, CurrencyRule.iso("USD")] if currencies else [],
        features=features,
        sources=[SOURCE] if sources else [],
    )


def test_currencies_are_a_read_only_mapping_by_code() -> None:
    c = make({Feature.HOSTED_CHECKOUT})
    assert list(c.currencies) == ["EUR", "USD"]
    assert c.rule("EUR") == STRIPE_EUR
    assert c.rule("HUF") is None
    with pytest.raises(TypeError):
        c.currencies["HUF"] = CurrencyRule.iso("HUF")  # type: ignore[index]


def test_require_rule_refuses_an_unoffered_currency() -> None:
    with pytest.raises(UnsupportedCurrency, match="HUF not offered") as info:
        make({Feature.HOSTED_CHECKOUT}).require_rule("HUF", gateway="g")
    assert info.value.gateway == "g"


def test_narrowed_keeps_only_the_named_currencies_and_never_widens() -> None:
    c = make({Feature.HOSTED_CHECKOUT})
    assert list(c.narrowed(["USD"], gateway="g").currencies) == ["USD"]
    with pytest.raises(ConfigurationError, match="configured for HUF which its provider does not declare"):
        c.narrowed(["EUR", "HUF"], gateway="g")


def test_problems_of_sound_metadata_is_empty() -> None:
    assert make({Feature.HOSTED_CHECKOUT, Feature.REFUND, Feature.PARTIAL_REFUND}).problems() == []


@pytest.mark.parametrize(
    ("capabilities", "problem"),
    [
        (make({Feature.HOSTED_CHECKOUT}, sources=False), "no sources named"),
        (make({Feature.REFUND}), "neither hosted_checkout nor authorize_capture"),
        (
            make({Feature.HOSTED_CHECKOUT, Feature.PARTIAL_CAPTURE}),
            "partial_capture declared without authorize_capture",
        ),
        (make({Feature.HOSTED_CHECKOUT, Feature.PARTIAL_REFUND}), "partial_refund declared without refund"),
        (
            make({Feature.HOSTED_CHECKOUT, Feature.REFUND, Feature.MULTIPLE_REFUNDS}),
            "multiple_refunds declared without partial_refund",
        ),
        (make({Feature.HOSTED_CHECKOUT}, currencies=False), "no currencies declared"),
    ],
)
def test_problems_names_each_inconsistency(capabilities: Capabilities, problem: str) -> None:
    assert any(p.startswith(problem) for p in capabilities.problems()), capabilities.problems()


def test_features_are_converted_and_unknown_features_refused() -> None:
    c = Capabilities(currencies=[STRIPE_EUR], features=["hosted_checkout"])  # type: ignore[list-item]
    assert c.supports(Feature.HOSTED_CHECKOUT)
    with pytest.raises(ValueError, match="teleport"):
        Capabilities(currencies=[STRIPE_EUR], features=["teleport"])  # type: ignore[list-item]


def test_every_feature_hook_is_an_operation_hook() -> None:
    for hooks in FEATURE_HOOKS.values():
        assert set(hooks) <= set(OPERATION_HOOKS)


@st.composite
def rules_and_amounts(draw: st.DrawFn) -> tuple[CurrencyRule, Money]:
    code, iso_exponent = draw(st.sampled_from([("EUR", 2), ("JPY", 0), ("KWD", 3), ("ISK", 0), ("HUF", 2)]))
    extra = draw(st.integers(0, 2))  # the provider may carry more decimals than ISO, in whole ISO units
    exponent = iso_exponent + extra
    step = 10**extra * draw(st.sampled_from([1, 2, 5, 10, 25, 100]))
    quantum_units = draw(st.integers(1, 10_000))  # the minimum, in wire steps
    minimum = Money.from_minor(quantum_units * step, code, exponent=exponent) if draw(st.booleans()) else None
    amount = Money.from_minor(draw(st.integers(-(10**9), 10**9)), code)
    return CurrencyRule(code, exponent, step, minimum), amount


@NO_DEADLINE
@given(rules_and_amounts())
def test_round_up_is_the_smallest_accepted_amount_not_below_the_input(case: tuple[CurrencyRule, Money]) -> None:
    rule, amount = case
    rounded = rule.round_up(amount)
    assert rule.refusal(rounded) is None
    assert rounded >= amount
    assert rounded >= rule.effective_minimum
    below = rounded - Money.of(rule.wire.quantum, rule.code)
    assert below < amount or below < rule.effective_minimum  # one step less would not do
    assert rule.wire.to_minor(rounded) % rule.step == 0


# --------------------------------------------------------------------------------------------
# Narrowing for one configured gateway: widening() names whatever offers more than declared
# --------------------------------------------------------------------------------------------

DECLARED = Capabilities(
    currencies=[STRIPE_EUR, HUF_WHOLE],
    features=frozenset({Feature.HOSTED_CHECKOUT, Feature.REFUND}),
    card_brands=frozenset({"visa"}),
    sources=[SOURCE],
    checkout_expiry=CheckoutExpiry.minutes(30, 1440),
)


def test_narrowing_every_field_is_not_widening() -> None:
    narrower = attrs.evolve(
        DECLARED,
        currencies=[CurrencyRule.iso("EUR", minimum="1.00", maximum="500")],
        features=frozenset({Feature.HOSTED_CHECKOUT}),
        card_brands=frozenset(),
        checkout_expiry=CheckoutExpiry.minutes(60, 120),
    )
    assert narrower.widening(DECLARED) == []
    assert DECLARED.widening(DECLARED) == []
    assert attrs.evolve(DECLARED, checkout_expiry=None).widening(DECLARED) == []


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"currencies": [STRIPE_EUR, HUF_WHOLE, CurrencyRule.iso("USD")]}, "offers undeclared currencies USD"),
        ({"currencies": [CurrencyRule.iso("EUR", minimum="0.10", maximum="999999.99")]}, "lowers the EUR minimum"),
        ({"currencies": [CurrencyRule.iso("EUR", minimum="0.50")]}, "raises the EUR maximum above 999999.99 EUR"),
        ({"currencies": [CurrencyRule.iso("EUR", minimum="0.50", maximum="1000000")]}, "raises the EUR maximum"),
        ({"currencies": [CurrencyRule("HUF", 2, 1, minimum=Money.of("175", "HUF"))]}, "changes the HUF wire format"),
        ({"features": frozenset({Feature.HOSTED_CHECKOUT, Feature.VOID})}, "adds undeclared features void"),
        ({"card_brands": frozenset({"visa", "amex"})}, "adds undeclared card brands amex"),
        ({"live": False}, "changes live from True to False"),
        ({"host_completes_checkout": True}, "changes host_completes_checkout from False to True"),
        ({"checkout_expiry": CheckoutExpiry.minutes(29, 1440)}, "widens the checkout expiry window to 29 min..24 h"),
        ({"checkout_expiry": CheckoutExpiry.minutes(30, 1441)}, "widens the checkout expiry window"),
    ],
)
def test_widening_names_what_offers_more(changes: dict[str, Any], said: str) -> None:
    problems = attrs.evolve(DECLARED, **changes).widening(DECLARED)
    assert len(problems) == 1, problems
    assert said in problems[0]


def test_a_live_provider_that_needs_the_host_to_capture_cannot_be_configured_out_of_it() -> None:
    # A gateway told "the provider captures" on PayPal would never capture, and never be paid.
    paypal_like = attrs.evolve(DECLARED, host_completes_checkout=True)
    assert DECLARED.widening(paypal_like) == ["changes host_completes_checkout from True to False"]
    assert paypal_like.widening(paypal_like) == []


def test_a_test_provider_may_stand_in_for_either_capture_behaviour() -> None:
    fake_like = attrs.evolve(DECLARED, live=False)
    assert attrs.evolve(fake_like, host_completes_checkout=True).widening(fake_like) == []


def test_the_provider_captures_unless_declared_otherwise() -> None:
    assert DECLARED.host_completes_checkout is False


def test_a_window_where_none_is_declared_is_widening() -> None:
    none = attrs.evolve(DECLARED, checkout_expiry=None)
    assert DECLARED.widening(none) == ["widens the checkout expiry window to 30 min..24 h (declared: none)"]
