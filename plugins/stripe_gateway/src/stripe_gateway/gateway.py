"""The Stripe gateway object: one per configured gateway, implementing the operation hooks.

This module does not import the ``stripe`` SDK when it is imported, nor when a gateway is built
(``GatewayManager(config)`` builds every configured gateway, and ``gateway route`` reads only
metadata): the SDK is imported, and the :class:`stripe.StripeClient` built, the first time an
operation needs it (:attr:`StripeGateway.client`, built once under a lock). ``gateway_close``
closes the sync client's HTTP sessions (every thread's: :class:`~stripe_gateway._http.ThreadSessions`)
if the client was built, and imports nothing otherwise.

Each operation is written once as a generator that yields the SDK calls it needs (:class:`_Call`);
under the sync API it is driven with the SDK's sync methods, and under the asyncio API
(``context.asynchronous``: the provider is declared ``asyncio_native``) the hook returns a
coroutine that drives it with their ``*_async`` twins over httpx.

Every POST carries ``context.idempotency_key`` (the cancel of a completed Checkout Session's
PaymentIntent in ``void`` carries a key derived from it: :func:`_sub_key`); the SDK's own retries
(``max_network_retries``, default 2 here, the SDK's default being none) reuse it, so a retry never
creates a second object.

Done already: a capture or cancel Stripe refuses because the PaymentIntent is captured or canceled
already (``payment_intent_unexpected_state``; perhaps by the operation's own lost attempt, retried
under another key or after Stripe pruned the key) is ``OutcomeUnknown`` with ``retryable=False``
(``errors.py``), unless the PaymentIntent Stripe shows is exactly what was asked: then that capture
or void is the answer (:meth:`StripeGateway._captured_before`, :meth:`StripeGateway._cancel`).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar
from urllib.parse import urlsplit

import attrs
import structlog

from gateway_core.capabilities import CurrencyRule
from gateway_core.config import GatewaySettings, Secret
from gateway_core.errors import (
    AmountOutOfRange,
    AuthenticationRequired,
    ConfigurationError,
    GatewayError,
    GatewayUnavailable,
    InvalidRequest,
    OutcomeUnknown,
    PaymentDeclined,
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
    CheckResult,
    OperationContext,
    PaymentState,
    PaymentStatus,
    Refund,
    RefundRequest,
    StatusRequest,
    Void,
    VoidRequest,
    WebhookEvent,
    WebhookRequest,
)
from gateway_core.money import Money
from stripe_gateway import _sdklog, normalize
from stripe_gateway.errors import UNEXPECTED_STATE, error_intent, find_out, map_stripe_errors, redact, translate
from stripe_gateway.metadata import RESTRICTED_CURRENCIES, STRIPE_API_VERSION, currency_rules

if TYPE_CHECKING:
    import stripe
    from stripe.params import (
        PaymentIntentCaptureParams,
        PaymentIntentCreateParams,
        PaymentIntentRetrieveParams,
        RefundCreateParams,
    )
    from stripe.params.checkout import (
        SessionCreateParams,
        SessionCreateParamsPaymentIntentData,
        SessionListParams,
        SessionRetrieveParams,
    )

    from stripe_gateway._http import ThreadSessions

T = TypeVar("T")


@attrs.frozen
class _Call:
    """One SDK call an operation asks its driver to make (``method`` or ``method_async``)."""

    service: Any
    method: str
    args: tuple[Any, ...]
    mutating: bool


#: An operation written once, without I/O: it yields SDK calls and receives their results (plain
#: dicts, or a gateway-core error thrown in), so the same code runs on the sync and the async client.
_Operation = Generator[_Call, dict[str, Any], T]

__all__ = [
    "CHECKOUT_LOCALES",
    "DEFAULT_MAX_NETWORK_RETRIES",
    "DEFAULT_TOLERANCE",
    "StripeGateway",
    "WebhookAccountMismatch",
]

log = structlog.get_logger("stripe_gateway")

DEFAULT_MAX_NETWORK_RETRIES = 2
DEFAULT_TOLERANCE = 300
DEFAULT_TIMEOUT = 30.0
SIGNATURE_HEADER = "Stripe-Signature"

#: Checkout's ``locale`` values (stripe-python 16.1.0 ``SessionCreateParams.locale``).
CHECKOUT_LOCALES: frozenset[str] = frozenset(
    [
        "auto",
        "bg",
        "cs",
        "da",
        "de",
        "el",
        "en",
        "en-GB",
        "es",
        "es-419",
        "et",
        "fi",
        "fil",
        "fr",
        "fr-CA",
        "hi-IN",
        "hr",
        "hu",
        "id",
        "it",
        "ja",
        "ko",
        "lt",
        "lv",
        "ms",
        "mt",
        "nb",
        "nl",
        "pl",
        "pt",
        "pt-BR",
        "ro",
        "ru",
        "sk",
        "sl",
        "sv",
        "th",
        "tr",
        "vi",
        "zh",
        "zh-HK",
        "zh-TW",
    ]
)
#: Stripe's refund reasons; any other reason text travels in the refund's metadata.
REFUND_REASONS: frozenset[str] = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
MAX_LINE_ITEMS = 100
_METADATA_KEY_MAX = 40
_METADATA_VALUE_MAX = 500
_MAX_KEY_LEN = 255  # Stripe idempotency keys: "up to 255 characters"
_REPLAY_MEMORY = 10_000


#: States of a completed Checkout Session's PaymentIntent that no void can undo, and what to do
#: instead (Stripe cancels a Checkout PaymentIntent only while it awaits capture).
_NOT_VOIDABLE: Mapping[str, str] = {
    "succeeded": "was captured; refund it instead",
    "processing": "is still processing; wait for its outcome, then refund it if it succeeds",
}


#: States of a PaymentIntent that received nothing and cannot be captured: a capture Stripe refuses
#: in one of them took nothing, now or before.
_NOTHING_CAPTURED: Mapping[str, str] = {
    "canceled": "was canceled",
    "requires_payment_method": "has no authorized payment method",
    "requires_confirmation": "was never confirmed",
    "requires_action": "still awaits the payer's authentication",
}


def _minor(value: object) -> TypeGuard[int]:
    """An amount in minor units as Stripe sends it (an int, not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _multicapture(pi: Mapping[str, Any]) -> bool:
    """Whether the PaymentIntent asked for several captures (then one amount does not tell them apart)."""
    options = pi.get("payment_method_options")
    card = options.get("card") if isinstance(options, Mapping) else None
    return isinstance(card, Mapping) and card.get("request_multicapture") not in (None, "never")


class WebhookAccountMismatch(WebhookVerificationFailed):
    """A genuine, signed event for another Stripe account than the one this gateway acts for.

    Connect endpoints receive the events of every connected account on one URL, each naming its
    account in ``account``; the platform's own events have none. A gateway bound to
    ``connected_account`` believes only that account's events, a platform gateway only the
    platform's. ``account`` is the event's, ``expected`` this gateway's (``None``: the platform).
    A host that mounts one URL for several gateways can route on ``account`` and parse again.
    """

    def __init__(self, message: str, *, account: str | None, expected: str | None, gateway: str) -> None:
        super().__init__(message, gateway=gateway)
        self.account = account
        self.expected = expected


class StripeGateway:
    """One configured Stripe gateway (account, or connected account) as a gateway object."""

    def __init__(
        self,
        name: str,
        *,
        api_key: Secret,
        webhook_secret: Secret | None = None,
        api_base: str | None = None,
        connected_account: str | None = None,
        max_network_retries: int = DEFAULT_MAX_NETWORK_RETRIES,
        webhook_tolerance: int = DEFAULT_TOLERANCE,
        timeout: float = DEFAULT_TIMEOUT,
        enable_currencies: Iterable[str] = (),
        refuse_replayed_webhooks: bool = True,
        localstripe_compatible: bool = False,
        http_client: stripe.HTTPClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for setting, secret in (("api_key", api_key), ("webhook_secret", webhook_secret)):
            if secret is not None and not _token_shaped(secret.reveal()):
                raise ConfigurationError(  # never the value: it is the secret
                    f"gateway {name!r}: {setting} holds whitespace or a character that is not printable ASCII "
                    "(a newline kept from the file it was read from?)",
                    gateway=name,
                )
        self.name = name
        self.refuse_replayed_webhooks = refuse_replayed_webhooks
        self.localstripe_compatible = localstripe_compatible
        self.connected_account = connected_account
        self.webhook_tolerance = webhook_tolerance
        self.clock = clock
        self._api_key = api_key
        self._api_base = _api_base(api_base, name)
        self._max_network_retries = max_network_retries
        self._timeout = timeout
        self._http_client = http_client
        self._webhook_secret = webhook_secret
        self._rules: Mapping[str, CurrencyRule] = currency_rules()
        enabled = frozenset(enable_currencies)
        unknown = enabled - RESTRICTED_CURRENCIES
        if unknown:
            raise ConfigurationError(
                f"gateway {name!r}: enable_currencies may list only {sorted(RESTRICTED_CURRENCIES)}, "
                f"not {sorted(unknown)}",
                gateway=name,
            )
        self._offered = [c for c in self._rules if c not in RESTRICTED_CURRENCIES or c in enabled]
        self._wire = normalize.Wire(self._rules, name)
        self._seen_deliveries: OrderedDict[bytes, float] = OrderedDict()
        self._seen_lock = threading.Lock()
        self._client: stripe.StripeClient | None = None
        # The sync client's sessions, when this gateway built its HTTP client (gateway_close closes them).
        self._sessions: ThreadSessions | None = None
        # stripe.StripeError, read once with the client: the SDK's module __getattr__ runs
        # importlib.import_module on every attribute read, once per request if read in _drive.
        self._sdk_error: type[stripe.StripeError] | None = None
        self._client_lock = threading.Lock()

    @property
    def client(self) -> stripe.StripeClient:
        """The SDK client, built (and the SDK imported) on first use, once, under a lock."""
        client = self._client
        if client is None:
            with self._client_lock:
                client = self._client
                if client is None:
                    client = self._build_client()
                    self._sdk_error = _sdk_error_class()
                    self._client = client
        return client

    def _build_client(self) -> stripe.StripeClient:
        import stripe  # noqa: PLC0415  (the SDK loads only when an operation needs it)

        from stripe_gateway._http import AsyncHTTPClient, ThreadSessions  # noqa: PLC0415  (imports the SDK too)

        _sdklog.install()  # the SDK's own debug lines carry request and response bodies
        http_client = self._http_client
        if http_client is None:  # one handed in (a test's seam) is its owner's to close
            self._sessions = ThreadSessions()
            http_client = stripe.RequestsClient(
                timeout=self._timeout,
                session=self._sessions,  # type: ignore[arg-type]  # duck-typed: the SDK calls request() and close()
                async_fallback_client=AsyncHTTPClient(timeout=self._timeout),
            )
        return stripe.StripeClient(
            self._api_key.reveal(),
            stripe_account=self.connected_account,
            stripe_version=STRIPE_API_VERSION,
            base_addresses={"api": self._api_base} if self._api_base else None,
            max_network_retries=self._max_network_retries,
            http_client=http_client,
        )

    @classmethod
    def from_settings(
        cls,
        settings: GatewaySettings,
        *,
        http_client: stripe.HTTPClient | None = None,
        localstripe_compatible: bool = False,
    ) -> StripeGateway:
        """Factory for the ``stripe`` provider; see :mod:`stripe_gateway` for the settings.

        ``http_client`` replaces the SDK's HTTP client (tests inject faults through it), and
        ``localstripe_compatible`` leaves out ``automatic_payment_methods`` when authorizing,
        which localstripe rejects (the cassette-recording tests use it). Neither is a setting:
        a ``gateway.toml`` cannot turn on what only a test needs.
        """
        name = settings.name
        known = {
            "api_key",
            "webhook_secret",
            "api_base",
            "connected_account",
            "max_network_retries",
            "webhook_tolerance",
            "timeout",
            "enable_currencies",
            "refuse_replayed_webhooks",
        }
        settings.refuse_unknown(known)
        api_key = settings.secret("api_key")
        if not api_key.reveal().startswith(("sk_", "rk_")):
            raise ConfigurationError(
                f"gateway {name!r}: api_key must be a secret (sk_) or restricted (rk_) key", gateway=name
            )
        webhook_secret = settings.get("webhook_secret")
        if webhook_secret is not None and not isinstance(webhook_secret, Secret):
            raise ConfigurationError(f"gateway {name!r}: webhook_secret must be a secret", gateway=name)
        api_base = settings.get("api_base")
        if api_base is not None and not isinstance(api_base, str):
            raise ConfigurationError(f"gateway {name!r}: api_base must be an http(s) URL", gateway=name)
        account = settings.get("connected_account")
        if account is not None and (not isinstance(account, str) or not account.startswith("acct_")):
            raise ConfigurationError(f"gateway {name!r}: connected_account must be an acct_ id", gateway=name)
        retries = _int_setting(settings, "max_network_retries", DEFAULT_MAX_NETWORK_RETRIES, 0, 10)
        tolerance = _int_setting(settings, "webhook_tolerance", DEFAULT_TOLERANCE, 1, 3600)
        timeout = _int_setting(settings, "timeout", int(DEFAULT_TIMEOUT), 1, 600)
        enable = settings.get("enable_currencies", [])
        if not isinstance(enable, list) or not all(isinstance(c, str) for c in enable):
            raise ConfigurationError(f"gateway {name!r}: enable_currencies must be a list of codes", gateway=name)
        refuse_replays = settings.get("refuse_replayed_webhooks", True)
        if not isinstance(refuse_replays, bool):
            raise ConfigurationError(f"gateway {name!r}: refuse_replayed_webhooks must be true or false", gateway=name)
        return cls(
            name,
            refuse_replayed_webhooks=refuse_replays,
            localstripe_compatible=localstripe_compatible,
            api_key=api_key,
            webhook_secret=webhook_secret,
            api_base=api_base,
            connected_account=account,
            max_network_retries=retries,
            webhook_tolerance=tolerance,
            timeout=float(timeout),
            enable_currencies=enable,
            http_client=http_client,
        )

    # -- metadata hooks -------------------------------------------------------------------
    @hookimpl
    def gateway_supported_currencies(self) -> Iterable[str] | None:
        """Everything declared except the restricted currencies this gateway has not enabled."""
        return list(self._offered)

    # -- lifecycle hook -------------------------------------------------------------------
    @hookimpl
    def gateway_close(self) -> None:
        """Close the sync client's HTTP sessions, every thread's; nothing (and no SDK import) if never built.

        The async client keeps no connection past its request (``AsyncHTTPClient``), and an HTTP
        client handed to the gateway is not closed here: its owner closes it.
        """
        with self._client_lock:  # a client being built is finished first
            sessions = self._sessions
        if sessions is not None:
            sessions.close()

    # -- helpers --------------------------------------------------------------------------
    def _options(self, context: OperationContext) -> stripe.RequestOptions:
        if not context.idempotency_key:
            raise InvalidRequest(f"{context.operation} needs an idempotency key", gateway=self.name)
        return {"idempotency_key": context.idempotency_key}

    def _debug(self, context: OperationContext, event: str, **fields: Any) -> None:
        # One call, no bind(): a bound logger per operation costs more than the line it may not print.
        log.debug(event, gateway=self.name, operation=context.operation, **fields)

    def _call(self, service: Any, method: str, *args: Any, mutating: bool) -> _Call:
        return _Call(service, method, args, mutating)

    def _run(self, operation: _Operation[T], context: OperationContext) -> T | Awaitable[T]:
        """Drive ``operation`` with the sync client, or (``context.asynchronous``) the async one."""
        if context.asynchronous:
            return self._drive_async(operation, context.operation)
        return self._drive(operation, context.operation)

    def _drive(self, operation: _Operation[T], what: str) -> T:
        acted = False  # a mutating call was answered: Stripe acted
        try:
            call = next(operation)  # builds the client (and reads the SDK's error class) if need be
            sdk_error = self._sdk_error or _sdk_error_class()
            while True:
                try:
                    obj = getattr(call.service, call.method)(*call.args)
                except sdk_error as exc:
                    error = translate(exc, self.name, mutating=call.mutating, operation=what)
                    error.__cause__ = exc
                    call = operation.throw(error)
                else:
                    acted = acted or call.mutating
                    try:
                        call = operation.send(_plain(obj))
                    except _ANSWER_FAULTS as exc:
                        raise self._unusable_answer(what, exc, acted=acted) from exc
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _drive_async(self, operation: _Operation[T], what: str) -> T:
        if self._client is None:
            # The first operation imports the SDK and builds the client (half a second): on a
            # worker thread, once, so that it never stalls the event loop's other tasks.
            await asyncio.to_thread(lambda: self.client)
        acted = False  # as in _drive
        try:
            call = next(operation)  # as in _drive
            sdk_error = self._sdk_error or _sdk_error_class()
            while True:
                try:
                    obj = await getattr(call.service, call.method + "_async")(*call.args)
                except sdk_error as exc:
                    error = translate(exc, self.name, mutating=call.mutating, operation=what)
                    error.__cause__ = exc
                    call = operation.throw(error)
                else:
                    acted = acted or call.mutating
                    try:
                        call = operation.send(_plain(obj))
                    except _ANSWER_FAULTS as exc:
                        raise self._unusable_answer(what, exc, acted=acted) from exc
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def _unusable_answer(self, what: str, exc: Exception, *, acted: bool) -> GatewayUnavailable:
        """A Stripe answer the operation could not read: never the host's error, never a bare KeyError.

        Once a mutating call was answered, Stripe acted: :class:`OutcomeUnknown`, not retryable,
        since Stripe replays the saved answer to the same key; the message says how to find out
        what happened (:func:`~stripe_gateway.errors.find_out`). After reads only,
        :class:`GatewayUnavailable`.
        """
        if isinstance(exc, normalize.MalformedAnswer):
            problem = exc.message.removeprefix("stripe: ")
        elif isinstance(exc, KeyError):
            problem = f"no {exc.args[0]!r} field" if exc.args else "a field is missing"
        else:
            problem = "a field has the wrong type"
        text = f"stripe: the answer to {what} could not be read ({problem})"
        if acted:
            return OutcomeUnknown(
                f"{text}; Stripe acted, and a retry with the same key gets the same answer: {find_out(what)}",
                gateway=self.name,
                retryable=False,
            )
        return GatewayUnavailable(text, gateway=self.name)

    def _resolve_intent(self, payment_id: str) -> _Operation[str]:
        """The PaymentIntent id behind ``payment_id`` (a PaymentIntent or a Checkout Session)."""
        if not payment_id.startswith("cs_"):
            return payment_id
        session = yield self._call(self.client.v1.checkout.sessions, "retrieve", payment_id, mutating=False)
        intent = normalize._id(session.get("payment_intent"))
        if intent is None:
            raise InvalidRequest(
                f"stripe: checkout {payment_id} has no payment yet (status {session.get('status')})", gateway=self.name
            )
        return intent

    def _retrieve_intent(self, intent_id: str) -> _Operation[dict[str, Any]]:
        params: PaymentIntentRetrieveParams = {"expand": ["latest_charge"]}
        return (yield self._call(self.client.v1.payment_intents, "retrieve", intent_id, params, mutating=False))

    def _check_currency(self, amount: Money, obj: Mapping[str, Any]) -> None:
        if str(obj.get("currency", "")).upper() != amount.currency:
            raise InvalidRequest(
                f"stripe: payment is in {str(obj.get('currency')).upper()}, not {amount.currency}", gateway=self.name
            )

    def _metadata(self, metadata: Mapping[str, str], reference: str | None = None) -> dict[str, str]:
        data = dict(metadata)
        if reference is not None:
            data.setdefault("reference", reference)
        for key, value in data.items():
            if len(key) > _METADATA_KEY_MAX or len(value) > _METADATA_VALUE_MAX:
                raise InvalidRequest(
                    f"stripe: metadata keys are at most {_METADATA_KEY_MAX} and values {_METADATA_VALUE_MAX} characters",
                    gateway=self.name,
                )
        return data

    def _fee(self, fee: Money | None) -> int | None:
        if fee is None:
            return None
        if self.connected_account is None:
            raise ConfigurationError(
                f"gateway {self.name!r}: an application fee needs connected_account (a Connect direct charge)",
                gateway=self.name,
            )
        return self._wire.to_minor(fee)

    # -- operation hooks ------------------------------------------------------------------
    @hookimpl
    def gateway_create_checkout(
        self, request: CheckoutRequest, context: OperationContext
    ) -> CheckoutSession | Awaitable[CheckoutSession]:
        return self._run(self._create_checkout(request, context), context)

    def _create_checkout(self, request: CheckoutRequest, context: OperationContext) -> _Operation[CheckoutSession]:
        params = self._checkout_params(request)
        options = self._options(context)
        session = yield self._call(self.client.v1.checkout.sessions, "create", params, options, mutating=True)
        result = normalize.checkout_session(session, self._wire, self.name, amount=request.amount)
        if not result.url:  # a hosted payment-mode session always has one; without it no payer can pay
            raise normalize.MalformedAnswer("stripe: the new checkout session has no url", gateway=self.name)
        self._debug(context, "stripe.checkout.created", checkout_id=result.id, live=result.live)
        return result

    def _checkout_params(self, request: CheckoutRequest) -> SessionCreateParams:
        """Validate ``request`` for Stripe and build the Checkout Session parameters (no I/O)."""
        if len(request.line_items) > MAX_LINE_ITEMS:
            raise InvalidRequest(f"stripe: at most {MAX_LINE_ITEMS} line items", gateway=self.name)
        params: SessionCreateParams = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": item.quantity,
                    "price_data": {
                        "currency": item.unit_amount.currency.lower(),
                        "unit_amount": self._wire.to_minor(item.unit_amount),
                        "product_data": {"name": item.name},
                    },
                }
                for item in request.line_items
            ],
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
        }
        if request.reference is not None:
            params["client_reference_id"] = request.reference
        metadata = self._metadata(request.metadata)
        if metadata:
            params["metadata"] = metadata
        if request.customer_email is not None:
            params["customer_email"] = request.customer_email
        if request.expires_at is not None:  # the core checked it against metadata.CHECKOUT_MIN_TTL/MAX_TTL
            params["expires_at"] = int(request.expires_at.timestamp())
        if request.locale is not None:
            params["locale"] = self._locale(request.locale)
        intent_data: SessionCreateParamsPaymentIntentData = {}
        if not request.capture:
            intent_data["capture_method"] = "manual"
        fee = self._fee(request.application_fee)
        if fee is not None:
            intent_data["application_fee_amount"] = fee
        # The session's metadata stays on the session; the PaymentIntent Stripe creates gets its
        # own, so payment_intent.* webhooks and pi_ status lookups carry the reference too.
        intent_metadata = self._metadata(request.metadata, request.reference)
        if intent_metadata:
            intent_data["metadata"] = intent_metadata
        if intent_data:
            params["payment_intent_data"] = intent_data
        return params

    def _locale(self, locale: str) -> Any:
        if locale in CHECKOUT_LOCALES:
            return locale
        language = locale.split("-", maxsplit=1)[0].lower()
        if language in CHECKOUT_LOCALES:
            return language
        raise InvalidRequest(f"stripe: Checkout has no locale {locale!r}", gateway=self.name)

    @hookimpl
    def gateway_authorize(
        self, request: AuthorizeRequest, context: OperationContext
    ) -> Authorization | Awaitable[Authorization]:
        return self._run(self._authorize(request, context), context)

    def _authorize(self, request: AuthorizeRequest, context: OperationContext) -> _Operation[Authorization]:
        params: PaymentIntentCreateParams = {
            "amount": self._wire.to_minor(request.amount),
            "currency": request.amount.currency.lower(),
            "payment_method": request.payment_method,
            # No redirect-based methods: the host holds a payment method token, not a browser.
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            "confirm": True,
            "capture_method": "manual",
        }
        if self.localstripe_compatible:
            del params["automatic_payment_methods"]  # localstripe rejects the parameter
        metadata = self._metadata(request.metadata, request.reference)
        if metadata:
            params["metadata"] = metadata
        if request.customer_email is not None:
            params["receipt_email"] = request.customer_email
        fee = self._fee(request.application_fee)
        if fee is not None:
            params["application_fee_amount"] = fee
        if request.return_url is not None:
            # With a return_url, a card that needs 3-D Secure gets next_action redirect_to_url (a
            # Stripe-hosted page that sends the payer back there); without one, use_stripe_sdk,
            # which only Stripe.js can finish (docs.stripe.com/payments/3d-secure/authentication-flow,
            # "Redirect to the bank website"; return_url "can only be used with confirm=true").
            params["return_url"] = request.return_url
        options = self._options(context)
        pi = yield self._call(self.client.v1.payment_intents, "create", params, options, mutating=True)
        state = normalize.intent_state(pi)
        if state is PaymentState.REQUIRES_ACTION:
            # The URL is the host's to redirect to, never a log line or a message: Stripe's carries
            # the authentication's client secret (.../src_client_secret_...).
            raise AuthenticationRequired(
                f"stripe: payment {pi['id']} needs the payer to authenticate",
                action_url=_redirect_url(pi),
                payment_id=pi["id"],
                gateway=self.name,
                provider_code="authentication_required",
            )
        if state is PaymentState.FAILED:
            error = pi.get("last_payment_error") or {}
            raise PaymentDeclined(
                f"stripe: payment {pi['id']} was declined",
                decline_code=error.get("decline_code") or error.get("code"),
                gateway=self.name,
                provider_code=error.get("code"),
            )
        self._debug(context, "stripe.authorize.done", payment_id=pi["id"], state=state.value)
        return Authorization(
            self.name,
            str(pi["id"]),
            self._wire.money(pi["amount"], pi["currency"]),
            state,
            live=bool(pi.get("livemode", False)),
            raw=pi,
        )

    @hookimpl
    def gateway_capture(self, request: CaptureRequest, context: OperationContext) -> Capture | Awaitable[Capture]:
        return self._run(self._capture(request, context), context)

    def _capture(self, request: CaptureRequest, context: OperationContext) -> _Operation[Capture]:
        options = self._options(context)
        intent_id = yield from self._resolve_intent(request.payment_id)
        params: PaymentIntentCaptureParams = {}
        if request.amount is not None:
            current = yield from self._retrieve_intent(intent_id)
            self._check_currency(request.amount, current)
            capturable = current.get("amount_capturable")
            limit = capturable if isinstance(capturable, int) and capturable > 0 else current.get("amount")
            minor = self._wire.to_minor(request.amount)
            if isinstance(limit, int) and minor > limit:
                raise AmountOutOfRange(
                    f"stripe: cannot capture {request.amount}; {self._wire.money(limit, current['currency'])} is authorized",
                    gateway=self.name,
                )
            params["amount_to_capture"] = minor
        asked = params.get("amount_to_capture")
        try:
            pi = yield self._call(self.client.v1.payment_intents, "capture", intent_id, params, options, mutating=True)
        except OutcomeUnknown as exc:
            if exc.provider_code != UNEXPECTED_STATE:
                raise
            refused = exc  # captured already (perhaps by this capture's lost attempt), or canceled
        else:
            self._debug(context, "stripe.capture.done", payment_id=pi["id"])
            return self._capture_result(pi, request.amount)
        now = yield from self._intent_now(intent_id, refused)
        return self._captured_before(now, asked, refused, context)

    def _capture_result(self, pi: Mapping[str, Any], requested: Money | None) -> Capture:
        received = pi.get("amount_received")
        if isinstance(received, int) and received > 0:
            amount = self._wire.money(received, pi["currency"])
        else:
            amount = requested or self._wire.money(pi["amount"], pi["currency"])
        charge = normalize._charge(pi)  # latest_charge, or the charge older API versions embed
        charge_id = normalize._id(pi.get("latest_charge")) or (normalize._id(charge.get("id")) if charge else None)
        return Capture(
            self.name,
            charge_id or str(pi["id"]),
            str(pi["id"]),
            amount,
            normalize.intent_state(pi),
            live=bool(pi.get("livemode", False)),
            raw=pi,
        )

    def _intent_now(self, intent_id: str, refused: OutcomeUnknown) -> _Operation[dict[str, Any]]:
        """PaymentIntent ``intent_id`` as Stripe's ``payment_intent_unexpected_state`` ``refused`` shows it.

        Stripe puts the PaymentIntent, as it is now, in the error (``errors.error_intent``); an
        answer without it (an older or trimmed one) has it read back. A read that fails raises
        ``refused`` (the host reads the status).
        """
        intent = error_intent(refused)
        if intent is not None and intent.get("id") == intent_id:
            return intent
        try:
            intent = yield from self._retrieve_intent(intent_id)
        except GatewayError:
            raise refused  # noqa: B904  (its cause stays Stripe's refusal; the failed read is its context)
        if intent.get("id") != intent_id:
            raise refused
        return intent

    def _found_before(self, context: OperationContext, pi: Mapping[str, Any], refused: OutcomeUnknown) -> None:
        log.info(
            "stripe.found_before",
            gateway=self.name,
            operation=context.operation,
            payment_id=pi.get("id"),
            status=pi.get("status"),
            provider_code=refused.provider_code,
            request_id=refused.request_id,
        )

    def _captured_before(
        self, pi: Mapping[str, Any], asked: int | None, refused: OutcomeUnknown, context: OperationContext
    ) -> Capture:
        """Stripe refused a capture of ``pi`` (``payment_intent_unexpected_state``): its capture, if it is the one asked.

        Stripe captures a PaymentIntent once (``requires_capture`` → ``succeeded``; the plugin
        never asks for multicapture), and ``amount_received`` is what that capture took. So when
        ``pi`` is ``succeeded``, did not request multicapture, and received exactly what this
        capture asks -- ``asked`` minor units, or for a capture in full (``asked is None``) the
        whole ``amount``, which is what was capturable -- it is the capture a replay of the first
        attempt would have returned: the same charge, never a second one. A PaymentIntent that
        received nothing and cannot be captured (canceled, never authorized) is
        :class:`InvalidRequest`: nothing was captured. Anything else (another amount, several
        captures possible, ``processing``) raises ``refused``: the host reads the status.
        """
        status = pi.get("status")
        received = pi.get("amount_received")
        wanted = pi.get("amount") if asked is None else asked
        if status == "succeeded" and not _multicapture(pi) and _minor(received) and received > 0 and received == wanted:
            try:
                capture = self._capture_result(pi, None)
            except _ANSWER_FAULTS:
                raise refused  # noqa: B904  (an answer this gateway cannot read shows nothing)
            self._found_before(context, pi, refused)
            return capture
        never = _NOTHING_CAPTURED.get(str(status))
        if never is not None and _minor(received) and received == 0:
            raise InvalidRequest(
                f"stripe: payment {pi.get('id')} {never}: nothing was captured, and it cannot be captured",
                gateway=self.name,
                **refused.provider_fields(),
            ) from refused
        raise refused

    def _cancel(
        self, intent_id: str, options: stripe.RequestOptions, context: OperationContext
    ) -> _Operation[dict[str, Any]]:
        """Cancel PaymentIntent ``intent_id``: Stripe's answer, or the PaymentIntent canceled already.

        Stripe refuses to cancel a PaymentIntent that is ``canceled`` or ``succeeded`` already
        (``payment_intent_unexpected_state``). Canceled, and holding no captured money, is what
        a void asks, and a void moves no money: that PaymentIntent is the answer (this void's
        lost first attempt, a retry with another key, may have canceled it). A captured one is
        :class:`InvalidRequest`, saying to refund it. Anything else raises the refusal.
        """
        intents = self.client.v1.payment_intents
        try:
            return (yield self._call(intents, "cancel", intent_id, None, options, mutating=True))
        except OutcomeUnknown as exc:
            if exc.provider_code != UNEXPECTED_STATE:
                raise
            refused = exc
        pi = yield from self._intent_now(intent_id, refused)
        status = str(pi.get("status"))
        received = pi.get("amount_received")
        if status == "canceled" and _minor(received) and received == 0:
            self._found_before(context, pi, refused)
            return pi
        refusal = _NOT_VOIDABLE.get(status)
        if refusal is not None:
            raise InvalidRequest(
                f"stripe: payment {intent_id} {refusal}", gateway=self.name, **refused.provider_fields()
            ) from refused
        raise refused

    @hookimpl
    def gateway_void(self, request: VoidRequest, context: OperationContext) -> Void | Awaitable[Void]:
        return self._run(self._void(request, context), context)

    def _void(self, request: VoidRequest, context: OperationContext) -> _Operation[Void]:
        """Cancel an authorization: a ``pi_`` directly; a ``cs_`` by what the session has become.

        An open session is expired (nothing was paid). A completed one holds its money on its
        PaymentIntent, and only an open session can be expired (Stripe: "Only open sessions can
        be expired"), so its PaymentIntent is canceled instead -- an authorize-only session
        (``capture=False``) the payer completed is exactly that case. An expired session has
        nothing left to void and sends nothing.
        """
        options = self._options(context)
        if not request.payment_id.startswith("cs_"):
            pi = yield from self._cancel(request.payment_id, options, context)
            self._debug(context, "stripe.void.done", payment_id=pi["id"])
            return Void(
                self.name, str(pi["id"]), normalize.intent_state(pi), live=bool(pi.get("livemode", False)), raw=pi
            )
        sessions = self.client.v1.checkout.sessions
        params: SessionRetrieveParams = {"expand": ["payment_intent"]}
        session = yield self._call(sessions, "retrieve", request.payment_id, params, mutating=False)
        if session.get("status") == "open":
            try:
                expired = yield self._call(sessions, "expire", request.payment_id, None, options, mutating=True)
            except InvalidRequest:
                # The payer completed it between our read and the expiry: read it again.
                session = yield self._call(sessions, "retrieve", request.payment_id, params, mutating=False)
                if session.get("status") == "open":
                    raise
            else:
                self._debug(context, "stripe.checkout.expired", checkout_id=expired["id"])
                return Void(
                    self.name,
                    normalize._id(expired.get("payment_intent")) or str(expired["id"]),
                    PaymentState.CANCELED,
                    live=bool(expired.get("livemode", False)),
                    raw=expired,
                )
        intent = session.get("payment_intent")
        if session.get("status") == "expired" or (isinstance(intent, Mapping) and intent.get("status") == "canceled"):
            self._debug(context, "stripe.void.already", checkout_id=session["id"])
            return Void(
                self.name,
                normalize._id(intent) or str(session["id"]),
                PaymentState.CANCELED,
                live=bool(session.get("livemode", False)),
                raw=session,
            )
        if not isinstance(intent, Mapping):
            raise InvalidRequest(
                f"stripe: checkout {session['id']} is {session.get('status')} but has no payment to void",
                gateway=self.name,
            )
        refusal = _NOT_VOIDABLE.get(str(intent.get("status")))
        if refusal is not None:
            raise InvalidRequest(f"stripe: payment {intent['id']} {refusal}", gateway=self.name)
        # Stripe binds a key to the endpoint it was first used on, and this void's key may already
        # have gone to /expire (the payer completed the session meanwhile): the cancel of the
        # session's PaymentIntent always takes a key derived from it, the same on every retry.
        cancel_options: stripe.RequestOptions = {**options, "idempotency_key": _sub_key(options, "cancel-intent")}
        pi = yield from self._cancel(str(intent["id"]), cancel_options, context)
        self._debug(context, "stripe.void.done", payment_id=pi["id"], checkout_id=session["id"])
        return Void(self.name, str(pi["id"]), normalize.intent_state(pi), live=bool(pi.get("livemode", False)), raw=pi)

    @hookimpl
    def gateway_refund(self, request: RefundRequest, context: OperationContext) -> Refund | Awaitable[Refund]:
        return self._run(self._refund(request, context), context)

    def _refund(self, request: RefundRequest, context: OperationContext) -> _Operation[Refund]:
        """Refund by PaymentIntent (or a ``cs_`` resolved to one) or by charge (``ch_``/``py_``).

        For a chosen amount the payment is read first, whichever id names it, and a refund in
        another currency is refused before anything is sent: Stripe reads the integer in the
        payment's own currency, so 5 JPY sent against a EUR charge would refund 0.05 EUR.

        What remains to refund is left to Stripe (``amount_too_large``/``charge_already_refunded``
        map to :class:`~gateway_core.errors.AmountOutOfRange`): a retry with the key of a refund
        that went through while its answer was lost must reach Stripe, which replays the refund,
        rather than be refused here because the refund itself shrank what remains.
        """
        options = self._options(context)
        payment_id = request.payment_id
        params: RefundCreateParams = {}
        by_charge = payment_id.startswith(("ch_", "py_"))
        if by_charge:
            params["charge"] = payment_id
        else:
            payment_id = yield from self._resolve_intent(payment_id)
            params["payment_intent"] = payment_id
        if request.amount is not None:
            if by_charge:
                paid = yield self._call(self.client.v1.charges, "retrieve", payment_id, mutating=False)
            else:
                paid = yield from self._retrieve_intent(payment_id)
            self._check_currency(request.amount, paid)
            params["amount"] = self._wire.to_minor(request.amount)
        if request.reason in REFUND_REASONS:
            params["reason"] = request.reason
        elif request.reason:
            params["metadata"] = {"reason": request.reason[:_METADATA_VALUE_MAX]}
        obj = yield self._call(self.client.v1.refunds, "create", params, options, mutating=True)
        result = normalize.refund(obj, self._wire, self.name, payment_id=payment_id, reason=request.reason)
        self._debug(context, "stripe.refund.created", refund_id=result.id, status=result.status.value)
        return result

    @hookimpl
    def gateway_payment_status(
        self, request: StatusRequest, context: OperationContext
    ) -> PaymentStatus | Awaitable[PaymentStatus]:
        return self._run(self._payment_status(request), context)

    def _payment_status(self, request: StatusRequest) -> _Operation[PaymentStatus]:
        if request.payment_id.startswith("cs_"):
            params: SessionRetrieveParams = {"expand": ["payment_intent", "payment_intent.latest_charge"]}
            sessions = self.client.v1.checkout.sessions
            session = yield self._call(sessions, "retrieve", request.payment_id, params, mutating=False)
            pi = session.get("payment_intent")
            return normalize.payment_status(
                pi if isinstance(pi, Mapping) else None, self._wire, self.name, session=session
            )
        intent = yield from self._retrieve_intent(request.payment_id)
        status = normalize.payment_status(intent, self._wire, self.name)
        if status.state is not PaymentState.FAILED:
            return status  # paid, pending, authorized, canceled...: the PaymentIntent alone decides
        # A declined attempt: final only if no open Checkout Session still takes another card. A
        # host has the pi_ from payment_intent.payment_failed (its event carries only the
        # PaymentIntent), so the session is found by it and decides as for a cs_ lookup.
        made_by = yield from self._intent_session(status.payment_id)
        if made_by is None:
            return status  # made by authorize (or outside Checkout): nothing else takes a payment
        return normalize.payment_status(intent, self._wire, self.name, session=made_by)

    def _intent_session(self, intent_id: str) -> _Operation[dict[str, Any] | None]:
        """The Checkout Session that made PaymentIntent ``intent_id``, or ``None`` if none did.

        ``GET /v1/checkout/sessions?payment_intent=...``: Stripe's List Checkout Sessions, whose
        ``payment_intent`` filter "Only return[s] the Checkout Session for the PaymentIntent
        specified" (stripe/openapi spec3.yaml, GetCheckoutSessions; docs.stripe.com/api/checkout/
        sessions/list). Only a session that names ``intent_id`` counts: an answer that ignored the
        filter never lends another payment's session to this one.
        """
        params: SessionListParams = {"payment_intent": intent_id}
        listed = yield self._call(self.client.v1.checkout.sessions, "list", params, mutating=False)
        data = listed.get("data")
        if not isinstance(data, list):
            raise normalize.MalformedAnswer("stripe: the list of checkout sessions has no data", gateway=self.name)
        return next(
            (s for s in data if isinstance(s, dict) and normalize._id(s.get("payment_intent")) == intent_id), None
        )

    @hookimpl
    def gateway_parse_webhook(
        self, request: WebhookRequest, context: OperationContext
    ) -> WebhookEvent | Awaitable[WebhookEvent]:
        """Verify and normalize a delivery; under asyncio, the first one loads the SDK off the loop.

        Verifying is CPU-only and short, so it runs inline, on the loop under asyncio; but the first
        delivery a process verifies imports the SDK (half a second), and a process that only receives
        webhooks never builds the client (:meth:`_drive_async`), which imports it on a thread.
        """
        if context.asynchronous and not _webhook_sdk_loaded:
            return self._parse_webhook_async(request)
        return self.parse_webhook(request)

    async def _parse_webhook_async(self, request: WebhookRequest) -> WebhookEvent:
        await asyncio.to_thread(_load_webhook_sdk)
        return self.parse_webhook(request)

    def parse_webhook(self, request: WebhookRequest) -> WebhookEvent:
        """The hook's work, synchronously: :meth:`verify_webhook`, then the event it holds, normalized."""
        payload = self.verify_webhook(request.header(SIGNATURE_HEADER), request.body)
        account = payload.get("account")
        if account != self.connected_account:
            raise WebhookAccountMismatch(
                f"stripe: event for {_account_label(account)}, but gateway {self.name!r} acts for "
                f"{_account_label(self.connected_account)}",
                account=account if isinstance(account, str) else None,
                expected=self.connected_account,
                gateway=self.name,
            )
        try:
            return normalize.event(payload, self._wire, self.name)
        except (KeyError, TypeError, ValueError) as exc:
            raise WebhookVerificationFailed(
                f"stripe: verified webhook has a malformed payload ({type(exc).__name__})", gateway=self.name
            ) from exc

    def verify_webhook(self, header: str | None, body: bytes) -> dict[str, Any]:
        """Verify ``body`` against its ``Stripe-Signature`` header with the SDK, then decode it.

        Refuses a missing or wrong signature, a timestamp older than the tolerance or further
        in the future than it (the SDK checks only the past), and -- unless
        ``refuse_replayed_webhooks`` is off -- a signed delivery already accepted by this gateway
        object: the same timestamp and body (the signed payload, whatever else the header holds).
        Stripe signs every retry of an event afresh, so a genuine redelivery still passes; the
        host deduplicates those on the event id, across processes (see docs/stripe.md).
        """
        if self._webhook_secret is None:
            raise ConfigurationError(f"gateway {self.name!r} has no webhook_secret", gateway=self.name)
        if not header:
            raise WebhookVerificationFailed(f"stripe: missing {SIGNATURE_HEADER} header", gateway=self.name)
        if not header.isascii():  # Stripe's is; hmac would raise TypeError comparing non-ASCII text
            raise WebhookVerificationFailed(f"stripe: {SIGNATURE_HEADER} header is not ASCII", gateway=self.name)
        try:  # the SDK decodes the body and would let a UnicodeDecodeError out; Stripe sends UTF-8 JSON
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WebhookVerificationFailed("stripe: webhook body is not UTF-8", gateway=self.name) from exc
        import stripe  # noqa: PLC0415  (verifying a webhook is an operation: the SDK loads here)

        with map_stripe_errors(self.name, mutating=False):
            stripe.WebhookSignature.verify_header(body, header, self._webhook_secret.reveal(), None)
        timestamp = _signature_timestamp(header)
        now = self.clock()
        if timestamp is None or abs(now - timestamp) > self.webhook_tolerance:
            raise WebhookVerificationFailed(
                f"stripe: signature timestamp is outside the {self.webhook_tolerance} s tolerance", gateway=self.name
            )
        if self.refuse_replayed_webhooks:
            self._refuse_replay(hashlib.sha256(b"%d." % timestamp + body).digest(), now)
        try:
            decoded = json.loads(body)
        except ValueError as exc:
            raise WebhookVerificationFailed("stripe: webhook body is not JSON", gateway=self.name) from exc
        if not isinstance(decoded, dict):
            raise WebhookVerificationFailed("stripe: webhook body is not a JSON object", gateway=self.name)
        return decoded

    def _refuse_replay(self, delivery: bytes, now: float) -> None:
        """Remember ``delivery`` (a digest of the signed payload); refuse it if already seen.

        A delivery is remembered for twice the tolerance after it was accepted (its timestamp
        may be up to one tolerance ahead, and it stays valid one tolerance after that); older
        ones would be refused as stale anyway. At most ``_REPLAY_MEMORY`` are kept, oldest
        forgotten first, so memory is bounded whatever the traffic.
        """
        horizon = now - 2 * self.webhook_tolerance
        with self._seen_lock:
            seen = self._seen_deliveries
            while seen:
                oldest, accepted = next(iter(seen.items()))
                if accepted >= horizon:
                    break
                del seen[oldest]
            if delivery in seen:
                raise WebhookVerificationFailed("stripe: this signed delivery was already accepted", gateway=self.name)
            seen[delivery] = now
            while len(seen) > _REPLAY_MEMORY:
                seen.popitem(last=False)

    # -- configuration check --------------------------------------------------------------
    @hookimpl
    def gateway_check(self, context: OperationContext) -> Sequence[CheckResult] | Awaitable[Sequence[CheckResult]]:
        """Is the key accepted, and does a restricted key hold the write permissions we need?

        Write permissions are probed with requests that cannot change anything: expiring a
        Checkout Session, updating a Product and a Price, canceling a PaymentIntent and updating
        a Refund, each under an id that does not exist. Stripe checks the key's permission first
        (403 naming it), then the object (404).

        Products and Prices write are advisory (:data:`_ADVISORY`): the plugin sends only inline
        ``price_data``/``product_data`` and creates no Product or Price itself, and whether Stripe
        wants those permissions for inline data is not known, so lacking them is reported
        (``ok`` stays true, the detail says what is missing) and does not fail the check. No
        setting makes the plugin use Products or Prices; one that did would make them required.
        """
        return self._run(self._check(), context)

    def _check(self) -> _Operation[Sequence[CheckResult]]:
        v1 = self.client.v1
        results: list[CheckResult] = []
        try:
            yield self._call(v1.checkout.sessions, "list", {"limit": 1}, mutating=False)
        except GatewayError as exc:
            if exc.code.value != "permission_denied":
                return [CheckResult("credentials", False, exc.message)]
        results.append(CheckResult("credentials", True, "the API key is accepted"))
        missing = f"gc_check_{uuid.uuid4().hex[:16]}"
        probes: list[tuple[str, Any, str, str, dict[str, Any] | None]] = [
            ("Checkout Sessions write", v1.checkout.sessions, "expire", f"cs_{missing}", None),
            ("Products write", v1.products, "update", f"prod_{missing}", {}),
            ("Prices write", v1.prices, "update", f"price_{missing}", {}),
            ("PaymentIntents write", v1.payment_intents, "cancel", f"pi_{missing}", None),
            ("Refunds write", v1.refunds, "update", f"re_{missing}", {}),
        ]
        for i, (permission, service, method, object_id, params) in enumerate(probes):
            name = f"permission: {permission}"
            options: stripe.RequestOptions = {"idempotency_key": f"{missing}-{i}"}
            try:
                yield self._call(service, method, object_id, params, options, mutating=False)
            except GatewayError as exc:
                code = exc.code.value
                if code == "not_found":
                    results.append(CheckResult(name, True, "granted"))
                    continue
                if code == "permission_denied":
                    named = getattr(exc, "permission", None) or permission
                    problem = f"missing: the key lacks {named}"
                else:
                    problem = f"could not check: {redact(exc.message)}"
                if permission in _ADVISORY:
                    results.append(CheckResult(name, True, f"advisory, not a failure: {problem}; {_ADVISORY_WHY}"))
                else:
                    results.append(CheckResult(name, False, problem))
            else:
                results.append(CheckResult(name, True, "granted"))
        log.bind(gateway=self.name).debug("stripe.check.done", ok=all(r.ok for r in results))
        return results


#: Permissions ``gateway check`` reports without failing on: the plugin sends inline ``price_data``
#: and ``product_data`` only, and no setting makes it create or use Products or Prices.
_ADVISORY: frozenset[str] = frozenset({"Products write", "Prices write"})
_ADVISORY_WHY = (
    "the plugin sends inline price_data and creates no Products or Prices, and Stripe is not known to "
    "need this permission for that; grant it if checkouts are refused for lack of it"
)

#: Raised while reading an answer Stripe gave: the answer's fault (see StripeGateway._unusable_answer).
_ANSWER_FAULTS = (normalize.MalformedAnswer, KeyError, IndexError, TypeError)


def _redirect_url(pi: Mapping[str, Any]) -> str | None:
    """Where to send the payer of a ``requires_action`` PaymentIntent: ``next_action.redirect_to_url.url``.

    Only for ``next_action.type == "redirect_to_url"`` (Stripe's answer when the confirmation
    carried a ``return_url``); ``use_stripe_sdk`` (none was sent) has no page a host can redirect
    to -- its ``stripe_js`` address is Stripe.js's to open -- so it is ``None``, as for any other type.
    """
    action = pi.get("next_action")
    if not isinstance(action, Mapping) or action.get("type") != "redirect_to_url":
        return None
    redirect = action.get("redirect_to_url")
    return normalize._text(redirect.get("url")) if isinstance(redirect, Mapping) else None


#: Whether :func:`_load_webhook_sdk` has run in this process (set once, never unset).
_webhook_sdk_loaded = False


def _load_webhook_sdk() -> None:
    """Import what verifying a webhook uses: the SDK, its signature helper and its error classes.

    The SDK's module ``__getattr__`` imports ``stripe._webhook`` and ``stripe._error`` on the first
    read of ``WebhookSignature`` and ``StripeError``, so reading them here imports them here too.
    """
    global _webhook_sdk_loaded  # noqa: PLW0603  (a once-per-process flag; a race only repeats the imports)
    import stripe  # noqa: PLC0415  (the SDK loads only when an operation needs it)

    stripe.WebhookSignature  # noqa: B018  (imports stripe._webhook)
    stripe.StripeError  # noqa: B018  (imports stripe._error)
    _webhook_sdk_loaded = True


def _sdk_error_class() -> type[stripe.StripeError]:
    """The SDK's base error class (importing the SDK if it is not yet)."""
    import stripe  # noqa: PLC0415  (the SDK loads only when an operation needs it)

    return stripe.StripeError


def _sub_key(options: stripe.RequestOptions, what: str) -> str:
    """A stable idempotency key for a second request of one operation, derived from its key.

    Stripe keys are at most 255 characters; a derived key that would be longer is hashed.
    """
    key = f"{options['idempotency_key']}:{what}"
    return key if len(key) <= _MAX_KEY_LEN else "gc-" + hashlib.sha256(key.encode()).hexdigest()


def _plain(obj: stripe.StripeObject) -> dict[str, Any]:
    """The object as Stripe sent it: the response's parsed JSON (cheaper than ``to_dict()``)."""
    response = obj.last_response
    if response is not None and isinstance(response.data, dict) and response.data.get("id") == getattr(obj, "id", None):
        return response.data
    return obj.to_dict()


def _account_label(account: object) -> str:
    return f"connected account {account}" if isinstance(account, str) else "the platform account"


def _api_base(value: object, name: str) -> str | None:
    """``api_base`` checked: an https URL, or http only to a loopback host (a local stand-in).

    A plain-http base elsewhere would send the secret key in cleartext.
    """
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise ConfigurationError(f"gateway {name!r}: api_base must be an http(s) URL", gateway=name)
    split = urlsplit(value)
    if not split.hostname:
        raise ConfigurationError(f"gateway {name!r}: api_base has no host", gateway=name)
    if split.scheme == "http" and not _is_loopback(split.hostname):
        raise ConfigurationError(
            f"gateway {name!r}: api_base must use https for {split.hostname} (plain http would send the API key "
            "in cleartext); http is allowed only for loopback hosts",
            gateway=name,
        )
    return value.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _token_shaped(value: str) -> bool:
    """Printable ASCII without whitespace, as Stripe's keys and signing secrets are.

    A key with a newline (read from a file with it) makes ``requests`` refuse the header with an
    error that quotes it whole, and the SDK carries that text in its ``APIConnectionError``; a
    signing secret with one makes every genuine webhook fail verification.
    """
    return value.isascii() and value.isprintable() and not any(c.isspace() for c in value)


def _signature_timestamp(header: str) -> int | None:
    """The header's one timestamp, or ``None`` if it has none, several or an unreadable one.

    The SDK verifies the signature over the first item named exactly ``t``; a header with a
    second, padded one (`` t=NOW,t=OLD,v1=...``) must not have ``NOW`` judged for staleness and
    replays while ``OLD`` was what was signed. Stripe sends one ``t``: anything else is refused.
    """
    values = [value for key, _, value in (item.partition("=") for item in header.split(",")) if key.strip() == "t"]
    if len(values) != 1:
        return None
    try:
        return int(values[0])
    except ValueError:
        return None


def _int_setting(settings: GatewaySettings, key: str, default: int, low: int, high: int) -> int:
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(
            f"gateway {settings.name!r}: {key} must be an integer from {low} to {high}", gateway=settings.name
        )
    return value
