"""Routing: which gateways can take an amount, in what order, and why the others cannot.

Pure computation over capability metadata; no plugin is called. The manager keeps a
:class:`Router` over its gateways' effective capabilities; the CLI can build one over installed
providers' declared capabilities without configuring anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from gateway_core.capabilities import Capabilities, Feature
from gateway_core.errors import (
    AmountOutOfRange,
    CapabilityNotSupported,
    InvalidRequest,
    UnknownGateway,
    UnsupportedCurrency,
)
from gateway_core.money import Money
from gateway_core.money import currency as currency_of

__all__ = ["Exclusion", "RouteDecision", "RouteEntry", "Router"]


@attrs.frozen
class RouteEntry:
    name: str
    capabilities: Capabilities
    priority: int = 100


@attrs.frozen
class Exclusion:
    """A gateway that cannot take the payment, and why (``"paypal: HUF not offered"``)."""

    gateway: str
    reason: str

    def __str__(self) -> str:
        return f"{self.gateway}: {self.reason}"


@attrs.frozen
class RouteDecision:
    """Eligible gateways in order, and the reason each other gateway was excluded."""

    amount: Money
    features: frozenset[Feature]
    eligible: tuple[str, ...]
    excluded: tuple[Exclusion, ...]

    @property
    def best(self) -> str:
        """The first eligible gateway; raises if there is none, listing every reason."""
        if self.eligible:
            return self.eligible[0]
        reasons = "; ".join(str(e) for e in self.excluded) or "no gateways configured"
        if all(e.reason.endswith("not offered") for e in self.excluded):
            raise UnsupportedCurrency(f"no gateway offers {self.amount.currency}: {reasons}")
        if all(e.reason.endswith("not offered") or e.reason.startswith("lacks ") for e in self.excluded):
            # nothing was refused for the amount: raising the price would not help
            features = ", ".join(sorted(self.features))
            raise CapabilityNotSupported(f"no gateway offering {self.amount.currency} supports {features}: {reasons}")
        raise AmountOutOfRange(f"no gateway can take {self.amount}: {reasons}")


class Router:
    """Routes over a fixed set of gateways, ordered by priority then by the order given."""

    def __init__(self, entries: Sequence[RouteEntry]) -> None:
        order = sorted(range(len(entries)), key=lambda i: (entries[i].priority, i))
        self._entries = tuple(entries[i] for i in order)
        self._by_name = {e.name: e for e in self._entries}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self._entries)

    def _selected(self, gateways: Iterable[str] | None) -> Sequence[RouteEntry]:
        if gateways is None:
            return self._entries
        given: object = gateways  # untyped callers pass anything: check what arrived, not the annotation
        if isinstance(given, str):
            raise InvalidRequest("gateways must be a collection of names, not one str (use [name])")
        if not isinstance(given, Iterable):
            raise InvalidRequest(f"gateways must be a collection of names or None, not {type(given).__name__}")
        wanted: set[str] = set()
        for name in given:
            if not isinstance(name, str):
                raise InvalidRequest(f"gateway names must be str, not {type(name).__name__}")
            wanted.add(name)
        unknown = wanted - self._by_name.keys()
        if unknown:
            raise UnknownGateway(f"no gateway named {', '.join(sorted(unknown))}")
        return [e for e in self._entries if e.name in wanted]

    def route(
        self, amount: Money, features: Iterable[Feature] = (), gateways: Iterable[str] | None = None
    ) -> RouteDecision:
        """Eligible gateways for ``amount`` with ``features``, and a reason for every other one."""
        _require_money(amount)
        wanted = _features(features)
        eligible: list[str] = []
        excluded: list[Exclusion] = []
        for entry in self._selected(gateways):
            caps = entry.capabilities
            rule = caps.currencies.get(amount.currency)
            if rule is None:
                excluded.append(Exclusion(entry.name, f"{amount.currency} not offered"))
                continue
            missing = wanted - caps.features
            if missing:
                excluded.append(Exclusion(entry.name, f"lacks {', '.join(sorted(missing))}"))
                continue
            reason = rule.refusal(amount)
            if reason is not None:
                excluded.append(Exclusion(entry.name, reason))
                continue
            eligible.append(entry.name)
        return RouteDecision(amount, wanted, tuple(eligible), tuple(excluded))

    def minimum_price(self, currency: str, gateways: Iterable[str] | None = None) -> Money | None:
        """The lowest amount any (of the given) gateways accepts in ``currency``; ``None`` if none offers it."""
        currency_of(currency)  # an unknown or malformed code is an error, not "nobody offers it"
        minimums = [
            rule.effective_minimum
            for e in self._selected(gateways)
            if (rule := e.capabilities.currencies.get(currency)) is not None
        ]
        return min(minimums, key=lambda m: m.amount) if minimums else None

    def round_up(self, amount: Money, gateway: str) -> Money:
        """``amount`` raised to ``gateway``'s minimum, then up to its step (ceiling); refused above its maximum."""
        _require_money(amount)
        entry = self._selected([gateway])[0]
        rule = entry.capabilities.require_rule(amount.currency, gateway=gateway)
        rounded = rule.round_up(amount)
        rule.check(rounded, gateway=gateway)
        return rounded


def _require_money(amount: object) -> None:
    """Routing weighs a :class:`Money`; anything else (a float, a bare Decimal) is an :class:`InvalidRequest`."""
    if not isinstance(amount, Money):
        raise InvalidRequest(f"amount must be Money, not {type(amount).__name__} (build one with Money.of)")


def _features(features: Iterable[Feature]) -> frozenset[Feature]:
    """``features`` as Feature values; one bare string or an unknown name is an :class:`InvalidRequest`."""
    given: object = features  # untyped callers pass anything: check what arrived, not the annotation
    if isinstance(given, str):  # a Feature is a str too: "refund" would be read letter by letter
        raise InvalidRequest(f"features must be a collection of Feature values, not one str (use [{given!r}])")
    if not isinstance(given, Iterable):
        raise InvalidRequest(f"features must be a collection of Feature values, not {type(given).__name__}")
    listed = list(given)
    try:
        return frozenset(Feature(f) for f in listed)
    except ValueError as exc:
        known = ", ".join(f.value for f in Feature)
        raise InvalidRequest(f"unknown feature in {sorted(map(str, listed))}; known: {known}") from exc
