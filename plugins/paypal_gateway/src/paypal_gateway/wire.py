"""Money to and from PayPal's decimal strings, using this plugin's own wire formats (never floats)."""

from __future__ import annotations

import re
from decimal import Context, Decimal, Inexact, InvalidOperation
from typing import Any

from gateway_core.errors import GatewayError, InvalidAmount, InvalidMoney
from gateway_core.money import Money, WireFormat
from paypal_gateway.metadata import CAPABILITIES

__all__ = ["MalformedAnswer", "amount_json", "from_wire", "to_wire"]

_VALUE_RE = re.compile(r"[0-9]{1,32}(\.[0-9]{1,3})?")
# The shift to major units runs in this context, never the caller's: a host that lowers
# ``decimal.getcontext().prec`` or changes its rounding must not change what PayPal is sent
# (``Decimal.scaleb`` rounds to the current context's precision). Inexact is trapped, so an
# amount that cannot be written exactly raises instead of being rounded.
_EXACT = Context(prec=100, traps=[InvalidOperation, Inexact])


def wire_format(currency: str) -> WireFormat:
    """PayPal's wire format for ``currency`` (HUF, JPY and TWD: exponent 0)."""
    rule = CAPABILITIES.rule(currency)
    if rule is None:
        raise InvalidAmount(f"PayPal does not take {currency}")
    return rule.wire


def to_wire(money: Money) -> str:
    """The decimal string PayPal expects: ``"12.50"``, ``"1250"`` for HUF. Refuses what PayPal cannot carry."""
    fmt = wire_format(money.currency)
    minor = fmt.to_minor(money)  # InvalidAmount for 10.50 HUF
    return format(Decimal(minor).scaleb(-fmt.exponent, context=_EXACT), "f")


def amount_json(money: Money) -> dict[str, str]:
    """PayPal's ``Money`` object."""
    return {"currency_code": money.currency, "value": to_wire(money)}


class MalformedAnswer(GatewayError):
    """A PayPal answer lacks a field the plugin needs, or has one it cannot read.

    Never the host's error: the gateway turns it into :class:`~gateway_core.errors.OutcomeUnknown`
    with ``retryable=False`` after a POST PayPal answered (a retry would replay the same answer) and
    :class:`~gateway_core.errors.GatewayUnavailable` after reads only.
    """


def from_wire(payload: Any) -> Money:
    """Money from PayPal's ``{"currency_code": "EUR", "value": "12.50"}`` (exact; never a float)."""
    if not isinstance(payload, dict):
        raise MalformedAnswer("PayPal amount is missing")
    value, code = payload.get("value"), payload.get("currency_code")
    if not isinstance(value, str) or not isinstance(code, str) or not _VALUE_RE.fullmatch(value):
        raise MalformedAnswer(f"PayPal amount {value!r} {code!r} is not a decimal string with a currency")
    try:
        return Money.of(Decimal(value), code)
    except InvalidMoney as exc:  # a currency the core does not know, more decimals than it has
        raise MalformedAnswer(f"PayPal amount {value!r} {code!r}: {exc.message}") from exc
