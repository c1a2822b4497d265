"""A small local PayPal stand-in for the plugin's tests: real HTTP on 127.0.0.1, run as its own process.

It answers the Orders v2, Payments v2, OAuth and verify-webhook-signature calls the plugin makes,
in PayPal's shapes and with PayPal's error envelope, and behaves as PayPal documents where the tests
depend on it:

* ``PayPal-Request-Id``: a POST repeated with the same id returns the stored first answer and acts
  once (https://developer.paypal.com/reference/guidelines/idempotency). PayPal "processes the
  first request and might fail the second" of two simultaneous ones; with the ``conflict_in_flight``
  config a POST whose id is still being answered gets Payments v2's 409 ``RESOURCE_CONFLICT`` /
  ``PREVIOUS_REQUEST_IN_PROGRESS`` (off by default and after every reset: the stand-in otherwise serializes them).
  Stored answers are kept per endpoint and id; PayPal does not document whether its ids are scoped
  per endpoint (its guide speaks of "the previous request that used that same header"), so the
  ``shared_request_ids`` config keeps them per id alone, across endpoints (off by default and
  after every reset). ``/_standin/request-ids/forget`` forgets every stored answer, as PayPal does
  once its retention window (6 hours for Orders v2, 45 days for Payments v2) has passed.
* Refunds and captures never exceed what remains (``REFUND_AMOUNT_EXCEEDED``,
  ``MAX_CAPTURE_AMOUNT_EXCEEDED``); a capture without an amount asks for the full authorized amount,
  as the Payments v2 spec says, even after partial captures; HUF/JPY/TWD refuse decimals (``DECIMALS_NOT_SUPPORTED``).
* OAuth: ``/v1/oauth2/token`` checks the Basic credentials and issues expiring Bearer tokens.
* Refunds that settle later: with the ``refund_status`` config ``PENDING`` every refund from then
  on is made ``PENDING`` (``status_details.reason`` ``ECHECK``, the one reason Payments v2 lists),
  until ``/_standin/refunds/{id}/settle`` makes it ``COMPLETED``, ``FAILED`` or ``CANCELLED``. A
  pending refund takes its amount from what remains refundable at once (PayPal's own
  ``total_refunded_amount`` counts it); a failed or cancelled one gives it back. Whether the
  capture's status counts a pending refund (``PARTIALLY_REFUNDED``/``REFUNDED``) or only a completed
  one (it stays ``COMPLETED`` meanwhile) PayPal does not document: the
  ``capture_counts_pending_refunds`` config chooses (on by default and after every reset).

* 3-D Secure for a vaulted card (a ``vault_id`` starting ``3DS``): the order is
  ``PAYER_ACTION_REQUIRED`` with a ``payer-action`` link. A card ``experience_context`` must hold
  both ``return_url`` and ``cancel_url`` (10 to 4000 characters, Orders v2
  ``card_experience_context``); ``/_standin/orders/{id}/authenticate`` plays the payer on that
  page (``{"result": "pass"}`` approves the order, ``"cancel"`` leaves it waiting) and answers
  where PayPal sends them back (``redirect``: that ``return_url`` or ``cancel_url``, ``None``
  without one) and the ``experience_context`` the order was created with.

* A void of an order id (not an authorization) is PayPal's 404 ``INVALID_RESOURCE_ID``: Orders v2
  has no call that cancels an order, which lapses unapproved. A void after a partial capture
  (``final_capture`` false) voids the rest and leaves the captures as they are (PayPal's "Void
  Authorization" guide, developer.paypal.com/beta/payments/void-authorization).
  ``/_standin/authorizations/{id}/expire`` makes an authorization ``EXPIRED``, as its honor
  period's end does.

Control endpoints under ``/_standin/`` let a test approve an order as the payer would, inject
faults (a 500 or 429, or any error answer a test gives, answered before processing; a dropped
connection, a body cut off mid-transfer, a delay, an unparseable or undecodable 2xx answer, or the
real 2xx answer less some fields, as a proxy in front of PayPal might give, *after* the request was
processed), revoke every issued token (as a credential rotation does), read the
request log and count what was created. ``/_standin/blob/N`` and ``/_standin/redirect`` serve an
N-byte body and a redirect, for the certificate fetcher's limits. Start it with
``python standin.py CLIENT_ID CLIENT_SECRET WEBHOOK_ID``; it prints its port on stdout.

Not covered (the plugin does not use them): PATCH, confirm-payment-source, reauthorize, tracking.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import socket
import sys
import threading
import time
import zlib
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WHOLE_UNITS = {"HUF", "JPY", "TWD"}
STANDIN_WEBHOOK_SECRET = "standin-webhook-signing-secret"


def api_signature(transmission_id: str, transmission_time: str, webhook_id: str, body: bytes) -> str:
    """The signature the stand-in's verify-webhook-signature accepts (a stand-in scheme, not PayPal's).

    Like PayPal's, it covers the webhook body's exact bytes (CRC32): a client that re-serializes
    the event (other key order, other whitespace) fails verification.
    """
    message = f"{STANDIN_WEBHOOK_SECRET}|{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}"
    return base64.b64encode(hashlib.sha256(message.encode()).digest()).decode()


def raw_member(document: bytes, name: str) -> bytes | None:
    """The exact bytes of top-level member ``name`` of the JSON object ``document`` (``None`` if absent)."""
    text = document.decode("utf-8")
    decoder = json.JSONDecoder()
    space = " \t\n\r"

    def skip(i: int) -> int:
        while i < len(text) and text[i] in space:
            i += 1
        return i

    i = skip(0)
    if not text.startswith("{", i):
        return None
    i = skip(i + 1)
    while i < len(text) and text[i] != "}":
        key, i = decoder.raw_decode(text, i)
        i = skip(i)
        if not text.startswith(":", i):
            return None
        start = skip(i + 1)
        _, end = decoder.raw_decode(text, start)
        if key == name:
            return text[start:end].encode("utf-8")
        i = skip(end)
        if text.startswith(",", i):
            i = skip(i + 1)
    return None


def _id() -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(17))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Problem(Exception):
    def __init__(self, status: int, name: str, issue: str | None = None, description: str = "") -> None:
        super().__init__(name)
        self.status, self.name, self.issue, self.description = status, name, issue, description

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "message": self.description or self.name,
            "debug_id": secrets.token_hex(6),
        }
        if self.issue:
            out["details"] = [{"issue": self.issue, "description": self.description or self.issue}]
            # As PayPal's: a link to the error's documentation (no place to send a payer).
            out["links"] = [
                {
                    "href": f"https://developer.paypal.com/docs/api/orders/v2/#error-{self.issue}",
                    "rel": "information_link",
                    "method": "GET",
                }
            ]
        return out


def _money(payload: Any) -> tuple[Decimal, str]:
    if not isinstance(payload, dict) or not isinstance(payload.get("value"), str):
        raise Problem(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", "amount.value must be a string")
    code, value = payload.get("currency_code"), payload["value"]
    if code not in {"AUD", "BRL", "CAD", "CNY", "CZK", "DKK", "EUR", "HKD", "HUF", "ILS", "JPY", "MYR", "MXN",
                    "TWD", "NZD", "NOK", "PHP", "PLN", "GBP", "SGD", "SEK", "CHF", "THB", "USD"}:  # fmt: skip
        raise Problem(422, "UNPROCESSABLE_ENTITY", "INVALID_CURRENCY_CODE")
    decimals = len(value.partition(".")[2])
    if code in WHOLE_UNITS and "." in value:
        raise Problem(422, "UNPROCESSABLE_ENTITY", "DECIMALS_NOT_SUPPORTED")
    if decimals > 2:
        raise Problem(422, "UNPROCESSABLE_ENTITY", "DECIMAL_PRECISION")
    amount = Decimal(value)
    if amount <= 0:
        raise Problem(422, "UNPROCESSABLE_ENTITY", "CANNOT_BE_ZERO_OR_NEGATIVE")
    return amount, code


def _wire(amount: Decimal, code: str) -> dict[str, str]:
    exp = 0 if code in WHOLE_UNITS else 2
    return {"currency_code": code, "value": format(amount.quantize(Decimal(1).scaleb(-exp)), "f")}


class State:
    def __init__(self, client_id: str, client_secret: str, webhook_id: str) -> None:
        self.lock = threading.RLock()
        self.basic = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        self.webhook_id = webhook_id
        self.token_expires_in = 32400
        self.reset()

    def reset(self) -> None:
        self.tokens: dict[str, float] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.auths: dict[str, dict[str, Any]] = {}
        self.captures: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.idem: dict[tuple[str, str], tuple[int, bytes]] = {}
        #: invoice_id -> the order that paid it (PayPal takes each invoice_id once per account).
        self.invoices: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []
        #: (path, PayPal-Request-Id) of the POSTs being answered right now; 409 for a second one if set.
        self.in_flight: set[tuple[str, str]] = set()
        self.conflict_in_flight = False
        #: Keep stored answers per PayPal-Request-Id alone, across endpoints (see the module docstring).
        self.shared_request_ids = False
        #: The status new refunds are made in: COMPLETED, or PENDING until settled (module docstring).
        self.refund_status = "COMPLETED"
        #: Whether a capture's status counts its pending refunds or only its completed ones.
        self.capture_counts_pending_refunds = True

    # -- JSON views -----------------------------------------------------------------------
    def capture_json(self, cap: dict[str, Any]) -> dict[str, Any]:
        up = (
            f"/v2/payments/authorizations/{cap['auth_id']}"
            if cap["auth_id"]
            else f"/v2/checkout/orders/{cap['order_id']}"
        )
        out = {
            "id": cap["id"],
            "status": cap["status"],
            "amount": _wire(cap["amount"], cap["currency"]),
            "final_capture": cap["final"],
            "custom_id": cap.get("custom_id"),
            "invoice_id": cap.get("invoice_id"),
            "supplementary_data": {"related_ids": {"order_id": cap["order_id"]}},
            "links": [
                {"href": f"/v2/payments/captures/{cap['id']}", "rel": "self", "method": "GET"},
                {"href": f"/v2/payments/captures/{cap['id']}/refund", "rel": "refund", "method": "POST"},
                {"href": up, "rel": "up", "method": "GET"},
            ],
            "create_time": cap["created"],
        }
        if cap["status"] in ("PENDING", "DECLINED"):
            out["status_details"] = {"reason": "PENDING_REVIEW" if cap["status"] == "PENDING" else "DECLINED"}
        return {k: v for k, v in out.items() if v is not None}

    def auth_json(self, auth: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": auth["id"],
            "status": auth["status"],
            "amount": _wire(auth["amount"], auth["currency"]),
            "custom_id": auth.get("custom_id"),
            "supplementary_data": {"related_ids": {"order_id": auth["order_id"]}},
            "links": [{"href": f"/v2/payments/authorizations/{auth['id']}", "rel": "self", "method": "GET"}],
            "create_time": auth["created"],
        }

    def refund_json(self, ref: dict[str, Any]) -> dict[str, Any]:
        out = {
            "id": ref["id"],
            "status": ref["status"],
            "amount": _wire(ref["amount"], ref["currency"]),
            "links": [
                {"href": f"/v2/payments/refunds/{ref['id']}", "rel": "self", "method": "GET"},
                {"href": f"/v2/payments/captures/{ref['capture_id']}", "rel": "up", "method": "GET"},
            ],
            "create_time": ref["created"],
        }
        if ref.get("note"):
            out["note_to_payer"] = ref["note"]
        if ref["status"] == "PENDING":
            out["status_details"] = {"reason": "ECHECK"}
        return out

    def order_json(self, order: dict[str, Any]) -> dict[str, Any]:
        unit = dict(order["unit"])
        payments: dict[str, Any] = {}
        caps = [self.capture_json(self.captures[c]) for c in order["captures"]]
        auths = [self.auth_json(self.auths[a]) for a in order["auths"]]
        refunds = [
            self.refund_json(r)
            for r in self.refunds.values()
            if self.captures[r["capture_id"]]["order_id"] == order["id"]
        ]
        if caps:
            payments["captures"] = caps
        if auths:
            payments["authorizations"] = auths
        if refunds:
            payments["refunds"] = refunds
        if payments:
            unit["payments"] = payments
        links = [{"href": f"/v2/checkout/orders/{order['id']}", "rel": "self", "method": "GET"}]
        if order["status"] in ("CREATED", "PAYER_ACTION_REQUIRED"):
            rel = "payer-action" if order["status"] == "PAYER_ACTION_REQUIRED" else "approve"
            links.append(
                {"href": f"https://www.sandbox.paypal.com/checkoutnow?token={order['id']}", "rel": rel, "method": "GET"}
            )
        out = {
            "id": order["id"],
            "intent": order["intent"],
            "status": order["status"],
            "purchase_units": [unit],
            "links": links,
            "create_time": order["created"],
        }
        if order["source_kind"] is not None:
            out["payment_source"] = {order["source_kind"]: {}}
        return out

    # -- operations -----------------------------------------------------------------------
    def create_order(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        intent = body.get("intent")
        if intent not in ("CAPTURE", "AUTHORIZE"):
            raise Problem(400, "INVALID_REQUEST", "INVALID_PARAMETER_VALUE", "intent")
        units = body.get("purchase_units")
        if not isinstance(units, list) or len(units) != 1:
            raise Problem(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", "purchase_units")
        unit = units[0]
        amount, currency = _money(unit.get("amount"))
        items = unit.get("items") or []
        if items:
            total = sum((_money(i["unit_amount"])[0] * int(i["quantity"]) for i in items), Decimal(0))
            declared = _money(unit["amount"].get("breakdown", {}).get("item_total"))[0]
            if total != declared or declared != amount:
                raise Problem(422, "UNPROCESSABLE_ENTITY", "ITEM_TOTAL_MISMATCH")
        source = body.get("payment_source") or {}
        order = {
            "id": _id(),
            "intent": intent,
            "status": "PAYER_ACTION_REQUIRED" if "experience_context" in source.get("paypal", {}) else "CREATED",
            # PayPal fills in reference_id "default" when the request gives none.
            "unit": {"reference_id": "default"}
            | {k: unit[k] for k in ("reference_id", "custom_id", "invoice_id", "amount", "items") if k in unit},
            "amount": amount,
            "currency": currency,
            "captures": [],
            "auths": [],
            "created": _now(),
            "capture_outcome": "COMPLETED",
            # payment_source_response names the source's kind (its details are left out here).
            "source_kind": next((k for k in ("card", "paypal") if k in source), None),
        }
        vault = (source.get("paypal") or source.get("card") or {}).get("vault_id")
        if "experience_context" in source.get("card", {}):
            order["card_experience"] = _card_experience(source["card"]["experience_context"])
        self.orders[order["id"]] = order
        if vault is not None:
            if str(vault).startswith("DECLINE"):
                del self.orders[order["id"]]
                raise Problem(422, "UNPROCESSABLE_ENTITY", "INSTRUMENT_DECLINED", "The instrument was declined")
            if str(vault).startswith("3DS"):
                # A saved card its issuer wants 3-D Secure for: the order waits for the payer.
                order["status"] = "PAYER_ACTION_REQUIRED"
                return 201, self.order_json(order)
            order["status"] = "APPROVED"
            if intent == "AUTHORIZE":
                self._authorize(order)
            else:
                self._capture_order(order)
        return 201, self.order_json(order)

    def authenticate(self, order_id: str, passed: bool) -> dict[str, Any]:
        """The payer on a vaulted card's ``payer-action`` page passes (or cancels) 3-D Secure.

        Passed, the order is ``APPROVED`` (``authorize(order id)`` authorizes it); cancelled, it
        stays ``PAYER_ACTION_REQUIRED``. Either way the payer is sent to the order's
        ``card.experience_context`` ``return_url`` (passed) or ``cancel_url`` (cancelled), exactly
        as the request gave it, or nowhere (``None``) when it gave none.
        """
        order = self.orders.get(order_id)
        if order is None or order["status"] != "PAYER_ACTION_REQUIRED" or order["source_kind"] != "card":
            raise Problem(422, "UNPROCESSABLE_ENTITY", "ORDER_NOT_AWAITING_3DS", f"{order_id} awaits no 3-D Secure")
        if passed:
            order["status"] = "APPROVED"
        experience = order.get("card_experience") or {}
        return {
            "status": order["status"],
            "redirect": experience.get("return_url" if passed else "cancel_url"),
            "experience_context": experience,
        }

    def _authorize(self, order: dict[str, Any]) -> None:
        auth = {
            "id": _id(),
            "order_id": order["id"],
            "status": "CREATED",
            "amount": order["amount"],
            "currency": order["currency"],
            "captured": Decimal(0),
            "custom_id": order["unit"].get("custom_id"),
            "created": _now(),
        }
        self.auths[auth["id"]] = auth
        order["auths"].append(auth["id"])
        order["status"] = "COMPLETED"

    def _new_capture(
        self, order: dict[str, Any], amount: Decimal, auth_id: str | None, final: bool, status: str
    ) -> dict[str, Any]:
        cap = {
            "id": _id(),
            "order_id": order["id"],
            "auth_id": auth_id,
            "status": status,
            "amount": amount,
            "currency": order["currency"],
            "refunded": Decimal(0),
            "final": final,
            "custom_id": order["unit"].get("custom_id"),
            "invoice_id": order["unit"].get("invoice_id"),
            "created": _now(),
        }
        self.captures[cap["id"]] = cap
        order["captures"].append(cap["id"])
        return cap

    def _check_invoice(self, order: dict[str, Any]) -> None:
        invoice_id = order["unit"].get("invoice_id")
        if invoice_id is None:
            return
        if self.invoices.get(invoice_id, order["id"]) != order["id"]:
            raise Problem(
                422,
                "UNPROCESSABLE_ENTITY",
                "DUPLICATE_INVOICE_ID",
                "Requested invoice number has been previously captured. Possible duplicate transaction.",
            )
        self.invoices[invoice_id] = order["id"]

    def _capture_order(self, order: dict[str, Any]) -> None:
        self._check_invoice(order)
        self._new_capture(order, order["amount"], None, True, order["capture_outcome"])
        order["status"] = "COMPLETED"

    def order_action(self, order_id: str, action: str) -> tuple[int, dict[str, Any]]:
        order = self.orders.get(order_id)
        if order is None:
            raise Problem(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "Specified resource ID does not exist.")
        wanted = "CAPTURE" if action == "capture" else "AUTHORIZE"
        if order["intent"] != wanted:
            raise Problem(422, "UNPROCESSABLE_ENTITY", "ACTION_DOES_NOT_MATCH_INTENT")
        if order["status"] == "COMPLETED":
            raise Problem(
                422,
                "UNPROCESSABLE_ENTITY",
                "ORDER_ALREADY_CAPTURED" if action == "capture" else "ORDER_ALREADY_AUTHORIZED",
            )
        if order["status"] != "APPROVED":
            raise Problem(422, "UNPROCESSABLE_ENTITY", "ORDER_NOT_APPROVED", "Payer has not yet approved the Order.")
        if action == "capture":
            self._capture_order(order)
        else:
            self._authorize(order)
        return 201, self.order_json(order)

    def capture_authorization(self, auth_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        auth = self.auths.get(auth_id)
        if auth is None:
            raise Problem(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "Specified resource ID does not exist.")
        if auth["status"] == "VOIDED":
            raise Problem(422, "UNPROCESSABLE_ENTITY", "AUTHORIZATION_VOIDED")
        if auth["status"] == "CAPTURED":
            raise Problem(422, "UNPROCESSABLE_ENTITY", "AUTHORIZATION_ALREADY_CAPTURED")
        remaining = auth["amount"] - auth["captured"]
        if "amount" in body:
            amount, currency = _money(body["amount"])
            if currency != auth["currency"]:
                raise Problem(422, "UNPROCESSABLE_ENTITY", "AUTH_CAPTURE_CURRENCY_MISMATCH")
        else:
            # Payments v2 capture_request.amount: "If amount is not specified, the full authorized
            # amount is captured" -- the full amount, not what remains after partial captures.
            amount = auth["amount"]
        if amount > remaining:
            raise Problem(422, "UNPROCESSABLE_ENTITY", "MAX_CAPTURE_AMOUNT_EXCEEDED")
        final = bool(body.get("final_capture", False))
        order = self.orders[auth["order_id"]]
        self._check_invoice(order)
        cap = self._new_capture(order, amount, auth_id, final, "COMPLETED")
        auth["captured"] += amount
        auth["status"] = "CAPTURED" if final or auth["captured"] == auth["amount"] else "PARTIALLY_CAPTURED"
        return 201, self.capture_json(cap)

    def void(self, auth_id: str) -> tuple[int, dict[str, Any]]:
        auth = self.auths.get(auth_id)
        if auth is None:
            raise Problem(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "Specified resource ID does not exist.")
        if auth["status"] == "VOIDED":
            raise Problem(422, "UNPROCESSABLE_ENTITY", "PREVIOUSLY_VOIDED")
        if auth["status"] == "CAPTURED":
            raise Problem(422, "UNPROCESSABLE_ENTITY", "PREVIOUSLY_CAPTURED")
        auth["status"] = "VOIDED"
        return 200, self.auth_json(auth)

    def refund(self, capture_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        cap = self.captures.get(capture_id)
        if cap is None:
            raise Problem(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "Specified resource ID does not exist.")
        if cap["status"] == "PENDING":
            raise Problem(422, "UNPROCESSABLE_ENTITY", "PENDING_CAPTURE")
        if cap["status"] not in ("COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"):
            raise Problem(422, "UNPROCESSABLE_ENTITY", "REFUND_NOT_ALLOWED")
        # What completed and pending refunds took is not refundable (see the module docstring).
        remaining = cap["amount"] - cap["refunded"]
        if remaining <= 0:
            raise Problem(422, "UNPROCESSABLE_ENTITY", "CAPTURE_FULLY_REFUNDED")
        if "amount" in body:
            amount, currency = _money(body["amount"])
            if currency != cap["currency"]:
                raise Problem(422, "UNPROCESSABLE_ENTITY", "REFUND_CAPTURE_CURRENCY_MISMATCH")
            if amount > remaining:
                raise Problem(422, "UNPROCESSABLE_ENTITY", "REFUND_AMOUNT_EXCEEDED")
        else:
            amount = remaining
        cap["refunded"] += amount
        ref = {
            "id": _id(),
            "capture_id": capture_id,
            "amount": amount,
            "currency": cap["currency"],
            "status": self.refund_status,
            "note": body.get("note_to_payer"),
            "created": _now(),
        }
        self.refunds[ref["id"]] = ref
        self._refund_state(cap)
        return 201, self.refund_json(ref)

    def settle_refund(self, refund_id: str, status: str) -> dict[str, Any]:
        """A PENDING refund completes, fails or is cancelled; a failed or cancelled one is refundable again."""
        ref = self.refunds[refund_id]
        if ref["status"] != "PENDING" or status not in ("COMPLETED", "FAILED", "CANCELLED"):
            raise Problem(422, "UNPROCESSABLE_ENTITY", "REFUND_NOT_PENDING", f"{ref['status']} -> {status}")
        ref["status"] = status
        cap = self.captures[ref["capture_id"]]
        if status != "COMPLETED":
            cap["refunded"] -= ref["amount"]
        self._refund_state(cap)
        return self.refund_json(ref)

    def _refund_state(self, cap: dict[str, Any]) -> None:
        """The capture's status from its refunds: completed ones, and pending ones if so configured."""
        counted = {"COMPLETED", "PENDING"} if self.capture_counts_pending_refunds else {"COMPLETED"}
        refunded = sum(
            (r["amount"] for r in self.refunds.values() if r["capture_id"] == cap["id"] and r["status"] in counted),
            Decimal(0),
        )
        cap["status"] = (
            "COMPLETED" if refunded == 0 else "REFUNDED" if refunded == cap["amount"] else "PARTIALLY_REFUNDED"
        )

    def verify(self, body: dict[str, Any], raw: bytes) -> tuple[int, dict[str, Any]]:
        event = raw_member(raw, "webhook_event")
        if event is None:
            raise Problem(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", "webhook_event")
        expected = api_signature(
            str(body.get("transmission_id")),
            str(body.get("transmission_time")),
            str(body.get("webhook_id")),
            event,
        )
        ok = body.get("webhook_id") == self.webhook_id and body.get("transmission_sig") == expected
        return 200, {"verification_status": "SUCCESS" if ok else "FAILURE"}


def _card_experience(context: Any) -> dict[str, str]:
    """A card's ``experience_context`` as Orders v2 ``card_experience_context`` takes it, or 400.

    ``return_url`` and ``cancel_url`` only, each an absolute http(s) URL of 10 to 4000 characters;
    PayPal's 3-D Secure guide wants both in every 3DS request (docs.paypal.ai/payments/methods/cards/3ds),
    so one without the other is refused too (stricter than the spec, which requires neither).
    """
    if not isinstance(context, dict) or set(context) != {"return_url", "cancel_url"}:
        raise Problem(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", "payment_source/card/experience_context")
    for name, url in context.items():
        if not isinstance(url, str) or not 10 <= len(url) <= 4000 or not url.startswith(("https://", "http://")):
            raise Problem(
                400, "INVALID_REQUEST", "INVALID_PARAMETER_SYNTAX", f"payment_source/card/experience_context/{name}"
            )
    return dict(context)


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Answer without waiting for delayed ACKs (Nagle), as a real server would.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _reply(self, status: int, payload: Any | bytes, headers: dict[str, str] | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Paypal-Debug-Id", secrets.token_hex(6))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if data:
            self.wfile.write(data)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        if path.startswith("/_standin/"):
            self._control(method, path, raw)
            return
        auth = self.headers.get("Authorization") or ""
        request_id = self.headers.get("PayPal-Request-Id")
        try:
            parsed = (
                json.loads(raw) if raw and self.headers.get("Content-Type", "").startswith("application/json") else None
            )
        except ValueError:
            parsed = None
        with state.lock:
            state.requests.append(
                {
                    "method": method,
                    "path": path,
                    "request_id": request_id,
                    "auth": auth.split(" ", 1)[0] or None,
                    "body": parsed,
                    "prefer": self.headers.get("Prefer"),
                    # Every header but the credentials, for the spec check of request headers.
                    "headers": {k: v for k, v in self.headers.items() if k.lower() != "authorization"},
                }
            )
            fault = self._take_fault(method, path)
            flight = (path, request_id) if method == "POST" and request_id else None
            if flight is not None and state.conflict_in_flight and flight in state.in_flight:
                problem = Problem(
                    409,
                    "RESOURCE_CONFLICT",
                    "PREVIOUS_REQUEST_IN_PROGRESS",
                    "A previous request on this resource is currently in progress.",
                )
                self._reply(409, problem.body())
                return
            if flight is not None:
                state.in_flight.add(flight)
        try:
            self._answer(method, path, raw, parsed, auth, request_id, fault)
        finally:
            if flight is not None:
                with state.lock:
                    state.in_flight.discard(flight)

    def _answer(
        self, method: str, path: str, raw: bytes, parsed: Any, auth: str, request_id: str | None, fault: Any
    ) -> None:
        state = self.server.state
        if fault is not None and fault["kind"] == "refuse":
            # Answered with the fault's status and body before processing: PayPal refused, did nothing.
            self._reply(int(fault.get("status", 422)), str(fault["body"]).encode())
            return
        if fault is not None and fault["kind"] in ("500", "429"):
            status = int(fault["kind"])
            name = "INTERNAL_SERVER_ERROR" if status == 500 else "RATE_LIMIT_REACHED"
            extra = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else None
            self._reply(status, Problem(status, name, description=name).body(), extra)
            return
        with state.lock:
            status, body = self._dispatch(method, path, raw, parsed, auth, request_id)
        if fault is not None and fault["kind"] == "drop_after":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if fault is not None and fault["kind"] == "cut_after":
            # Processed, then the real answer's headers (Content-Length of the whole body) and only
            # its first half, as a connection lost mid-transfer gives; ``stall`` seconds first, if set
            # (a body that stops arriving: the client's read timeout, mid-body).
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            if fault.get("stall"):
                time.sleep(float(fault["stall"]))
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if fault is not None and fault["kind"] == "undecodable_after":
            # Processed, then answered with a body that says it is gzip and is not.
            data = b"not gzip at all"
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if fault is not None and fault["kind"] == "delay_after":
            time.sleep(float(fault.get("seconds", 1.0)))
        if fault is not None and fault["kind"] == "short_after" and 200 <= status < 300:
            # Processed, then answered with the real 2xx answer less the fault's ``drop`` fields.
            answer = json.loads(body)
            for field in fault.get("drop", ()):
                answer.pop(field, None)
            self._reply(status, answer)
            return
        if fault is not None and fault["kind"] == "garbage_after":
            # Processed, then answered with a 2xx the client cannot read (the fault's status and body).
            data = str(fault.get("body", "<html><body>Created</body></html>")).encode()
            self.send_response(int(fault.get("status", 201)))
            self.send_header("Content-Type", str(fault.get("content_type", "text/html")))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        try:
            self._reply(status, body)
        except OSError:
            self.close_connection = True

    def _take_fault(self, method: str, path: str) -> dict[str, Any] | None:
        for fault in self.server.state.faults:
            if fault["method"] == method and fault["path_contains"] in path and fault["remaining"] > 0:
                fault["remaining"] -= 1
                return fault
        return None

    def _dispatch(
        self, method: str, path: str, raw: bytes, body: Any, auth: str, request_id: str | None
    ) -> tuple[int, Any]:
        state = self.server.state
        if path == "/v1/oauth2/token" and method == "POST":
            if auth != state.basic:
                return 401, {"error": "invalid_client", "error_description": "Client Authentication failed"}
            token = "A21AA" + secrets.token_urlsafe(24)
            state.tokens[token] = time.time() + state.token_expires_in
            return 200, {
                "scope": "https://uri.paypal.com/services/payments/payment",
                "access_token": token,
                "token_type": "Bearer",
                "app_id": "APP-STANDIN",
                "expires_in": state.token_expires_in,
                "nonce": secrets.token_hex(8),
            }
        token = auth.removeprefix("Bearer ")
        if not auth.startswith("Bearer ") or state.tokens.get(token, 0) < time.time():
            return 401, {"name": "AUTHENTICATION_FAILURE", "message": "Authentication failed due to invalid authentication credentials or a missing Authorization header.", "debug_id": secrets.token_hex(6)}  # fmt: skip
        if request_id is not None and not 1 <= len(request_id) <= 108:
            return 400, json.dumps(
                Problem(400, "INVALID_REQUEST", "INVALID_PARAMETER_SYNTAX", "PayPal-Request-Id").body()
            ).encode()
        scope = "*" if state.shared_request_ids else path
        key = (scope, request_id) if method == "POST" and request_id else None
        if key is not None and key in state.idem:
            stored_status, stored = state.idem[key]
            return (200 if stored_status == 201 else stored_status), stored
        try:
            status, payload = self._route(method, path, body if isinstance(body, dict) else {}, raw)
        except Problem as problem:
            status, payload = problem.status, problem.body()
        data = json.dumps(payload).encode()
        if key is not None and status < 500:
            state.idem[key] = (status, data)
        return status, data

    def _route(self, method: str, path: str, body: dict[str, Any], raw: bytes) -> tuple[int, dict[str, Any]]:
        state = self.server.state
        parts = path.strip("/").split("/")
        not_found = Problem(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "Specified resource ID does not exist.")
        match method, parts:
            case "POST", ["v2", "checkout", "orders"]:
                return state.create_order(body)
            case "GET", ["v2", "checkout", "orders", order_id]:
                if order_id not in state.orders:
                    raise not_found
                return 200, state.order_json(state.orders[order_id])
            case "POST", ["v2", "checkout", "orders", order_id, ("capture" | "authorize") as action]:
                return state.order_action(order_id, action)
            case "GET", ["v2", "payments", "authorizations", auth_id]:
                if auth_id not in state.auths:
                    raise not_found
                return 200, state.auth_json(state.auths[auth_id])
            case "POST", ["v2", "payments", "authorizations", auth_id, "capture"]:
                return state.capture_authorization(auth_id, body)
            case "POST", ["v2", "payments", "authorizations", auth_id, "void"]:
                return state.void(auth_id)
            case "GET", ["v2", "payments", "captures", capture_id]:
                if capture_id not in state.captures:
                    raise not_found
                return 200, state.capture_json(state.captures[capture_id])
            case "POST", ["v2", "payments", "captures", capture_id, "refund"]:
                return state.refund(capture_id, body)
            case "GET", ["v2", "payments", "refunds", refund_id]:
                if refund_id not in state.refunds:
                    raise not_found
                return 200, state.refund_json(state.refunds[refund_id])
            case "POST", ["v1", "notifications", "verify-webhook-signature"]:
                return state.verify(body, raw)
        raise Problem(404, "NOT_FOUND", description=f"no route {method} {path}")

    def _control(self, method: str, path: str, raw: bytes) -> None:
        state = self.server.state
        body = json.loads(raw) if raw else {}
        parts = path.strip("/").split("/")[1:]
        with state.lock:
            match method, parts:
                case "GET", ["requests"]:
                    self._reply(200, state.requests)
                case "GET", ["counts"]:
                    self._reply(
                        200,
                        {
                            "tokens": len(state.tokens),
                            "orders": len(state.orders),
                            "authorizations": len(state.auths),
                            "captures": len(state.captures),
                            "refunds": len(state.refunds),
                        },
                    )
                case "POST", ["orders", order_id, "approve"]:
                    order = state.orders.get(order_id)
                    if order is None:
                        self._reply(404, {"error": "no such order"})
                        return
                    order["status"] = "APPROVED"
                    order["capture_outcome"] = body.get("capture_outcome", "COMPLETED")
                    self._reply(200, state.order_json(order))
                case "POST", ["orders", order_id, "authenticate"]:
                    try:
                        self._reply(200, state.authenticate(order_id, body.get("result", "pass") == "pass"))
                    except Problem as problem:
                        self._reply(problem.status, problem.body())
                case "POST", ["faults"]:
                    state.faults.append({**body, "remaining": int(body.get("count", 1))})
                    self._reply(200, {"ok": True})
                case "POST", ["config"]:
                    if "token_expires_in" in body:
                        state.token_expires_in = int(body["token_expires_in"])
                    if "conflict_in_flight" in body:
                        state.conflict_in_flight = bool(body["conflict_in_flight"])
                    if "shared_request_ids" in body:
                        state.shared_request_ids = bool(body["shared_request_ids"])
                    if "refund_status" in body:
                        state.refund_status = str(body["refund_status"])
                    if "capture_counts_pending_refunds" in body:
                        state.capture_counts_pending_refunds = bool(body["capture_counts_pending_refunds"])
                    self._reply(200, {"ok": True})
                case "POST", ["authorizations", auth_id, "expire"]:
                    # The honor period has passed (as after a partial capture left the rest held):
                    # PayPal reports the authorization EXPIRED; its captures stay what they were.
                    if auth_id not in state.auths:
                        self._reply(404, {"error": "no such authorization"})
                        return
                    state.auths[auth_id]["status"] = "EXPIRED"
                    self._reply(200, state.auth_json(state.auths[auth_id]))
                case "POST", ["refunds", refund_id, "settle"]:
                    if refund_id not in state.refunds:
                        self._reply(404, {"error": "no such refund"})
                        return
                    try:
                        self._reply(200, state.settle_refund(refund_id, str(body.get("status"))))
                    except Problem as problem:
                        self._reply(problem.status, problem.body())
                case "POST", ["request-ids", "forget"]:
                    # PayPal's retention window has passed: a repeated id is a new request.
                    state.idem.clear()
                    self._reply(200, {"ok": True})
                case "POST", ["reset"]:
                    state.reset()
                    self._reply(200, {"ok": True})
                case "POST", ["tokens", "revoke"]:
                    # As after a credential rotation: every issued token is refused from now on.
                    state.tokens.clear()
                    self._reply(200, {"ok": True})
                case "GET", ["blob", size]:
                    # A body of SIZE bytes (a certificate URL that serves too much).
                    self._reply(200, b"-" * int(size))
                case "GET", ["redirect"]:
                    self.send_response(302)
                    self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}/_standin/blob/10")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                case _:
                    self._reply(404, {"error": "unknown control"})


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: State) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = state


def main() -> None:
    client_id, client_secret, webhook_id = sys.argv[1:4]
    server = Server(State(client_id, client_secret, webhook_id))
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
