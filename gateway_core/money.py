"""Exact money: ``Money`` values, ISO 4217 currencies and provider wire formats.

Rules this module enforces:

* An amount is a :class:`decimal.Decimal`, never a float. ``Money.of`` takes a ``str`` in plain
  positional notation (``"12.50"``) or a ``Decimal``; ``Money.from_minor`` takes integer minor
  units. Floats, NaN, infinities, exponent notation (``"1e3"``), booleans and more decimals than
  the currency has are refused with :class:`~gateway_core.errors.InvalidAmount`.
* A currency is an uppercase ISO 4217 code with a defined exponent. Exponents come from the
  ``iso4217`` package (a maintained copy of the ISO table); a short, sourced table below adds
  codes that ISO has withdrawn but providers still settle (BGN after 2026-01-01).
* Arithmetic between different currencies raises :class:`~gateway_core.errors.CurrencyMismatch`;
  Money and a number (``Money + 1``) are unsupported operands, Python's ``TypeError``.
  Anything that has to round (percentages, ceilings to a provider's step) takes a
  :class:`Rounding` and never rounds implicitly.
* What a provider puts on the wire is described by a :class:`WireFormat` (its exponent and step),
  which a plugin declares where the provider differs from ISO 4217.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from functools import cache

import attrs

from gateway_core.errors import ConfigurationError, CurrencyMismatch, InvalidAmount, InvalidCurrency

__all__ = [
    "Currency",
    "Money",
    "Rounding",
    "WireFormat",
    "all_currencies",
    "currency",
    "parse_decimal",
]


class Rounding(enum.StrEnum):
    """A named rounding mode; every rounding in gateway-core takes one explicitly."""

    HALF_UP = ROUND_HALF_UP
    HALF_EVEN = ROUND_HALF_EVEN
    UP = ROUND_UP
    DOWN = ROUND_DOWN
    CEILING = ROUND_CEILING
    FLOOR = ROUND_FLOOR


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency as the core knows it."""

    code: str
    exponent: int
    name: str
    #: Date ISO 4217 withdrew the code, for codes kept because providers still settle them.
    withdrawn: date | None = None


# Codes withdrawn from ISO 4217 List One that providers still accept. Each names its source.
# BGN: Bulgaria adopted the euro on 2026-01-01 (Council Decision (EU) 2025/1407); ISO 4217
# amendment 179 moved BGN to List Three. The lev keeps exponent 2 while providers settle it.
_WITHDRAWN: dict[str, Currency] = {
    "BGN": Currency("BGN", 2, "Bulgarian Lev", withdrawn=date(2026, 1, 1)),
}

_CODE_RE = re.compile(r"[A-Z]{3}")

# Every Decimal operation here runs in one of these fixed contexts, never in the caller's: a host
# that lowers ``decimal.getcontext().prec`` or changes its rounding must not change an amount.
# ``_STORE`` bounds a stored amount to 28 significant digits (the default context's precision);
# ``_EXACT`` traps Inexact, so arithmetic that cannot be exact raises instead of rounding;
# ``_ROUND`` is for the roundings a caller names explicitly.
_MAX_DIGITS = 28
_MAX_WIRE_EXPONENT = _MAX_DIGITS  # no provider's integers carry more decimals than an amount has digits
_STORE = Context(prec=_MAX_DIGITS, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])
_EXACT = Context(prec=4 * _MAX_DIGITS, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Inexact])
_ROUND = Context(prec=4 * _MAX_DIGITS, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])


def _mode(rounding: object) -> str:
    if not isinstance(rounding, Rounding):
        raise TypeError(f"rounding must be a gateway_core.Rounding such as Rounding.HALF_UP, not {rounding!r}")
    return rounding.value


def _too_large(what: object) -> InvalidAmount:
    return InvalidAmount(f"{what} is too large to be handled exactly")


def _shift(value: Decimal, places: int) -> Decimal:
    """``value`` times ``10 ** places``, exactly."""
    try:
        return value.scaleb(places, context=_EXACT)
    except (Inexact, InvalidOperation) as exc:
        raise _too_large(value) from exc


def _exactly(op: Callable[[Decimal, Decimal], Decimal], a: Decimal, b: Decimal) -> Decimal:
    """``op(a, b)`` in ``_EXACT``: the exact result, or :class:`InvalidAmount` when it would have to round."""
    try:
        return op(a, b)
    except (Inexact, InvalidOperation) as exc:
        raise _too_large(f"{a} and {b}") from exc


def _remainder(value: Decimal, quantum: Decimal) -> Decimal:
    """``value % quantum``, exactly (the caller's context could refuse or round it)."""
    try:
        return _EXACT.remainder(value, quantum)
    except (Inexact, InvalidOperation) as exc:
        raise _too_large(value) from exc


@cache
def _table() -> dict[str, Currency]:
    from iso4217 import Currency as IsoCurrency  # noqa: PLC0415  (26 ms; only when first needed)

    table = dict(_WITHDRAWN)
    for entry in IsoCurrency:
        # Codes without minor units (XXX, XTS, XAU, SDR...) cannot carry an amount.
        if entry.exponent is None:
            continue
        table[entry.code] = Currency(entry.code, int(entry.exponent), str(entry.currency_name))
    return table


def currency(code: object) -> Currency:
    """Look up a currency by its ISO 4217 code; raise :class:`InvalidCurrency` if unusable."""
    found = _table().get(code) if isinstance(code, str) else None  # the common case: one dict lookup
    if found is not None:
        return found
    if not isinstance(code, str):
        raise InvalidCurrency(f"currency code must be a str, not {type(code).__name__}")
    if not _CODE_RE.fullmatch(code):
        hint = f" (did you mean {code.upper()!r}?)" if _CODE_RE.fullmatch(code.upper()) else ""
        raise InvalidCurrency(f"{code!r} is not an ISO 4217 code: expected three uppercase letters{hint}")
    found = _table().get(code)
    if found is None:
        raise InvalidCurrency(f"{code!r} is not an ISO 4217 currency with minor units")
    return found


def all_currencies() -> Iterator[Currency]:
    """Every currency the core accepts, ISO 4217 List One plus the sourced withdrawn codes."""
    return iter(sorted(_table().values(), key=lambda c: c.code))


_PLAIN_DECIMAL_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def parse_decimal(value: object) -> Decimal:
    """A decimal number from input, as strictly as :meth:`Money.of` reads an amount.

    A ``str`` must be plain positional notation: ASCII digits, an optional ``-``, an optional
    fraction after ``.`` (``"12.5"``). ``"1_5"``, full-width digits, ``"1.5E+1"``, ``"+1"`` and
    ``" 15 "`` are refused, though :class:`~decimal.Decimal` takes them. A ``Decimal`` must be
    finite. A float, an int or a bool is refused. Raises :class:`InvalidAmount`; for other numbers
    than amounts (a percent, a configured rate), catch it and raise your own error.
    """
    if isinstance(value, bool):
        raise InvalidAmount(f"amount must be a str or Decimal, not bool ({value!r} is not an amount)")
    if isinstance(value, float):
        raise InvalidAmount("amount must be a str or Decimal, not float (floats cannot represent money exactly)")
    if isinstance(value, int):
        raise InvalidAmount(
            "an int amount is ambiguous: use Money.from_minor() for minor units "
            "or pass a str such as '12' for major units"
        )
    if isinstance(value, str):
        if not _PLAIN_DECIMAL_RE.fullmatch(value):
            raise InvalidAmount(
                f"{value!r} is not a plain decimal amount (digits, optional '.', no exponent, no spaces)"
            )
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidAmount(f"amount must be finite, got {value}")
        return value
    raise InvalidAmount(f"amount must be a str or Decimal, not {type(value).__name__}")


@cache
def _unit(exponent: int) -> Decimal:
    """The smallest amount with ``exponent`` decimals (``Decimal("0.01")`` for 2)."""
    return _shift(Decimal(1), -exponent)


def _quantize_exact(amount: Decimal, exponent: int, code: str) -> Decimal:
    quantum = _unit(exponent)
    try:
        exact = amount.quantize(quantum, rounding=ROUND_DOWN, context=_STORE)
    except InvalidOperation as exc:  # more than _MAX_DIGITS digits
        raise InvalidAmount(f"{amount} {code} is too large") from exc
    if exact != amount:
        raise InvalidAmount(f"{amount} has more decimals than {code} allows ({exponent})")
    return exact


def _bounded(amount: Decimal, code: str) -> Decimal:
    """``amount`` (on ``code``'s exponent) if it has at most ``_MAX_DIGITS`` digits, else InvalidAmount."""
    # below 10**18 major units no currency's exponent (at most 4) can reach 28 digits: no lookup
    if amount.adjusted() >= 18 and amount.adjusted() >= _MAX_DIGITS - currency(code).exponent:
        raise _too_large(f"{amount} {code}")
    return amount


@attrs.frozen(order=False)
class Money:
    """An exact amount in one currency.

    Build with :meth:`of` (``Money.of("12.50", "EUR")``) or :meth:`from_minor`
    (``Money.from_minor(1250, "EUR")``). The amount is stored quantized to the currency's
    exponent, so ``Money.of("12.5", "EUR").amount == Decimal("12.50")``; zero is never negative.

    The constructor converts nothing but checks everything: ``Money(Decimal("12.50"), "EUR")``
    is fine, while a float, a str, NaN or an infinity, a code that is not an ISO 4217 currency
    with minor units, an amount not written with exactly the currency's decimals
    (``Decimal("1.234")`` or ``Decimal("1")`` for EUR) or longer than 28 digits raises
    :class:`~gateway_core.errors.InvalidMoney` saying what was wrong. Use :meth:`of` to convert.
    """

    amount: Decimal
    currency: str

    def __attrs_post_init__(self) -> None:
        cur = currency(self.currency)
        given: object = self.amount
        if not isinstance(given, Decimal):
            hint = "floats cannot represent money exactly; " if isinstance(given, float) else ""
            raise InvalidAmount(
                f"Money() takes a Decimal amount, not {type(given).__name__} ({hint}Money.of() converts a str)"
            )
        amount = given
        if not amount.is_finite():
            raise InvalidAmount(f"amount must be finite, got {amount}")
        if not amount.same_quantum(_unit(cur.exponent)):
            raise InvalidAmount(
                f"Money() takes {cur.code} amounts with exactly {cur.exponent} decimals, got {amount} "
                f"(Money.of() quantizes an exact amount, and refuses more decimals than {cur.code} allows)"
            )
        _bounded(amount, cur.code)
        if not amount and amount.is_signed():
            object.__setattr__(self, "amount", amount.copy_abs())

    @classmethod
    def of(cls, amount: str | Decimal, currency_code: str) -> Money:
        """Build from a plain decimal string or a ``Decimal`` in major units."""
        cur = currency(currency_code)
        value = parse_decimal(amount)
        return _trusted(_quantize_exact(value, cur.exponent, cur.code), cur.code)

    @classmethod
    def from_minor(cls, minor: int, currency_code: str, *, exponent: int | None = None) -> Money:
        """Build from integer minor units (ISO exponent unless a provider ``exponent`` is given).

        ``exponent`` is a wire format's (see :class:`WireFormat`): an int from 0 to 28 (an amount
        has at most 28 digits). Anything else (a float, a bool, a negative or huge number) is the
        plugin's mistake, not the provider's data, and raises
        :class:`~gateway_core.errors.ConfigurationError` as ``WireFormat`` does.
        """
        if isinstance(minor, bool) or not isinstance(minor, int):
            raise InvalidAmount(f"minor units must be an int, not {type(minor).__name__}")
        cur = currency(currency_code)
        if exponent is not None:
            if isinstance(exponent, bool) or not isinstance(exponent, int):
                raise ConfigurationError(f"a wire exponent must be an int, not {type(exponent).__name__}")
            if exponent < 0:
                raise ConfigurationError(f"a wire exponent must be at least 0, got {exponent}")
            if exponent > _MAX_WIRE_EXPONENT:
                raise ConfigurationError(f"a wire exponent must be at most {_MAX_WIRE_EXPONENT}, got {exponent}")
        scale = cur.exponent if exponent is None else exponent
        return _trusted(_quantize_exact(_shift(Decimal(minor), -scale), cur.exponent, cur.code), cur.code)

    @classmethod
    def zero(cls, currency_code: str) -> Money:
        """Zero in the given currency."""
        return cls.of("0", currency_code)

    @property
    def exponent(self) -> int:
        """The ISO 4217 exponent of this amount's currency."""
        return currency(self.currency).exponent

    def to_minor(self) -> int:
        """Integer ISO minor units (exact; the amount is always quantized to the exponent)."""
        return int(_shift(self.amount, self.exponent))

    # -- arithmetic -----------------------------------------------------------------------
    # Adding, subtracting or ordering Money and anything else returns NotImplemented, Python's
    # protocol for an operand a method does not support: the other operand gets its turn, and
    # Python raises its usual TypeError ("unsupported operand type(s) for +: 'Money' and 'int'").
    # Only a fractional factor raises TypeError here, to name .scale() and the Rounding it needs.
    def _same(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")
        return other

    # The results below are exact and keep the exponent of their (valid) inputs, so they skip the
    # constructor's checks (_trusted); only the 28-digit bound can be crossed, and it is checked.
    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        return _trusted(
            _bounded(_exactly(_EXACT.add, self.amount, self._same(other).amount), self.currency), self.currency
        )

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        amount = _exactly(_EXACT.subtract, self.amount, self._same(other).amount)
        return _trusted(_bounded(amount, self.currency), self.currency)

    def __neg__(self) -> Money:
        return _trusted(self.amount.copy_negate(), self.currency)

    def __mul__(self, factor: int) -> Money:
        """Multiply by a whole number (exact). Use :meth:`scale` for fractions."""
        if isinstance(factor, bool) or not isinstance(factor, int):
            raise TypeError("Money can only be multiplied by an int; use .scale() with a Rounding")
        amount = _exactly(_EXACT.multiply, self.amount, Decimal(factor))
        return _trusted(_bounded(amount, self.currency), self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        return self.amount < self._same(other).amount

    def __le__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        return self.amount <= self._same(other).amount

    def __gt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        return self.amount > self._same(other).amount

    def __ge__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        return self.amount >= self._same(other).amount

    def __bool__(self) -> bool:
        return bool(self.amount)

    def scale(self, factor: Decimal | str, rounding: Rounding) -> Money:
        """Multiply by ``factor`` and round to the currency's exponent with ``rounding``."""
        product = _exactly(_EXACT.multiply, self.amount, parse_decimal(factor))
        try:
            rounded = product.quantize(_unit(self.exponent), rounding=_mode(rounding), context=_ROUND)
        except InvalidOperation as exc:
            raise _too_large(product) from exc
        return _trusted(_bounded(rounded, self.currency), self.currency)

    def percent(self, percent: Decimal | str, rounding: Rounding) -> Money:
        """``percent`` % of this amount, rounded with ``rounding`` (``percent("5", HALF_UP)``)."""
        return self.scale(_shift(parse_decimal(percent), -2), rounding)

    @property
    def is_positive(self) -> bool:
        return self.amount > 0

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


_new = object.__new__
_set_amount = Money.__dict__["amount"].__set__  # the slots themselves: Money is frozen
_set_currency = Money.__dict__["currency"].__set__


def _trusted(amount: Decimal, code: str) -> Money:
    """A Money from an amount already checked and on ``code``'s exponent, without the constructor's checks.

    For the named constructors (which check more, and say more) and exact arithmetic on valid
    values; everything else goes through ``Money(...)``. Negative zero becomes zero.
    """
    money = _new(Money)
    _set_amount(money, amount if amount or not amount.is_signed() else amount.copy_abs())
    _set_currency(money, code)
    return money


@cache
def _quantum(step: int, exponent: int) -> Decimal:
    return _shift(Decimal(step), -exponent)


@attrs.frozen
class WireFormat:
    """How one provider puts a currency on the wire.

    ``exponent`` is the number of decimals the provider's integer amounts carry, 0 to 28 (Stripe
    sends ISK with 2 although ISO says 0); ``step`` is the granularity in those units (Stripe takes ISK in
    multiples of 100, three-decimal currencies in multiples of 10; PayPal takes HUF as whole
    forints, i.e. exponent 0).
    """

    currency: str
    exponent: int
    step: int = 1

    def __attrs_post_init__(self) -> None:
        currency(self.currency)
        for what, value in (("exponent", self.exponent), ("step", self.step)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigurationError(
                    f"invalid wire format for {self.currency}: its {what} must be an int, not {type(value).__name__}"
                )
        if not 0 <= self.exponent <= _MAX_WIRE_EXPONENT or self.step < 1:
            raise ConfigurationError(
                f"invalid wire format for {self.currency}: exponent {self.exponent}, step {self.step} "
                f"(the exponent must be 0 to {_MAX_WIRE_EXPONENT}, the step at least 1)"
            )
        iso_quantum = _shift(Decimal(1), -currency(self.currency).exponent)
        if _remainder(self.quantum, iso_quantum) != 0:
            raise ConfigurationError(
                f"wire format for {self.currency} has a quantum of {self.quantum}, "
                f"finer than ISO 4217 allows ({iso_quantum})"
            )

    @classmethod
    def iso(cls, currency_code: str) -> WireFormat:
        """The ISO 4217 wire format: ISO exponent, step 1."""
        return cls(currency_code, currency(currency_code).exponent)

    @property
    def quantum(self) -> Decimal:
        """The smallest amount this format can carry, in major units."""
        return _quantum(self.step, self.exponent)

    def accepts(self, money: Money) -> bool:
        """Whether ``money`` is exactly representable in this format."""
        return money.currency == self.currency and not _EXACT.remainder(money.amount, self.quantum)

    def to_minor(self, money: Money) -> int:
        """Exact integer amount for the wire; raises :class:`InvalidAmount` if not representable."""
        if money.currency != self.currency:
            raise CurrencyMismatch(f"wire format for {self.currency} cannot carry {money.currency}")
        if not self.accepts(money):
            raise InvalidAmount(
                f"{money} is not a multiple of {self.quantum} {self.currency}, the smallest amount the provider accepts"
            )
        return int(_shift(money.amount, self.exponent))

    def from_minor(self, minor: int) -> Money:
        """Money from a provider's integer amount (exact, or :class:`InvalidAmount`)."""
        return Money.from_minor(minor, self.currency, exponent=self.exponent)

    def round_up(self, money: Money, rounding: Rounding = Rounding.CEILING) -> Money:
        """Round ``money`` to this format's quantum; the mode is named (ceiling by default)."""
        if money.currency != self.currency:
            raise CurrencyMismatch(f"wire format for {self.currency} cannot carry {money.currency}")
        q = self.quantum
        # a quotient by an odd step may not terminate; at _ROUND's precision it cannot land on a
        # rounding boundary that the exact quotient does not (amounts have at most 28 digits)
        units = _ROUND.divide(money.amount, q).quantize(Decimal(1), rounding=_mode(rounding), context=_ROUND)
        return Money.of(_exactly(_EXACT.multiply, units, q), self.currency)
