"""The conformance suite: behavioural tests every provider plugin runs against itself.

Modelled on SQLAlchemy's dialect suite and fsspec's ``tests/abstract``: the same tests run against
every implementation, switched by what the implementation *declares*. A test for a feature the
gateway does not declare is skipped with the reason; a feature that is declared and not honoured
fails. The fake gateway, the Stripe and PayPal plugins and ``examples/example_gateway`` are its
users.

Use it from the plugin's own tests with a few lines::

    import pytest
    from gateway_core.testing.conformance import ConformanceHarness, GatewayConformance


    class TestMyGatewayConformance(GatewayConformance):
        @pytest.fixture
        def conformance_harness(self, my_stand_in):
            manager = GatewayManager(DeploymentConfig.from_mapping({...}), environ={...})
            return ConformanceHarness(
                manager=manager,
                gateway="mine",
                requests_sent=lambda: my_stand_in.request_count,
                secrets=["sk_test_...", "whsec_..."],
                pay=lambda session: my_stand_in.pay(session.id),
                payment_method="tok_test_ok",
                signed_webhook=my_stand_in.signed_webhook,
            )

The classes here are named ``*Conformance`` (never ``Test*``), so pytest collects them only
through the subclass a plugin writes. :class:`GatewayConformance` is all of them; a plugin may
instead subclass a few (``class TestRefunds(RefundConformance)``). Every test takes the
``conformance_harness`` fixture, which the plugin defines (in its test class, as above, or in a
``conftest.py``); it should give a fresh stand-in (or at least a fresh manager) per test.

What "before any request is sent" means here: ``harness.requests_sent()`` (a count of what
reached the provider or its stand-in) does not change across the refused call.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import attrs
import pytest
import structlog.testing

from gateway_core.capabilities import FEATURE_HOOKS, Capabilities, CurrencyRule, Feature
from gateway_core.errors import (
    AmountOutOfRange,
    CapabilityNotSupported,
    GatewayError,
    IdempotencyConflict,
    InvalidAmount,
    InvalidRequest,
    NotFound,
    UnsupportedCurrency,
    WebhookVerificationFailed,
)
from gateway_core.manager import GatewayInfo, GatewayManager
from gateway_core.models import (
    AuthorizeRequest,
    CaptureRequest,
    CheckoutRequest,
    CheckoutSession,
    CheckoutStatus,
    PaymentState,
    RefundRequest,
    VoidRequest,
    WebhookEvent,
)
from gateway_core.money import Money, all_currencies, currency

__all__ = [
    "AuthorizeCaptureConformance",
    "CapabilityConformance",
    "CheckoutConformance",
    "ConformanceHarness",
    "ErrorConformance",
    "GatewayConformance",
    "IdempotencyConformance",
    "MetadataConformance",
    "MoneyConformance",
    "RefundConformance",
    "SecretsConformance",
    "SignWebhook",
    "SignedWebhook",
    "StatusConformance",
    "VoidConformance",
    "WebhookConformance",
]


#: How far in the past (and future) a "stale" webhook timestamp is: far outside any tolerance.
STALE_SECONDS = 24 * 60 * 60

#: What the suite signs a webhook with to check that a wrong secret is refused.
WRONG_WEBHOOK_SECRET = "whsec_conformance_wrong_secret_0000"  # noqa: S105 (not a secret: a deliberately wrong one)

T = TypeVar("T")

SUCCESS_URL = "https://host.example/paid"
CANCEL_URL = "https://host.example/cancelled"


@attrs.frozen
class SignedWebhook:
    """A webhook exactly as the provider would deliver it: headers and raw body bytes."""

    headers: Mapping[str, str]
    body: bytes


class SignWebhook(Protocol):
    """Return a representative webhook signed as the provider signs it.

    ``secret`` replaces the configured webhook secret (to sign with a *wrong* one); ``timestamp``
    (unix seconds) replaces "now" (to make a *stale* one). Both ``None``: a genuine delivery.
    """

    def __call__(self, *, secret: str | None = None, timestamp: int | None = None) -> SignedWebhook: ...


@attrs.frozen
class ConformanceHarness:
    """How the suite reaches the gateway under test and its stand-in. A plugin builds one per test.

    Attributes:
        manager: a :class:`GatewayManager` with the gateway under test configured.
        gateway: the configured name of that gateway.
        requests_sent: how many requests have reached the provider (or its stand-in) so far.
        secrets: every secret value the gateway was configured with; none may appear in a log
            line, an exception message or a result's ``repr``.
        pay: drive a hosted checkout to *captured* on the stand-in, as the payer would, and return
            the provider's payment id (needed when ``HOSTED_CHECKOUT`` is declared).
        payment_method: a payment-method token the stand-in authorizes (needed when
            ``AUTHORIZE_CAPTURE`` is declared).
        signed_webhook: see :class:`SignWebhook` (needed when ``WEBHOOKS`` is declared).
        currency: the currency ordinary tests charge in (default: USD, EUR or GBP if offered,
            else the first offered).
        round_trip_currencies: the currencies the wire round-trip test sends a request for
            (default: every offered currency; limit it when each request is a recorded cassette).
    """

    manager: GatewayManager
    gateway: str
    requests_sent: Callable[[], int]
    secrets: Sequence[str] = ()
    pay: Callable[[CheckoutSession], str] | None = None
    payment_method: str | None = None
    signed_webhook: SignWebhook | None = None
    currency: str | None = None
    round_trip_currencies: Sequence[str] | None = None

    @property
    def info(self) -> GatewayInfo:
        return self.manager.gateway(self.gateway)

    @property
    def capabilities(self) -> Capabilities:
        """The effective capabilities (declared, narrowed by configuration and metadata hooks)."""
        return self.info.capabilities

    def supports(self, feature: Feature) -> bool:
        return feature in self.capabilities.features

    def require(self, *features: Feature) -> None:
        """Skip the calling test unless every feature is declared."""
        missing = [str(f) for f in features if f not in self.capabilities.features]
        if missing:
            pytest.skip(f"gateway {self.gateway!r} does not declare {', '.join(missing)}")

    def rule(self) -> CurrencyRule:
        offered = self.capabilities.currencies
        code = self.currency or next((c for c in ("USD", "EUR", "GBP") if c in offered), next(iter(offered)))
        return self.capabilities.require_rule(code, gateway=self.gateway)


# --------------------------------------------------------------------------------------------
# Helpers the tests share
# --------------------------------------------------------------------------------------------


def new_key() -> str:
    """A fresh idempotency key."""
    return f"conformance-{uuid.uuid4().hex}"


def quantum(rule: CurrencyRule) -> Money:
    """The smallest amount the provider's wire format carries in this currency."""
    return Money.of(rule.wire.quantum, rule.code)


def typical_amount(rule: CurrencyRule) -> Money:
    """An amount every rule accepts that is not a round number: four minimums and two quanta."""
    amount = rule.effective_minimum * 4 + quantum(rule) * 2
    if rule.maximum is not None and amount > rule.maximum:
        return rule.maximum
    return amount


def half(rule: CurrencyRule, amount: Money) -> Money:
    """About half of ``amount``, on the wire step (at least one quantum)."""
    q = rule.wire.quantum
    units = int(amount.amount / q)
    return Money.of(q * max(units // 2, 1), rule.code)


def checkout_request(amount: Money) -> CheckoutRequest:
    return CheckoutRequest.single(
        "Conformance item", amount, SUCCESS_URL, CANCEL_URL, reference=f"conf-{uuid.uuid4().hex[:12]}"
    )


def charge(h: ConformanceHarness, amount: Money) -> Money:
    """Start a payment of ``amount`` the way the gateway allows (checkout, else authorize).

    Returns the amount the provider reported back.
    """
    if h.supports(Feature.HOSTED_CHECKOUT):
        return h.manager.create_checkout(h.gateway, checkout_request(amount), idempotency_key=new_key()).amount
    if h.supports(Feature.AUTHORIZE_CAPTURE):
        request = AuthorizeRequest(amount, need(h.payment_method, "payment_method", Feature.AUTHORIZE_CAPTURE))
        return h.manager.authorize(h.gateway, request, idempotency_key=new_key()).amount
    pytest.fail(f"gateway {h.gateway!r} declares neither hosted_checkout nor authorize_capture")


def need(value: T | None, attribute: str, feature: Feature) -> T:
    """The harness attribute a declared feature needs; fail (not skip) when it is missing."""
    if value is None:
        pytest.fail(
            f"the gateway declares {feature} but the harness gives no {attribute}, so the suite cannot check it"
        )
    return value


def captured_payment(h: ConformanceHarness, amount: Money) -> str:
    """Make a payment of ``amount`` and capture it; return the provider's payment id."""
    if h.supports(Feature.HOSTED_CHECKOUT) and h.pay is not None:
        session = h.manager.create_checkout(h.gateway, checkout_request(amount), idempotency_key=new_key())
        return h.pay(session)
    if h.supports(Feature.AUTHORIZE_CAPTURE) and h.payment_method is not None:
        auth = h.manager.authorize(h.gateway, AuthorizeRequest(amount, h.payment_method), idempotency_key=new_key())
        return h.manager.capture(h.gateway, CaptureRequest(auth.id), idempotency_key=new_key()).payment_id
    pytest.fail(
        "the suite needs a captured payment: give the harness pay= (hosted checkout) or payment_method= "
        "(authorize and capture)"
    )


def authorization(h: ConformanceHarness, amount: Money) -> str:
    """Authorize ``amount`` (``AUTHORIZE_CAPTURE`` is declared); return the authorization id."""
    method = need(h.payment_method, "payment_method", Feature.AUTHORIZE_CAPTURE)
    auth = h.manager.authorize(h.gateway, AuthorizeRequest(amount, method), idempotency_key=new_key())
    assert auth.state is PaymentState.AUTHORIZED, f"a fresh authorization is {auth.state}, expected authorized"
    return auth.id


def unmapped(exc: GatewayError) -> bool:
    """Whether ``exc`` is the manager's safety net around an exception the plugin did not map."""
    return exc.unmapped


@contextmanager
def refused_before_sending(h: ConformanceHarness, expected: type[GatewayError]) -> Iterator[None]:
    """Assert the block raises ``expected`` and that no request reached the provider."""
    before = h.requests_sent()
    with pytest.raises(expected):
        yield
    assert h.requests_sent() == before, f"{expected.__name__} was raised only after a request reached the provider"


def tamper(body: bytes) -> bytes:
    """The same JSON object with one more member: still well-formed, no longer what was signed."""
    stripped = body.rstrip()
    if not stripped.endswith(b"}"):
        return body + b" "
    return stripped[:-1] + b', "tampered": true}'


def now() -> int:
    return int(datetime.now(UTC).timestamp())


# --------------------------------------------------------------------------------------------
# The suite
# --------------------------------------------------------------------------------------------


class MetadataConformance:
    """The declared capability metadata is valid and self-consistent."""

    def test_declared_metadata_has_no_problems(self, conformance_harness: ConformanceHarness) -> None:
        declared = conformance_harness.info.declared
        assert declared.problems() == []

    def test_every_figure_names_a_dated_source(self, conformance_harness: ConformanceHarness) -> None:
        sources = conformance_harness.info.declared.sources
        assert sources, "capabilities name no sources"
        today = datetime.now(UTC).date()
        for source in sources:
            assert source.what.strip(), f"a source has no description: {source!r}"
            assert source.reference.strip(), f"source {source.what!r} has no reference"
            assert source.checked <= today, f"source {source.what!r} was checked in the future ({source.checked})"

    def test_every_currency_has_exponent_and_consistent_bounds(self, conformance_harness: ConformanceHarness) -> None:
        for code, rule in conformance_harness.info.declared.currencies.items():
            assert code == rule.code
            iso = currency(code)  # a usable ISO 4217 code, or InvalidCurrency
            assert rule.exponent >= 0
            assert rule.wire.quantum >= Decimal(1).scaleb(-iso.exponent), f"{code}: wire finer than ISO 4217"
            minimum = rule.effective_minimum
            assert minimum.is_positive, f"{code}: minimum {minimum} is not positive"
            assert rule.wire.accepts(minimum), f"{code}: minimum {minimum} is not on the wire step"
            if rule.maximum is not None:
                assert minimum <= rule.maximum, f"{code}: minimum {minimum} exceeds maximum {rule.maximum}"
                assert rule.wire.accepts(rule.maximum), f"{code}: maximum is not on the wire step"

    def test_declared_features_have_their_hooks(self, conformance_harness: ConformanceHarness) -> None:
        info = conformance_harness.info
        for feature in info.declared.features:
            for hook in FEATURE_HOOKS.get(feature, ()):
                assert hook in info.implemented, f"{feature} is declared but {hook} is not implemented"

    def test_effective_capabilities_only_narrow_the_declared(self, conformance_harness: ConformanceHarness) -> None:
        info = conformance_harness.info
        assert set(info.capabilities.currencies) <= set(info.declared.currencies)
        assert info.capabilities.features == info.declared.features
        for code, rule in info.capabilities.currencies.items():
            declared = info.declared.currencies[code]
            assert rule.effective_minimum >= declared.effective_minimum, f"{code}: minimum was lowered"
            assert (rule.exponent, rule.step) == (declared.exponent, declared.step), f"{code}: wire format changed"


class MoneyConformance:
    """Amounts are exact on the wire, and bad amounts are refused before anything is sent."""

    def test_amounts_round_trip_through_the_wire_format(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        offered = h.capabilities.currencies
        codes = list(h.round_trip_currencies) if h.round_trip_currencies is not None else list(offered)
        assert codes, "no currency to round-trip"
        mismatches: list[str] = []
        for code in codes:
            rule = h.capabilities.require_rule(code, gateway=h.gateway)
            for amount in (rule.effective_minimum, typical_amount(rule), rule.maximum):
                if amount is not None and rule.wire.from_minor(rule.wire.to_minor(amount)) != amount:
                    mismatches.append(f"{amount} does not survive to_minor/from_minor")
            amount = typical_amount(rule)
            reported = charge(h, amount)
            if reported != amount:
                mismatches.append(f"sent {amount}, the provider reported {reported}")
        assert mismatches == []

    def test_amount_below_minimum_is_refused_before_sending(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        below = []
        for rule in h.capabilities.currencies.values():
            smaller = rule.effective_minimum - Money.from_minor(1, rule.code)
            if smaller.is_positive:
                below.append(smaller)
        if not below:
            pytest.skip("every offered currency accepts its smallest unit: nothing is below a minimum")
        for amount in below:
            with refused_before_sending(h, AmountOutOfRange):
                charge(h, amount)

    def test_amount_above_maximum_is_refused_before_sending(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        above = [
            rule.maximum + quantum(rule) for rule in h.capabilities.currencies.values() if rule.maximum is not None
        ]
        if not above:
            pytest.skip("no offered currency declares a maximum")
        for amount in above:
            with refused_before_sending(h, AmountOutOfRange):
                charge(h, amount)

    def test_amount_off_the_wire_step_is_refused_before_sending(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        off = []
        for rule in h.capabilities.currencies.values():
            odd = rule.effective_minimum + Money.from_minor(1, rule.code)
            if not rule.wire.accepts(odd) and (rule.maximum is None or odd <= rule.maximum):
                off.append(odd)
        if not off:
            pytest.skip("every offered currency's wire format carries every ISO minor unit")
        for amount in off:
            with refused_before_sending(h, InvalidAmount):
                charge(h, amount)

    def test_undeclared_currency_is_refused_before_sending(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        offered = h.capabilities.currencies
        other = next((c for c in all_currencies() if c.code not in offered and c.exponent == 2), None)
        other = other or next((c for c in all_currencies() if c.code not in offered), None)
        if other is None:
            pytest.skip("the gateway offers every currency the core knows")
        amount = Money.of("10", other.code)
        with refused_before_sending(h, UnsupportedCurrency):
            charge(h, amount)


class CapabilityConformance:
    """An operation the gateway does not declare is refused by the core, before anything is sent."""

    def test_undeclared_operations_are_refused_before_sending(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        rule = h.rule()
        amount = typical_amount(rule)
        attempts: list[tuple[Feature, Callable[[], object]]] = [
            (Feature.HOSTED_CHECKOUT, lambda: h.manager.create_checkout(h.gateway, checkout_request(amount), idempotency_key=new_key())),
            (Feature.AUTHORIZE_CAPTURE, lambda: h.manager.authorize(h.gateway, AuthorizeRequest(amount, "pm_conformance"), idempotency_key=new_key())),
            (Feature.PARTIAL_CAPTURE, lambda: h.manager.capture(h.gateway, CaptureRequest("conf_missing", amount), idempotency_key=new_key())),
            (Feature.VOID, lambda: h.manager.void(h.gateway, VoidRequest("conf_missing"), idempotency_key=new_key())),
            (Feature.REFUND, lambda: h.manager.refund(h.gateway, RefundRequest("conf_missing"), idempotency_key=new_key())),
            (Feature.PARTIAL_REFUND, lambda: h.manager.refund(h.gateway, RefundRequest("conf_missing", amount), idempotency_key=new_key())),
            (Feature.PAYMENT_STATUS, lambda: h.manager.payment_status(h.gateway, "conf_missing")),
            (Feature.WEBHOOKS, lambda: h.manager.parse_webhook(h.gateway, {}, b"{}")),
        ]  # fmt: skip
        undeclared = [(f, call) for f, call in attempts if not h.supports(f)]
        if not undeclared:
            pytest.skip("the gateway declares every feature")
        for _feature, call in undeclared:
            with refused_before_sending(h, CapabilityNotSupported):
                call()


class CheckoutConformance:
    """Hosted checkout (``HOSTED_CHECKOUT``)."""

    def test_checkout_is_created_open_for_the_amount(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        h.require(Feature.HOSTED_CHECKOUT)
        amount = typical_amount(h.rule())
        session = h.manager.create_checkout(h.gateway, checkout_request(amount), idempotency_key=new_key())
        assert session.gateway == h.gateway
        assert session.id
        assert session.url.startswith(("https://", "http://"))
        assert session.status is CheckoutStatus.OPEN
        assert session.amount == amount

    def test_paid_checkout_reports_the_money_captured(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        h.require(Feature.HOSTED_CHECKOUT, Feature.PAYMENT_STATUS)
        pay = need(h.pay, "pay", Feature.HOSTED_CHECKOUT)
        amount = typical_amount(h.rule())
        session = h.manager.create_checkout(h.gateway, checkout_request(amount), idempotency_key=new_key())
        assert not h.manager.payment_status(h.gateway, session.id).is_paid, "an unpaid checkout reports paid"
        payment_id = pay(session)
        status = h.manager.payment_status(h.gateway, payment_id)
        assert status.is_paid
        assert status.state is PaymentState.SUCCEEDED
        assert status.amount == amount
        assert status.amount_captured == amount
        assert status.amount_refunded == Money.zero(amount.currency)


class AuthorizeCaptureConformance:
    """Authorize then capture (``AUTHORIZE_CAPTURE``, ``PARTIAL_CAPTURE``)."""

    def test_authorize_then_capture_in_full(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        h.require(Feature.AUTHORIZE_CAPTURE)
        amount = typical_amount(h.rule())
        auth_id = authorization(h, amount)
        capture = h.manager.capture(h.gateway, CaptureRequest(auth_id), idempotency_key=new_key())
        assert capture.amount == amount
        assert capture.state is PaymentState.SUCCEEDED
        if h.supports(Feature.PAYMENT_STATUS):
            assert h.manager.payment_status(h.gateway, capture.payment_id).amount_captured == amount

    def test_partial_capture_takes_only_the_part(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        h.require(Feature.PARTIAL_CAPTURE)
        rule = h.rule()
        amount = typical_amount(rule)
        part = half(rule, amount)
        auth_id = authorization(h, amount)
        capture = h.manager.capture(h.gateway, CaptureRequest(auth_id, part), idempotency_key=new_key())
        assert capture.amount == part

    def test_capture_beyond_the_authorization_is_refused(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        h.require(Feature.PARTIAL_CAPTURE)
        rule = h.rule()
        amount = typical_amount(rule)
        auth_id = authorization(h, amount)
        with pytest.raises(AmountOutOfRange):
            h.manager.capture(h.gateway, CaptureRequest(auth_id, amount + quantum(rule)), idempotency_key=new_key())
        capture = h.manager.capture(h.gateway, CaptureRequest(auth_id), idempotency_key=new_key())
        assert capture.amount == amount, "a refused over-capture changed what could be captured"


class VoidConformance:
    """Voiding an authorization or an open checkout (``VOID``)."""

    def test_void_cancels(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        h.require(Feature.VOID)
        amount = typical_amount(h.rule())
        if h.supports(Feature.AUTHORIZE_CAPTURE):
            target = authorization(h, amount)
        else:
            target = h.manager.create_checkout(h.gateway, checkout_request(amount), idempotency_key=new_key()).id
        void = h.manager.void(h.gateway, VoidRequest(target), idempotency_key=new_key())
        assert void.state is PaymentState.CANCELED
        if h.supports(Feature.PAYMENT_STATUS):
            status = h.manager.payment_status(h.gateway, target)
            assert status.state is PaymentState.CANCELED
            assert not status.is_paid


class RefundConformance:
    """Refunds (``REFUND``, ``PARTIAL_REFUND``, ``MULTIPLE_REFUNDS``): never more than was captured."""

    def test_full_refund_returns_what_was_captured(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        h.require(Feature.REFUND)
        amount = typical_amount(h.rule())
        payment_id = captured_payment(h, amount)
        refund = h.manager.refund(h.gateway, RefundRequest(payment_id), idempotency_key=new_key())
        assert refund.gateway == h.gateway
        assert refund.amount == amount
        if h.supports(Feature.PAYMENT_STATUS):
            status = h.manager.payment_status(h.gateway, payment_id)
            assert status.amount_refunded == amount
            assert status.state is PaymentState.REFUNDED

    def test_refund_beyond_what_was_captured_is_refused(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        h.require(Feature.REFUND)
        rule = h.rule()
        amount = typical_amount(rule)
        payment_id = captured_payment(h, amount)
        if h.supports(Feature.PARTIAL_REFUND):
            with pytest.raises(AmountOutOfRange):
                h.manager.refund(
                    h.gateway, RefundRequest(payment_id, amount + quantum(rule)), idempotency_key=new_key()
                )
            if h.supports(Feature.PAYMENT_STATUS):
                refunded = h.manager.payment_status(h.gateway, payment_id).amount_refunded
                assert refunded == Money.zero(amount.currency), "a refused refund refunded something"
        refund = h.manager.refund(h.gateway, RefundRequest(payment_id), idempotency_key=new_key())
        assert refund.amount == amount, "a refused refund changed what remains to refund"
        # Nothing remains now: any further refund is refused (AmountOutOfRange is an InvalidRequest).
        more = RefundRequest(payment_id, quantum(rule) if h.supports(Feature.PARTIAL_REFUND) else None)
        with pytest.raises(InvalidRequest):
            h.manager.refund(h.gateway, more, idempotency_key=new_key())

    def test_partial_refund(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        h.require(Feature.PARTIAL_REFUND)
        rule = h.rule()
        amount = typical_amount(rule)
        part = half(rule, amount)
        payment_id = captured_payment(h, amount)
        refund = h.manager.refund(h.gateway, RefundRequest(payment_id, part), idempotency_key=new_key())
        assert refund.amount == part
        if h.supports(Feature.PAYMENT_STATUS):
            status = h.manager.payment_status(h.gateway, payment_id)
            assert status.amount_refunded == part
            assert status.state is PaymentState.PARTIALLY_REFUNDED
            assert status.is_paid

    def test_multiple_refunds_never_exceed_the_capture(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        h.require(Feature.MULTIPLE_REFUNDS)
        rule = h.rule()
        amount = typical_amount(rule)
        first = half(rule, amount)
        rest = amount - first
        payment_id = captured_payment(h, amount)
        h.manager.refund(h.gateway, RefundRequest(payment_id, first), idempotency_key=new_key())
        with pytest.raises(AmountOutOfRange):
            h.manager.refund(h.gateway, RefundRequest(payment_id, rest + quantum(rule)), idempotency_key=new_key())
        second = h.manager.refund(h.gateway, RefundRequest(payment_id, rest), idempotency_key=new_key())
        assert second.amount == rest
        if h.supports(Feature.PAYMENT_STATUS):
            status = h.manager.payment_status(h.gateway, payment_id)
            assert status.amount_refunded == amount
            assert status.state is PaymentState.REFUNDED


class IdempotencyConformance:
    """The same idempotency key returns the same result and never acts twice."""

    def test_same_key_returns_the_same_checkout(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        h.require(Feature.HOSTED_CHECKOUT)
        request = checkout_request(typical_amount(h.rule()))
        key = new_key()
        first = h.manager.create_checkout(h.gateway, request, idempotency_key=key)
        second = h.manager.create_checkout(h.gateway, request, idempotency_key=key)
        assert second.id == first.id
        assert second.amount == first.amount

    def test_same_key_returns_the_same_authorization(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        h.require(Feature.AUTHORIZE_CAPTURE)
        method = need(h.payment_method, "payment_method", Feature.AUTHORIZE_CAPTURE)
        request = AuthorizeRequest(typical_amount(h.rule()), method)
        key = new_key()
        first = h.manager.authorize(h.gateway, request, idempotency_key=key)
        second = h.manager.authorize(h.gateway, request, idempotency_key=key)
        assert second.id == first.id

    def test_key_reused_with_other_parameters_never_charges_again(
        self, conformance_harness: ConformanceHarness
    ) -> None:
        h = conformance_harness
        rule = h.rule()
        key = new_key()
        amount = typical_amount(rule)

        def attempt(value: Money) -> str:
            if h.supports(Feature.HOSTED_CHECKOUT):
                return h.manager.create_checkout(h.gateway, checkout_request(value), idempotency_key=key).id
            h.require(Feature.AUTHORIZE_CAPTURE)
            method = need(h.payment_method, "payment_method", Feature.AUTHORIZE_CAPTURE)
            return h.manager.authorize(h.gateway, AuthorizeRequest(value, method), idempotency_key=key).id

        first_id = attempt(amount)
        try:
            again = attempt(amount + quantum(rule))
        except IdempotencyConflict:
            return
        assert again == first_id, "a reused idempotency key created a second payment"

    def test_same_key_never_refunds_twice(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        h.require(Feature.REFUND)
        rule = h.rule()
        amount = typical_amount(rule)
        payment_id = captured_payment(h, amount)
        request = (
            RefundRequest(payment_id, half(rule, amount))
            if h.supports(Feature.PARTIAL_REFUND)
            else RefundRequest(payment_id)
        )
        key = new_key()
        first = h.manager.refund(h.gateway, request, idempotency_key=key)
        second = h.manager.refund(h.gateway, request, idempotency_key=key)
        assert second.id == first.id
        assert second.amount == first.amount
        if h.supports(Feature.PAYMENT_STATUS):
            assert h.manager.payment_status(h.gateway, payment_id).amount_refunded == first.amount

    def test_concurrent_retries_with_one_key_refund_once(self, conformance_harness: ConformanceHarness) -> None:
        """Retries racing each other (a client timeout, a second worker) still refund once."""
        h = conformance_harness
        h.require(Feature.REFUND, Feature.PAYMENT_STATUS)
        amount = typical_amount(h.rule())
        payment_id = captured_payment(h, amount)
        key = new_key()

        def attempt() -> str | GatewayError:
            try:
                return h.manager.refund(h.gateway, RefundRequest(payment_id), idempotency_key=key).id
            except GatewayError as exc:  # e.g. the provider's "request in progress" for the same key
                return exc

        with ThreadPoolExecutor(max_workers=4) as pool:
            outcomes = list(pool.map(lambda _: attempt(), range(4)))
        refund_ids = {o for o in outcomes if isinstance(o, str)}
        errors = [o for o in outcomes if isinstance(o, GatewayError)]
        assert len(refund_ids) <= 1, f"one key made {len(refund_ids)} refunds"
        assert all(isinstance(e, IdempotencyConflict) or e.retryable for e in errors), errors
        if not refund_ids:  # every attempt was told to retry: the retry still refunds once
            refund_ids.add(h.manager.refund(h.gateway, RefundRequest(payment_id), idempotency_key=key).id)
        assert h.manager.payment_status(h.gateway, payment_id).amount_refunded == amount

    def test_operation_id_retry_is_one_operation(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        h.require(Feature.REFUND, Feature.PAYMENT_STATUS)
        amount = typical_amount(h.rule())
        payment_id = captured_payment(h, amount)
        operation = f"refund-order-{uuid.uuid4().hex[:8]}"
        first = h.manager.refund(h.gateway, RefundRequest(payment_id), operation_id=operation)
        second = h.manager.refund(h.gateway, RefundRequest(payment_id), operation_id=operation)
        assert second.id == first.id
        assert h.manager.payment_status(h.gateway, payment_id).amount_refunded == amount


class StatusConformance:
    """Payment status (``PAYMENT_STATUS``)."""

    def test_unknown_id_is_not_found(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        h.require(Feature.PAYMENT_STATUS)
        with pytest.raises(NotFound):
            h.manager.payment_status(h.gateway, f"conf_missing_{uuid.uuid4().hex[:12]}")


class WebhookConformance:
    """Webhooks (``WEBHOOKS``) are verified before they are believed."""

    def _sign(self, h: ConformanceHarness) -> SignWebhook:
        h.require(Feature.WEBHOOKS)
        return need(h.signed_webhook, "signed_webhook", Feature.WEBHOOKS)

    def test_genuine_webhook_is_parsed(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        delivery = self._sign(h)()
        event = h.manager.parse_webhook(h.gateway, delivery.headers, delivery.body)
        assert isinstance(event, WebhookEvent)
        assert event.gateway == h.gateway
        assert event.id
        assert event.provider_type
        again = h.manager.parse_webhook(h.gateway, delivery.headers, delivery.body)
        assert (again.gateway, again.id) == (event.gateway, event.id), "a redelivery has another dedupe key"

    def test_tampered_body_is_rejected(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        delivery = self._sign(h)()
        with pytest.raises(WebhookVerificationFailed):
            h.manager.parse_webhook(h.gateway, delivery.headers, tamper(delivery.body))

    def test_wrong_secret_is_rejected(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        delivery = self._sign(h)(secret=WRONG_WEBHOOK_SECRET)
        with pytest.raises(WebhookVerificationFailed):
            h.manager.parse_webhook(h.gateway, delivery.headers, delivery.body)

    def test_stale_timestamp_is_rejected(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        sign = self._sign(h)
        for timestamp in (now() - STALE_SECONDS, now() + STALE_SECONDS):
            delivery = sign(timestamp=timestamp)
            with pytest.raises(WebhookVerificationFailed):
                h.manager.parse_webhook(h.gateway, delivery.headers, delivery.body)

    def test_missing_signature_is_rejected(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        delivery = self._sign(h)()
        with pytest.raises(WebhookVerificationFailed):
            h.manager.parse_webhook(h.gateway, {"Content-Type": "application/json"}, delivery.body)


class ErrorConformance:
    """Only the core's exception types escape, mapped by the plugin (not the manager's safety net)."""

    def test_failures_are_mapped_to_core_errors(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        missing = f"conf_missing_{uuid.uuid4().hex[:12]}"
        attempts: list[tuple[Feature, str, Callable[[], object]]] = [
            (Feature.PAYMENT_STATUS, "status of an unknown id", lambda: h.manager.payment_status(h.gateway, missing)),
            (Feature.REFUND, "refund of an unknown id", lambda: h.manager.refund(h.gateway, RefundRequest(missing), idempotency_key=new_key())),
            (Feature.AUTHORIZE_CAPTURE, "capture of an unknown id", lambda: h.manager.capture(h.gateway, CaptureRequest(missing), idempotency_key=new_key())),
            (Feature.VOID, "void of an unknown id", lambda: h.manager.void(h.gateway, VoidRequest(missing), idempotency_key=new_key())),
            (Feature.WEBHOOKS, "an unsigned non-JSON webhook", lambda: h.manager.parse_webhook(h.gateway, {}, b"\xff not json")),
        ]  # fmt: skip
        problems: list[str] = []
        for feature, what, call in attempts:
            if not h.supports(feature):
                continue
            try:
                call()
            except GatewayError as exc:
                if unmapped(exc):
                    problems.append(f"{what}: the plugin let {type(exc.__cause__).__name__} escape unmapped")
                elif exc.gateway != h.gateway:
                    problems.append(f"{what}: {type(exc).__name__} names gateway {exc.gateway!r}")
            except Exception as exc:  # the manager should make this impossible; report it plainly
                problems.append(f"{what}: {type(exc).__name__} escaped the manager")
            else:
                problems.append(f"{what}: no error was raised")
        assert problems == []

    def test_unknown_ids_are_not_found_or_invalid(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        h.require(Feature.REFUND)
        with pytest.raises((NotFound, InvalidRequest)):
            h.manager.refund(
                h.gateway, RefundRequest(f"conf_missing_{uuid.uuid4().hex[:12]}"), idempotency_key=new_key()
            )


class SecretsConformance:
    """No secret the gateway was configured with appears in a log line, an error or a result."""

    def test_no_secret_in_logs_errors_or_results(
        self, conformance_harness: ConformanceHarness, caplog: pytest.LogCaptureFixture
    ) -> None:
        h = conformance_harness
        secrets = [s for s in h.secrets if s]
        if not secrets:
            pytest.skip("the harness names no secrets")
        texts: list[str] = []
        caplog.set_level(logging.DEBUG)
        with structlog.testing.capture_logs() as logs:
            for step in self._steps(h):
                try:
                    texts.append(repr(step()))
                except GatewayError as exc:
                    texts.extend([str(exc), repr(exc), repr(exc.__cause__), str(exc.__cause__)])
        texts.extend(repr(entry) for entry in logs)
        texts.extend(f"{record.getMessage()} {record.args!r} {record.__dict__!r}" for record in caplog.records)
        texts.append(repr(h.info))
        assert logs, "no log line was captured: the scenario did not run"
        leaks = [f"secret #{i} in: {text[:200]}" for i, s in enumerate(secrets) for text in texts if s in text]
        assert leaks == []

    @staticmethod
    def _steps(h: ConformanceHarness) -> Iterator[Callable[[], Any]]:
        """A short scenario of successes and failures across the declared features."""
        rule = h.rule()
        amount = typical_amount(rule)
        missing = f"conf_missing_{uuid.uuid4().hex[:12]}"
        yield lambda: charge(h, amount)
        yield lambda: charge(h, rule.effective_minimum - Money.from_minor(1, rule.code))
        if h.supports(Feature.REFUND):
            yield lambda: h.manager.refund(
                h.gateway, RefundRequest(captured_payment(h, amount)), idempotency_key=new_key()
            )
            yield lambda: h.manager.refund(h.gateway, RefundRequest(missing), idempotency_key=new_key())
        if h.supports(Feature.PAYMENT_STATUS):
            yield lambda: h.manager.payment_status(h.gateway, missing)
        if h.supports(Feature.WEBHOOKS) and h.signed_webhook is not None:
            sign = h.signed_webhook
            yield lambda: h.manager.parse_webhook(h.gateway, *_fields(sign()))
            yield lambda: h.manager.parse_webhook(h.gateway, *_fields(sign(secret=WRONG_WEBHOOK_SECRET)))
            yield lambda: h.manager.parse_webhook(h.gateway, {}, b"{}")


def _fields(delivery: SignedWebhook) -> tuple[Mapping[str, str], bytes]:
    return delivery.headers, delivery.body


class GatewayConformance(
    MetadataConformance,
    MoneyConformance,
    CapabilityConformance,
    CheckoutConformance,
    AuthorizeCaptureConformance,
    VoidConformance,
    RefundConformance,
    IdempotencyConformance,
    StatusConformance,
    WebhookConformance,
    ErrorConformance,
    SecretsConformance,
):
    """The whole suite. Subclass it as ``Test...`` and override the ``conformance_harness`` fixture."""
