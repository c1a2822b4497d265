"""Properties of the pure rules over many prices (hypothesis)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from paid_events import config as pe_config
from paid_events import domain
from paid_events.domain import Promo, PromoKind
from paid_events.errors import InvalidPromoCode

from gateway_core import Money, Rounding

PLATFORM = pe_config.load()[0]
cents = st.integers(min_value=100, max_value=200_000)
percents = st.integers(min_value=1, max_value=10_000).map(lambda n: Decimal(n) / 100)
roundings = st.sampled_from(list(Rounding))


@given(cents, percents, roundings)
def test_percentage_promo_stays_between_zero_and_the_price_and_is_exact(
    minor: int, percent: Decimal, rounding: Rounding
) -> None:
    price = Money.from_minor(minor, "EUR")
    result = domain.apply_promo(price, Promo("P", PromoKind.PERCENT, percent=percent), rounding)
    assert Money.zero("EUR") <= result <= price
    exact_discount = price.amount * percent / 100
    assert abs((price.amount - result.amount) - exact_discount) < Decimal("0.01")
    assert result.amount == result.amount.quantize(Decimal("0.01"))


@given(cents, cents)
def test_fixed_promo_never_goes_negative(minor: int, off: int) -> None:
    price = Money.from_minor(minor, "EUR")
    result = domain.apply_promo(
        price, Promo("F", PromoKind.FIXED, amount=Money.from_minor(off, "EUR")), Rounding.HALF_UP
    )
    assert result == (price - Money.from_minor(off, "EUR") if off < minor else Money.zero("EUR"))


@given(cents)
def test_fee_is_five_percent_rounded_half_up(minor: int) -> None:
    price = Money.from_minor(minor, "EUR")
    fee = domain.service_fee(price, PLATFORM)
    assert fee.amount == (price.amount * Decimal("0.05")).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")


@given(st.text(max_size=80))
def test_any_text_is_either_a_canonical_code_or_refused(raw: str) -> None:
    try:
        code = domain.normalize_promo_code(raw)
    except InvalidPromoCode:
        return
    assert domain.PROMO_CODE_RE.fullmatch(code)
    assert domain.normalize_promo_code(code) == code
