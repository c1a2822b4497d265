"""The conformance suite: behavioural tests every provider plugin runs against itself.

Modelled on SQLAlchemy's dialect suite and fsspec's ``tests/abstract``: the same tests run against
every implementation, switched by what the implementation *declares*. A test for a feature the
gateway does not declare is skipped with the reason; a feature that is declared and not honoured
fails. The fake gateway, the Stripe and PayPal plugins and ``examples/example_gateway`` are its
users.

Use it from the plugin's own tests with a few lines::

    import pytest
    from gateway_core import DeploymentConfig, GatewayManager
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
                recorded_amount=my_stand_in.recorded_amount,
                provider_objects=my_stand_in.object_count,
                second_worker=lambda: build_another_manager(my_stand_in.url),
                pay=lambda session: my_stand_in.pay(session.id),
                payment_method="tok_test_ok",
                signed_webhook=my_stand_in.signed_webhook,  # (secret=, timestamp=, payment_id=)
            )

The classes here are named ``*Conformance`` (never ``Test*``), so pytest collects them only
through the subclass a plugin writes. :class:`GatewayConformance` is all of them; a plugin may
instead subclass a few (``class TestRefunds(RefundConformance)``). Every test takes the
``conformance_harness`` fixture, which the plugin defines (in its test class, as above, or in a
``conftest.py``); it should give a fresh stand-in (or at least a fresh manager) per test.

Two views of every operation are compared: what the *plugin* reports (the result objects) and
what the *provider* recorded (read by the harness from the stand-in or the cassette, never
through the plugin). A plugin whose mistakes cancel out on its own round trip -- JPY sent times
100 and divided back, idempotency kept in a dictionary of its own instead of sent -- passes the
first view and fails the second.

What "before any request is sent" means here: ``harness.requests_sent()`` (a count of what
reached the provider or its stand-in) does not change across the refused call.
"""

from __future__ import annotations

import inspect
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import attrs
import pytest
import structlog.testing

from gateway_core.capabilities import FEATURE_HOOKS, Capabilities, CurrencyRule, Feature
from gateway_core.errors import (
    AmountOutOfRange,
    AuthenticationFailed,
    CapabilityNotSupported,
    GatewayError,
    GatewayUnavailable,
    IdempotencyConflict,
    InvalidAmount,
    InvalidRequest,
    NotFound,
    OutcomeUnknown,
    PaymentDeclined,
    RateLimited,
    UnsupportedCurrency,
    WebhookVerificationFailed,
)
from gateway_core.manager import GatewayInfo, GatewayManager
from gateway_core.models import (
    Authorization,
    AuthorizeRequest,
    CaptureRequest,
    CheckoutRequest,
    CheckoutSession,
    CheckoutStatus,
    EventType,
    OperationContext,
    PaymentState,
    RefundRequest,
    VoidRequest,
    WebhookEvent,
)
from gateway_core.money import Money, all_currencies, currency
from gateway_core.testing.recording import SECRET_PATTERNS

__all__ = [
    "TRANSPORT_FAULTS",
    "AuthorizeCaptureConformance",
    "CapabilityConformance",
    "CheckoutConformance",
    "ConformanceHarness",
    "ErrorConformance",
    "GatewayConformance",
    "IdempotencyConformance",
    "LifecycleConformance",
    "MetadataConformance",
    "MoneyConformance",
    "ReadRecordedAmount",
    "RecordedAmount",
    "RefundConformance",
    "SecretsConformance",
    "ShortAnswer",
    "SignWebhook",
    "SignedWebhook",
    "StatusConformance",
    "TransportFault",
    "VoidConformance",
    "WebhookConformance",
    "new_key",
]


#: How far in the past (and future) a "stale" webhook timestamp is: far outside any tolerance.
STALE_SECONDS = 24 * 60 * 60

#: How far (seconds) a parsed webhook's ``occurred_at`` may lie before the test began or after it
#: ended: providers stamp events in whole seconds, and the event is made while the test runs.
OCCURRED_AT_SLACK = 60

#: The ``AuthorizeRequest.return_url`` the suite sends (a host's page; nothing is ever sent to it).
RETURN_URL = "https://conformance.example/orders/3ds-done"

#: What the suite signs a webhook with to check that a wrong secret is refused.
WRONG_WEBHOOK_SECRET = "whsec_conformance_wrong_secret_0000"  # noqa: S105 (not a secret: a deliberately wrong one)

#: The transport faults a harness's ``transport_fault`` injects (see :class:`TransportFault`).
TRANSPORT_FAULTS: Mapping[str, str] = {
    "timeout": "the request reached the provider, which acted, but no answer came back in time",
    "refused": "the connection was refused: nothing was sent",
    "5xx": "the provider answered 500 (or 503) without acting",
    "429": "the provider answered 429 Too Many Requests without acting",
}

#: What each fault must reach the host as, for an operation that changes money and for a read.
#: (:class:`OutcomeUnknown` is a :class:`GatewayUnavailable`: a plugin that cannot tell a refused
#: connection from a lost answer may say "unknown" for both; that is safe, only less precise.)
MUTATING_FAULT_ERRORS: Mapping[str, type[GatewayError]] = {
    "timeout": OutcomeUnknown,
    "refused": GatewayUnavailable,
    "5xx": GatewayUnavailable,
    "429": RateLimited,
}
READ_FAULT_ERRORS: Mapping[str, type[GatewayError]] = {
    "timeout": GatewayUnavailable,
    "refused": GatewayUnavailable,
    "5xx": GatewayUnavailable,
    "429": RateLimited,
}

T = TypeVar("T")

SUCCESS_URL = "https://host.example/paid"
CANCEL_URL = "https://host.example/cancelled"


@attrs.frozen
class SignedWebhook:
    """A webhook exactly as the provider would deliver it: headers and raw body bytes."""

    headers: Mapping[str, str]
    body: bytes


class SignWebhook(Protocol):
    """Return a webhook signed as the provider signs it.

    ``payment_id``: the provider's webhook saying that this payment (one the suite made and
    captured, by ``pay`` or by authorize and capture) *succeeded*, as the provider sends it about
    that payment -- its own object (the stand-in's event, or the payment read back from the
    provider), not one the harness makes up, and created now. The suite parses it and checks what
    the plugin reads from it: ``EventType.PAYMENT_SUCCEEDED``, this ``payment_id``, the payment's
    amount and an ``occurred_at`` within :data:`OCCURRED_AT_SLACK` of the test.
    ``payment_id=None``: any representative genuine event.

    ``secret`` replaces the configured webhook secret (to sign with a *wrong* one); ``timestamp``
    (unix seconds) replaces "now" (to make a *stale* one). Both ``None``: a genuine delivery.

    A harness written before ``payment_id`` existed keeps working for the verification tests;
    ``test_genuine_webhook_is_parsed`` fails for it, saying to accept ``payment_id``.
    """

    def __call__(
        self, *, secret: str | None = None, timestamp: int | None = None, payment_id: str | None = None
    ) -> SignedWebhook: ...


@attrs.frozen
class RecordedAmount:
    """An amount as the *provider* recorded it: integer minor units of the provider's own table.

    ``currency`` is the provider's code for it (compared case-insensitively: Stripe says ``jpy``).
    """

    minor: int
    currency: str


class ReadRecordedAmount(Protocol):
    """Read what the provider recorded for an object the plugin created, without the plugin.

    ``operation`` is ``"checkout"`` (``object_id`` is a :class:`CheckoutSession` id) or
    ``"authorize"`` (an :class:`~gateway_core.models.Authorization` id). Read it from the stand-in's
    state or admin endpoint, or from the response in the cassette; convert the provider's value to
    minor units with the provider's documented table (PayPal's ``"500"`` JPY is 500, its
    ``"5.00"`` EUR is 500), never with the plugin's own metadata.
    """

    def __call__(self, operation: str, object_id: str) -> RecordedAmount: ...


class TransportFault(Protocol):
    """``transport_fault(kind, operation)``: a context manager giving a manager whose requests fail.

    ``kind`` is one of :data:`TRANSPORT_FAULTS`; ``operation`` is the one operation the suite runs
    inside the block (``"checkout"``, ``"authorize"`` or ``"payment_status"``). Inject the fault
    where your tests inject failures (the HTTP client's seam, the stand-in's fault endpoint, a
    closed port for ``refused``) on *every* attempt of that operation, the plugin's own retries
    included, and yield a manager for the gateway under test on the same provider (the harness's
    own or a fresh one). Return ``None`` when the stand-in cannot fake this kind for this
    operation: that case is skipped with the reason.
    """

    def __call__(self, kind: str, operation: str) -> AbstractContextManager[GatewayManager] | None: ...


class ShortAnswer(Protocol):
    """``short_answer(operation)``: a context manager giving a manager whose next answer is cut short.

    Inside the block the suite runs ``operation`` (``"refund"``) once. Let the request reach the
    provider, which acts (the refund is made), and let the 2xx answer reach the plugin as the
    provider's JSON object *without its* ``id`` field, where your tests rewrite answers (the
    HTTP client's seam, the stand-in). What the provider stored for the idempotency key stays
    whole. Return ``None`` when the stand-in cannot do it: the test is then skipped.
    """

    def __call__(self, operation: str) -> AbstractContextManager[GatewayManager] | None: ...


#: A secret the harness knows now, or a callable giving secrets minted while the scenario runs.
SecretSource = str | Callable[[], Iterable[str]]


@attrs.frozen
class ConformanceHarness:
    """How the suite reaches the gateway under test and its stand-in. A plugin builds one per test.

    Attributes:
        manager: a :class:`GatewayManager` with the gateway under test configured.
        gateway: the configured name of that gateway.
        requests_sent: how many requests have reached the provider (or its stand-in) so far.
        secrets: every secret value the gateway was configured with; none may appear in a log
            line, an exception message or a result's ``repr``. An item may be a callable returning
            secrets the provider mints at runtime (an OAuth access token): it is called after the
            scenario has run.
        recorded_amount: see :class:`ReadRecordedAmount` (needed by the wire round-trip test).
        provider_objects: how many objects (checkouts, payments, captures, refunds...) the
            provider holds so far, counted on the provider's side (needed by the idempotency and
            fault tests: "one object at the provider" is observed, not inferred).
        second_worker: build another manager for the same gateway on the same provider, sharing
            nothing in-process with ``manager`` that a second worker process would not share
            (a fresh gateway object, client and caches). The idempotency tests retry through it.
        pay: drive a hosted checkout to *captured* on the stand-in, as the payer would, and return
            the provider's payment id (needed when ``HOSTED_CHECKOUT`` is declared).
        payment_method: a payment-method token the stand-in authorizes (needed when
            ``AUTHORIZE_CAPTURE`` is declared).
        signed_webhook: see :class:`SignWebhook` (needed when ``WEBHOOKS`` is declared).
        currency: the currency ordinary tests charge in (default: USD, EUR or GBP if offered,
            else the first offered).
        round_trip_currencies: the currencies the wire round-trip test sends requests for
            (default: every offered currency; limit it when each request is a recorded cassette).
        transport_fault: optional, see :class:`TransportFault`; without it the fault tests skip.
        decline: optional; arrange for the next authorization to be declined by the provider and
            return the payment method to authorize with (``lambda: "pm_card_chargeDeclined"``).
        wrong_credentials: optional; build a manager for the gateway whose credentials the
            provider refuses (a revoked API key, a wrong client secret).
        short_answer: optional, see :class:`ShortAnswer`; without it that test skips.
    """

    manager: GatewayManager
    gateway: str
    requests_sent: Callable[[], int]
    secrets: Sequence[SecretSource] = ()
    recorded_amount: ReadRecordedAmount | None = None
    provider_objects: Callable[[], int] | None = None
    second_worker: Callable[[], GatewayManager] | None = None
    pay: Callable[[CheckoutSession], str] | None = None
    payment_method: str | None = None
    signed_webhook: SignWebhook | None = None
    currency: str | None = None
    round_trip_currencies: Sequence[str] | None = None
    transport_fault: TransportFault | None = None
    decline: Callable[[], str] | None = None
    wrong_credentials: Callable[[], GatewayManager] | None = None
    short_answer: ShortAnswer | None = None

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

    def known_secrets(self) -> list[str]:
        """Every secret: the fixed ones and, called now, those the callables give."""
        found: list[str] = []
        for source in self.secrets:
            found.extend([source] if isinstance(source, str) else list(source()))
        return [s for s in found if s]


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


def checkout_request(amount: Money, **kwargs: Any) -> CheckoutRequest:
    return CheckoutRequest.single(
        "Conformance item", amount, SUCCESS_URL, CANCEL_URL, reference=f"conf-{uuid.uuid4().hex[:12]}", **kwargs
    )


@attrs.frozen
class Started:
    """A payment the suite started: how (``"checkout"`` or ``"authorize"``), its id and reported amount."""

    operation: str
    id: str
    amount: Money


PaymentRequest = CheckoutRequest | AuthorizeRequest


def payment_request(h: ConformanceHarness, amount: Money, payment_method: str | None = None) -> PaymentRequest:
    """The request that starts a payment of ``amount`` the way the gateway allows (checkout, else authorize)."""
    if h.supports(Feature.HOSTED_CHECKOUT):
        return checkout_request(amount)
    if h.supports(Feature.AUTHORIZE_CAPTURE):
        return AuthorizeRequest(
            amount, payment_method or need(h.payment_method, "payment_method", Feature.AUTHORIZE_CAPTURE)
        )
    pytest.fail(f"gateway {h.gateway!r} declares neither hosted_checkout nor authorize_capture")


def operation_of(request: PaymentRequest) -> str:
    return "checkout" if isinstance(request, CheckoutRequest) else "authorize"


def start(
    h: ConformanceHarness, request: PaymentRequest, key: str, manager: GatewayManager | None = None
) -> CheckoutSession | Authorization:
    """Send a payment request through ``manager`` (default: the harness's); the plugin's whole result."""
    m = manager or h.manager
    if isinstance(request, CheckoutRequest):
        return m.create_checkout(h.gateway, request, idempotency_key=key)
    return m.authorize(h.gateway, request, idempotency_key=key)


def send(h: ConformanceHarness, request: PaymentRequest, key: str, manager: GatewayManager | None = None) -> Started:
    """Send a payment request through ``manager`` (default: the harness's) with idempotency key ``key``."""
    result = start(h, request, key, manager)
    return Started(operation_of(request), result.id, result.amount)


def charge(h: ConformanceHarness, amount: Money) -> Money:
    """Start a payment of ``amount`` the way the gateway allows (checkout, else authorize).

    Returns the amount the provider reported back.
    """
    return send(h, payment_request(h, amount), new_key()).amount


def need(value: T | None, attribute: str, feature: Feature) -> T:
    """The harness attribute a declared feature needs; fail (not skip) when it is missing."""
    if value is None:
        pytest.fail(
            f"the gateway declares {feature} but the harness gives no {attribute}, so the suite cannot check it"
        )
    return value


def need_seam(value: T | None, attribute: str, what: str) -> T:
    """A harness attribute every gateway needs for a check; fail (not skip) when it is missing."""
    if value is None:
        pytest.fail(f"the harness gives no {attribute}, so the suite cannot check {what}")
    return value


def optional_seam(value: T | None, attribute: str) -> T:
    """An optional harness seam: skip the calling test, with the reason, when it is not given."""
    if value is None:
        pytest.skip(f"the harness gives no {attribute}")
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


def some_refund(h: ConformanceHarness) -> RefundRequest:
    """A refund of a fresh captured payment of a typical amount: of half of it where partial
    refunds are declared, else of all of it (``request.payment_id`` names the payment)."""
    rule = h.rule()
    amount = typical_amount(rule)
    payment_id = captured_payment(h, amount)
    if h.supports(Feature.PARTIAL_REFUND):
        return RefundRequest(payment_id, half(rule, amount))
    return RefundRequest(payment_id)


def assert_refunded(h: ConformanceHarness, payment_id: str, expected: Money, what: str) -> None:
    """The provider reports exactly ``expected`` refunded on ``payment_id`` (``what`` names the scenario)."""
    refunded = h.manager.payment_status(h.gateway, payment_id).amount_refunded
    assert refunded == expected, f"{what} refunded {refunded}"


def authorization(h: ConformanceHarness, amount: Money) -> str:
    """Authorize ``amount`` (``AUTHORIZE_CAPTURE`` is declared); return the authorization id."""
    method = need(h.payment_method, "payment_method", Feature.AUTHORIZE_CAPTURE)
    auth = h.manager.authorize(h.gateway, AuthorizeRequest(amount, method), idempotency_key=new_key())
    assert auth.state is PaymentState.AUTHORIZED, f"a fresh authorization is {auth.state}, expected authorized"
    return auth.id


def unmapped(exc: GatewayError) -> bool:
    """Whether ``exc`` is the manager's safety net around an exception the plugin did not map."""
    return exc.unmapped


def leaks(h: ConformanceHarness, texts: Iterable[str]) -> list[str]:
    """Where a configured secret, or anything shaped like one (:data:`~gateway_core.testing.recording.SECRET_PATTERNS`), appears."""
    secrets = h.known_secrets()
    found: list[str] = []
    for text in texts:
        found.extend(f"secret #{i} in: {text[:200]}" for i, s in enumerate(secrets) if s in text)
        found.extend(f"a value shaped like {p.pattern!r} in: {text[:200]}" for p in SECRET_PATTERNS if p.search(text))
    return found


def escaped_problems(
    h: ConformanceHarness, exc: BaseException, expected: type[GatewayError], what: str, *, retryable: bool | None
) -> list[str]:
    """Why ``exc``, raised by ``what``, is not the mapped core error the contract asks for.

    ``retryable=None`` accepts either, but only an :class:`OutcomeUnknown` may say "not retryable"
    (a provider that keeps a 5xx answer for the idempotency key and replays it to a retry, as
    Stripe does: the host must read the payment's status instead).
    """
    if not isinstance(exc, GatewayError):
        return [f"{what}: {type(exc).__name__} escaped the manager"]
    problems: list[str] = []
    if unmapped(exc):
        problems.append(f"{what}: the plugin let {type(exc.__cause__).__name__} escape unmapped")
    elif not isinstance(exc, expected):
        problems.append(f"{what}: raised {type(exc).__name__}, expected {expected.__name__}")
    if exc.gateway != h.gateway:
        problems.append(f"{what}: {type(exc).__name__} names gateway {exc.gateway!r}")
    if retryable is None and not exc.retryable and not isinstance(exc, OutcomeUnknown):
        problems.append(f"{what}: {type(exc).__name__} has retryable=False; only OutcomeUnknown may say so")
    elif retryable is not None and exc.retryable is not retryable:
        problems.append(f"{what}: {type(exc).__name__} has retryable={exc.retryable}, expected {retryable}")
    problems.extend(f"{what}: {leak}" for leak in leaks(h, [str(exc), repr(exc)]))
    return problems


@contextmanager
def refused_before_sending(h: ConformanceHarness, expected: type[GatewayError]) -> Iterator[None]:
    """Assert the block raises ``expected`` and that no request reached the provider."""
    before = h.requests_sent()
    with pytest.raises(expected):
        yield
    assert h.requests_sent() == before, f"{expected.__name__} was raised only after a request reached the provider"


#: A run of hex (a SHA-256 HMAC is 64 digits) or of base64 with digits and both cases: what a
#: signature or digest looks like in an error message.
_DIGEST = re.compile(r"\b[0-9a-fA-F]{32,}\b|[A-Za-z0-9+/_-]{40,}={0,2}")


def _looks_like_a_digest(run: str) -> bool:
    if re.fullmatch(r"[0-9a-fA-F]+", run):
        return True
    return any(c.isdigit() for c in run) and any(c.isupper() for c in run) and any(c.islower() for c in run)


def rejection_problems(h: ConformanceHarness, exc: GatewayError, delivery: SignedWebhook, what: str) -> list[str]:
    """Why a webhook's rejection is not what the contract asks for.

    A rejection names the gateway and is the plugin's own :class:`WebhookVerificationFailed`.
    Its message shows no secret, and no digest that the delivery did not bring. A plugin that
    says "expected signature 5257a8..., got ..." hands whoever sent a forged body the signature
    that would have made it pass, wherever the message ends up (a 400 response, a log line).
    """
    problems: list[str] = []
    if unmapped(exc):
        problems.append(f"{what}: the plugin let {type(exc.__cause__).__name__} escape unmapped")
    if exc.gateway != h.gateway:
        problems.append(f"{what}: {type(exc).__name__} names gateway {exc.gateway!r}")
    texts = [str(exc), repr(exc)]
    problems.extend(f"{what}: {leak}" for leak in leaks(h, texts))
    given = " ".join([*delivery.headers.keys(), *delivery.headers.values(), delivery.body.decode("utf-8", "replace")])
    for text in texts:
        for run in _DIGEST.findall(text):
            if _looks_like_a_digest(run) and run not in given:
                problems.append(
                    f"{what}: the error shows {run[:12]}..., a digest the delivery did not contain "
                    f"(an expected signature?): {text[:200]}"
                )
                break
    return problems


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
    """The declared capability metadata is valid and self-consistent.

    Some of these checks repeat what already refuses bad metadata at load time, so that a
    plugin's own suite names the problem rather than failing to build a manager:

    * ``test_declared_metadata_has_no_problems`` repeats :meth:`GatewayManager.__init__`, which
      refuses a provider whose :meth:`Capabilities.problems` is not empty (``PluginLoadError``);
    * in ``test_every_currency_has_exponent_and_consistent_bounds``, "positive", "minimum at most
      maximum" and "on the wire step" repeat :class:`CurrencyRule`'s constructor
      (``ConfigurationError``); the ISO 4217 code and "no finer than ISO 4217" are checked only here;
    * ``test_declared_features_have_their_hooks`` repeats the manager's check when it builds a
      gateway object ("declares X but its gateway object lacks Y");
    * ``test_effective_capabilities_only_narrow_the_declared`` repeats
      :meth:`Capabilities.widening`, which the manager applies to ``ProviderDefinition.configure``;
      the narrowing by the metadata hooks is checked only here;
    * in ``test_every_figure_names_a_dated_source``, "some source" repeats ``problems()``; a
      description, a reference and a date not in the future are checked only here.
    """

    def test_declared_metadata_has_no_problems(self, conformance_harness: ConformanceHarness) -> None:
        declared = conformance_harness.info.declared
        problems = declared.problems()
        assert not problems, f"the declared capabilities have problems: {'; '.join(problems)}"

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
        # Configuration and ProviderDefinition.configure may drop currencies or features (a Stripe
        # gateway without a connected account offers no application fee), never add any.
        wider = info.capabilities.widening(info.declared)
        assert not wider, f"the configured gateway offers more than its provider declares: {'; '.join(wider)}"
        assert set(info.capabilities.currencies) <= set(info.declared.currencies)
        assert info.capabilities.features <= info.declared.features
        for code, rule in info.capabilities.currencies.items():
            declared = info.declared.currencies[code]
            assert rule.effective_minimum >= declared.effective_minimum, f"{code}: minimum was lowered"
            assert (rule.exponent, rule.step) == (declared.exponent, declared.step), f"{code}: wire format changed"


class MoneyConformance:
    """Amounts are exact on the wire, and bad amounts are refused before anything is sent."""

    def test_amounts_round_trip_through_the_wire_format(self, conformance_harness: ConformanceHarness) -> None:
        """Each currency's minimum, a typical amount and its maximum, as the plugin and as the provider see them.

        The plugin's result must report what was sent, and the provider must have recorded the
        metadata's ``to_minor`` of it: a plugin that sends JPY times 100 and divides the answer
        back reports the right amount and still charged a hundred times too much.
        """
        h = conformance_harness
        read = need_seam(h.recorded_amount, "recorded_amount", "what the provider recorded for an amount")
        offered = h.capabilities.currencies
        codes = list(h.round_trip_currencies) if h.round_trip_currencies is not None else list(offered)
        assert codes, "no currency to round-trip"
        mismatches: list[str] = []
        for code in codes:
            rule = h.capabilities.require_rule(code, gateway=h.gateway)
            amounts = [rule.effective_minimum, typical_amount(rule)] + ([rule.maximum] if rule.maximum else [])
            for amount in dict.fromkeys(amounts):  # the typical amount is the maximum when that is small
                expected = rule.wire.to_minor(amount)
                if rule.wire.from_minor(expected) != amount:
                    mismatches.append(f"{amount} does not survive to_minor/from_minor")
                started = send(h, payment_request(h, amount), new_key())
                if started.amount != amount:
                    mismatches.append(f"sent {amount}, the plugin reported {started.amount}")
                recorded = read(started.operation, started.id)
                if (recorded.minor, recorded.currency.upper()) != (expected, code):
                    mismatches.append(
                        f"sent {amount}: the provider recorded {recorded.minor} {recorded.currency}, but the "
                        f"metadata's wire format says {expected} {code}"
                    )
        assert not mismatches, "amounts do not round-trip: " + "; ".join(mismatches)

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

    def test_requested_expiry_is_honoured_or_refused_before_sending(
        self, conformance_harness: ConformanceHarness
    ) -> None:
        """A declared ``checkout_expiry`` window is honoured; without one, a requested expiry is refused."""
        h = conformance_harness
        h.require(Feature.HOSTED_CHECKOUT)
        amount = typical_amount(h.rule())
        current = h.manager.clock()
        window = h.capabilities.checkout_expiry
        if window is None:
            with refused_before_sending(h, CapabilityNotSupported):
                h.manager.create_checkout(
                    h.gateway,
                    checkout_request(amount, expires_at=current + timedelta(hours=1)),
                    idempotency_key=new_key(),
                )
            return
        wanted = window.fit(current + (window.shortest + window.longest) / 2, current)
        session = h.manager.create_checkout(
            h.gateway, checkout_request(amount, expires_at=wanted), idempotency_key=new_key()
        )
        assert session.expires_at is not None, "the checkout reports no expiry although one was requested"
        assert abs(session.expires_at - wanted) <= timedelta(seconds=1), (
            f"asked for a checkout expiring at {wanted.isoformat()}, the provider set {session.expires_at.isoformat()}"
        )
        with refused_before_sending(h, InvalidRequest):
            h.manager.create_checkout(
                h.gateway,
                checkout_request(amount, expires_at=current + window.longest + timedelta(hours=1)),
                idempotency_key=new_key(),
            )


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

    def test_a_return_url_changes_nothing_when_no_authentication_is_needed(
        self, conformance_harness: ConformanceHarness
    ) -> None:
        """``AuthorizeRequest.return_url`` is for a payer who must authenticate; the harness's payment
        method needs no authentication, so with one it is authorized and captured exactly as without.
        A plugin that passes the URL on must pass it the way its provider accepts it. (Whether a
        payer who must authenticate is sent back there is each plugin's own test: no harness seam
        makes a provider ask for authentication.)"""
        h = conformance_harness
        h.require(Feature.AUTHORIZE_CAPTURE)
        method = need(h.payment_method, "payment_method", Feature.AUTHORIZE_CAPTURE)
        amount = typical_amount(h.rule())
        request = AuthorizeRequest(amount, method, return_url=RETURN_URL)
        auth = h.manager.authorize(h.gateway, request, idempotency_key=new_key())
        assert auth.state is PaymentState.AUTHORIZED, f"with a return_url the authorization is {auth.state}"
        assert auth.amount == amount, f"with a return_url {amount} was authorized as {auth.amount}"
        capture = h.manager.capture(h.gateway, CaptureRequest(auth.id), idempotency_key=new_key())
        assert capture.amount == amount, f"with a return_url the capture took {capture.amount} of {amount}"

    def test_partial_capture_takes_only_the_part(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        h.require(Feature.PARTIAL_CAPTURE)
        rule = h.rule()
        amount = typical_amount(rule)
        part = half(rule, amount)
        auth_id = authorization(h, amount)
        capture = h.manager.capture(h.gateway, CaptureRequest(auth_id, part), idempotency_key=new_key())
        assert capture.amount == part, f"asked to capture {part} of {amount}, the plugin captured {capture.amount}"

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

    def test_refund_beyond_a_partial_capture_is_refused(self, conformance_harness: ConformanceHarness) -> None:
        """Authorize X, capture half: a refund of that half and one quantum more is refused and refunds nothing."""
        h = conformance_harness
        h.require(Feature.PARTIAL_CAPTURE, Feature.PARTIAL_REFUND)
        rule = h.rule()
        amount = typical_amount(rule)
        part = half(rule, amount)
        auth_id = authorization(h, amount)
        payment_id = h.manager.capture(h.gateway, CaptureRequest(auth_id, part), idempotency_key=new_key()).payment_id
        with pytest.raises(AmountOutOfRange):
            h.manager.refund(h.gateway, RefundRequest(payment_id, part + quantum(rule)), idempotency_key=new_key())
        if h.supports(Feature.PAYMENT_STATUS):
            status = h.manager.payment_status(h.gateway, payment_id)
            assert status.amount_captured == part, f"captured {part}, the provider reports {status.amount_captured}"
            assert status.amount_refunded == Money.zero(amount.currency), "a refused refund refunded something"
        refund = h.manager.refund(h.gateway, RefundRequest(payment_id, part), idempotency_key=new_key())
        assert refund.amount == part, "a refused refund changed what remains to refund"
        with pytest.raises(InvalidRequest):
            h.manager.refund(h.gateway, RefundRequest(payment_id, quantum(rule)), idempotency_key=new_key())

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

    def test_a_second_refund_is_refused_without_multiple_refunds(self, conformance_harness: ConformanceHarness) -> None:
        """Without ``MULTIPLE_REFUNDS`` a payment takes one refund: the gateway itself refuses a second.

        The core does not count a payment's refunds (it never sees the provider's state), so a
        gateway that declares ``PARTIAL_REFUND`` but not ``MULTIPLE_REFUNDS`` must refuse another
        refund of a payment already refunded in part -- of part of the rest, or of all of it --
        as an ``InvalidRequest``, refunding nothing more (see ``gateway_refund`` in hooks.md).
        """
        h = conformance_harness
        h.require(Feature.REFUND, Feature.PARTIAL_REFUND)
        if h.supports(Feature.MULTIPLE_REFUNDS):
            pytest.skip(
                f"gateway {h.gateway!r} declares multiple_refunds (test_multiple_refunds_never_exceed_the_capture)"
            )
        rule = h.rule()
        amount = typical_amount(rule)
        part = half(rule, amount)
        payment_id = captured_payment(h, amount)
        h.manager.refund(h.gateway, RefundRequest(payment_id, part), idempotency_key=new_key())
        for second, what in ((quantum(rule), f"a second refund of {quantum(rule)}"), (None, "a second full refund")):
            try:
                refund = h.manager.refund(h.gateway, RefundRequest(payment_id, second), idempotency_key=new_key())
            except InvalidRequest:
                continue
            pytest.fail(
                f"{what} after a partial refund of {part} was accepted ({refund.amount} refunded), but the gateway "
                "does not declare multiple_refunds: it must refuse it with InvalidRequest"
            )
        if h.supports(Feature.PAYMENT_STATUS):
            assert_refunded(h, payment_id, part, f"a partial refund of {part} and two refused ones")


class IdempotencyConformance:
    """The same idempotency key returns the same result and never acts twice."""

    def test_same_key_returns_the_same_checkout(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        h.require(Feature.HOSTED_CHECKOUT)
        request = checkout_request(typical_amount(h.rule()))
        key = new_key()
        first = h.manager.create_checkout(h.gateway, request, idempotency_key=key)
        second = h.manager.create_checkout(h.gateway, request, idempotency_key=key)
        assert second.id == first.id, "the same idempotency key returned another checkout"
        assert second.amount == first.amount

    def test_same_key_returns_the_same_authorization(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        h.require(Feature.AUTHORIZE_CAPTURE)
        method = need(h.payment_method, "payment_method", Feature.AUTHORIZE_CAPTURE)
        request = AuthorizeRequest(typical_amount(h.rule()), method)
        key = new_key()
        first = h.manager.authorize(h.gateway, request, idempotency_key=key)
        second = h.manager.authorize(h.gateway, request, idempotency_key=key)
        assert second.id == first.id, "the same idempotency key returned another authorization"

    def test_a_second_worker_retrying_a_checkout_gets_the_same_one(
        self, conformance_harness: ConformanceHarness
    ) -> None:
        h = conformance_harness
        h.require(Feature.HOSTED_CHECKOUT)
        request = checkout_request(typical_amount(h.rule()))
        key = new_key()
        first = h.manager.create_checkout(h.gateway, request, idempotency_key=key).id
        retried_by_a_second_worker(
            h, "checkout", first, lambda worker: worker.create_checkout(h.gateway, request, idempotency_key=key).id
        )

    def test_a_second_worker_retrying_an_authorization_gets_the_same_one(
        self, conformance_harness: ConformanceHarness
    ) -> None:
        h = conformance_harness
        h.require(Feature.AUTHORIZE_CAPTURE)
        method = need(h.payment_method, "payment_method", Feature.AUTHORIZE_CAPTURE)
        request = AuthorizeRequest(typical_amount(h.rule()), method)
        key = new_key()
        first = h.manager.authorize(h.gateway, request, idempotency_key=key).id
        retried_by_a_second_worker(
            h, "authorization", first, lambda worker: worker.authorize(h.gateway, request, idempotency_key=key).id
        )

    def test_a_second_worker_retrying_a_refund_refunds_once(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        h.require(Feature.REFUND)
        request = some_refund(h)
        key = new_key()
        first = h.manager.refund(h.gateway, request, idempotency_key=key)
        retried_by_a_second_worker(
            h, "refund", first.id, lambda worker: worker.refund(h.gateway, request, idempotency_key=key).id
        )
        if h.supports(Feature.PAYMENT_STATUS):
            assert_refunded(h, request.payment_id, first.amount, f"one refund of {first.amount} retried")

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
        request = some_refund(h)
        key = new_key()
        first = h.manager.refund(h.gateway, request, idempotency_key=key)
        second = h.manager.refund(h.gateway, request, idempotency_key=key)
        assert second.id == first.id, "the same idempotency key returned another refund"
        assert second.amount == first.amount
        if h.supports(Feature.PAYMENT_STATUS):
            assert_refunded(h, request.payment_id, first.amount, f"one refund of {first.amount} retried")

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
        wrong = [e for e in errors if not (isinstance(e, IdempotencyConflict) or e.retryable)]
        assert not wrong, (
            f"a racing retry with the same key failed with {type(wrong[0]).__name__} ({wrong[0]}): only "
            "IdempotencyConflict or a retryable error may answer a retry that is in flight"
        )
        if not refund_ids:  # every attempt was told to retry: the retry still refunds once
            refund_ids.add(h.manager.refund(h.gateway, RefundRequest(payment_id), idempotency_key=key).id)
        assert_refunded(h, payment_id, amount, f"racing retries of one refund of {amount}")

    def test_operation_id_retry_is_one_operation(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        h.require(Feature.REFUND, Feature.PAYMENT_STATUS)
        amount = typical_amount(h.rule())
        payment_id = captured_payment(h, amount)
        operation = f"refund-order-{uuid.uuid4().hex[:8]}"
        first = h.manager.refund(h.gateway, RefundRequest(payment_id), operation_id=operation)
        second = h.manager.refund(h.gateway, RefundRequest(payment_id), operation_id=operation)
        assert second.id == first.id, "the same operation id returned another refund"
        assert_refunded(h, payment_id, amount, f"one operation id's refund of {amount}")


def retried_by_a_second_worker(
    h: ConformanceHarness, what: str, first_id: str, retry: Callable[[GatewayManager], str]
) -> None:
    """Retry an operation with its key through a second worker: the provider must see it and act once."""
    count = need_seam(h.provider_objects, "provider_objects", "how many objects a retry made at the provider")
    worker = need_seam(h.second_worker, "second_worker", "a retry from another worker process")()
    assert worker is not h.manager, "second_worker must build a new manager, not return the harness's"
    objects, sent = count(), h.requests_sent()
    again = retry(worker)
    assert h.requests_sent() > sent, (
        f"the second worker's {what} retry never reached the provider: something in this process remembered "
        "the idempotency key, which a worker in another process would not"
    )
    assert again == first_id, (
        f"a second worker retrying the {what} with the same idempotency key got another one ({again!r}, "
        f"first {first_id!r}): the key did not reach the provider"
    )
    assert count() == objects, (
        f"the second worker's {what} retry made {count() - objects} more object(s) at the provider"
    )


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
        """The provider's webhook about a payment the suite made is read as that payment's success.

        Verification alone is not parsing: a plugin that maps every event to ``UNKNOWN``, drops the
        payment id or misreads the amount passes every rejection test and still tells the host
        nothing. So the suite makes a payment, captures it, asks the harness for the provider's
        webhook about it and compares what the plugin read with what the suite knows.
        """
        h = conformance_harness
        sign = takes_payment_id(self._sign(h))
        amount = typical_amount(h.rule())
        began = now() - OCCURRED_AT_SLACK
        payment_id = captured_payment(h, amount)
        delivery = sign(payment_id=payment_id)
        event = h.manager.parse_webhook(h.gateway, delivery.headers, delivery.body)
        ended = now() + OCCURRED_AT_SLACK
        assert isinstance(event, WebhookEvent)
        assert event.gateway == h.gateway
        assert event.id
        assert event.provider_type
        what = f"the provider's {event.provider_type!r} webhook about captured payment {payment_id!r}"
        problems: list[str] = []
        if event.type is not EventType.PAYMENT_SUCCEEDED:
            problems.append(f"{what} was read as {event.type}, expected {EventType.PAYMENT_SUCCEEDED}")
        if event.payment_id != payment_id:
            problems.append(f"{what} was read with payment_id {event.payment_id!r}")
        if event.amount != amount:
            problems.append(f"{what} was read with amount {event.amount}, the payment is {amount}")
        if event.occurred_at is None or event.occurred_at.tzinfo is None:
            problems.append(f"{what} was read with occurred_at {event.occurred_at!r}, not an aware datetime")
        elif not began <= event.occurred_at.timestamp() <= ended:
            problems.append(
                f"{what} was read with occurred_at {event.occurred_at.isoformat()}, outside the test's run "
                f"({datetime.fromtimestamp(began, UTC).isoformat()} .. {datetime.fromtimestamp(ended, UTC).isoformat()})"
            )
        assert not problems, "; ".join(problems)
        try:
            again = h.manager.parse_webhook(h.gateway, delivery.headers, delivery.body)
        except WebhookVerificationFailed:
            return  # the plugin refuses a replay of the very delivery it accepted: stricter, and fine
        assert (again.gateway, again.id) == (event.gateway, event.id), "a redelivery has another dedupe key"

    def _refused(self, h: ConformanceHarness, delivery: SignedWebhook, what: str) -> None:
        """``delivery`` is refused with a :class:`WebhookVerificationFailed` that gives nothing away."""
        try:
            h.manager.parse_webhook(h.gateway, delivery.headers, delivery.body)
        except WebhookVerificationFailed as exc:
            problems = rejection_problems(h, exc, delivery, what)
        except GatewayError as exc:  # a refusal of the wrong kind: say which, and what escaped unmapped
            escaped = f"; the plugin let {type(exc.__cause__).__name__} escape unmapped" if unmapped(exc) else ""
            problems = [f"{what}: refused with {type(exc).__name__}, not WebhookVerificationFailed{escaped}"]
        else:
            pytest.fail(f"DID NOT RAISE {WebhookVerificationFailed}: {what} was believed")
        assert not problems, "; ".join(problems)

    def test_tampered_body_is_rejected(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        delivery = self._sign(h)()
        self._refused(h, SignedWebhook(delivery.headers, tamper(delivery.body)), "a tampered webhook")

    def test_wrong_secret_is_rejected(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        self._refused(h, self._sign(h)(secret=WRONG_WEBHOOK_SECRET), "a webhook signed with another secret")

    def test_stale_timestamp_is_rejected(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        sign = self._sign(h)
        for timestamp in (now() - STALE_SECONDS, now() + STALE_SECONDS):
            self._refused(h, sign(timestamp=timestamp), f"a webhook signed at {timestamp} (a day off)")

    def test_missing_signature_is_rejected(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        delivery = self._sign(h)()
        unsigned = SignedWebhook({"Content-Type": "application/json"}, delivery.body)
        self._refused(h, unsigned, "an unsigned webhook")

    def test_garbled_headers_are_rejected_as_unverified(self, conformance_harness: ConformanceHarness) -> None:
        """A header value no provider sends (not ASCII, or a lone surrogate) is a refusal, never an unmapped error.

        A web framework hands headers over as text, and a forged one may hold anything; comparing
        or encoding such text raises ``TypeError`` or ``UnicodeEncodeError`` deep in a signature
        check, which would reach the host as an unmapped error (a 500 where a 400 belongs). Each
        of the delivery's headers but ``Content-Type`` is garbled on its own.
        """
        h = conformance_harness
        delivery = self._sign(h)()
        for name, value in delivery.headers.items():
            if name.lower() in ("content-type", "content-length"):
                continue
            for forged in ("\u00e9", chr(0xD800)):
                garbled = SignedWebhook({**delivery.headers, name: value[:-1] + forged}, delivery.body)
                self._refused(h, garbled, f"a webhook whose {name} header ends in {forged!r}")


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
        assert not problems, "; ".join(problems)

    def test_unknown_ids_are_not_found_or_invalid(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        h.require(Feature.REFUND)
        with pytest.raises((NotFound, InvalidRequest)):
            h.manager.refund(
                h.gateway, RefundRequest(f"conf_missing_{uuid.uuid4().hex[:12]}"), idempotency_key=new_key()
            )

    @pytest.mark.parametrize("fault", list(TRANSPORT_FAULTS))
    def test_transport_fault_on_a_charge_is_retryable_and_the_retry_charges_once(
        self, conformance_harness: ConformanceHarness, fault: str
    ) -> None:
        """A timeout, a refused connection, a 5xx or a 429 is a mapped core error; a retry makes one payment.

        Each must be retryable, except a 5xx from a provider that replays it to a retry with the
        same key: that is an :class:`OutcomeUnknown` with ``retryable=False``.
        """
        h = conformance_harness
        inject = optional_seam(h.transport_fault, "transport_fault")
        count = need_seam(h.provider_objects, "provider_objects", "that a retry after a fault charges once")
        amount = typical_amount(h.rule())
        before = count()
        send(h, payment_request(h, amount), new_key())
        per_payment = count() - before  # what one payment makes at this provider
        request, key = payment_request(h, amount), new_key()
        operation = operation_of(request)
        block = inject(fault, operation)
        if block is None:
            pytest.skip(f"the harness cannot inject {fault} on {operation}")
        before = count()
        with block as faulty, pytest.raises(Exception) as info:  # noqa: PT011 (checked below, precisely)
            send(h, request, key, faulty)
        what = f"{operation} under {fault} ({TRANSPORT_FAULTS[fault]})"
        retryable = None if fault == "5xx" else True  # see escaped_problems
        problems = escaped_problems(h, info.value, MUTATING_FAULT_ERRORS[fault], what, retryable=retryable)
        assert not problems, "; ".join(problems)
        # The host's retry with the same key once the fault is gone (after reading the status, when
        # the error said retrying cannot help): either way it must not make a second payment.
        retried = send(h, request, key)
        assert retried.amount == amount
        assert send(h, request, key).id == retried.id
        made = count() - before
        assert made == per_payment, (
            f"after {fault} and a retry with the same key the provider holds {made} new object(s); "
            f"one payment makes {per_payment}"
        )

    def test_a_refund_answered_without_its_id_is_outcome_unknown(self, conformance_harness: ConformanceHarness) -> None:
        """The provider refunded, but its answer lacks the refund's id: the host must not hear "failed".

        A bare ``KeyError`` (which the manager reports as unmapped), a plain ``GatewayError`` or an
        ``InvalidRequest`` all read as "nothing happened", and invite a second refund with a new
        key. Only :class:`OutcomeUnknown` says what is true: the refund may have been made.
        """
        h = conformance_harness
        h.require(Feature.REFUND)
        inject = optional_seam(h.short_answer, "short_answer")
        count = need_seam(h.provider_objects, "provider_objects", "that a short answer stands for one refund")
        request, key = some_refund(h), new_key()
        block = inject("refund")
        if block is None:
            pytest.skip("the harness cannot cut short the answer to a refund")
        before = count()
        with block as faulty, pytest.raises(Exception) as info:  # noqa: PT011 (checked below, precisely)
            faulty.refund(h.gateway, request, idempotency_key=key)
        what = "a refund whose answer lacks its id"
        problems = escaped_problems(h, info.value, OutcomeUnknown, what, retryable=None)
        assert not problems, "; ".join(problems)
        assert count() - before == 1, f"{what}: the provider holds {count() - before} new objects, expected the refund"
        with suppress(GatewayError):  # the host's retry with the same key must not refund again
            h.manager.refund(h.gateway, request, idempotency_key=key)
        assert count() - before == 1, f"{what}: a retry with the same key made another object"

    @pytest.mark.parametrize("fault", list(TRANSPORT_FAULTS))
    def test_transport_fault_on_a_read_is_retryable(self, conformance_harness: ConformanceHarness, fault: str) -> None:
        h = conformance_harness
        h.require(Feature.PAYMENT_STATUS)
        inject = optional_seam(h.transport_fault, "transport_fault")
        payment = send(h, payment_request(h, typical_amount(h.rule())), new_key())
        block = inject(fault, "payment_status")
        if block is None:
            pytest.skip(f"the harness cannot inject {fault} on payment_status")
        with block as faulty, pytest.raises(Exception) as info:  # noqa: PT011 (checked below, precisely)
            faulty.payment_status(h.gateway, payment.id)
        what = f"payment_status under {fault} ({TRANSPORT_FAULTS[fault]})"
        problems = escaped_problems(h, info.value, READ_FAULT_ERRORS[fault], what, retryable=True)
        assert not problems, "; ".join(problems)
        assert h.manager.payment_status(h.gateway, payment.id).amount == payment.amount

    def test_a_declined_payment_is_payment_declined(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        h.require(Feature.AUTHORIZE_CAPTURE)
        method = optional_seam(h.decline, "decline")()
        request = AuthorizeRequest(typical_amount(h.rule()), method)
        with pytest.raises(Exception) as info:  # noqa: PT011 (checked below, precisely)
            h.manager.authorize(h.gateway, request, idempotency_key=new_key())
        problems = escaped_problems(h, info.value, PaymentDeclined, "a declined authorization", retryable=False)
        assert not problems, "; ".join(problems)
        assert isinstance(info.value, PaymentDeclined)
        assert info.value.decline_code, "a decline carries no decline_code"

    def test_wrong_credentials_are_authentication_failed(self, conformance_harness: ConformanceHarness) -> None:
        h = conformance_harness
        manager = optional_seam(h.wrong_credentials, "wrong_credentials")()
        count = need_seam(h.provider_objects, "provider_objects", "that refused credentials created nothing")
        before = count()
        problems: list[str] = []
        attempts: list[tuple[str, Callable[[], object]]] = [
            ("a payment", lambda: send(h, payment_request(h, typical_amount(h.rule())), new_key(), manager)),
        ]
        if h.supports(Feature.PAYMENT_STATUS):
            attempts.append(
                ("a status read", lambda: manager.payment_status(h.gateway, f"conf_missing_{uuid.uuid4().hex[:12]}"))
            )
        for what, call in attempts:
            try:
                call()
            except Exception as exc:  # every escape is reported precisely
                problems.extend(
                    escaped_problems(h, exc, AuthenticationFailed, f"{what} with wrong credentials", retryable=False)
                )
            else:
                problems.append(f"{what} with wrong credentials raised nothing")
        assert not problems, "; ".join(problems)
        assert count() == before, "the provider created something for a request with wrong credentials"


class SecretsConformance:
    """No secret appears in a log line, an error or a result.

    "Secret" is every value in the harness's ``secrets`` (callables are asked after the scenario,
    for tokens minted while it ran) and anything shaped like one of
    :data:`gateway_core.testing.recording.SECRET_PATTERNS` (API keys, webhook secrets, OAuth tokens).
    A result is scanned whole, as its ``repr`` shows it (a checkout's URL, an authorization's
    ids, a payment's status, a parsed webhook); ``raw``, the provider's own payload, is kept out
    of every ``repr`` and is not scanned.
    """

    def test_no_secret_in_logs_errors_or_results(
        self, conformance_harness: ConformanceHarness, caplog: pytest.LogCaptureFixture
    ) -> None:
        h = conformance_harness
        if not h.secrets:
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
        assert h.known_secrets(), "the harness's secrets resolved to nothing"
        found = leaks(h, texts)
        assert not found, "; ".join(found)

    @staticmethod
    def _steps(h: ConformanceHarness) -> Iterator[Callable[[], Any]]:
        """A short scenario of successes and failures across the declared features and seams."""
        rule = h.rule()
        amount = typical_amount(rule)
        missing = f"conf_missing_{uuid.uuid4().hex[:12]}"
        # Whole results, not only their amounts: a secret in a checkout URL shows in its repr.
        yield lambda: start(h, payment_request(h, amount), new_key())
        yield lambda: charge(h, rule.effective_minimum - Money.from_minor(1, rule.code))
        if h.supports(Feature.AUTHORIZE_CAPTURE) and h.payment_method is not None:
            method = h.payment_method
            yield lambda: h.manager.authorize(h.gateway, AuthorizeRequest(amount, method), idempotency_key=new_key())
            yield lambda: h.manager.capture(
                h.gateway, CaptureRequest(authorization(h, amount)), idempotency_key=new_key()
            )
        if h.supports(Feature.PAYMENT_STATUS):
            yield lambda: h.manager.payment_status(h.gateway, captured_payment(h, amount))
        if h.supports(Feature.REFUND):
            yield lambda: h.manager.refund(
                h.gateway, RefundRequest(captured_payment(h, amount)), idempotency_key=new_key()
            )
            yield lambda: h.manager.refund(h.gateway, RefundRequest(missing), idempotency_key=new_key())
        if h.supports(Feature.PAYMENT_STATUS):
            yield lambda: h.manager.payment_status(h.gateway, missing)
        if h.supports(Feature.AUTHORIZE_CAPTURE) and h.decline is not None:
            decline = h.decline
            yield lambda: h.manager.authorize(h.gateway, AuthorizeRequest(amount, decline()), idempotency_key=new_key())
        if h.wrong_credentials is not None:
            wrong = h.wrong_credentials
            yield lambda: start(h, payment_request(h, amount), new_key(), wrong())
        if h.supports(Feature.WEBHOOKS) and h.signed_webhook is not None:
            sign = h.signed_webhook
            yield lambda: h.manager.parse_webhook(h.gateway, *_fields(sign()))
            yield lambda: h.manager.parse_webhook(h.gateway, *_fields(sign(secret=WRONG_WEBHOOK_SECRET)))
            yield lambda: h.manager.parse_webhook(h.gateway, {}, b"{}")


class LifecycleConformance:
    """Closing the manager (``gateway_close``): it succeeds, sends the provider nothing, and is idempotent.

    The manager calls a gateway's ``gateway_close`` once; the contract asks more of it (a second
    call does nothing and raises nothing), so the suite calls the plugin's implementation once
    more itself. A gateway without the hook holds nothing and passes as it is.
    """

    def test_closing_after_an_operation_sends_nothing_and_can_be_repeated(
        self, conformance_harness: ConformanceHarness
    ) -> None:
        h = conformance_harness
        charge(h, typical_amount(h.rule()))  # whatever the gateway opens lazily is open now
        before = h.requests_sent()
        close_twice(h, h.manager)
        assert h.requests_sent() == before, "closing the manager sent a request to the provider"

    def test_closing_a_gateway_that_never_ran_an_operation_sends_nothing(
        self, conformance_harness: ConformanceHarness
    ) -> None:
        h = conformance_harness
        manager = optional_seam(h.second_worker, "second_worker")()  # a fresh gateway object: nothing opened
        before = h.requests_sent()
        close_twice(h, manager)
        assert h.requests_sent() == before, "closing an unused gateway sent a request to the provider"


def close_twice(h: ConformanceHarness, manager: GatewayManager) -> None:
    """Close ``manager``, then call the gateway object's own ``gateway_close`` once more (it must do nothing)."""
    try:
        manager.close()
    except GatewayError as exc:
        pytest.fail(f"closing the manager failed: {exc}")
    assert manager.closed
    obj = manager.gateway_object(h.gateway)
    info = manager.gateway(h.gateway)
    context = OperationContext(h.gateway, info.provider, "close")
    callers = manager.plugin_manager.get_hookcallers(obj) or []
    for impl in [i for c in callers if c.name == "gateway_close" for i in c.get_hookimpls()]:
        if impl.plugin is obj and not (impl.wrapper or impl.hookwrapper):
            try:
                result = impl.function(**{name: context for name in impl.argnames if name == "context"})
            except Exception as exc:  # what a second close raised is the finding
                pytest.fail(f"a second gateway_close raised {type(exc).__name__}: it must do nothing once closed")
            assert result is None, f"gateway_close returned {type(result).__name__}; it must return None"


def takes_payment_id(sign: SignWebhook) -> SignWebhook:
    """``sign``, once it is seen to take ``payment_id=``; fail, naming the change, for a harness without it."""
    try:
        inspect.signature(sign).bind(payment_id="conf_probe")
    except TypeError:
        pytest.fail(
            "the harness's signed_webhook takes no payment_id=, so the suite cannot check how the plugin parses "
            "the provider's webhook about a payment: accept payment_id and return the provider's webhook saying "
            "that payment succeeded (see SignWebhook and docs/plugin-authors.md, section 12.3)"
        )
    except ValueError:  # no signature to read (a builtin): call it and let it answer
        pass
    return sign


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
    LifecycleConformance,
):
    """The whole suite. Subclass it as ``Test...`` and override the ``conformance_harness`` fixture."""
