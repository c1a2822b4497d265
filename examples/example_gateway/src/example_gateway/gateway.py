"""The Example Payments gateway object: one per configured gateway, implementing the operation hooks.

It talks plain HTTP (stdlib ``urllib``) to the provider. The three habits every plugin needs are
each in one place here:

* **money** goes on the wire through the currency's :class:`~gateway_core.money.WireFormat`
  (``_to_wire`` / ``_from_wire``), never through a float;
* **errors** are mapped into the core's tree in one context manager, :func:`map_errors`, from an
  allow-list of fields, so a provider message (which might echo a key) never reaches the host;
  results are read from the provider's answer inside another, :func:`reading_answer`, so an
  answer that lacks a field is never a bare ``KeyError`` or the host's fault;
* **idempotency**: every mutating request sends ``context.idempotency_key`` as the
  ``Idempotency-Key`` header.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import structlog

from example_gateway.capabilities import CAPABILITIES
from gateway_core import (
    AmountOutOfRange,
    AuthenticationFailed,
    AuthenticationRequired,
    Authorization,
    AuthorizeRequest,
    Capture,
    CaptureRequest,
    CheckoutRequest,
    CheckoutSession,
    CheckoutStatus,
    CheckResult,
    ConfigurationError,
    EventType,
    GatewayError,
    GatewaySettings,
    GatewayUnavailable,
    IdempotencyConflict,
    InvalidRequest,
    Money,
    NotFound,
    OperationContext,
    OutcomeUnknown,
    PaymentDeclined,
    PaymentState,
    PaymentStatus,
    PermissionDenied,
    RateLimited,
    Refund,
    RefundRequest,
    RefundStatus,
    Secret,
    StatusRequest,
    UnsupportedCurrency,
    Void,
    VoidRequest,
    WebhookEvent,
    WebhookRequest,
    WebhookVerificationFailed,
    hookimpl,
)

__all__ = ["ExampleGateway", "map_errors"]

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "Example-Signature"
DEFAULT_TOLERANCE = 300  # seconds a webhook signature stays valid

# The provider's words for things, and ours.
_STATES = {
    "requires_payment": PaymentState.PENDING,
    "authorized": PaymentState.AUTHORIZED,
    "succeeded": PaymentState.SUCCEEDED,
    "failed": PaymentState.FAILED,
    "canceled": PaymentState.CANCELED,
    "refunded": PaymentState.REFUNDED,
    "partially_refunded": PaymentState.PARTIALLY_REFUNDED,
}
_EVENTS = {
    "payment.authorized": EventType.PAYMENT_AUTHORIZED,
    "payment.succeeded": EventType.PAYMENT_SUCCEEDED,
    "payment.failed": EventType.PAYMENT_FAILED,
    "payment.canceled": EventType.PAYMENT_CANCELED,
    "refund.succeeded": EventType.REFUND_SUCCEEDED,
}
# Error codes the provider documents, mapped to the most specific core class.
_ERRORS: Mapping[str, type[GatewayError]] = {
    "amount_out_of_range": AmountOutOfRange,
    "refund_exceeds_captured": AmountOutOfRange,
    "unsupported_currency": UnsupportedCurrency,
    "invalid_state": InvalidRequest,
    "invalid_expiry": InvalidRequest,
    "idempotency_conflict": IdempotencyConflict,
    "not_found": NotFound,
    "invalid_api_key": AuthenticationFailed,
    "permission_denied": PermissionDenied,
}


@contextmanager
def map_errors(gateway: str, *, mutating: bool) -> Iterator[None]:
    """Turn whatever the HTTP call raises into the core's error tree, ``from`` the original.

    Messages are built from allow-listed fields (status, error code, request id): the provider's
    own message is not copied, since providers sometimes echo part of a key in it.
    """
    try:
        yield
    except urllib.error.HTTPError as exc:
        raise _from_response(gateway, exc) from exc
    except urllib.error.URLError as exc:  # could not connect or send: nothing happened
        raise GatewayUnavailable(
            f"cannot reach Example Payments ({type(exc.reason).__name__})", gateway=gateway
        ) from exc
    except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:  # sent, but no (whole) answer
        if mutating:
            raise OutcomeUnknown(
                f"no answer from Example Payments ({type(exc).__name__}); retry with the same idempotency key",
                gateway=gateway,
            ) from exc
        raise GatewayUnavailable(f"no answer from Example Payments ({type(exc).__name__})", gateway=gateway) from exc
    except (ValueError, KeyError, TypeError) as exc:  # a 2xx body that is not JSON (cut off, a proxy's page)
        if mutating:
            raise OutcomeUnknown(
                f"unreadable answer from Example Payments ({type(exc).__name__}); retry with the same idempotency key",
                gateway=gateway,
            ) from exc
        raise GatewayUnavailable(
            f"unreadable answer from Example Payments ({type(exc).__name__})", gateway=gateway
        ) from exc


@contextmanager
def reading_answer(gateway: str, *, acted: bool) -> Iterator[None]:
    """Build a result from a provider's 2xx answer: a field it lacks is the answer's fault.

    A ``KeyError``, ``TypeError`` or ``ValueError`` (``InvalidAmount`` included: an amount the
    answer gives) while reading is never passed on as it is: the host would read "failed", or
    "your amount was wrong", after the provider acted. After a POST (``acted``) it is
    :class:`~gateway_core.OutcomeUnknown` with ``retryable=False``: the provider replays the same
    answer to the same key, so the host reads the payment's status instead. After a GET it is
    :class:`~gateway_core.GatewayUnavailable`.
    """
    try:
        yield
    except (KeyError, TypeError, ValueError) as exc:
        detail = f"no {exc.args[0]!r}" if isinstance(exc, KeyError) and exc.args else type(exc).__name__
        text = f"Example Payments answered without what the plugin reads ({detail})"
        if acted:
            raise OutcomeUnknown(
                f"{text}; it acted: check the payment's status", gateway=gateway, retryable=False
            ) from exc
        raise GatewayUnavailable(text, gateway=gateway) from exc


def _from_response(gateway: str, exc: urllib.error.HTTPError) -> GatewayError:
    try:
        error = json.loads(exc.read())["error"]
        code = str(error["code"])
    except (ValueError, KeyError, TypeError):
        error, code = {}, "unknown"
    fields: dict[str, Any] = {
        "gateway": gateway,
        "provider_code": code,
        "http_status": exc.code,
        "request_id": exc.headers.get("Request-Id"),
    }
    message = f"Example Payments refused the request: {code}"
    if code == "card_declined":
        return PaymentDeclined(message, decline_code=error.get("decline_code"), **fields)
    if code == "authentication_required":
        return AuthenticationRequired(message, **fields)
    if exc.code == 429:
        retry_after = exc.headers.get("Retry-After")
        return RateLimited(message, retry_after=float(retry_after) if retry_after else None, **fields)
    if exc.code >= 500:
        return GatewayUnavailable(message, **fields)
    by_status: Mapping[int, type[GatewayError]] = {401: AuthenticationFailed, 403: PermissionDenied, 404: NotFound}
    error_class = _ERRORS.get(code) or by_status.get(exc.code, GatewayError)
    return error_class(message, **fields)


def _to_wire(money: Money) -> dict[str, Any]:
    """Exact integer minor units in the provider's wire format for the currency."""
    return {"amount": CAPABILITIES.currencies[money.currency].wire.to_minor(money), "currency": money.currency}


def _from_wire(obj: Mapping[str, Any], field: str = "amount") -> Money:
    return CAPABILITIES.currencies[obj["currency"]].wire.from_minor(int(obj[field]))


class ExampleGateway:
    """One configured Example Payments gateway (a gateway object: it implements the operation hooks)."""

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        api_key: Secret,
        webhook_secret: Secret,
        timeout: float = 10.0,
        tolerance: int = DEFAULT_TOLERANCE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._webhook_secret = webhook_secret
        self.timeout = timeout
        self.tolerance = tolerance
        self.clock = clock

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> ExampleGateway:
        """Settings: ``base_url``, ``api_key`` and ``webhook_secret`` (both from the environment), ``timeout``."""
        base_url = settings.require("base_url")
        if not isinstance(base_url, str) or not base_url.startswith(("https://", "http://")):
            raise ConfigurationError(
                f"gateway {settings.name!r}: base_url must be an http(s) URL", gateway=settings.name
            )
        return cls(
            settings.name,
            base_url=base_url,
            api_key=settings.secret("api_key"),
            webhook_secret=settings.secret("webhook_secret"),
            timeout=float(settings.get("timeout", 10.0)),
        )

    # -- HTTP -----------------------------------------------------------------------------
    def _send(self, method: str, path: str, body: Mapping[str, Any] | None = None, *, key: str | None = None) -> Any:
        request = urllib.request.Request(  # noqa: S310 (base_url is checked to be http(s))
            self.base_url + path,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={
                "Authorization": f"Bearer {self._api_key.reveal()}",
                "Content-Type": "application/json",
                "User-Agent": "gateway-core-example/0.1",
            },
        )
        if key is not None:
            request.add_header("Idempotency-Key", key)
        with map_errors(self.name, mutating=method == "POST"):
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw = response.read()
            return json.loads(raw)  # parsed once the response is closed, still inside the mapping

    # -- operation hooks ------------------------------------------------------------------
    @hookimpl
    def gateway_create_checkout(self, request: CheckoutRequest, context: OperationContext) -> CheckoutSession:
        body = {**_to_wire(request.amount), "reference": request.reference, "capture": request.capture}
        if request.expires_at is not None:  # the core has checked it against CAPABILITIES.checkout_expiry
            body["expires_at"] = int(request.expires_at.timestamp())
        obj = self._send("POST", "/v1/checkouts", body, key=context.idempotency_key)
        with reading_answer(self.name, acted=True):
            return CheckoutSession(
                self.name,
                obj["id"],
                obj["url"],
                _from_wire(obj),
                CheckoutStatus(obj["status"]),
                datetime.fromtimestamp(obj["expires_at"], UTC),
                payment_id=obj["payment_id"],
                reference=request.reference,
                live=obj["livemode"],
                raw=obj,
            )

    @hookimpl
    def gateway_authorize(self, request: AuthorizeRequest, context: OperationContext) -> Authorization:
        body = {**_to_wire(request.amount), "payment_method": request.payment_method, "reference": request.reference}
        obj = self._send("POST", "/v1/authorizations", body, key=context.idempotency_key)
        with reading_answer(self.name, acted=True):
            return Authorization(self.name, obj["id"], _from_wire(obj), _STATES[obj["state"]], obj["livemode"], obj)

    @hookimpl
    def gateway_capture(self, request: CaptureRequest, context: OperationContext) -> Capture:
        obj = self._send("POST", f"/v1/payments/{request.payment_id}/capture", {}, key=context.idempotency_key)
        with reading_answer(self.name, acted=True):
            state = _STATES[obj["state"]]
            return Capture(
                self.name, obj["capture_id"], obj["id"], _from_wire(obj, "captured"), state, obj["livemode"], obj
            )

    @hookimpl
    def gateway_void(self, request: VoidRequest, context: OperationContext) -> Void:
        obj = self._send("POST", f"/v1/payments/{request.payment_id}/void", {}, key=context.idempotency_key)
        with reading_answer(self.name, acted=True):
            return Void(self.name, obj["id"], _STATES[obj["state"]], obj["livemode"], obj)

    @hookimpl
    def gateway_refund(self, request: RefundRequest, context: OperationContext) -> Refund:
        body: dict[str, Any] = {"reason": request.reason}
        if request.amount is not None:
            body["amount"] = _to_wire(request.amount)["amount"]
        obj = self._send("POST", f"/v1/payments/{request.payment_id}/refunds", body, key=context.idempotency_key)
        with reading_answer(self.name, acted=True):
            return Refund(
                self.name,
                obj["id"],
                obj["payment_id"],
                _from_wire(obj),
                RefundStatus(obj["status"]),
                obj["reason"],
                obj["livemode"],
                obj,
            )

    @hookimpl
    def gateway_payment_status(self, request: StatusRequest) -> PaymentStatus:
        obj = self._send("GET", f"/v1/payments/{request.payment_id}")
        with reading_answer(self.name, acted=False):
            return PaymentStatus(
                self.name,
                obj["id"],
                _STATES[obj["state"]],
                _from_wire(obj),
                _from_wire(obj, "captured"),
                _from_wire(obj, "refunded"),
                checkout_id=obj["checkout_id"],
                reference=obj["reference"],
                live=obj["livemode"],
                raw=obj,
            )

    @hookimpl
    def gateway_parse_webhook(self, request: WebhookRequest) -> WebhookEvent:
        self.verify(request.header(SIGNATURE_HEADER), request.body)  # first: nothing is believed before this
        try:
            event = json.loads(request.body)
            data = event["data"]
            return WebhookEvent(
                self.name,
                str(event["id"]),
                _EVENTS.get(event["type"], EventType.UNKNOWN),
                str(event["type"]),
                occurred_at=datetime.fromtimestamp(int(event["created"]), UTC),
                payment_id=data.get("payment_id"),
                checkout_id=data.get("checkout_id"),
                refund_id=data.get("refund_id"),
                reference=data.get("reference"),
                amount=_from_wire(data) if "amount" in data else None,
                live=bool(event["livemode"]),
                raw=event,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookVerificationFailed(
                f"verified webhook has a malformed payload ({type(exc).__name__})", gateway=self.name
            ) from exc

    @hookimpl
    def gateway_check(self) -> Sequence[CheckResult]:
        try:
            self._send("GET", "/v1/account")
        except AuthenticationFailed:
            return [CheckResult("credentials", ok=False, detail="the API key was refused")]
        return [CheckResult("credentials", ok=True, detail="the API key is accepted")]

    # -- webhooks -------------------------------------------------------------------------
    def verify(self, header: str | None, body: bytes) -> None:
        """Check an ``Example-Signature`` header against the raw body; raise if it does not verify."""
        if not header:
            raise WebhookVerificationFailed(f"missing {SIGNATURE_HEADER} header", gateway=self.name)
        parts = dict(item.strip().partition("=")[::2] for item in header.split(","))
        try:
            timestamp = int(parts["t"])
        except (KeyError, ValueError):
            raise WebhookVerificationFailed("signature has no valid timestamp", gateway=self.name) from None
        if abs(self.clock() - timestamp) > self.tolerance:
            raise WebhookVerificationFailed(f"signature is outside the {self.tolerance} s tolerance", gateway=self.name)
        secret = self._webhook_secret.reveal().encode()
        expected = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        # bytes, not str: compare_digest raises TypeError on a non-ASCII str, and the header is anyone's
        if not hmac.compare_digest(expected.encode(), parts.get("v1", "").encode("utf-8", "surrogatepass")):
            raise WebhookVerificationFailed("signature does not match the body", gateway=self.name)
        log.debug("example.webhook.verified", gateway=self.name)
