"""Capability metadata: what a provider can do, declared by its plugin, read without its SDK.

A plugin declares a :class:`Capabilities` value: per currency a :class:`CurrencyRule` (the
provider's wire exponent and step, minimum and maximum), the :class:`Feature` set, card brands,
how far ahead a hosted checkout's expiry may be set (:class:`CheckoutExpiry`), whether the host
must capture (or, authorize-only, authorize) an approved hosted checkout
(``host_completes_checkout``), and the :class:`Source` of every figure with the date it was
checked. The core never special-cases a provider: routing, minimums and currency checks are
computed from this metadata alone.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from types import MappingProxyType

import attrs

from gateway_core.errors import AmountOutOfRange, ConfigurationError, InvalidAmount, UnsupportedCurrency
from gateway_core.money import _EXACT, Money, Rounding, WireFormat, currency

__all__ = ["Capabilities", "CheckoutExpiry", "CurrencyRule", "Feature", "Source"]


class Feature(enum.StrEnum):
    """Optional features a gateway may declare. Declaring one is a promise the conformance suite checks."""

    HOSTED_CHECKOUT = "hosted_checkout"
    AUTHORIZE_CAPTURE = "authorize_capture"
    PARTIAL_CAPTURE = "partial_capture"
    VOID = "void"
    REFUND = "refund"
    PARTIAL_REFUND = "partial_refund"
    MULTIPLE_REFUNDS = "multiple_refunds"
    PAYMENT_STATUS = "payment_status"
    WEBHOOKS = "webhooks"
    APPLICATION_FEE = "application_fee"


#: The hook each feature needs implemented; the manager refuses a plugin that declares a feature
#: without its hook.
FEATURE_HOOKS: Mapping[Feature, tuple[str, ...]] = MappingProxyType(
    {
        Feature.HOSTED_CHECKOUT: ("gateway_create_checkout",),
        Feature.AUTHORIZE_CAPTURE: ("gateway_authorize", "gateway_capture"),
        Feature.PARTIAL_CAPTURE: ("gateway_capture",),
        Feature.VOID: ("gateway_void",),
        Feature.REFUND: ("gateway_refund",),
        Feature.PARTIAL_REFUND: ("gateway_refund",),
        Feature.MULTIPLE_REFUNDS: ("gateway_refund",),
        Feature.PAYMENT_STATUS: ("gateway_payment_status",),
        Feature.WEBHOOKS: ("gateway_parse_webhook",),
    }
)


@attrs.frozen
class Source:
    """Where a figure comes from and when someone last checked it against that source."""

    what: str
    reference: str
    checked: date


@attrs.frozen
class CurrencyRule:
    """One currency as a provider takes it.

    ``exponent`` and ``step`` describe the provider's wire format (see
    :class:`~gateway_core.money.WireFormat`); ``minimum``/``maximum`` bound a single charge
    (``None``: any positive amount / no documented maximum).
    """

    code: str
    exponent: int
    step: int = 1
    minimum: Money | None = None
    maximum: Money | None = None

    # Derived once at construction: routing checks every gateway's rule per decision.
    _wire: WireFormat = attrs.field(init=False, repr=False, eq=False)
    _floor: Money = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        wire = WireFormat(self.code, self.exponent, self.step)  # validates code, exponent and step
        for label, bound in (("minimum", self.minimum), ("maximum", self.maximum)):
            if bound is None:
                continue
            if bound.currency != self.code:
                raise ConfigurationError(f"{self.code} {label} is in {bound.currency}")
            if not bound.is_positive:
                raise ConfigurationError(f"{self.code} {label} must be positive, got {bound}")
            if not wire.accepts(bound):
                raise ConfigurationError(f"{self.code} {label} {bound} is not on the wire step {wire.quantum}")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ConfigurationError(f"{self.code} minimum {self.minimum} exceeds maximum {self.maximum}")
        object.__setattr__(self, "_wire", wire)
        object.__setattr__(self, "_floor", self.minimum or Money.of(wire.quantum, self.code))

    @classmethod
    def iso(cls, code: str, *, minimum: str | None = None, maximum: str | None = None, step: int = 1) -> CurrencyRule:
        """A rule with the ISO 4217 exponent; bounds given as decimal strings in major units."""
        return cls(
            code,
            currency(code).exponent,
            step,
            Money.of(minimum, code) if minimum is not None else None,
            Money.of(maximum, code) if maximum is not None else None,
        )

    @property
    def wire(self) -> WireFormat:
        return self._wire

    @property
    def effective_minimum(self) -> Money:
        """The smallest chargeable amount: the declared minimum, else one wire quantum."""
        return self._floor

    def refusal(self, amount: Money) -> str | None:
        """Why this rule refuses ``amount``, or ``None`` when it accepts it."""
        if amount.currency != self.code:
            return f"{amount.currency} is not {self.code}"
        value = amount.amount
        if value < self._floor.amount:
            return f"{amount} is below the {self._floor} minimum"
        if self.maximum is not None and value > self.maximum.amount:
            return f"{amount} is above the {self.maximum} maximum"
        if _EXACT.remainder(value, self._wire.quantum):  # fixed context: the caller's cannot round it
            return f"{amount} is not a multiple of {self._wire.quantum} {self.code}"
        return None

    def check(self, amount: Money, *, gateway: str | None = None) -> None:
        """Raise :class:`AmountOutOfRange` (outside the bounds) or :class:`InvalidAmount` (off the step)."""
        reason = self.refusal(amount)
        if reason is None:
            return
        in_bounds = amount >= self._floor and (self.maximum is None or amount <= self.maximum)
        if in_bounds and amount.currency == self.code:
            raise InvalidAmount(reason, gateway=gateway)
        raise AmountOutOfRange(reason, gateway=gateway)

    def round_up(self, amount: Money) -> Money:
        """``amount`` raised to the minimum, then up to the wire step (``Rounding.CEILING``)."""
        return self._wire.round_up(max(amount, self._floor), Rounding.CEILING)


@attrs.frozen
class CheckoutExpiry:
    """How far ahead of now a hosted checkout's expiry may be set on a provider.

    Stripe, for example, takes an ``expires_at`` between 30 minutes and 24 hours ahead. A gateway
    that declares no window (``Capabilities.checkout_expiry is None``) takes no requested expiry at
    all: the core refuses a :class:`~gateway_core.models.CheckoutRequest` with ``expires_at`` for it
    rather than let the plugin drop the expiry silently. The session it returns still says when the
    provider lets it lapse.
    """

    shortest: timedelta
    longest: timedelta

    def __attrs_post_init__(self) -> None:
        if self.shortest < timedelta(0) or self.longest <= self.shortest:
            raise ConfigurationError(
                f"checkout expiry window must satisfy 0 <= shortest < longest, got {self.shortest}..{self.longest}"
            )

    def refusal(self, expires_at: datetime, now: datetime) -> str | None:
        """Why this window refuses ``expires_at`` at ``now``, or ``None`` when it accepts it."""
        ahead = expires_at - now
        if ahead < self.shortest or ahead > self.longest:
            return (
                f"a checkout must expire between {_span(self.shortest)} and {_span(self.longest)} from now; "
                f"{expires_at.isoformat()} is {_span(ahead)} away"
            )
        return None

    def within(self, other: CheckoutExpiry) -> bool:
        """Whether every expiry this window accepts, ``other`` accepts too."""
        return other.shortest <= self.shortest and self.longest <= other.longest

    @classmethod
    def minutes(cls, shortest: int, longest: int) -> CheckoutExpiry:
        """A window given in whole minutes (as ``checkout_expiry_minutes = [30, 1440]`` in settings)."""
        return cls(timedelta(minutes=shortest), timedelta(minutes=longest))

    def fit(self, wanted: datetime, now: datetime, *, margin: timedelta = timedelta(minutes=1)) -> datetime:
        """``wanted`` moved into the window, ``margin`` inside each end (the request takes time to arrive).

        A host that wants a checkout to lapse with its own hold calls this and stores the result,
        so the retry of an operation rebuilds the same request.
        """
        earliest = now + min(self.shortest + margin, self.longest)
        latest = now + max(self.longest - margin, self.shortest)
        return min(max(wanted, earliest), latest)


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    if seconds % 3600 == 0 and seconds:
        return f"{sign}{seconds // 3600} h"
    if seconds % 60 == 0 and seconds:
        return f"{sign}{seconds // 60} min"
    return f"{sign}{seconds} s"


def _freeze_currencies(value: Mapping[str, CurrencyRule] | Iterable[CurrencyRule]) -> Mapping[str, CurrencyRule]:
    rules = list(value.values()) if isinstance(value, Mapping) else list(value)
    out: dict[str, CurrencyRule] = {}
    for rule in rules:
        if rule.code in out:
            raise ConfigurationError(f"currency {rule.code} declared twice")
        out[rule.code] = rule
    return MappingProxyType(dict(sorted(out.items())))


def _features(value: Iterable[Feature]) -> frozenset[Feature]:
    return frozenset(Feature(f) for f in value)


def _brands(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _sources(value: Iterable[Source]) -> tuple[Source, ...]:
    return tuple(value)


@attrs.frozen
class Capabilities:
    """Everything a gateway declares about itself.

    Build with a list of rules; ``currencies`` becomes a read-only mapping by code.
    """

    currencies: Mapping[str, CurrencyRule] = attrs.field(converter=_freeze_currencies)
    features: frozenset[Feature] = attrs.field(converter=_features)
    card_brands: frozenset[str] = attrs.field(converter=_brands, factory=frozenset)
    sources: tuple[Source, ...] = attrs.field(converter=_sources, factory=tuple)
    #: Whether objects made through this gateway move real money (the fake says False).
    live: bool = True
    #: How far ahead a hosted checkout's expiry may be set; ``None``: the provider takes none.
    checkout_expiry: CheckoutExpiry | None = None
    #: ``True``: the payer's approval of a hosted checkout moves no money until the host completes
    #: it, on the ``checkout.completed`` event or the payer's return (retry-safe with the same
    #: operation id). Made with ``capture=True``, the host captures it:
    #: ``capture(CaptureRequest(checkout_id))``. Made with ``capture=False`` (authorize-only), the
    #: host authorizes it, ``authorize(AuthorizeRequest(amount, payment_method=checkout_id))`` with
    #: the checkout's amount, and captures that authorization later by its own id
    #: (``Authorization.id``; the checkout's id captures nothing). An approval nobody completes
    #: lapses (PayPal Orders v2: the order's approval window, 3 hours by default; an authorization
    #: then holds for 29 days, best captured within its 3-day honor period). ``False``: the
    #: provider captures (or authorizes) when the payer pays (Stripe, the fake by default). A live
    #: provider's ``configure`` may not change it.
    host_completes_checkout: bool = False

    def supports(self, feature: Feature) -> bool:
        return feature in self.features

    def rule(self, currency_code: str) -> CurrencyRule | None:
        return self.currencies.get(currency_code)

    def require_rule(self, currency_code: str, *, gateway: str | None = None) -> CurrencyRule:
        rule = self.currencies.get(currency_code)
        if rule is None:
            raise UnsupportedCurrency(f"{currency_code} not offered", gateway=gateway)
        return rule

    def narrowed(self, currencies: Iterable[str], *, gateway: str) -> Capabilities:
        """These capabilities limited to ``currencies`` (configuration may only narrow, never widen)."""
        wanted = list(currencies)
        missing = [c for c in wanted if c not in self.currencies]
        if missing:
            raise ConfigurationError(
                f"gateway {gateway!r} is configured for {', '.join(missing)} which its provider does not declare",
                gateway=gateway,
            )
        return attrs.evolve(self, currencies=[self.currencies[c] for c in wanted])

    def widening(self, declared: Capabilities) -> list[str]:
        """How these capabilities offer more than ``declared`` (empty when they only narrow it).

        The manager applies this to what a provider's ``configure`` returns for one gateway.
        """
        found: list[str] = []
        extra = sorted(set(self.currencies) - set(declared.currencies))
        if extra:
            found.append(f"offers undeclared currencies {', '.join(extra)}")
        for code, rule in self.currencies.items():
            base = declared.currencies.get(code)
            if base is None:
                continue
            if (rule.exponent, rule.step) != (base.exponent, base.step):
                found.append(
                    f"changes the {code} wire format from exponent {base.exponent} step {base.step} "
                    f"to exponent {rule.exponent} step {rule.step}"
                )
                continue
            if rule.effective_minimum < base.effective_minimum:
                found.append(f"lowers the {code} minimum below {base.effective_minimum}")
            if base.maximum is not None and (rule.maximum is None or rule.maximum > base.maximum):
                found.append(f"raises the {code} maximum above {base.maximum}")
        for label, mine, theirs in (
            ("features", set(self.features), set(declared.features)),
            ("card brands", set(self.card_brands), set(declared.card_brands)),
        ):
            if mine - theirs:
                found.append(f"adds undeclared {label} {', '.join(sorted(mine - theirs))}")
        if self.live != declared.live:
            found.append(f"changes live from {declared.live} to {self.live}")
        if self.host_completes_checkout != declared.host_completes_checkout and declared.live:
            # Who captures an approved checkout is a fact of a live provider, not a setting: a host
            # told wrongly either never captures (and is never paid) or captures what is captured.
            # A test provider (the fake) may stand in for either kind per gateway.
            found.append(
                f"changes host_completes_checkout from {declared.host_completes_checkout} "
                f"to {self.host_completes_checkout}"
            )
        window, base_window = self.checkout_expiry, declared.checkout_expiry
        if window is not None and (base_window is None or not window.within(base_window)):
            allowed = "none" if base_window is None else f"{_span(base_window.shortest)}..{_span(base_window.longest)}"
            found.append(
                f"widens the checkout expiry window to {_span(window.shortest)}..{_span(window.longest)} "
                f"(declared: {allowed})"
            )
        return found

    def problems(self) -> list[str]:
        """Self-consistency problems (empty when the metadata is sound)."""
        found: list[str] = []
        if not self.sources:
            found.append("no sources named")
        if Feature.HOSTED_CHECKOUT not in self.features and Feature.AUTHORIZE_CAPTURE not in self.features:
            found.append("neither hosted_checkout nor authorize_capture: nothing can be paid")
        for dependent, base in (
            (Feature.PARTIAL_CAPTURE, Feature.AUTHORIZE_CAPTURE),
            (Feature.PARTIAL_REFUND, Feature.REFUND),
            (Feature.MULTIPLE_REFUNDS, Feature.PARTIAL_REFUND),
        ):
            if dependent in self.features and base not in self.features:
                found.append(f"{dependent} declared without {base}")
        if not self.currencies:
            found.append("no currencies declared")
        return found
