"""The fake gateway: an in-memory provider that behaves like a careful real one.

It takes no money and every object it makes has ``live=False`` and an id starting ``fake_``.
What it models:

* **Scriptable outcomes** for the next operations (:meth:`FakeGateway.script`): success, a decline
  with a code, 3-D Secure required, rate limited, unavailable, and the ambiguous case -- a timeout
  *after* the charge succeeded (:class:`~gateway_core.errors.OutcomeUnknown`; a retry with the same
  idempotency key returns the charge that was made, never a second one). An unscoped outcome
  applies to the next *mutating* operation; ``Scripted(Outcome.UNAVAILABLE, operation="status")``
  (or ``"webhook"``) makes a payment-status lookup (or a webhook verification, which PayPal does
  over its API) fail once, rate limited or unavailable.
* **3-D Secure as a real provider does it**: a scripted ``REQUIRES_3DS`` authorization creates the
  payment in ``REQUIRES_ACTION`` and raises :class:`~gateway_core.errors.AuthenticationRequired`
  carrying its ``payment_id`` and ``action_url``; the test then plays the payer with
  :meth:`~FakeGateway.complete_3ds` (authorized, ``payment.authorized`` webhook) or
  :meth:`~FakeGateway.fail_3ds` (failed, ``payment.failed``). The ``action_url`` is the fake's
  authentication page, ``<checkout_base_url>/3ds/<payment id>``; when the request has a
  ``return_url`` it carries it (``?return_url=<quoted>``, :meth:`FakeGateway.return_url` reads it
  back), and :class:`~gateway_core.fake.server.FakeCheckoutServer` serves that page and sends the
  payer back there once they pass or fail, as a provider's hosted 3-D Secure page does.
* **Idempotency as Stripe does it**: the same key with the same parameters returns the same
  result (or the same decline, or the same 3-D Secure requirement); the same key with other
  parameters is an :class:`~gateway_core.errors.IdempotencyConflict`. Rate-limit and unavailable
  errors are not stored, because nothing happened.
* **A hosted checkout** that a test (or a person, through :mod:`gateway_core.fake.server`) pays,
  declines or abandons: :meth:`complete_checkout`, :meth:`decline_checkout`, :meth:`abandon_checkout`.
  A declined card is one attempt, as on Stripe: ``payment.failed`` with its code, and the
  checkout stays open with its payment ``PENDING`` (awaiting the payer), who may pay or abandon it.
  ``complete_checkout(id, settle=False)`` is a payer who finished with a payment method that
  settles later (a bank debit): the checkout is complete, the payment ``PENDING``
  (``checkout.completed`` and ``payment.pending`` webhooks) until :meth:`settle_payment`
  (``payment.succeeded``) or :meth:`fail_payment` (``payment.failed``).
* **A checkout's id where a payment's is asked for**, as Stripe (``cs_``) and PayPal (an order id):
  ``capture`` and ``refund`` take either, and one idempotency key stays bound to the payment
  whichever id names it; an open checkout has nothing to capture or refund yet
  (:class:`~gateway_core.errors.InvalidRequest`); with ``host_completes_checkout``, as on PayPal,
  an authorize-only checkout is captured by its authorization's id, not its own. ``void`` by a
  checkout's id does what the checkout has become: an open one expires, a completed
  authorize-only one has its authorization canceled, an expired one changes nothing and reports
  ``CANCELED``, a paid or settling one is refused.
* **Webhook amounts as the providers send them**: ``payment.succeeded`` carries what was captured
  (after a partial capture, less than authorized), a refund event the refund's amount, a dispute
  the disputed amount; other events what the payment is for.
* **After the payment**: :meth:`fail_refund` (a refund the bank returns: ``refund.failed``, the
  amount counts as not refunded again) and :meth:`open_dispute` (``dispute.opened``).
* **A refund that settles later**, as Stripe's and PayPal's often do: with
  ``Scripted(Outcome.PENDING, operation="refund")`` scripted, the next refund is accepted
  ``PENDING`` (``refund.pending``) until :meth:`settle_refund` (``refund.succeeded``) or
  :meth:`fail_refund` (``refund.failed``, the amount refundable again). A retry with the same key
  returns the same pending refund.
* **Signed webhooks** in an outbox (:meth:`drain_webhooks`), deliverable twice, late and out of
  order, and held back selectively (``drain_webhooks(hold={"payment.succeeded"})`` delivers
  everything else now and that one at a later drain); signatures are
  ``Fake-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">``.
* **Capabilities per deployment**: ``checkout_expiry_minutes`` in its settings narrows the
  checkout expiry window and ``features`` the declared features (:meth:`FakeGateway.configure`),
  so one fake can stand in for Stripe and another for PayPal; ``host_completes_checkout = true``
  makes it capture an approved checkout only when the host calls ``capture``, and hold an approved
  authorize-only checkout only when the host calls ``authorize`` with the checkout's id as the
  payment method (then capture the authorization by its id), as PayPal does.
  ``closes_checkouts = false`` makes ``void`` of a checkout still open (not paid or approved, or
  approved and not captured or authorized by the host) ``CapabilityNotSupported`` with nothing
  changed, as the PayPal plugin answers (PayPal cannot cancel an order; it lapses), while an
  authorized authorize-only checkout still has its authorization voided. ``forgets_lapsed_checkouts
  = true`` makes a checkout that lapses with nothing captured or authorized forgotten, as PayPal
  forgets an expired order: a status read, capture, authorize, void or refund by its id or its
  payment's is then ``NotFound`` (the test-side helpers, :meth:`FakeGateway.checkout`, still show
  it ``EXPIRED``). No capability declares either: the core has none a host could read beforehand.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode

import attrs
import structlog

from gateway_core.capabilities import Capabilities, CheckoutExpiry, Feature
from gateway_core.config import GatewaySettings, Secret
from gateway_core.errors import (
    AmountOutOfRange,
    AuthenticationRequired,
    CapabilityNotSupported,
    ConfigurationError,
    GatewayUnavailable,
    IdempotencyConflict,
    InvalidMoney,
    InvalidRequest,
    NotFound,
    OutcomeUnknown,
    PaymentDeclined,
    RateLimited,
    WebhookVerificationFailed,
)
from gateway_core.hookspecs import hookimpl
from gateway_core.models import (
    Authorization,
    AuthorizeRequest,
    Capture,
    CaptureRequest,
    CheckoutRequest,
    CheckoutSession,
    CheckoutStatus,
    CheckResult,
    EventType,
    OperationContext,
    PaymentState,
    PaymentStatus,
    Refund,
    RefundRequest,
    RefundStatus,
    StatusRequest,
    Void,
    VoidRequest,
    WebhookEvent,
    WebhookRequest,
)
from gateway_core.money import Money

__all__ = ["FakeGateway", "Outcome", "Scripted", "WebhookDelivery"]

log = structlog.get_logger("gateway_core.fake")

SIGNATURE_HEADER = "Fake-Signature"
DEFAULT_TOLERANCE = 300
DEFAULT_CHECKOUT_TTL = timedelta(hours=1)


class Outcome(enum.StrEnum):
    SUCCESS = "success"
    DECLINE = "decline"
    #: On ``authorize``: the payment waits in ``REQUIRES_ACTION`` for :meth:`FakeGateway.complete_3ds`.
    REQUIRES_3DS = "requires_3ds"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    TIMEOUT_AFTER_SUCCESS = "timeout_after_success"
    #: On ``refund`` only: the refund waits in ``PENDING`` for :meth:`FakeGateway.settle_refund` or ``fail_refund``.
    PENDING = "pending"


#: Operations that only read: they take only the outcomes that mean "nothing happened".
_READ_OPERATIONS = frozenset({"status", "webhook"})
_READ_OUTCOMES = frozenset({Outcome.SUCCESS, Outcome.RATE_LIMITED, Outcome.UNAVAILABLE})


#: The settings :meth:`FakeGateway.from_settings` and :meth:`FakeGateway.configure` read; ``configure`` refuses any other.
_SETTINGS = frozenset(
    {
        "test_mode",
        "webhook_secret",
        "minimums",
        "checkout_base_url",
        "tolerance",
        "checkout_expiry_minutes",
        "features",
        "host_completes_checkout",
        "closes_checkouts",
        "forgets_lapsed_checkouts",
    }
)

#: Every operation an outcome can be scripted for (the manager's operation names, as in log lines).
_OPERATIONS = frozenset({"checkout", "authorize", "capture", "void", "refund"}) | _READ_OPERATIONS


def _check_scripted(instance: Scripted, attribute: attrs.Attribute[str | None], operation: str | None) -> None:
    if operation is not None and operation not in _OPERATIONS:
        # an outcome for no operation would wait for ever, and the one meant would succeed
        raise InvalidRequest(
            f"the fake has no operation {operation!r}; the fake's are: {', '.join(sorted(_OPERATIONS))}"
        )
    if operation in _READ_OPERATIONS and instance.outcome not in _READ_OUTCOMES:
        raise ValueError(
            f"a {operation} lookup can only be scripted rate_limited or unavailable, not {instance.outcome}"
        )
    if instance.outcome is Outcome.PENDING and operation != "refund":
        # only a refund can be left pending: on any other operation it would be dropped unseen
        raise ValueError('only a refund can be scripted pending: Scripted(Outcome.PENDING, operation="refund")')


@attrs.frozen
class Scripted:
    """One scripted outcome, optionally only for one operation (``"refund"``, ``"checkout"`` ...).

    Without ``operation`` it applies to the next mutating operation (checkout, authorize,
    capture, void, refund). ``"status"`` and ``"webhook"`` must be named to apply, and take only
    ``RATE_LIMITED`` or ``UNAVAILABLE``; ``PENDING`` is for ``"refund"`` alone, which must be named.
    Any other name is refused: it would never apply.
    """

    outcome: Outcome = attrs.field(converter=Outcome)
    operation: str | None = attrs.field(default=None, validator=_check_scripted)
    decline_code: str = "card_declined"


@attrs.frozen
class WebhookDelivery:
    """A webhook as the fake would POST it: headers and raw body."""

    event_id: str
    type: str
    headers: Mapping[str, str]
    body: bytes


@attrs.define
class _Payment:
    id: str
    amount: Money
    state: PaymentState
    captured: Money
    refunded: Money
    capture_method: str  # "automatic" | "manual"
    checkout_id: str | None = None
    reference: str | None = None
    #: Where the payer goes back after 3-D Secure (``AuthorizeRequest.return_url``).
    return_url: str | None = None
    #: ``host_completes_checkout``: the payer approved the checkout; no money moves until the host captures.
    awaiting_capture: bool = False
    #: ... or, for an authorize-only checkout, nothing is held until the host authorizes it.
    awaiting_authorization: bool = False
    #: ... and the capture (or authorization) then waits to settle (``complete_checkout(id, settle=False)``).
    settle_later: bool = False

    @property
    def awaiting_host(self) -> bool:
        """Approved by the payer, not yet captured or authorized by the host: it lapses with its checkout."""
        return self.awaiting_capture or self.awaiting_authorization


@attrs.define
class _Checkout:
    id: str
    request: CheckoutRequest
    status: CheckoutStatus
    payment_id: str
    expires_at: datetime
    url: str
    #: ``forgets_lapsed_checkouts``: it lapsed with nothing captured or authorized, and the provider
    #: has forgotten it (as PayPal an order never completed): the hooks answer ``NotFound`` for it.
    forgotten: bool = False


@attrs.define
class _Stored:
    operation: str
    request: object
    result: object | None = None
    error: Exception | None = None


def _new_id(prefix: str) -> str:
    return f"fake_{prefix}_{uuid.uuid4().hex[:24]}"


_ID_RE = re.compile(r"fake_[a-z]+_[0-9a-f]{24}")


def _shown(object_id: str) -> str:
    """An id fit for an error message: one the fake issued, never arbitrary caller input (a card number)."""
    return (
        repr(object_id) if isinstance(object_id, str) and _ID_RE.fullmatch(object_id) else "(not an id the fake issued)"
    )


def sign(body: bytes, secret: Secret, timestamp: int) -> str:
    """The ``Fake-Signature`` header value for ``body`` at ``timestamp``."""
    digest = hmac.new(secret.reveal().encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class FakeGateway:
    """One configured fake gateway (a gateway object: it implements the operation hooks)."""

    def __init__(
        self,
        name: str,
        *,
        webhook_secret: Secret,
        minimums: Mapping[str, Money] | None = None,
        checkout_base_url: str = "https://checkout.fake-gateway.invalid",
        tolerance: int = DEFAULT_TOLERANCE,
        clock: Callable[[], float] = time.time,
        host_completes_checkout: bool = False,
        closes_checkouts: bool = True,
        forgets_lapsed_checkouts: bool = False,
    ) -> None:
        self.name = name
        #: As PayPal: a payer's approval of a checkout moves no money until the host captures it (or,
        #: authorize-only, authorizes it).
        self.host_completes_checkout = host_completes_checkout
        #: ``False``, as PayPal: ``void`` cannot close a checkout still open (``CapabilityNotSupported``).
        self.closes_checkouts = closes_checkouts
        #: ``True``, as PayPal: a checkout that lapses with nothing captured or authorized is forgotten.
        self.forgets_lapsed_checkouts = forgets_lapsed_checkouts
        self._secret = webhook_secret
        self._minimums = dict(minimums or {})
        self.checkout_base_url = checkout_base_url.rstrip("/")
        self.tolerance = tolerance
        self.clock = clock
        self._lock = threading.RLock()
        self._script: list[Scripted] = []
        self._idem: dict[str, _Stored] = {}
        self._payments: dict[str, _Payment] = {}
        self._checkouts: dict[str, _Checkout] = {}
        self._refunds: dict[str, Refund] = {}
        self._outbox: list[tuple[str, str, bytes]] = []
        #: Every mutating request that reached the fake "provider": (operation, idempotency key).
        self.requests: list[tuple[str, str | None]] = []

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> FakeGateway:
        """Factory for :class:`~gateway_core.hookspecs.ProviderDefinition`.

        Settings: ``test_mode = true`` (required: the fake refuses to run without it),
        ``webhook_secret`` (a secret; default a test secret derived from the gateway's name, so
        two fake gateways never believe each other's webhooks), ``minimums`` (``{EUR = "0.50"}``),
        ``checkout_base_url``, ``tolerance`` (seconds), and ``checkout_expiry_minutes``,
        ``features`` and ``host_completes_checkout``, which :meth:`configure` reads into the
        gateway's capabilities (the last one also into how the gateway behaves: see
        :meth:`complete_checkout`), and ``closes_checkouts`` (default true; false: see
        :meth:`gateway_void`) and ``forgets_lapsed_checkouts`` (default false; true: see
        :meth:`_refuse_forgotten`), booleans that change how it behaves and declare nothing.
        """
        if settings.get("test_mode") is not True:
            raise ConfigurationError(
                f"gateway {settings.name!r} is the fake gateway, which takes no real money; "
                "set test_mode = true in its settings to enable it",
                gateway=settings.name,
            )
        secret = settings.get("webhook_secret", Secret(f"whsec_fake_test_only_{settings.name}", source="fake default"))
        if not isinstance(secret, Secret):
            raise ConfigurationError(
                f"gateway {settings.name!r}: webhook_secret must be a Secret", gateway=settings.name
            )
        if not secret:  # an empty variable must not fall back to the well-known default secret
            raise ConfigurationError(
                f"gateway {settings.name!r}: webhook_secret ({secret.source}) is empty", gateway=settings.name
            )
        raw_minimums = settings.get("minimums", {})
        if not isinstance(raw_minimums, Mapping):
            raise ConfigurationError(f"gateway {settings.name!r}: minimums must be a table", gateway=settings.name)
        minimums: dict[str, Money] = {}
        for code, value in raw_minimums.items():
            if not isinstance(value, str):  # TOML 0.5 is a float and 1 an int: neither is an exact amount
                raise ConfigurationError(
                    f'gateway {settings.name!r}: minimums.{code} must be a decimal string such as "0.50", '
                    f"not {type(value).__name__}",
                    gateway=settings.name,
                )
            try:
                minimums[code] = Money.of(value, code)
            except InvalidMoney as exc:
                raise ConfigurationError(
                    f"gateway {settings.name!r}: minimums.{code} = {value!r} is not an amount: {exc.message}",
                    gateway=settings.name,
                ) from exc
        tolerance = settings.get("tolerance", DEFAULT_TOLERANCE)
        if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 1:
            raise ConfigurationError(
                f"gateway {settings.name!r}: tolerance must be a whole number of seconds of at least 1 "
                f"(default {DEFAULT_TOLERANCE}), not {tolerance!r}",
                gateway=settings.name,
            )
        base_url = settings.get("checkout_base_url", "https://checkout.fake-gateway.invalid")
        if not isinstance(base_url, str) or not base_url.startswith(("https://", "http://")):
            raise ConfigurationError(
                f"gateway {settings.name!r}: checkout_base_url must be an http(s) URL, not {_kind(base_url)}",
                gateway=settings.name,
            )
        return cls(
            settings.name,
            webhook_secret=secret,
            minimums=minimums,
            checkout_base_url=base_url,
            tolerance=tolerance,
            host_completes_checkout=_host_completes_checkout(settings),
            closes_checkouts=_boolean(settings, "closes_checkouts"),
            forgets_lapsed_checkouts=_boolean(settings, "forgets_lapsed_checkouts"),
        )

    @staticmethod
    def configure(declared: Capabilities, settings: GatewaySettings) -> Capabilities:
        """One fake gateway's capabilities from its settings (``ProviderDefinition.configure``).

        ``checkout_expiry_minutes = [30, 1440]`` narrows the checkout expiry window the provider
        declares to 30 minutes .. 24 hours ahead (as Stripe's); ``checkout_expiry_minutes = false``
        makes the gateway take no requested expiry at all (as PayPal's). ``features = ["hosted_checkout",
        "refund", ...]`` (:class:`~gateway_core.capabilities.Feature` values) narrows the declared
        features to those listed, so a test deployment can stand in for a provider that lacks some
        (PayPal declares no ``application_fee``); an unknown name is a
        :class:`~gateway_core.errors.ConfigurationError`, and the manager refuses one the provider
        does not declare (configuration may only narrow). Absent: as declared. A setting the fake
        does not take (a misspelt ``minimum``) is a ``ConfigurationError`` here, before the gateway
        is built; a test provider with a ``configure`` of its own may read settings of its own.
        ``host_completes_checkout = true`` declares (and makes the gateway behave) as PayPal: the
        payer's approval of a ``capture=True`` checkout moves no money until the host captures it,
        and of an authorize-only one holds none until the host authorizes it; it needs the
        ``authorize_capture`` feature, which ``capture`` and ``authorize`` are.
        """
        settings.refuse_unknown(_SETTINGS)  # a misspelt "minimum" would drop the minimum a test stands in for
        _boolean(settings, "closes_checkouts")  # refused here, before the gateway is built
        _boolean(settings, "forgets_lapsed_checkouts")
        declared = _as_host_completing(declared, settings)
        caps = declared
        if "checkout_expiry_minutes" in settings.settings:
            caps = attrs.evolve(caps, checkout_expiry=_checkout_expiry(settings))
        if "features" in settings.settings:
            caps = attrs.evolve(caps, features=_listed_features(settings))
        return caps

    # -- scripting ------------------------------------------------------------------------
    def script(self, *outcomes: Outcome | Scripted) -> None:
        """Queue outcomes for the next operations (each used once, in order); one refused queues none."""
        queued = [o if isinstance(o, Scripted) else Scripted(o) for o in outcomes]
        with self._lock:
            self._script.extend(queued)

    def _next_outcome(self, operation: str) -> Scripted:
        accepted = (operation,) if operation in _READ_OPERATIONS else (None, operation)
        with self._lock:
            for i, scripted in enumerate(self._script):
                if scripted.operation in accepted:
                    return self._script.pop(i)
        return Scripted(Outcome.SUCCESS)

    def _read(self, operation: str) -> None:
        """A read-only request reaching the fake: fails once if scripted to, else does nothing."""
        if not self._script:  # nothing scripted at all: no lock to take
            return
        with self._lock:
            self._fail_if_refused(self._next_outcome(operation))

    def _fail_if_refused(self, scripted: Scripted) -> None:
        if scripted.outcome is Outcome.RATE_LIMITED:
            raise RateLimited("fake: too many requests", gateway=self.name, http_status=429, retry_after=1.0)
        if scripted.outcome is Outcome.UNAVAILABLE:
            raise GatewayUnavailable("fake: service unavailable", gateway=self.name, http_status=503)

    # -- the idempotent request path ------------------------------------------------------
    def _request(
        self,
        ctx: OperationContext,
        request: object,
        perform: Callable[[], object],
        *,
        pending: Callable[[], object] | None = None,
    ) -> Any:
        """Run ``perform`` once per idempotency key, as scripted; ``pending`` instead for ``Outcome.PENDING``."""
        key = ctx.idempotency_key
        with self._lock:
            self.requests.append((ctx.operation, key))
            if key is not None and key in self._idem:
                stored = self._idem[key]
                if stored.operation != ctx.operation or stored.request != request:
                    raise IdempotencyConflict(
                        "idempotency key reused with different parameters",
                        gateway=self.name,
                        provider_code="idempotency_key_in_use",
                        http_status=400,
                    )
                if stored.error is not None:
                    raise stored.error
                return stored.result
            scripted = self._next_outcome(ctx.operation)
            self._fail_if_refused(scripted)
            error: Exception | None = None
            if scripted.outcome is Outcome.DECLINE:
                error = PaymentDeclined(
                    "fake: the card was declined",
                    gateway=self.name,
                    decline_code=scripted.decline_code,
                    provider_code="card_declined",
                    http_status=402,
                )
            elif scripted.outcome is Outcome.REQUIRES_3DS:
                payment_id = None
                return_url = request.return_url if isinstance(request, AuthorizeRequest) else None
                if ctx.operation == "authorize":  # the payment exists, waiting for the payer
                    created = perform()
                    assert isinstance(created, Authorization)
                    payment = self._payments[created.id]
                    payment.state = PaymentState.REQUIRES_ACTION
                    payment.return_url = return_url
                    payment_id = created.id
                action_url = f"{self.checkout_base_url}/3ds/{payment_id or uuid.uuid4().hex[:12]}"
                if return_url is not None:  # the page leads back there, as a provider's hosted one does
                    action_url += "?" + urlencode({"return_url": return_url})
                error = AuthenticationRequired(
                    f"fake: payment {payment_id} needs the payer to authenticate"
                    if payment_id
                    else "fake: the payer must authenticate",
                    gateway=self.name,
                    action_url=action_url,
                    payment_id=payment_id,
                    provider_code="authentication_required",
                    http_status=402,
                )
            if error is not None:
                if key is not None:
                    self._idem[key] = _Stored(ctx.operation, request, error=error)
                raise error
            result = pending() if scripted.outcome is Outcome.PENDING and pending is not None else perform()
            if key is not None:
                self._idem[key] = _Stored(ctx.operation, request, result=result)
            if scripted.outcome is Outcome.TIMEOUT_AFTER_SUCCESS:
                raise OutcomeUnknown(
                    "fake: timed out after the request was processed; retry with the same key",
                    gateway=self.name,
                )
            return result

    # -- metadata hooks -------------------------------------------------------------------
    @hookimpl
    def gateway_minimum_amount(self, currency: str) -> Money | None:
        return self._minimums.get(currency)

    @hookimpl
    def gateway_check(self) -> list[CheckResult]:
        """The fake's configuration check: it runs in test mode and can sign webhooks."""
        return [
            CheckResult("test mode", True, f"fake gateway {self.name!r} takes no real money"),
            CheckResult("webhook secret", bool(self._secret), f"from {self._secret.source}"),
        ]

    # -- operation hooks ------------------------------------------------------------------
    @hookimpl
    def gateway_create_checkout(self, request: CheckoutRequest, context: OperationContext) -> CheckoutSession:
        def perform() -> CheckoutSession:
            now = datetime.fromtimestamp(self.clock(), UTC)
            expires = request.expires_at or now + DEFAULT_CHECKOUT_TTL
            checkout_id = _new_id("cs")
            payment = _Payment(
                _new_id("pi"),
                request.amount,
                PaymentState.PENDING,
                Money.zero(request.amount.currency),
                Money.zero(request.amount.currency),
                "automatic" if request.capture else "manual",
                checkout_id,
                request.reference,
            )
            checkout = _Checkout(
                checkout_id,
                request,
                CheckoutStatus.OPEN,
                payment.id,
                expires,
                f"{self.checkout_base_url}/c/{checkout_id}",
            )
            self._payments[payment.id] = payment
            self._checkouts[checkout_id] = checkout
            return self._session(checkout)

        return self._request(context, request, perform)  # type: ignore[no-any-return]

    @hookimpl
    def gateway_authorize(self, request: AuthorizeRequest, context: OperationContext) -> Authorization:
        """Authorize ``request.amount`` on a payment method: a new payment, ``AUTHORIZED`` at once.

        With ``host_completes_checkout`` (as PayPal), ``payment_method`` = the id of an approved
        authorize-only checkout authorizes that checkout instead (see :meth:`_authorize_approved`),
        as the PayPal plugin's ``POST /v2/checkout/orders/{id}/authorize`` does.
        """

        def perform() -> Authorization:
            checkout = self._checkouts.get(request.payment_method) if self.host_completes_checkout else None
            if checkout is not None:
                self._refuse_forgotten(checkout.id)
                return self._authorize_approved(checkout, request)
            payment = _Payment(
                _new_id("pi"),
                request.amount,
                PaymentState.AUTHORIZED,
                Money.zero(request.amount.currency),
                Money.zero(request.amount.currency),
                "manual",
                reference=request.reference,
            )
            self._payments[payment.id] = payment
            return Authorization(self.name, payment.id, payment.amount, payment.state, live=False, raw=_raw(payment))

        return self._request(context, request, perform)  # type: ignore[no-any-return]

    def _authorize_approved(self, checkout: _Checkout, request: AuthorizeRequest) -> Authorization:
        """``host_completes_checkout``: authorize the authorize-only checkout the payer approved, as PayPal.

        On PayPal an approved order with intent ``AUTHORIZE`` holds no money until the merchant
        authorizes it (``POST /v2/checkout/orders/{id}/authorize``: "the buyer must first approve
        the order", developer.paypal.com/api/orders/v2/orders-authorize), and an approval
        nobody authorizes lapses (the Orders v2 spec, ``links``: the payer has 3 hours "to approve
        the order and either authorize or capture the order"). Refused as the PayPal plugin refuses,
        nothing changed and nothing stored under the key: a ``capture=True`` checkout is
        ``InvalidRequest`` (``ACTION_DOES_NOT_MATCH_INTENT``: complete it with capture); an amount
        that is not the checkout's is ``AmountOutOfRange``; an open checkout (not approved yet) is
        :class:`~gateway_core.errors.AuthenticationRequired` with the checkout's id and url
        (``ORDER_NOT_APPROVED``), so the same authorization succeeds once the payer has approved;
        a lapsed one is ``InvalidRequest``. Authorized: ``payment.authorized`` (with
        ``settle=False``, ``payment.pending`` until :meth:`settle_payment`), and the
        ``Authorization``'s id is the payment's, which a capture then names (PayPal's
        authorization id). A checkout authorized before, under another key, answers that one
        authorization as it is now and authorizes nothing twice, as the plugin does with PayPal's
        ``ORDER_ALREADY_AUTHORIZED``. PayPal holds an authorization for 29 days, best captured in
        its 3-day honor period (developer.paypal.com/docs/checkout/standard/customize/authorization-honor);
        the fake does not let an authorization lapse.
        """
        payment = self._payments[checkout.payment_id]
        if payment.capture_method == "automatic":
            raise InvalidRequest(
                f"fake: checkout {checkout.id} was made with capture=True: complete it with "
                "capture(checkout id), not authorize",
                gateway=self.name,
                provider_code="ACTION_DOES_NOT_MATCH_INTENT",
                http_status=422,
            )
        if request.amount != payment.amount:
            raise AmountOutOfRange(
                f"fake: checkout {checkout.id} is authorized for its amount ({payment.amount}), not {request.amount}",
                gateway=self.name,
            )
        self._expire_if_due(checkout)
        if checkout.status is CheckoutStatus.OPEN:
            raise self._not_approved(checkout)
        if checkout.status is CheckoutStatus.EXPIRED:
            raise InvalidRequest(
                f"fake: checkout {checkout.id} is {checkout.status}: nothing to authorize",
                gateway=self.name,
                provider_code="state",
            )
        if payment.awaiting_authorization:
            payment.awaiting_authorization = False
            if payment.settle_later:
                payment.state = PaymentState.PENDING
                self._emit(EventType.PAYMENT_PENDING, payment)
            else:
                payment.state = PaymentState.AUTHORIZED
                self._emit(EventType.PAYMENT_AUTHORIZED, payment)
        elif payment.state is PaymentState.FAILED:  # authorized before, then failed (fail_payment): as a DENIED one
            raise PaymentDeclined(
                f"fake: the authorization of checkout {checkout.id} failed",
                gateway=self.name,
                decline_code="DENIED",
                provider_code="DENIED",
            )
        return Authorization(self.name, payment.id, payment.amount, payment.state, live=False, raw=_raw(payment))

    def _not_approved(self, checkout: _Checkout) -> AuthenticationRequired:
        """A checkout the host would complete before the payer approved it, as PayPal's ``ORDER_NOT_APPROVED``."""
        return AuthenticationRequired(
            f"fake: checkout {checkout.id} is not approved yet: send the payer to its url",
            gateway=self.name,
            action_url=checkout.url,
            payment_id=checkout.id,
            provider_code="ORDER_NOT_APPROVED",
            http_status=422,
        )

    @hookimpl
    def gateway_capture(self, request: CaptureRequest, context: OperationContext) -> Capture:
        """Capture an authorization by the payment's id or its checkout's, as Stripe (``cs_``) and PayPal (order id).

        The key is bound to the payment, whichever id named it: a retry with the same key by the
        other id replays the capture, as Stripe's key on ``POST /v1/payment_intents/{pi}/capture``
        (where the Stripe plugin sends a ``cs_`` id's capture) replays it.

        With ``host_completes_checkout`` (as PayPal) a ``capture=True`` checkout's id completes it
        (:meth:`_complete_approved`), and an authorize-only checkout is captured by its
        authorization's id only: its checkout's id, and its payment's before the host authorized
        it, are ``InvalidRequest`` (``ACTION_DOES_NOT_MATCH_INTENT``), as the PayPal plugin
        refuses ``capture(order id)`` of an order with intent ``AUTHORIZE``.
        """
        named = request.payment_id
        with self._lock:
            request = attrs.evolve(request, payment_id=self._resolved(request.payment_id))

        def perform() -> Capture:
            self._refuse_forgotten(named)
            payment = self._payment(request.payment_id)
            if self.host_completes_checkout and payment.checkout_id:
                if payment.capture_method == "automatic":
                    return self._complete_approved(payment, request)
                self._refuse_order_capture(payment, named)
            self._refuse_unpaid_checkout(payment, "capture")
            if payment.state is not PaymentState.AUTHORIZED:
                raise InvalidRequest(
                    f"fake: payment is {payment.state}, not authorized", gateway=self.name, provider_code="state"
                )
            amount = request.amount or payment.amount
            if amount.currency != payment.amount.currency:
                raise InvalidRequest("fake: capture currency differs from the payment's", gateway=self.name)
            if amount > payment.amount:
                raise AmountOutOfRange(
                    f"fake: cannot capture {amount}, only {payment.amount} is authorized", gateway=self.name
                )
            payment.captured = amount
            payment.state = PaymentState.SUCCEEDED
            # What was captured, not what was authorized: Stripe's payment_intent.succeeded carries
            # amount_received, the "Amount that was collected by this PaymentIntent" (Stripe API,
            # PaymentIntent; stripe_gateway normalize._event_amount reads it), and PayPal's
            # PAYMENT.CAPTURE.COMPLETED has the capture as its resource, with the capture's amount.
            self._emit(EventType.PAYMENT_SUCCEEDED, payment, amount=amount)
            return Capture(self.name, _new_id("ch"), payment.id, amount, payment.state, live=False, raw=_raw(payment))

        return self._request(context, request, perform)  # type: ignore[no-any-return]

    def _complete_approved(self, payment: _Payment, request: CaptureRequest) -> Capture:
        """``host_completes_checkout``: capture the checkout the payer approved, as PayPal's order capture.

        An open checkout (not approved yet) is :class:`~gateway_core.errors.AuthenticationRequired`
        with the checkout's id and url, as the PayPal plugin reports ``ORDER_NOT_APPROVED``; nothing
        changes and nothing is stored under the key, so the same capture succeeds once the payer has
        approved. A checkout is captured whole.
        """
        checkout = self._checkouts[payment.checkout_id or ""]
        self._expire_if_due(checkout)
        if checkout.status is CheckoutStatus.OPEN:
            raise self._not_approved(checkout)
        if not payment.awaiting_capture:
            raise InvalidRequest(
                f"fake: checkout {checkout.id} is {checkout.status} and its payment {payment.state}: nothing to capture",
                gateway=self.name,
                provider_code="state",
            )
        if request.amount is not None and request.amount != payment.amount:
            raise InvalidRequest(
                f"fake: checkout {checkout.id} is captured whole ({payment.amount}), not {request.amount}",
                gateway=self.name,
            )
        payment.awaiting_capture = False
        payment.captured = payment.amount
        if payment.settle_later:
            payment.state = PaymentState.PENDING
            self._emit(EventType.PAYMENT_PENDING, payment)
        else:
            payment.state = PaymentState.SUCCEEDED
            self._emit(EventType.PAYMENT_SUCCEEDED, payment, amount=payment.captured)
        return Capture(
            self.name, _new_id("ch"), payment.id, payment.captured, payment.state, live=False, raw=_raw(payment)
        )

    def _refuse_order_capture(self, payment: _Payment, named: str) -> None:
        """``host_completes_checkout``: an authorize-only checkout is captured by its authorization only.

        PayPal refuses ``POST /v2/checkout/orders/{id}/capture`` for an order with intent
        ``AUTHORIZE`` (``ACTION_DOES_NOT_MATCH_INTENT``) and the plugin says to authorize it first;
        the authorization's id is what is captured. So the checkout's id is refused, approved or
        not, authorized or not; and so is the payment's before the host authorized it (PayPal has
        no authorization to name yet).
        """
        checkout = self._checkouts[payment.checkout_id or ""]
        self._expire_if_due(checkout)
        if named == checkout.id or checkout.status is CheckoutStatus.OPEN or payment.awaiting_authorization:
            raise InvalidRequest(
                f"fake: checkout {checkout.id} is authorize-only: authorize it (payment_method = the checkout id), "
                "then capture the authorization",
                gateway=self.name,
                provider_code="ACTION_DOES_NOT_MATCH_INTENT",
                http_status=422,
            )

    @hookimpl
    def gateway_void(self, request: VoidRequest, context: OperationContext) -> Void:
        """Cancel an authorization, or close a checkout by what it has become, as the Stripe plugin does.

        By checkout id (stripe docs/stripe.md, ``void``): an open checkout expires
        (``checkout.expired``); a completed authorize-only one has its authorization canceled
        (``payment.canceled``), since only an open checkout can be expired; an expired one (or one
        whose payment is canceled already) changes nothing, sends nothing and reports
        ``CANCELED``; one whose payment was captured or is still settling is refused.

        With ``closes_checkouts = false`` (as PayPal, which has no call that cancels an order) a
        checkout still open, or approved and not captured or authorized, is not closed:
        ``CapabilityNotSupported`` (``ORDER_CANNOT_BE_CLOSED``), nothing changed and nothing stored
        under the key, as the PayPal plugin answers; the rest is as above.
        """

        def perform() -> Void:
            self._refuse_forgotten(request.payment_id)
            checkout = self._checkouts.get(request.payment_id)
            if checkout is not None:
                self._expire_if_due(checkout)
                payment = self._payments[checkout.payment_id]
                if checkout.status is CheckoutStatus.OPEN or payment.awaiting_host:
                    if not self.closes_checkouts:
                        raise self._cannot_close(checkout)
                    self._expire(checkout)  # an approval not captured (or authorized) is released: no money moved
                elif checkout.status is CheckoutStatus.EXPIRED or payment.state is PaymentState.CANCELED:
                    pass  # nothing left to void: what a void asks is so already
                elif payment.state is PaymentState.AUTHORIZED:
                    payment.state = PaymentState.CANCELED
                    self._emit(EventType.PAYMENT_CANCELED, payment)
                elif _is_paid(payment):
                    raise InvalidRequest(
                        f"fake: payment {payment.id} of checkout {checkout.id} was captured; refund it instead",
                        gateway=self.name,
                    )
                elif payment.state is PaymentState.PENDING:
                    raise InvalidRequest(
                        f"fake: payment {payment.id} of checkout {checkout.id} is still processing; wait for its "
                        "outcome, then refund it if it succeeds",
                        gateway=self.name,
                    )
                else:
                    raise InvalidRequest(
                        f"fake: cannot void checkout {checkout.id}: its payment is {payment.state}", gateway=self.name
                    )
            else:
                payment = self._payment(request.payment_id)
                if payment.state is not PaymentState.AUTHORIZED:
                    raise InvalidRequest(f"fake: cannot void a payment that is {payment.state}", gateway=self.name)
                payment.state = PaymentState.CANCELED
                self._emit(EventType.PAYMENT_CANCELED, payment)
            return Void(self.name, payment.id, payment.state, live=False, raw=_raw(payment))

        return self._request(context, request, perform)  # type: ignore[no-any-return]

    @hookimpl
    def gateway_refund(self, request: RefundRequest, context: OperationContext) -> Refund:
        """Refund by the payment's id or its checkout's, as Stripe (``cs_``) and PayPal (order id).

        The key is bound to the payment, whichever id named it (see :meth:`gateway_capture`), so
        the same key never refunds twice.
        """
        named = request.payment_id
        with self._lock:
            request = attrs.evolve(request, payment_id=self._resolved(request.payment_id))

        def perform(status: RefundStatus = RefundStatus.SUCCEEDED) -> Refund:
            self._refuse_forgotten(named)
            payment = self._payment(request.payment_id)
            self._refuse_unpaid_checkout(payment, "refund")
            if payment.state not in (PaymentState.SUCCEEDED, PaymentState.PARTIALLY_REFUNDED):
                raise InvalidRequest(f"fake: cannot refund a payment that is {payment.state}", gateway=self.name)
            remaining = payment.captured - payment.refunded
            amount = request.amount or remaining
            if amount.currency != payment.amount.currency:
                raise InvalidRequest("fake: refund currency differs from the payment's", gateway=self.name)
            if amount > remaining:
                raise AmountOutOfRange(
                    f"fake: cannot refund {amount}; {remaining} of {payment.captured} remains",
                    gateway=self.name,
                    provider_code="charge_exceeds_refundable",
                )
            # A pending refund counts as refunded from the start, as Stripe counts it: its balance
            # transaction is made when it is created, and a failure reverses it (Stripe API, Refund
            # ``failure_balance_transaction``). So it cannot be refunded twice while it waits.
            payment.refunded = payment.refunded + amount
            payment.state = _refunded_state(payment)
            refund = Refund(
                self.name,
                _new_id("re"),
                payment.id,
                amount,
                status,
                request.reason,
                live=False,
                raw=_raw(payment),
            )
            self._refunds[refund.id] = refund
            event = EventType.REFUND_PENDING if status is RefundStatus.PENDING else EventType.REFUND_SUCCEEDED
            self._emit(event, payment, refund_id=refund.id, amount=amount)
            return refund

        return self._request(  # type: ignore[no-any-return]
            context, request, perform, pending=lambda: perform(RefundStatus.PENDING)
        )

    @hookimpl
    def gateway_payment_status(self, request: StatusRequest) -> PaymentStatus:
        self._read("status")
        with self._lock:
            self._refuse_forgotten(request.payment_id)
            return self.status(request.payment_id)

    def status(self, payment_id: str) -> PaymentStatus:
        """A payment's (or checkout's) state as the fake holds it: no request, so no scripted outage applies."""
        with self._lock:
            checkout = self._checkouts.get(payment_id)
            if checkout is not None:
                self._expire_if_due(checkout)
            payment = self._payments[checkout.payment_id] if checkout is not None else self._payment(payment_id)
            return PaymentStatus(
                self.name,
                payment.id,
                payment.state,
                payment.amount,
                payment.captured,
                payment.refunded,
                checkout_id=payment.checkout_id,
                reference=payment.reference,
                live=False,
                raw=_raw(payment),
            )

    @hookimpl
    def gateway_parse_webhook(self, request: WebhookRequest) -> WebhookEvent:
        self._read("webhook")
        self.verify(request.header(SIGNATURE_HEADER), request.body)
        try:
            payload = json.loads(request.body)
            data = payload["data"]
            amount = Money.of(data["amount"], data["currency"]) if data.get("amount") else None
            provider_type = str(payload["type"])
            try:
                event_type = EventType(provider_type)
            except ValueError:
                event_type = EventType.UNKNOWN
            return WebhookEvent(
                self.name,
                str(payload["id"]),
                event_type,
                provider_type,
                occurred_at=datetime.fromtimestamp(int(payload["created"]), UTC),
                payment_id=data.get("payment_id"),
                checkout_id=data.get("checkout_id"),
                refund_id=data.get("refund_id"),
                reference=data.get("reference"),
                amount=amount,
                failure_code=data.get("failure_code"),
                live=bool(payload.get("livemode", False)),
                raw=payload,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WebhookVerificationFailed(
                f"fake: verified webhook has a malformed payload ({type(exc).__name__})", gateway=self.name
            ) from exc

    # -- webhooks -------------------------------------------------------------------------
    def verify(self, header: str | None, body: bytes) -> None:
        """Check a ``Fake-Signature`` header; raise :class:`WebhookVerificationFailed` if it fails."""
        if not header:
            raise WebhookVerificationFailed(f"missing {SIGNATURE_HEADER} header", gateway=self.name)
        parts: dict[str, list[str]] = {}
        for item in header.split(","):
            k, _, v = item.strip().partition("=")
            parts.setdefault(k, []).append(v)
        try:
            timestamp = int(parts["t"][0])
        except (KeyError, ValueError):
            raise WebhookVerificationFailed("signature header has no valid timestamp", gateway=self.name) from None
        if abs(self.clock() - timestamp) > self.tolerance:
            raise WebhookVerificationFailed(
                f"signature timestamp is outside the {self.tolerance} s tolerance", gateway=self.name
            )
        expected = sign(body, self._secret, timestamp).partition("v1=")[2]
        # compare bytes: compare_digest raises TypeError on non-ASCII str, and a header is untrusted
        candidates = [c.encode("utf-8", "surrogatepass") for c in parts.get("v1", [])]  # any str encodes
        if not any(hmac.compare_digest(expected.encode(), candidate) for candidate in candidates):
            raise WebhookVerificationFailed("signature does not match the body", gateway=self.name)

    def sign(self, body: bytes, timestamp: int | None = None) -> str:
        """Sign ``body`` as the fake does (for tests that craft their own deliveries)."""
        return sign(body, self._secret, int(self.clock()) if timestamp is None else timestamp)

    def _emit(self, event_type: EventType, payment: _Payment, **extra: Any) -> None:
        # An event about money moved names that money (a capture's, a refund's, a dispute's);
        # any other, what the payment is for.
        given: Money | None = extra.pop("amount", None)
        amount = payment.amount if given is None else given
        event_id = _new_id("evt")
        payload = {
            "id": event_id,
            "type": event_type.value,
            "created": int(self.clock()),
            "livemode": False,
            "data": {
                "payment_id": payment.id,
                "checkout_id": payment.checkout_id,
                "reference": payment.reference,
                "amount": str(amount.amount),
                "currency": amount.currency,
                **extra,
            },
        }
        self._outbox.append((event_id, event_type.value, json.dumps(payload, sort_keys=True).encode()))

    def drain_webhooks(
        self,
        *,
        duplicate: bool = False,
        reverse: bool = False,
        hold: Iterable[str] | Callable[[WebhookDelivery], bool] | None = None,
    ) -> list[WebhookDelivery]:
        """Take the pending webhooks, signed now. ``duplicate`` sends each twice; ``reverse`` out of order.

        ``hold`` keeps chosen events back for a later drain: event types (``{"payment.succeeded"}``)
        or a predicate on the delivery. Holding events and draining them later is a late
        delivery: each is signed at delivery time, as real providers sign each attempt.
        """
        held_types = None if hold is None or callable(hold) else _event_types(hold)
        with self._lock:
            pending, self._outbox = self._outbox, []
            deliveries: list[WebhookDelivery] = []
            for item in pending:
                event_id, event_type, body = item
                delivery = WebhookDelivery(
                    event_id, event_type, {SIGNATURE_HEADER: self.sign(body), "Content-Type": "application/json"}, body
                )
                held = event_type in held_types if held_types is not None else callable(hold) and hold(delivery)
                if held:
                    self._outbox.append(item)
                else:
                    deliveries.append(delivery)
        if reverse:
            deliveries.reverse()
        return [d for delivery in deliveries for d in ([delivery, delivery] if duplicate else [delivery])]

    def pending_webhooks(self) -> list[str]:
        """The types of the webhooks waiting in the outbox, oldest first."""
        with self._lock:
            return [event_type for _, event_type, _ in self._outbox]

    # -- hosted checkout: the payer's side ------------------------------------------------
    def complete_checkout(self, checkout_id: str, *, settle: bool = True) -> PaymentStatus:
        """The payer pays: the payment succeeds (or is authorized, for authorize-only).

        ``settle=False``: the payer finished with a method that settles later (a bank debit).
        The checkout is complete but the payment stays ``PENDING`` (``checkout.completed`` and
        ``payment.pending`` webhooks) until :meth:`settle_payment` or :meth:`fail_payment`.

        With ``host_completes_checkout`` (as PayPal), a checkout is only approved: it is complete,
        its payment ``PENDING`` with nothing captured or authorized, and only ``checkout.completed``
        is sent. For a ``capture=True`` checkout ``capture(CaptureRequest(checkout_id))`` then moves
        the money (``payment.succeeded``, or with ``settle=False`` ``payment.pending`` until
        :meth:`settle_payment`); an authorize-only one (``capture=False``) is held only once the
        host authorizes it, ``authorize(AuthorizeRequest(amount, payment_method=checkout_id))``
        (``payment.authorized``, or ``payment.pending`` until :meth:`settle_payment`), and is then
        captured by the authorization's id (see :meth:`gateway_authorize`). An approval nobody
        captures or authorizes lapses at the checkout's ``expires_at``: ``CANCELED``.
        """
        with self._lock:
            checkout = self._open_checkout(checkout_id)
            payment = self._payments[checkout.payment_id]
            checkout.status = CheckoutStatus.COMPLETE
            self._emit(EventType.CHECKOUT_COMPLETED, payment)
            if self.host_completes_checkout:
                # Approved only, as a PayPal order: the host's capture (or authorization) moves the money.
                if payment.capture_method == "automatic":
                    payment.awaiting_capture = True
                else:
                    payment.awaiting_authorization = True
                payment.settle_later = not settle
            elif settle:
                self._settle(payment)
            else:
                payment.state = PaymentState.PENDING
                self._emit(EventType.PAYMENT_PENDING, payment)
            log.info("fake.checkout.paid", gateway=self.name, checkout_id=checkout_id, settled=settle)
        return self.status(checkout_id)

    def settle_payment(self, payment_id: str) -> PaymentStatus:
        """A pending payment (``complete_checkout(..., settle=False)``) settles: it succeeds.

        Takes the payment's or its checkout's id. ``payment.succeeded`` (``payment.authorized``
        for an authorize-only checkout).
        """
        with self._lock:
            self._settle(self._pending(payment_id))
        return self.status(payment_id)

    def fail_payment(self, payment_id: str, failure_code: str = "insufficient_funds") -> PaymentStatus:
        """A pending payment fails after all (the debit bounced): ``payment.failed`` with ``failure_code``."""
        with self._lock:
            payment = self._pending(payment_id)
            payment.state = PaymentState.FAILED
            self._emit(EventType.PAYMENT_FAILED, payment, failure_code=failure_code)
        return self.status(payment_id)

    def complete_3ds(self, payment_id: str) -> PaymentStatus:
        """The payer passes 3-D Secure: the payment waiting in ``REQUIRES_ACTION`` is authorized."""
        with self._lock:
            payment = self._requires_action(payment_id)
            payment.state = PaymentState.AUTHORIZED
            self._emit(EventType.PAYMENT_AUTHORIZED, payment)
        return self.status(payment_id)

    def return_url(self, payment_id: str) -> str | None:
        """Where the payer of ``payment_id`` goes back after 3-D Secure: its ``AuthorizeRequest.return_url``.

        What the ``action_url`` carries and :class:`~gateway_core.fake.server.FakeCheckoutServer`
        redirects to once the payer passes or fails; ``None`` when the request gave none. A test
        without the server plays the payer with :meth:`complete_3ds` (or :meth:`fail_3ds`) and then
        requests this URL of its own app, as the payer's browser would.
        """
        with self._lock:
            return self._payment(payment_id).return_url

    def fail_3ds(self, payment_id: str, failure_code: str = "authentication_failed") -> PaymentStatus:
        """The payer fails (or abandons) 3-D Secure: the payment fails, ``payment.failed``."""
        with self._lock:
            payment = self._requires_action(payment_id)
            payment.state = PaymentState.FAILED
            self._emit(EventType.PAYMENT_FAILED, payment, failure_code=failure_code)
        return self.status(payment_id)

    def settle_refund(self, refund_id: str) -> Refund:
        """A pending refund (scripted ``Outcome.PENDING``) reaches the payer: it is ``SUCCEEDED``.

        Emits ``refund.succeeded``. The payment's ``amount_refunded`` counted it already, while it
        was pending. Only a ``PENDING`` refund settles: any other is an ``InvalidRequest``.
        """
        with self._lock:
            refund = self._refund(refund_id)
            if refund.status is not RefundStatus.PENDING:
                raise InvalidRequest(f"fake: refund {refund_id} is {refund.status}, not pending", gateway=self.name)
            payment = self._payments[refund.payment_id]
            settled = attrs.evolve(refund, status=RefundStatus.SUCCEEDED, raw=_raw(payment))
            self._refunds[refund_id] = settled
            self._emit(EventType.REFUND_SUCCEEDED, payment, refund_id=refund_id, amount=refund.amount)
            return settled

    def fail_refund(self, refund_id: str, failure_code: str = "expired_or_canceled_card") -> Refund:
        """The payer's bank returns a refund: it is ``FAILED`` and its amount counts as not refunded.

        Takes a succeeded refund or a pending one (which fails instead of settling). Emits
        ``refund.failed``; the payment's state and ``amount_refunded`` show the money kept, which
        is refundable again.
        """
        with self._lock:
            refund = self._refund(refund_id)
            if refund.status not in (RefundStatus.SUCCEEDED, RefundStatus.PENDING):
                raise InvalidRequest(f"fake: refund {refund_id} is {refund.status}", gateway=self.name)
            payment = self._payments[refund.payment_id]
            payment.refunded = payment.refunded - refund.amount
            payment.state = _refunded_state(payment)
            failed = attrs.evolve(refund, status=RefundStatus.FAILED, raw=_raw(payment))
            self._refunds[refund_id] = failed
            self._emit(
                EventType.REFUND_FAILED, payment, refund_id=refund_id, amount=refund.amount, failure_code=failure_code
            )
            return failed

    def refund(self, refund_id: str) -> Refund:
        """A refund as the fake has it now (``status`` changes with :meth:`settle_refund` and :meth:`fail_refund`)."""
        with self._lock:
            return self._refund(refund_id)

    def open_dispute(self, payment_id: str, *, amount: Money | None = None, reason: str = "fraudulent") -> str:
        """The payer disputes a paid payment with their bank: ``dispute.opened``; returns the dispute id.

        ``amount`` defaults to what was captured and not refunded. The payment's state is kept
        (the provider reports the dispute, not a new payment state); the webhook carries the
        amount, and ``dispute_id`` and ``reason`` in its raw payload.
        """
        with self._lock:
            payment = self._payment(payment_id)
            if not _is_paid(payment):
                raise InvalidRequest(f"fake: cannot dispute a payment that is {payment.state}", gateway=self.name)
            disputed = amount or payment.captured - payment.refunded
            if disputed.currency != payment.amount.currency or not disputed.is_positive or disputed > payment.captured:
                raise InvalidRequest(f"fake: cannot dispute {disputed} of {payment.captured}", gateway=self.name)
            dispute_id = _new_id("dp")
            self._emit(EventType.DISPUTE_OPENED, payment, amount=disputed, dispute_id=dispute_id, reason=reason)
            return dispute_id

    def decline_checkout(self, checkout_id: str, decline_code: str = "card_declined") -> PaymentStatus:
        """The payer's card is declined; the checkout stays open for another attempt.

        Emits ``payment.failed`` with ``decline_code`` for the attempt, and the payment stays
        ``PENDING`` (awaiting the payer), not ``FAILED``: the payer may try another card, so
        :meth:`complete_checkout` still pays it and :meth:`abandon_checkout` expires it. As on
        Stripe, where a declined attempt sends ``payment_intent.payment_failed`` and the
        PaymentIntent "returns to requires_payment_method so that the payment can be retried"
        (stripe.com/docs/payments/paymentintents/lifecycle) while its Checkout Session stays open
        (stripe_gateway ``normalize.payment_status``: ``PENDING``); and as on PayPal, where an
        ``INSTRUMENT_DECLINED`` has the payer "select a different payment option" (PayPal
        Checkout, "Handle funding failures") and the order stays uncaptured (``PENDING``).
        """
        with self._lock:
            checkout = self._open_checkout(checkout_id)
            payment = self._payments[checkout.payment_id]
            payment.state = PaymentState.PENDING  # awaiting the payer: the checkout takes another attempt
            self._emit(EventType.PAYMENT_FAILED, payment, failure_code=decline_code)
        return self.status(checkout_id)

    def abandon_checkout(self, checkout_id: str) -> PaymentStatus:
        """The payer walks away; the checkout expires and its payment is canceled."""
        with self._lock:
            self._expire(self._open_checkout(checkout_id))
        return self.status(checkout_id)

    def checkout(self, checkout_id: str) -> CheckoutSession:
        with self._lock:
            checkout = self._checkouts.get(checkout_id)
            if checkout is None:
                raise NotFound(f"fake: no checkout {_shown(checkout_id)}", gateway=self.name)
            self._expire_if_due(checkout)
            return self._session(checkout)

    def payments_made(self) -> int:
        """How many payments were created (a retry that made a second one would show here)."""
        with self._lock:
            return len(self._payments)

    def refunds_made(self) -> int:
        with self._lock:
            return len(self._refunds)

    # -- internals ------------------------------------------------------------------------
    def _settle(self, payment: _Payment) -> None:
        """The money arrives: succeeded (captured) for automatic capture, authorized otherwise."""
        if payment.capture_method == "automatic":
            payment.state = PaymentState.SUCCEEDED
            payment.captured = payment.amount
            self._emit(EventType.PAYMENT_SUCCEEDED, payment, amount=payment.captured)
        else:
            payment.state = PaymentState.AUTHORIZED
            self._emit(EventType.PAYMENT_AUTHORIZED, payment)

    def _resolved(self, object_id: str) -> str:
        """The payment id behind ``object_id``: a checkout's payment, else ``object_id`` itself."""
        checkout = self._checkouts.get(object_id)
        return checkout.payment_id if checkout is not None else object_id

    def _refuse_unpaid_checkout(self, payment: _Payment, operation: str) -> None:
        """A checkout's payment the payer has not paid yet (the checkout is open): nothing to ``operation``.

        As the Stripe plugin refuses a ``cs_`` with no PaymentIntent yet ("has no payment yet") and
        PayPal an order with no capture: an ``InvalidRequest``, nothing changed.
        """
        checkout = self._checkouts.get(payment.checkout_id or "")
        if checkout is None:
            return
        self._expire_if_due(checkout)
        if checkout.status is CheckoutStatus.OPEN:
            raise InvalidRequest(
                f"fake: checkout {checkout.id} is open: the payer has not paid yet, so there is nothing to {operation}",
                gateway=self.name,
            )

    def _by_payment_or_checkout(self, object_id: str) -> _Payment:
        checkout = self._checkouts.get(object_id)
        return self._payments[checkout.payment_id] if checkout is not None else self._payment(object_id)

    def _pending(self, object_id: str) -> _Payment:
        payment = self._by_payment_or_checkout(object_id)
        checkout = self._checkouts.get(payment.checkout_id or "")
        if (
            payment.state is not PaymentState.PENDING
            or payment.awaiting_host  # approved only: nothing settles before the host captures or authorizes
            or checkout is None
            or checkout.status is not CheckoutStatus.COMPLETE
        ):
            raise InvalidRequest(
                f"fake: payment {payment.id} is not a completed checkout's pending payment ({payment.state})",
                gateway=self.name,
            )
        return payment

    def _requires_action(self, payment_id: str) -> _Payment:
        payment = self._payment(payment_id)
        if payment.state is not PaymentState.REQUIRES_ACTION:
            raise InvalidRequest(
                f"fake: payment {payment.id} is {payment.state}, not awaiting 3-D Secure", gateway=self.name
            )
        return payment

    def _refund(self, refund_id: str) -> Refund:
        refund = self._refunds.get(refund_id)
        if refund is None:
            raise NotFound(f"fake: no refund {_shown(refund_id)}", gateway=self.name, http_status=404)
        return refund

    def _payment(self, payment_id: str) -> _Payment:
        payment = self._payments.get(payment_id)
        if payment is None:
            raise NotFound(f"fake: no payment {_shown(payment_id)}", gateway=self.name, http_status=404)
        return payment

    def _open_checkout(self, checkout_id: str) -> _Checkout:
        checkout = self._checkouts.get(checkout_id)
        if checkout is None:
            raise NotFound(f"fake: no checkout {_shown(checkout_id)}", gateway=self.name)
        self._expire_if_due(checkout)
        if checkout.status is not CheckoutStatus.OPEN:
            raise InvalidRequest(f"fake: checkout {checkout_id} is {checkout.status}", gateway=self.name)
        return checkout

    def _expire_if_due(self, checkout: _Checkout) -> None:
        lapses = checkout.status is CheckoutStatus.OPEN or self._payments[checkout.payment_id].awaiting_host
        if lapses and datetime.fromtimestamp(self.clock(), UTC) >= checkout.expires_at:
            self._expire(checkout)
            checkout.forgotten = self.forgets_lapsed_checkouts

    def _refuse_forgotten(self, object_id: str) -> None:
        """``forgets_lapsed_checkouts``: ``NotFound`` for a lapsed checkout, by its id or its payment's.

        PayPal forgets an order never completed once its approval window ends: "Any order that
        doesn't get completed, within a set amount of time, will automatically expire. The default
        amount of time is 3 hours" (PayPal on paypal/Checkout-PHP-SDK#84), after which
        ``GET /v2/checkout/orders/{id}`` answers 404 ``RESOURCE_NOT_FOUND`` / ``INVALID_RESOURCE_ID``
        (shopware/SwagPayPal#679: an order past its ~3 hours "PayPal no longer recognises";
        shopware/shopware#6850), and so does its capture (go-pay/gopay#409). The PayPal plugin
        raises a 404 as ``NotFound`` (tests/paypal_gateway/test_errors.py, the recorded 404 of
        test_recorded.py), for a status read, capture, authorize, void and refund alike. A checkout
        whose money was captured or authorized never lapses, so it is never forgotten.
        """
        checkout = self._checkouts.get(object_id)
        if checkout is None:
            payment = self._payments.get(object_id)
            checkout = self._checkouts.get(payment.checkout_id or "") if payment is not None else None
        if checkout is None:
            return
        self._expire_if_due(checkout)
        if checkout.forgotten:
            raise NotFound(
                f"fake: no checkout or payment {_shown(object_id)} (it lapsed uncompleted and is forgotten)",
                gateway=self.name,
                http_status=404,
                provider_code="RESOURCE_NOT_FOUND",
            )

    def _cannot_close(self, checkout: _Checkout) -> CapabilityNotSupported:
        """``closes_checkouts = false``: a void of a checkout still open, as the PayPal plugin refuses it.

        PayPal has no call that cancels or expires an order (Orders v2: create, get, patch,
        confirm, authorize, capture); the plugin's ``gateway_void`` raises this, nothing changed,
        for an order not approved, or approved and not captured or authorized (docs/paypal.md,
        ``void(VoidRequest(order_id))``).
        """
        return CapabilityNotSupported(
            f"fake: cannot close checkout {checkout.id} ({checkout.status}): this gateway, as PayPal, has no call "
            "that cancels or expires a checkout. Nothing was changed; it lapses on its own when its expiry passes "
            f"({checkout.expires_at.isoformat()}). Do not capture or authorize it, and treat a payment that lands "
            "anyway as a late one",
            gateway=self.name,
            provider_code="ORDER_CANNOT_BE_CLOSED",
        )

    def _expire(self, checkout: _Checkout) -> None:
        checkout.status = CheckoutStatus.EXPIRED
        payment = self._payments[checkout.payment_id]
        payment.awaiting_capture = payment.awaiting_authorization = False
        payment.state = PaymentState.CANCELED
        self._emit(EventType.CHECKOUT_EXPIRED, payment)

    def _session(self, checkout: _Checkout) -> CheckoutSession:
        return CheckoutSession(
            self.name,
            checkout.id,
            checkout.url,
            checkout.request.amount,
            checkout.status,
            checkout.expires_at,
            payment_id=checkout.payment_id,
            reference=checkout.request.reference,
            live=False,
            raw={"id": checkout.id, "status": checkout.status.value, "livemode": False},
        )


def _refunded_state(payment: _Payment) -> PaymentState:
    """A captured payment's state from what is refunded of it."""
    if not payment.refunded:
        return PaymentState.SUCCEEDED
    return PaymentState.REFUNDED if payment.refunded == payment.captured else PaymentState.PARTIALLY_REFUNDED


def _is_paid(payment: _Payment) -> bool:
    return payment.state in (PaymentState.SUCCEEDED, PaymentState.PARTIALLY_REFUNDED, PaymentState.REFUNDED)


def _host_completes_checkout(settings: GatewaySettings) -> bool:
    """The ``host_completes_checkout`` setting: a boolean (default false)."""
    return _boolean(settings, "host_completes_checkout")


#: The boolean settings and their defaults (as Stripe: the provider closes, captures and keeps checkouts).
_BOOLEAN_DEFAULTS: Mapping[str, bool] = MappingProxyType(
    {"host_completes_checkout": False, "closes_checkouts": True, "forgets_lapsed_checkouts": False}
)


def _boolean(settings: GatewaySettings, name: str) -> bool:
    """A boolean setting (``true`` or ``false``; anything else, a ``"false"`` string too, is refused)."""
    value = settings.settings.get(name, _BOOLEAN_DEFAULTS[name])
    if not isinstance(value, bool):
        raise ConfigurationError(
            f"gateway {settings.name!r}: {name} must be true or false, not {_kind(value)}",
            gateway=settings.name,
        )
    return value


def _as_host_completing(declared: Capabilities, settings: GatewaySettings) -> Capabilities:
    """``declared`` with ``host_completes_checkout`` as the setting says (it needs ``authorize_capture``)."""
    if not _host_completes_checkout(settings):
        return declared
    features = _listed_features(settings) if "features" in settings.settings else declared.features
    if Feature.AUTHORIZE_CAPTURE not in features:
        raise ConfigurationError(
            f"gateway {settings.name!r}: host_completes_checkout = true needs the authorize_capture "
            "feature: the host completes a checkout with capture (or authorize)",
            gateway=settings.name,
        )
    return attrs.evolve(declared, host_completes_checkout=True)


def _checkout_expiry(settings: GatewaySettings) -> CheckoutExpiry | None:
    """The ``checkout_expiry_minutes`` setting: a window, or ``None`` for ``false``."""
    value = settings.settings["checkout_expiry_minutes"]
    if value is False:
        return None
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise ConfigurationError(
            f"gateway {settings.name!r}: checkout_expiry_minutes must be [shortest, longest] in whole "
            f"minutes (e.g. [30, 1440]) or false for none, not {_kind(value)}",
            gateway=settings.name,
        )
    try:
        return CheckoutExpiry.minutes(value[0], value[1])
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"gateway {settings.name!r}: checkout_expiry_minutes = [{value[0]}, {value[1]}] is not a window: "
            "it needs 0 <= shortest < longest",
            gateway=settings.name,
        ) from exc


_FEATURE_NAME = re.compile(r"[a-z_]{1,40}")
_FEATURE_VALUES = frozenset(f.value for f in Feature)


def _listed_features(settings: GatewaySettings) -> frozenset[Feature]:
    """The ``features`` setting: a list of :class:`Feature` values (unknown names refused)."""
    value = settings.settings["features"]
    known = ", ".join(f.value for f in Feature)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(
            f'gateway {settings.name!r}: features must be a list of feature names (e.g. ["hosted_checkout", '
            f'"refund"]), not {_kind(value)}; known: {known}',
            gateway=settings.name,
        )
    unknown = [v for v in value if v not in _FEATURE_VALUES]
    if unknown:
        # Name what looks like a misspelt feature; anything else (a misplaced secret?) is only counted.
        shown = [repr(v) for v in unknown if _FEATURE_NAME.fullmatch(v)]
        hidden = len(unknown) - len(shown)
        named = ", ".join([*shown, *([f"{hidden} other entries"] if hidden else [])])
        raise ConfigurationError(
            f"gateway {settings.name!r}: features lists unknown features ({named}); known: {known}",
            gateway=settings.name,
        )
    return frozenset(Feature(v) for v in value)


_EVENT_TYPES = frozenset(t.value for t in EventType)


def _event_types(hold: Iterable[str]) -> set[str]:
    """``drain_webhooks``' ``hold`` as event type names; one that would hold nothing is refused.

    A single str would be read letter by letter, and a misspelt type matches no event: either way
    the test would go on with every webhook delivered, believing some were held.
    """
    if isinstance(hold, str):
        raise InvalidRequest(f"hold takes a collection of event types, not one str (use {{{str(hold)!r}}})")
    names = list(hold)
    unknown = [n for n in names if not isinstance(n, str) or n not in _EVENT_TYPES]
    if unknown:
        raise InvalidRequest(
            f"hold names unknown event types: {', '.join(map(repr, unknown))}; known: {', '.join(sorted(_EVENT_TYPES))}"
        )
    return {str(n) for n in names}


def _kind(value: object) -> str:
    """A setting's shape for an error message (never its value: a misplaced secret must not show)."""
    if isinstance(value, list | tuple):
        return f"a list of {len(value)}"
    return type(value).__name__


def _raw(payment: _Payment) -> dict[str, Any]:
    return {
        "id": payment.id,
        "state": payment.state.value,
        "amount": str(payment.amount.amount),
        "currency": payment.amount.currency,
        "livemode": False,
    }
