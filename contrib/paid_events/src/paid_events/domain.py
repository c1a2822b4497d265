"""The pure rules of paid events: prices, promo codes, early-bird windows and the service fee.

Nothing here touches the database or a gateway. Money is :class:`gateway_core.Money` throughout
and every rounding names its mode (taken from :class:`~paid_events.config.PlatformConfig`).
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

import attrs

from gateway_core import InvalidMoney, Money, Rounding, WireFormat
from gateway_core.money import parse_decimal
from paid_events.config import PlatformConfig
from paid_events.errors import InvalidEmail, InvalidPrice, InvalidPromoCode, PromoNotAllowed

__all__ = [
    "EventKind",
    "Promo",
    "PromoKind",
    "Quote",
    "apply_promo",
    "current_price",
    "email_key",
    "normalize_email",
    "normalize_promo_code",
    "parse_percent",
    "parse_price",
    "require_money",
    "service_fee",
    "validate_price",
]

MAX_EMAIL_LENGTH = 254
#: Longest raw promo-code input we even look at (the code itself is at most 32 characters).
MAX_PROMO_INPUT = 64
PROMO_CODE_RE = re.compile(r"[A-Z0-9_-]{1,32}")
# A pragmatic address check: one "@", a dot-separated domain with a TLD, printable ASCII only.
_EMAIL_RE = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


class EventKind(enum.StrEnum):
    """One-off (one date), permanent (a series: one ticket admits to every session) or on-demand."""

    ONE_OFF = "one_off"
    PERMANENT = "permanent"
    ON_DEMAND = "on_demand"

    @property
    def allows_promo_codes(self) -> bool:
        return self is EventKind.ONE_OFF


class PromoKind(enum.StrEnum):
    PERCENT = "percent"
    FIXED = "fixed"


def normalize_email(raw: object) -> str:
    """A plausible e-mail address, domain lowercased; :class:`InvalidEmail` otherwise (the input is not echoed)."""
    if not isinstance(raw, str):
        raise InvalidEmail("e-mail must be a string")
    value = raw.strip()
    if not value or len(value) > MAX_EMAIL_LENGTH:
        raise InvalidEmail(f"e-mail must be 1 to {MAX_EMAIL_LENGTH} characters")
    if not _EMAIL_RE.fullmatch(value):
        raise InvalidEmail("e-mail is not a valid address (expected name@domain.tld, ASCII)")
    local, _, domain = value.rpartition("@")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidEmail("e-mail is not a valid address (misplaced dot)")
    return f"{local}@{domain.lower()}"


def email_key(address: str) -> str:
    """The key one live registration per participant is unique on: the whole address, lowercased.

    Strictly the local part is case-sensitive, but no mail provider a webinar audience uses treats
    ``Ann@`` and ``ann@`` as two people, and two tickets for one inbox is the worse mistake.
    """
    return address.lower()


def normalize_promo_code(raw: object) -> str:
    """The canonical form of a promo code: NFKC, ASCII only, uppercased, ``[A-Z0-9_-]{1,32}``.

    NFKC folds compatibility forms (full-width letters become ASCII); anything still not ASCII
    after that (Cyrillic look-alikes, zero-width characters, ``ß`` that would uppercase to ``SS``)
    is refused rather than guessed at.
    """
    if not isinstance(raw, str):
        raise InvalidPromoCode("promo code must be a string")
    if len(raw) > MAX_PROMO_INPUT:
        raise InvalidPromoCode("promo code is too long (at most 32 characters)")
    folded = unicodedata.normalize("NFKC", raw).strip()
    if not folded.isascii():
        raise InvalidPromoCode(
            "promo code may only use the letters A-Z, digits, '_' and '-' (no look-alike characters)"
        )
    code = folded.upper()
    if len(code) > 32:
        raise InvalidPromoCode("promo code is too long (at most 32 characters)")
    if not PROMO_CODE_RE.fullmatch(code):
        raise InvalidPromoCode("promo code may only use the letters A-Z, digits, '_' and '-' (1 to 32 characters)")
    return code


def parse_price(amount: str | Decimal, currency: str) -> Money:
    """A price from user input; :class:`InvalidPrice` for floats, fractions of a minor unit or bad currency."""
    try:
        return Money.of(amount, currency)
    except InvalidMoney as exc:
        raise InvalidPrice(f"invalid price: {exc}") from None


def parse_percent(raw: str | Decimal) -> Decimal:
    """A promo code's percent from user input, as strictly as ``Money.of`` parses an amount.

    :func:`gateway_core.money.parse_decimal`'s rule: a ``str`` must be a plain decimal
    (``"12.5"``), so ``"1_5"``, full-width digits, ``"1.5E+1"`` and ``" 15 "`` are refused, though
    :class:`~decimal.Decimal` would take them; a ``Decimal`` must be finite; a float, an int or a
    bool is refused. The range (0 < p <= 100, two decimals) is :class:`Promo`'s rule. Raises
    :class:`InvalidPromoCode`.
    """
    try:
        return parse_decimal(raw)
    except InvalidMoney:
        raise InvalidPromoCode(
            "percent must be a finite Decimal or a plain decimal string such as '12.5' (ASCII digits, "
            "optional '.', no exponent, underscores or spaces; never a float)"
        ) from None


def require_money(name: str, value: object) -> None:
    """:class:`InvalidPrice` unless ``value`` is :class:`Money` (a float or a bare number has no currency)."""
    if not isinstance(value, Money):
        raise InvalidPrice(f"{name} must be Money such as Money.of('12.50', 'EUR'), not {type(value).__name__}")


def validate_price(price: Money, config: PlatformConfig, offered: Iterable[str]) -> None:
    """Refuse a ticket price the platform does not sell (see the module's rules)."""
    require_money("price", price)
    minimum = Money.of(config.minimum_price, price.currency)
    if price < minimum:
        raise InvalidPrice(f"price {price} is below the minimum of {minimum}")
    limit = config.price_limit(price.currency)
    if limit is None:
        raise InvalidPrice(f"the platform does not sell tickets in {price.currency}")
    if price > limit:
        raise InvalidPrice(f"price {price} is above the platform's limit of {limit}")
    if price.currency not in set(offered):
        raise InvalidPrice(f"none of the event's enabled gateways offers {price.currency}")


@attrs.frozen
class Promo:
    """A promo code's rule: ``percent`` off (0 < p <= 100) or a fixed ``amount`` off."""

    code: str
    kind: PromoKind
    percent: Decimal | None = None
    amount: Money | None = None

    def __attrs_post_init__(self) -> None:
        if self.percent is not None and not isinstance(self.percent, Decimal):
            raise InvalidPromoCode(f"percent must be a Decimal or a decimal string, not {type(self.percent).__name__}")
        if self.amount is not None and not isinstance(self.amount, Money):
            raise InvalidPromoCode(
                f"amount must be Money such as Money.of('5', 'EUR'), not {type(self.amount).__name__}"
            )
        if self.kind is PromoKind.PERCENT:
            if self.percent is None or self.amount is not None:
                raise InvalidPromoCode("a percentage code needs a percent and no amount")
            if not Decimal(0) < self.percent <= Decimal(100):
                raise InvalidPromoCode("a percentage code takes more than 0 and at most 100 percent")
            if self.percent != self.percent.quantize(Decimal("0.01")):
                raise InvalidPromoCode("a percentage takes at most two decimals")
        else:
            if self.amount is None or self.percent is not None:
                raise InvalidPromoCode("a fixed-amount code needs an amount and no percent")
            if not self.amount.is_positive:
                raise InvalidPromoCode("a fixed-amount code must take off a positive amount")


def check_promo_allowed(kind: EventKind) -> None:
    if not kind.allows_promo_codes:
        raise PromoNotAllowed(f"promo codes are not available for {kind.value.replace('_', '-')} events")


def apply_promo(price: Money, promo: Promo, rounding: Rounding) -> Money:
    """``price`` after ``promo``; never below zero. A percentage's discount is rounded with ``rounding``."""
    if promo.kind is PromoKind.PERCENT:
        assert promo.percent is not None
        discount = price.percent(promo.percent, rounding)
    else:
        assert promo.amount is not None
        discount = promo.amount
    reduced = price - discount
    return reduced if reduced.amount > 0 else Money.zero(price.currency)


def current_price(
    price: Money,
    early_price: Money | None,
    early_until: datetime | None,
    now: datetime,
    early_from: datetime | None = None,
) -> Money:
    """The discounted (early-bird) price inside its period ``[early_from, early_until)``, else the list price.

    ``early_from=None`` means the period runs from the event's creation.
    """
    if early_price is None or early_until is None or now >= early_until:
        return price
    if early_from is not None and now < early_from:
        return price
    return early_price


def service_fee(amount: Money, config: PlatformConfig, wire: WireFormat | None = None) -> Money:
    """The platform's fee on ``amount``: ``fee_percent`` %, rounded with ``fee_rounding``.

    With the gateway's ``wire`` format, the fee is rounded (with the same named mode) onto the
    provider's step, since it travels as that payment's application fee (Stripe takes HUF only in
    whole forints).
    """
    fee = amount.percent(config.fee_percent, config.fee_rounding)
    if wire is not None and not wire.accepts(fee):
        fee = wire.round_up(fee, config.fee_rounding)
    return fee


@attrs.frozen
class Quote:
    """What the participant will pay, shown before paying.

    ``list_price`` is the event's price, ``current_price`` after an early-bird window,
    ``discounted`` after the promo code, ``final`` after rounding up to the gateway's minimum and
    step (``rounded_up`` says whether that happened). ``gateway`` is ``None`` for a free ticket.
    """

    event_id: str
    list_price: Money
    current_price: Money
    discounted: Money
    final: Money
    fee: Money
    gateway: str | None
    promo_code: str | None = None
    rounded_up: bool = False

    @property
    def free(self) -> bool:
        return not self.final.is_positive
