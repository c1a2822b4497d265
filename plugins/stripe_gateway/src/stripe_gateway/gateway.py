"""The Stripe gateway object: one per configured gateway, implementing the operation hooks.

This is the only module (with :mod:`stripe_gateway.errors`) that imports the ``stripe`` SDK. It
uses :class:`stripe.StripeClient` and its ``v1`` namespace. Each operation is written once as a
generator that yields the SDK calls it needs (:class:`_Call`); under the sync API it is driven with
the SDK's sync methods, and under the asyncio API (``context.asynchronous``: the provider is
declared ``asyncio_native``) the hook returns a coroutine that drives it with their ``*_async``
twins over httpx.

Every POST carries ``context.idempotency_key``; the SDK's own retries (``max_network_retries``,
default 2 here, the SDK's default being none) reuse it, so a retry never creates a second object.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import stripe
import structlog

from gateway_core.capabilities import CurrencyRule
from gateway_core.config import GatewaySettings, Secret
from gateway_core.errors import (
    AmountOutOfRange,
    AuthenticationRequired,
    ConfigurationError,
    GatewayError,
    InvalidRequest,
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
from stripe_gateway import normalize
from stripe_gateway.errors import map_stripe_errors, redact
from stripe_gateway.metadata import RESTRICTED_CURRENCIES, STRIPE_API_VERSION, currency_rules

if TYPE_CHECKING:
    from stripe.params import (
        PaymentIntentCaptureParams,
        PaymentIntentCreateParams,
        PaymentIntentRetrieveParams,
        RefundCreateParams,
    )
    from stripe.params.checkout import (
        SessionCreateParams,
        SessionCreateParamsPaymentIntentData,
        SessionRetrieveParams,
    )

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

__all__ = ["CHECKOUT_LOCALES", "DEFAULT_MAX_NETWORK_RETRIES", "DEFAULT_TOLERANCE", "StripeGateway"]

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
_REPLAY_MEMORY = 10_000


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
        refuse_replayed_webhooks: bool = False,
        localstripe_compatible: bool = False,
        http_client: stripe.HTTPClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.refuse_replayed_webhooks = refuse_replayed_webhooks
        self.localstripe_compatible = localstripe_compatible
        self.connected_account = connected_account
        self.webhook_tolerance = webhook_tolerance
        self.clock = clock
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
        self._seen_signatures: OrderedDict[str, float] = OrderedDict()
        self._seen_lock = threading.Lock()
        self.client = stripe.StripeClient(
            api_key.reveal(),
            stripe_account=connected_account,
            stripe_version=STRIPE_API_VERSION,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=max_network_retries,
            http_client=http_client
            or stripe.RequestsClient(timeout=timeout, async_fallback_client=AsyncHTTPClient(timeout=timeout)),
        )

    @classmethod
    def from_settings(cls, settings: GatewaySettings, *, http_client: stripe.HTTPClient | None = None) -> StripeGateway:
        """Factory for the ``stripe`` provider; see :mod:`stripe_gateway` for the settings.

        ``http_client`` replaces the SDK's HTTP client (tests inject faults through it).
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
            "localstripe_compatible",
        }
        unknown = sorted(set(settings.settings) - known)
        if unknown:
            raise ConfigurationError(f"gateway {name!r} (stripe): unknown settings {', '.join(unknown)}", gateway=name)
        api_key = settings.secret("api_key")
        if not api_key.reveal().startswith(("sk_", "rk_")):
            raise ConfigurationError(
                f"gateway {name!r}: api_key must be a secret (sk_) or restricted (rk_) key", gateway=name
            )
        webhook_secret = settings.get("webhook_secret")
        if webhook_secret is not None and not isinstance(webhook_secret, Secret):
            raise ConfigurationError(f"gateway {name!r}: webhook_secret must be a secret", gateway=name)
        api_base = settings.get("api_base")
        if api_base is not None and (not isinstance(api_base, str) or not api_base.startswith(("https://", "http://"))):
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
        refuse_replays = settings.get("refuse_replayed_webhooks", False)
        if not isinstance(refuse_replays, bool):
            raise ConfigurationError(f"gateway {name!r}: refuse_replayed_webhooks must be true or false", gateway=name)
        compatible = settings.get("localstripe_compatible", False)
        if not isinstance(compatible, bool):
            raise ConfigurationError(f"gateway {name!r}: localstripe_compatible must be true or false", gateway=name)
        return cls(
            name,
            refuse_replayed_webhooks=refuse_replays,
            localstripe_compatible=compatible,
            api_key=api_key,
            webhook_secret=webhook_secret,
            api_base=api_base.rstrip("/") if api_base else None,
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

    # -- helpers --------------------------------------------------------------------------
    def _options(self, context: OperationContext) -> stripe.RequestOptions:
        if not context.idempotency_key:
            raise InvalidRequest(f"{context.operation} needs an idempotency key", gateway=self.name)
        return {"idempotency_key": context.idempotency_key}

    def _log(self, context: OperationContext) -> Any:
        return log.bind(gateway=self.name, operation=context.operation)

    def _call(self, service: Any, method: str, *args: Any, mutating: bool) -> _Call:
        return _Call(service, method, args, mutating)

    def _run(self, operation: _Operation[T], context: OperationContext) -> T | Awaitable[T]:
        """Drive ``operation`` with the sync client, or (``context.asynchronous``) the async one."""
        if context.asynchronous:
            return self._drive_async(operation)
        return self._drive(operation)

    def _drive(self, operation: _Operation[T]) -> T:
        try:
            call = next(operation)
            while True:
                try:
                    with map_stripe_errors(self.name, mutating=call.mutating):
                        result = _plain(getattr(call.service, call.method)(*call.args))
                except GatewayError as exc:
                    call = operation.throw(exc)
                else:
                    call = operation.send(result)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _drive_async(self, operation: _Operation[T]) -> T:
        try:
            call = next(operation)
            while True:
                try:
                    with map_stripe_errors(self.name, mutating=call.mutating):
                        result = _plain(await getattr(call.service, call.method + "_async")(*call.args))
                except GatewayError as exc:
                    call = operation.throw(exc)
                else:
                    call = operation.send(result)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

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

    def _check_currency(self, amount: Money, pi: Mapping[str, Any]) -> None:
        if str(pi.get("currency", "")).upper() != amount.currency:
            raise InvalidRequest(
                f"stripe: payment is in {str(pi.get('currency')).upper()}, not {amount.currency}", gateway=self.name
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
        self._log(context).debug("stripe.checkout.created", checkout_id=result.id, live=result.live)
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
        options = self._options(context)
        pi = yield self._call(self.client.v1.payment_intents, "create", params, options, mutating=True)
        state = normalize.intent_state(pi)
        if state is PaymentState.REQUIRES_ACTION:
            action = (pi.get("next_action") or {}).get("redirect_to_url") or {}
            raise AuthenticationRequired(
                f"stripe: payment {pi['id']} needs the payer to authenticate",
                action_url=action.get("url"),
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
        self._log(context).debug("stripe.authorize.done", payment_id=pi["id"], state=state.value)
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
        pi = yield self._call(self.client.v1.payment_intents, "capture", intent_id, params, options, mutating=True)
        received = pi.get("amount_received")
        if isinstance(received, int) and received > 0:
            amount = self._wire.money(received, pi["currency"])
        else:
            amount = request.amount or self._wire.money(pi["amount"], pi["currency"])
        charge_id = normalize._id(pi.get("latest_charge"))
        self._log(context).debug("stripe.capture.done", payment_id=pi["id"])
        return Capture(
            self.name,
            charge_id or str(pi["id"]),
            str(pi["id"]),
            amount,
            normalize.intent_state(pi),
            live=bool(pi.get("livemode", False)),
            raw=pi,
        )

    @hookimpl
    def gateway_void(self, request: VoidRequest, context: OperationContext) -> Void | Awaitable[Void]:
        return self._run(self._void(request, context), context)

    def _void(self, request: VoidRequest, context: OperationContext) -> _Operation[Void]:
        options = self._options(context)
        sessions, intents = self.client.v1.checkout.sessions, self.client.v1.payment_intents
        if request.payment_id.startswith("cs_"):
            session = yield self._call(sessions, "expire", request.payment_id, None, options, mutating=True)
            self._log(context).debug("stripe.checkout.expired", checkout_id=session["id"])
            return Void(
                self.name,
                normalize._id(session.get("payment_intent")) or str(session["id"]),
                PaymentState.CANCELED,
                live=bool(session.get("livemode", False)),
                raw=session,
            )
        pi = yield self._call(intents, "cancel", request.payment_id, None, options, mutating=True)
        self._log(context).debug("stripe.void.done", payment_id=pi["id"])
        return Void(self.name, str(pi["id"]), normalize.intent_state(pi), live=bool(pi.get("livemode", False)), raw=pi)

    @hookimpl
    def gateway_refund(self, request: RefundRequest, context: OperationContext) -> Refund | Awaitable[Refund]:
        return self._run(self._refund(request, context), context)

    def _refund(self, request: RefundRequest, context: OperationContext) -> _Operation[Refund]:
        options = self._options(context)
        payment_id = request.payment_id
        params: RefundCreateParams = {}
        if payment_id.startswith(("ch_", "py_")):
            params["charge"] = payment_id
        else:
            payment_id = yield from self._resolve_intent(payment_id)
            params["payment_intent"] = payment_id
        if request.amount is not None:
            if "payment_intent" in params:
                current = yield from self._retrieve_intent(payment_id)
                self._check_currency(request.amount, current)
                _, captured, refunded = normalize.intent_amounts(current)
                remaining = captured - refunded
                if self._wire.to_minor(request.amount) > remaining:
                    raise AmountOutOfRange(
                        f"stripe: cannot refund {request.amount}; "
                        f"{self._wire.money(remaining, current['currency'])} remains",
                        gateway=self.name,
                        provider_code="charge_exceeds_refundable",
                    )
            params["amount"] = self._wire.to_minor(request.amount)
        if request.reason in REFUND_REASONS:
            params["reason"] = request.reason
        elif request.reason:
            params["metadata"] = {"reason": request.reason[:_METADATA_VALUE_MAX]}
        obj = yield self._call(self.client.v1.refunds, "create", params, options, mutating=True)
        result = normalize.refund(obj, self._wire, self.name, payment_id=payment_id, reason=request.reason)
        self._log(context).debug("stripe.refund.created", refund_id=result.id, status=result.status.value)
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
        return normalize.payment_status(intent, self._wire, self.name)

    @hookimpl
    def gateway_parse_webhook(self, request: WebhookRequest) -> WebhookEvent:
        payload = self.verify_webhook(request.header(SIGNATURE_HEADER), request.body)
        try:
            return normalize.event(payload, self._wire, self.name)
        except (KeyError, TypeError, ValueError) as exc:
            raise WebhookVerificationFailed(
                f"stripe: verified webhook has a malformed payload ({type(exc).__name__})", gateway=self.name
            ) from exc

    def verify_webhook(self, header: str | None, body: bytes) -> dict[str, Any]:
        """Verify ``body`` against its ``Stripe-Signature`` header with the SDK, then decode it.

        Refuses a missing or wrong signature, a timestamp older than the tolerance or further
        in the future than it (the SDK checks only the past). With ``refuse_replayed_webhooks``, an
        exact signature header seen before is refused too (Stripe signs every retry afresh, so a
        byte-identical delivery is a replay); it is off by default because the core's contract
        makes deduplication the host's job and lets the host parse one delivery twice.
        """
        if self._webhook_secret is None:
            raise ConfigurationError(f"gateway {self.name!r} has no webhook_secret", gateway=self.name)
        if not header:
            raise WebhookVerificationFailed(f"stripe: missing {SIGNATURE_HEADER} header", gateway=self.name)
        with map_stripe_errors(self.name, mutating=False):
            stripe.WebhookSignature.verify_header(body, header, self._webhook_secret.reveal(), None)
        timestamp = _signature_timestamp(header)
        now = self.clock()
        if timestamp is None or abs(now - timestamp) > self.webhook_tolerance:
            raise WebhookVerificationFailed(
                f"stripe: signature timestamp is outside the {self.webhook_tolerance} s tolerance", gateway=self.name
            )
        if self.refuse_replayed_webhooks:
            self._refuse_replay(header, now)
        try:
            decoded = json.loads(body)
        except ValueError as exc:
            raise WebhookVerificationFailed("stripe: webhook body is not JSON", gateway=self.name) from exc
        if not isinstance(decoded, dict):
            raise WebhookVerificationFailed("stripe: webhook body is not a JSON object", gateway=self.name)
        return decoded

    def _refuse_replay(self, header: str, now: float) -> None:
        with self._seen_lock:
            for seen, at in list(self._seen_signatures.items()):
                if now - at <= self.webhook_tolerance * 2:
                    break
                del self._seen_signatures[seen]
            if header in self._seen_signatures:
                raise WebhookVerificationFailed("stripe: this signed delivery was already accepted", gateway=self.name)
            self._seen_signatures[header] = now
            while len(self._seen_signatures) > _REPLAY_MEMORY:
                self._seen_signatures.popitem(last=False)

    # -- configuration check --------------------------------------------------------------
    @hookimpl
    def gateway_check(self, context: OperationContext) -> Sequence[CheckResult] | Awaitable[Sequence[CheckResult]]:
        """Is the key accepted, and does a restricted key hold the write permissions we need?

        Write permissions are probed with requests that cannot change anything: expiring a
        Checkout Session and updating a Product and a Price under ids that do not exist. Stripe
        checks the key's permission first (403 naming it), then the object (404).
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
                elif code == "permission_denied":
                    named = getattr(exc, "permission", None) or permission
                    results.append(CheckResult(name, False, f"missing: the key lacks {named}"))
                else:
                    results.append(CheckResult(name, False, f"could not check: {redact(exc.message)}"))
            else:
                results.append(CheckResult(name, True, "granted"))
        log.bind(gateway=self.name).debug("stripe.check.done", ok=all(r.ok for r in results))
        return results


class AsyncHTTPClient(stripe.HTTPXClient):
    """httpx for the SDK's ``*_async`` methods, with one short-lived connection per request.

    The SDK's own ``HTTPXClient`` keeps a pooled ``httpx.AsyncClient`` for its lifetime; pooled
    connections belong to the event loop that opened them, and the core has no hook to close a
    gateway, so they would outlive their loop. Opening and closing a client per request keeps
    every connection inside the ``await`` that made it. The TLS context is built once.
    """

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(timeout=timeout)
        self._ssl = ssl.create_default_context(cafile=stripe.ca_bundle_path)

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        import httpx  # noqa: PLC0415  (installed with stripe[async]; only async calls need it)

        args, kwargs = self._get_request_args_kwargs(method, url, headers, post_data)
        data = kwargs.pop("data", None)
        if data:  # the SDK's form-encoded body; httpx wants raw bytes as content=, not data=
            kwargs["content"] = data.encode() if isinstance(data, str) else data
        try:
            async with httpx.AsyncClient(verify=self._ssl) as client:
                response = await client.request(*args, **kwargs)
        except Exception as exc:
            self._handle_request_error(exc)
        return response.content, response.status_code, response.headers


def _plain(obj: stripe.StripeObject) -> dict[str, Any]:
    """The object as Stripe sent it: the response's parsed JSON (cheaper than ``to_dict()``)."""
    response = obj.last_response
    if response is not None and isinstance(response.data, dict) and response.data.get("id") == getattr(obj, "id", None):
        return response.data
    return obj.to_dict()


def _signature_timestamp(header: str) -> int | None:
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _int_setting(settings: GatewaySettings, key: str, default: int, low: int, high: int) -> int:
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(
            f"gateway {settings.name!r}: {key} must be an integer from {low} to {high}", gateway=settings.name
        )
    return value
