"""A stand-in for the Example Payments HTTP API, served on 127.0.0.1 for tests.

It plays the provider the example plugin talks to, the way a sandbox or a recorded cassette
plays Stripe or PayPal. Its API, in full:

=======  ==================================  ==========================================
POST     /v1/checkouts                       ``{amount, currency, reference, capture, expires_at?}``
POST     /v1/authorizations                  ``{amount, currency, payment_method, reference}``
POST     /v1/payments/{id}/capture           ``{}``
POST     /v1/payments/{id}/void              ``{}``  (a payment or an open checkout id)
POST     /v1/payments/{id}/refunds           ``{amount?, reason?}``
GET      /v1/payments/{id}                   a payment, or the payment behind a checkout id
GET      /v1/account                         who the API key belongs to
=======  ==================================  ==========================================

Amounts are integer minor units. A checkout's ``expires_at`` (unix seconds) must be 15 minutes to
7 days ahead (:data:`CHECKOUT_EXPIRY`; ``400 invalid_expiry`` otherwise); without one a checkout
lapses an hour after it was made. Every request needs ``Authorization: Bearer <api key>``.
A ``POST`` with an ``Idempotency-Key`` header is done once: a retry with the same key and body
gets the stored response, with another body ``409 idempotency_conflict``. Errors are
``{"error": {"code": ..., "message": ...}}``; a payment method ``pm_decline`` is declined.

Webhooks are signed ``Example-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">``.
The payer's side of a hosted checkout is :meth:`ExamplePaymentsAPI.pay_checkout`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["CHECKOUT_EXPIRY", "LIMITS", "SIGNATURE_HEADER", "ApiError", "ExamplePaymentsAPI", "sign"]

SIGNATURE_HEADER = "Example-Signature"

#: Per currency: (minimum, maximum) in minor units. The plugin's capabilities cite this table.
LIMITS: dict[str, tuple[int, int]] = {"EUR": (50, 1_000_000), "USD": (50, 1_000_000), "JPY": (50, 1_000_000)}

#: How far ahead a checkout's ``expires_at`` may be, in seconds: (shortest, longest). The plugin's
#: capabilities cite this too.
CHECKOUT_EXPIRY: tuple[int, int] = (15 * 60, 7 * 24 * 60 * 60)
DEFAULT_CHECKOUT_TTL = 60 * 60


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The ``Example-Signature`` header value for ``body`` at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class ApiError(Exception):
    """An error response: HTTP status, error code and message."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


class ExamplePaymentsAPI:
    """The stand-in: ``with ExamplePaymentsAPI(api_key=..., webhook_secret=...) as api: api.base_url``."""

    def __init__(self, *, api_key: str, webhook_secret: str) -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        #: Requests that reached the API, as ``"METHOD /path"``.
        self.requests: list[str] = []
        self._lock = threading.RLock()
        self._payments: dict[str, dict[str, Any]] = {}
        self._checkouts: dict[str, dict[str, Any]] = {}
        self._refunds: dict[str, dict[str, Any]] = {}
        self._idempotent: dict[str, tuple[str, bytes, int, dict[str, Any]]] = {}
        self._outbox: list[bytes] = []
        #: Every webhook body ever emitted, drained or not (the test's view of what the provider sent).
        self._sent: list[bytes] = []
        self._failures: list[tuple[int, str]] = []
        self._delays: list[float] = []
        self._cuts: list[frozenset[str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._serve, name="example-payments", daemon=True)

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _serve(self) -> None:
        self._server.serve_forever(poll_interval=0.01)  # a short poll so that stop() returns at once

    def start(self) -> ExamplePaymentsAPI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> ExamplePaymentsAPI:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- test controls (the payer's side, failure injection, webhook delivery) ------------
    def fail_next(self, status: int, code: str) -> None:
        """Answer the next ``/v1`` request with this error (``429 rate_limited``, ``503 unavailable``)."""
        with self._lock:
            self._failures.append((status, code))

    def delay_next(self, seconds: float) -> None:
        """Do the next ``/v1`` request, then wait ``seconds`` before answering (a client times out after the fact)."""
        with self._lock:
            self._delays.append(seconds)

    def cut_next(self, *fields: str) -> None:
        """Do the next ``/v1`` request, then answer it without these fields (as a proxy or an API
        change might); what the API stored for its idempotency key stays whole."""
        with self._lock:
            self._cuts.append(frozenset(fields))

    def take_delay(self) -> float:
        """The delay owed to the request just handled (the HTTP handler sleeps it, outside the lock)."""
        with self._lock:
            return self._delays.pop(0) if self._delays else 0.0

    def recorded_amount(self, object_id: str) -> tuple[int, str]:
        """What the provider holds for a checkout or payment: (minor units, currency)."""
        with self._lock:
            payment = self._payment(object_id)
            return int(payment["amount"]), str(payment["currency"])

    def object_count(self) -> int:
        """How many checkouts, payments and refunds exist."""
        with self._lock:
            return len(self._checkouts) + len(self._payments) + len(self._refunds)

    def pay_checkout(self, checkout_id: str) -> str:
        """The payer completes the hosted checkout; returns the payment id."""
        with self._lock:
            checkout = self._checkouts[checkout_id]
            if checkout["status"] != "open":
                raise ApiError(400, "invalid_state", f"checkout is {checkout['status']}")
            payment = self._payments[checkout["payment_id"]]
            checkout["status"] = "complete"
            if payment["capture"]:
                payment.update(state="succeeded", captured=payment["amount"])
                self._emit("payment.succeeded", payment)
            else:
                payment["state"] = "authorized"
                self._emit("payment.authorized", payment)
            return str(payment["id"])

    def drain_webhooks(self) -> list[tuple[dict[str, str], bytes]]:
        """Every pending webhook as ``(headers, body)``, signed now."""
        with self._lock:
            pending, self._outbox = self._outbox, []
        return [(self.webhook_headers(body), body) for body in pending]

    def webhook_about(self, payment_id: str, event_type: str = "payment.succeeded") -> bytes:
        """The body of the latest ``event_type`` webhook sent about ``payment_id``, drained or not."""
        with self._lock:
            for body in reversed(self._sent):
                event = json.loads(body)
                if event["type"] == event_type and event["data"]["payment_id"] == payment_id:
                    return body
        raise LookupError(f"Example Payments sent no {event_type} webhook about {payment_id}")

    def webhook_headers(
        self, body: bytes, *, secret: str | None = None, timestamp: int | None = None
    ) -> dict[str, str]:
        stamp = int(time.time()) if timestamp is None else timestamp
        return {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, secret or self.webhook_secret, stamp)}

    # -- the API --------------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(f"{method} {path}")
            try:
                if headers.get("authorization") != f"Bearer {self.api_key}":
                    raise ApiError(401, "invalid_api_key", "the API key is not valid")
                if self._failures:
                    status, code = self._failures.pop(0)
                    raise ApiError(status, code, "injected failure")
                key = headers.get("idempotency-key")
                if method == "POST" and key:
                    status, answer = self._idempotent_post(key, path, raw)
                else:
                    status, answer = 200, self._route(method, path, raw)
                if self._cuts and status == 200:
                    cut = self._cuts.pop(0)
                    answer = {k: v for k, v in answer.items() if k not in cut}
                return status, answer
            except ApiError as exc:
                return exc.status, {"error": {"code": exc.code, "message": exc.message, **exc.extra}}

    def _idempotent_post(self, key: str, path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        stored = self._idempotent.get(key)
        if stored is not None:
            if (stored[0], stored[1]) != (path, raw):
                raise ApiError(409, "idempotency_conflict", "this key was used with another request")
            return stored[2], stored[3]
        try:
            status, response = 200, self._route("POST", path, raw)
        except ApiError as exc:
            status, response = exc.status, {"error": {"code": exc.code, "message": exc.message, **exc.extra}}
        self._idempotent[key] = (path, raw, status, response)
        return status, response

    def _route(self, method: str, path: str, raw: bytes) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(raw) if raw else {}
        routes: list[tuple[str, str, Callable[..., dict[str, Any]]]] = [
            ("POST", r"/v1/checkouts", self._create_checkout),
            ("POST", r"/v1/authorizations", self._authorize),
            ("POST", r"/v1/payments/([\w-]+)/capture", self._capture),
            ("POST", r"/v1/payments/([\w-]+)/void", self._void),
            ("POST", r"/v1/payments/([\w-]+)/refunds", self._refund),
            ("GET", r"/v1/payments/([\w-]+)", self._retrieve),
            ("GET", r"/v1/account", lambda _body: {"id": "acct_example", "livemode": False}),
        ]
        for verb, pattern, action in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                return action(body, *match.groups())
        raise ApiError(404, "not_found", f"no route {method} {path}")

    def _new_payment(self, body: dict[str, Any], capture: bool) -> dict[str, Any]:
        currency, amount = body.get("currency"), body.get("amount")
        if currency not in LIMITS:
            raise ApiError(400, "unsupported_currency", f"currency {currency} is not supported")
        if not isinstance(amount, int) or not LIMITS[currency][0] <= amount <= LIMITS[currency][1]:
            raise ApiError(400, "amount_out_of_range", "amount is outside the currency's limits")
        payment = {
            "id": _id("pay"),
            "amount": amount,
            "currency": currency,
            "state": "requires_payment",
            "captured": 0,
            "refunded": 0,
            "capture": capture,
            "checkout_id": None,
            "reference": body.get("reference"),
            "livemode": False,
        }
        self._payments[payment["id"]] = payment
        return payment

    def _create_checkout(self, body: dict[str, Any]) -> dict[str, Any]:
        now = int(time.time())
        expires_at = body.get("expires_at", now + DEFAULT_CHECKOUT_TTL)
        shortest, longest = CHECKOUT_EXPIRY
        if not isinstance(expires_at, int) or not shortest <= expires_at - now <= longest:
            raise ApiError(400, "invalid_expiry", "expires_at must be 15 minutes to 7 days ahead")
        payment = self._new_payment(body, bool(body.get("capture", True)))
        checkout_id = _id("chk")
        payment["checkout_id"] = checkout_id
        checkout = {
            "id": checkout_id,
            "payment_id": payment["id"],
            "status": "open",
            "url": f"{self.base_url}/pay/{checkout_id}",
            "expires_at": expires_at,
        }
        self._checkouts[checkout_id] = checkout
        return {**checkout, "amount": payment["amount"], "currency": payment["currency"], "livemode": False}

    def _authorize(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("payment_method") == "pm_decline":
            raise ApiError(402, "card_declined", "the card was declined", decline_code="insufficient_funds")
        payment = self._new_payment(body, capture=False)
        payment["state"] = "authorized"
        return dict(payment)

    def _payment(self, payment_id: str) -> dict[str, Any]:
        checkout = self._checkouts.get(payment_id)
        payment = self._payments.get(checkout["payment_id"] if checkout else payment_id)
        if payment is None:
            raise ApiError(404, "not_found", "no such payment")
        return payment

    def _capture(self, _body: dict[str, Any], payment_id: str) -> dict[str, Any]:
        payment = self._payment(payment_id)
        if payment["state"] != "authorized":
            raise ApiError(400, "invalid_state", f"payment is {payment['state']}")
        payment.update(state="succeeded", captured=payment["amount"])
        self._emit("payment.succeeded", payment)
        return {**payment, "capture_id": _id("cap")}

    def _void(self, _body: dict[str, Any], target: str) -> dict[str, Any]:
        payment = self._payment(target)
        checkout = self._checkouts.get(payment["checkout_id"] or "")
        if checkout is not None and checkout["status"] == "open":
            checkout["status"] = "expired"
        elif payment["state"] != "authorized":
            raise ApiError(400, "invalid_state", f"payment is {payment['state']}")
        payment["state"] = "canceled"
        self._emit("payment.canceled", payment)
        return dict(payment)

    def _refund(self, body: dict[str, Any], payment_id: str) -> dict[str, Any]:
        payment = self._payment(payment_id)
        remaining = payment["captured"] - payment["refunded"]
        amount = body.get("amount", remaining)
        if payment["state"] not in ("succeeded", "partially_refunded"):
            raise ApiError(400, "invalid_state", f"payment is {payment['state']}")
        if not isinstance(amount, int) or not 0 < amount <= remaining:
            raise ApiError(400, "refund_exceeds_captured", "the refund is more than remains to refund")
        payment["refunded"] += amount
        payment["state"] = "refunded" if payment["refunded"] == payment["captured"] else "partially_refunded"
        refund = {
            "id": _id("ref"),
            "payment_id": payment["id"],
            "amount": amount,
            "currency": payment["currency"],
            "status": "succeeded",
            "reason": body.get("reason"),
            "livemode": False,
        }
        self._refunds[refund["id"]] = refund
        self._emit("refund.succeeded", payment, refund_id=refund["id"], amount=amount)
        return refund

    def _retrieve(self, _body: dict[str, Any], payment_id: str) -> dict[str, Any]:
        return dict(self._payment(payment_id))

    def _emit(self, event_type: str, payment: dict[str, Any], **data: Any) -> None:
        event = {
            "id": _id("evt"),
            "type": event_type,
            "created": int(time.time()),
            "livemode": False,
            "data": {
                "payment_id": payment["id"],
                "checkout_id": payment["checkout_id"],
                "reference": payment["reference"],
                "amount": payment["amount"],
                "currency": payment["currency"],
                **data,
            },
        }
        body = json.dumps(event, sort_keys=True).encode()
        self._outbox.append(body)
        self._sent.append(body)


def _handler_for(api: ExamplePaymentsAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload = api.handle(self.command, self.path, headers, raw)
            delay = api.take_delay()
            if delay:
                time.sleep(delay)
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Request-Id", _id("req"))
            if status == 429:
                self.send_header("Retry-After", "2")
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the stdlib's per-request stderr line."""

    return Handler
