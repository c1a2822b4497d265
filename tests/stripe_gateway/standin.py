"""A small stateful Stripe stand-in for the tests: Checkout Sessions, PaymentIntents, refunds.

localstripe covers PaymentIntents but not Checkout, and ignores idempotency keys; this stand-in
models the parts of Stripe the plugin's contract depends on and that the tests must observe:

* Checkout Sessions (create with inline ``price_data``, retrieve with ``expand``, expire, list by
  ``payment_intent``), paid through ``POST /_standin/pay/{id}`` as a payer would;
* PaymentIntents confirmed at creation with manual capture, partial capture, cancel; a capture or
  cancel the status does not take gets ``payment_intent_unexpected_state`` with the PaymentIntent;
* 3-D Secure as Stripe answers it for ``pm_card_threeDSecure2Required`` (Stripe's test payment
  method that "must complete 3DS2 authentication"): the PaymentIntent is ``requires_action``;
  its ``next_action`` is ``redirect_to_url`` (a ``hooks.stripe.com`` URL carrying the
  authentication's client secret, and the ``return_url`` sent) when the request carried a
  ``return_url``, else ``use_stripe_sdk``, for Stripe.js
  (docs.stripe.com/payments/3d-secure/authentication-flow; the shape of the recorded
  ``data/recorded/omnipay_PaymentIntents_ConfirmIntent3dsRedirect.txt``);
* refunds by PaymentIntent or charge, refusing more than remains;
* idempotency as Stripe does it: the same key and parameters replay the first response (with
  ``Idempotent-Replayed: true``), other parameters give ``idempotency_error``, and a request
  arriving while another with the same key is still being processed gets Stripe's 409
  ``idempotency_key_in_use`` (nothing saved);
* PaymentIntents made by a paid Checkout Session take their metadata from the session's
  ``payment_intent_data.metadata``, as Stripe's do -- not from the session's own ``metadata``;
* restricted keys: ``rk_test_no_checkout``/``rk_test_no_products``/``rk_test_no_prices``/
  ``rk_test_no_payment_intents``/``rk_test_no_refunds`` get Stripe's 403 naming the missing
  ``rak_*`` permission; ``sk_test_revoked`` gets 401.

Control endpoints (not counted as API requests):

* ``POST /_standin/pay/{checkout_id}``: the payer completes the session (after a declined card,
  with the session's PaymentIntent: another card on the same session);
* ``POST /_standin/decline/{checkout_id}?decline_code=generic_decline``: the payer's card is
  declined on the hosted page, as Stripe leaves it: the session stays ``open`` and names its
  PaymentIntent, which is back in ``requires_payment_method`` with a ``last_payment_error``
  (``card_declined`` and the decline code) and a failed charge as its ``latest_charge``;
* ``POST /_standin/authenticate/{payment_intent_id}?result=pass`` (or ``fail``): the payer
  completes (or fails) 3-D Secure: ``requires_capture`` with its charge, or
  ``requires_payment_method`` with ``payment_intent_authentication_failure`` as its
  ``last_payment_error``, as Stripe moves it;
* ``POST /_standin/fail?path=P&status=500&should_retry=false``: the next API request to path
  ``P`` answers Stripe's ``api_error`` envelope with that status and ``Stripe-Should-Retry``;
  with ``false`` the answer is saved under the request's idempotency key and replayed to every
  retry with that key, as Stripe does for a request that reached execution; with ``true`` (Stripe
  failed before executing) nothing is saved and nothing was done;
* ``POST /_standin/forget``: every saved idempotency key is forgotten, as Stripe prunes keys once
  they are at least 24 hours old (a retry with such a key is then a new request);
* ``POST /_standin/delay?path=P&seconds=S``: the next API request to ``P`` is processed after
  ``S`` seconds, holding its idempotency key meanwhile (to provoke the 409);
* ``GET /_standin/stats``.

Run as ``python -m tests.stripe_gateway.standin``: it binds 127.0.0.1 on a free port and prints
``PORT <n>``. ``GET /_standin/stats`` reports request and object counts (not itself counted).
With ``--spec-check`` it also validates every request against Stripe's spec (for tests whose
requests do not pass through the test HTTP client, such as the ``gateway`` command run as a
process) and answers a violation with a 400 that names it; ``stats`` counts the violations.
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from tests.stripe_gateway.formcodec import decode

_PERMISSIONS = {
    "rk_test_no_checkout": ("/v1/checkout/sessions", "rak_checkout_session_write"),
    "rk_test_no_products": ("/v1/products", "rak_product_write"),
    "rk_test_no_prices": ("/v1/prices", "rak_plan_write"),
    "rk_test_no_payment_intents": ("/v1/payment_intents", "rak_payment_intent_write"),
    "rk_test_no_refunds": ("/v1/refunds", "rak_refund_write"),
}


def _id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}"


class State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.sessions: dict[str, dict[str, Any]] = {}
        self.intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.idempotency: dict[str, tuple[str, int, bytes, dict[str, str]]] = {}
        #: Idempotency keys of requests being processed right now.
        self.in_flight: set[str] = set()
        #: Armed faults and delays, by path: consumed by the next request to that path.
        self.faults: dict[str, tuple[int, str]] = {}
        self.delays: dict[str, float] = {}
        self.requests: list[dict[str, Any]] = []
        self.violations: list[str] = []
        self.spec: Any = None

    # -- objects --------------------------------------------------------------------------
    def session(self, params: dict[str, Any], port: int) -> dict[str, Any]:
        items = params.get("line_items") or []
        total = 0
        currencies = set()
        for item in items:
            price = item["price_data"]
            total += int(price["unit_amount"]) * int(item.get("quantity", "1"))
            currencies.add(price["currency"])
        if len(currencies) != 1:
            raise _Fail(400, "invalid_request_error", "line_items must share one currency", "parameter_invalid")
        sid = _id("cs")
        now = int(time.time())
        session = {
            "id": sid,
            "object": "checkout.session",
            "amount_subtotal": total,
            "amount_total": total,
            "currency": currencies.pop(),
            "client_reference_id": params.get("client_reference_id"),
            "created": now,
            "customer_email": params.get("customer_email"),
            "expires_at": int(params.get("expires_at") or now + 86400),
            "livemode": False,
            "locale": params.get("locale"),
            "metadata": params.get("metadata") or {},
            "mode": params.get("mode"),
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"),
            "url": f"http://127.0.0.1:{port}/pay/{sid}",
            "_capture_method": (params.get("payment_intent_data") or {}).get("capture_method", "automatic"),
            "_intent_metadata": (params.get("payment_intent_data") or {}).get("metadata") or {},
        }
        self.sessions[sid] = session
        return session

    def intent(self, amount: int, currency: str, capture_method: str, metadata: dict[str, Any]) -> dict[str, Any]:
        pid = _id("pi")
        charge_id = _id("ch")
        captured = capture_method != "manual"
        self.charges[charge_id] = {
            "id": charge_id,
            "object": "charge",
            "amount": amount,
            "amount_captured": amount if captured else 0,
            "amount_refunded": 0,
            "captured": captured,
            "refunded": False,
            "currency": currency,
            "payment_intent": pid,
            "livemode": False,
            "status": "succeeded",
        }
        intent = {
            "id": pid,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0 if captured else amount,
            "amount_received": amount if captured else 0,
            "capture_method": capture_method,
            "currency": currency,
            "latest_charge": charge_id,
            "last_payment_error": None,
            "livemode": False,
            "metadata": metadata,
            "next_action": None,
            "status": "succeeded" if captured else "requires_capture",
        }
        self.intents[pid] = intent
        return intent

    def intent_awaiting_3ds(self, amount: int, currency: str, params: dict[str, Any]) -> dict[str, Any]:
        """A PaymentIntent whose card needs 3-D Secure: ``requires_action``, no charge yet."""
        pid = _id("pi")
        client_secret = f"{pid}_secret_{secrets.token_hex(12)}"
        source = _id("src")
        source_secret = f"src_client_secret_{secrets.token_hex(12)}"
        return_url = params.get("return_url")
        if return_url is not None:
            # Stripe's answer to a confirmation with a return_url: a page of its own to redirect to.
            next_action: dict[str, Any] = {
                "type": "redirect_to_url",
                "redirect_to_url": {
                    "url": f"https://hooks.stripe.com/3d_secure_2/hosted/{source}/{source_secret}",
                    "return_url": return_url,
                },
            }
        else:
            # Without one: only Stripe.js can finish it (its stripe_js address, not for a redirect).
            next_action = {
                "type": "use_stripe_sdk",
                "use_stripe_sdk": {
                    "type": "three_d_secure_redirect",
                    "stripe_js": f"https://hooks.stripe.com/redirect/authenticate/{source}?client_secret={source_secret}",
                    "source": source,
                },
            }
        intent = {
            "id": pid,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "capture_method": params.get("capture_method", "automatic"),
            "client_secret": client_secret,
            "currency": currency,
            "latest_charge": None,
            "last_payment_error": None,
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "next_action": next_action,
            "payment_method": params.get("payment_method"),
            "status": "requires_action",
        }
        self.intents[pid] = intent
        return intent

    def authenticate(self, intent: dict[str, Any], passed: bool) -> None:
        """The payer completes (or fails) 3-D Secure on a ``requires_action`` PaymentIntent."""
        if intent["status"] != "requires_action":
            raise _Fail(400, "invalid_request_error", f"{intent['id']} is {intent['status']}, not requires_action")
        intent["next_action"] = None
        if not passed:
            intent.update(
                status="requires_payment_method",
                last_payment_error={
                    "type": "card_error",
                    "code": "payment_intent_authentication_failure",
                    "message": "The provided PaymentMethod has failed authentication.",
                },
            )
            return
        self.settle(intent)

    def settle(self, intent: dict[str, Any]) -> None:
        """The payer's payment method goes through: a charge, then ``requires_capture`` or ``succeeded``."""
        manual = intent["capture_method"] == "manual"
        charge_id = _id("ch")
        self.charges[charge_id] = {
            "id": charge_id,
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": 0 if manual else intent["amount"],
            "amount_refunded": 0,
            "captured": not manual,
            "refunded": False,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "livemode": False,
            "status": "succeeded",
        }
        intent.update(
            latest_charge=charge_id,
            last_payment_error=None,  # spec3: "cleared if the PaymentIntent is later updated for any reason"
            status="requires_capture" if manual else "succeeded",
            amount_capturable=intent["amount"] if manual else 0,
            amount_received=0 if manual else intent["amount"],
        )

    def decline(self, session: dict[str, Any], decline_code: str) -> dict[str, Any]:
        """The payer's card is declined on ``session``'s hosted page; the session stays open for another card."""
        if session["status"] != "open":
            raise _Fail(400, "invalid_request_error", f"{session['id']} is {session['status']}, not open")
        intent = self.intents.get(session["payment_intent"] or "")
        if intent is None:
            intent = {
                "id": _id("pi"),
                "object": "payment_intent",
                "amount": session["amount_total"],
                "amount_capturable": 0,
                "amount_received": 0,
                "capture_method": session["_capture_method"],
                "currency": session["currency"],
                "latest_charge": None,
                "last_payment_error": None,
                "livemode": False,
                "metadata": session["_intent_metadata"],
                "next_action": None,
                "status": "requires_payment_method",
            }
            self.intents[intent["id"]] = intent
            session["payment_intent"] = intent["id"]
        charge_id = _id("ch")
        self.charges[charge_id] = {
            "id": charge_id,
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": 0,
            "amount_refunded": 0,
            "captured": False,
            "refunded": False,
            "currency": intent["currency"],
            "failure_code": "card_declined",
            "payment_intent": intent["id"],
            "livemode": False,
            "status": "failed",
        }
        intent.update(
            status="requires_payment_method",
            latest_charge=charge_id,
            last_payment_error={
                "type": "card_error",
                "code": "card_declined",
                "decline_code": decline_code,
                "message": "Your card was declined.",
            },
        )
        return intent

    def view_intent(self, intent: dict[str, Any], expand: list[str]) -> dict[str, Any]:
        out = dict(intent)
        if "latest_charge" in expand and out.get("latest_charge"):
            out["latest_charge"] = dict(self.charges[out["latest_charge"]])
        return out

    def view_session(self, session: dict[str, Any], expand: list[str]) -> dict[str, Any]:
        out = {k: v for k, v in session.items() if not k.startswith("_")}
        if "payment_intent" in expand and out.get("payment_intent"):
            sub = [e.removeprefix("payment_intent.") for e in expand if e.startswith("payment_intent.")]
            out["payment_intent"] = self.view_intent(self.intents[out["payment_intent"]], sub)
        return out


class _Fail(Exception):
    def __init__(self, status: int, kind: str, message: str, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": kind, "message": message, **({"code": code} if code else {}), **extra}}


_IDEMPOTENCY_ERROR = {
    "error": {
        "type": "idempotency_error",
        "message": "Keys for idempotent requests can only be used with the same parameters they were first used with.",
    }
}


def _in_progress(key: str) -> dict[str, Any]:
    """Stripe's 409 for a key whose first request is still being processed.

    Shape as Stripe sends it (recorded in beam-community/stripity-stripe#564): an
    ``invalid_request_error`` with code ``idempotency_key_in_use``, HTTP 409.
    """
    return {
        "error": {
            "type": "invalid_request_error",
            "code": "idempotency_key_in_use",
            "doc_url": "https://stripe.com/docs/error-codes/idempotency-key-in-use",
            "message": "There is currently another in-progress request using this Idempotent Key (that probably "
            f"means you submitted twice, and the other request is still going through): {key}. Please try "
            "again later.",
        }
    }


def _unexpected_state(intent: dict[str, Any], message: str) -> _Fail:
    """Stripe's 400 for a capture or cancel the PaymentIntent's status does not take.

    Shape as Stripe sends it (the omnipay cancel recording in ``data/recorded``, and
    grandnode/grandnode#985 for a capture): ``payment_intent_unexpected_state``, with the
    PaymentIntent as it is now in ``error.payment_intent``.
    """
    return _Fail(
        400,
        "invalid_request_error",
        message,
        "payment_intent_unexpected_state",
        doc_url="https://stripe.com/docs/error-codes/payment-intent-unexpected-state",
        payment_intent=intent,
    )


def _missing(kind: str, oid: str) -> _Fail:
    return _Fail(404, "invalid_request_error", f"No such {kind}: '{oid}'", "resource_missing", param="id")


class Handler(BaseHTTPRequestHandler):
    server_version = "stripe-standin/1"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # answer keep-alive requests without a delayed-ACK stall
    wbufsize = 64 * 1024  # headers and body leave in one write
    state: State
    port: int

    def log_message(self, format: str, *args: Any) -> None:  # silence
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Request-Id", f"req_{secrets.token_hex(8)}")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _handle(self, method: str) -> None:
        split = urlsplit(self.path)
        path = split.path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        if path.startswith("/_standin/"):
            self._control(method, path, decode(split.query))
            return
        key = self.headers.get("Idempotency-Key")
        params = decode(raw if method == "POST" else split.query)
        state = self.state
        if state.spec is not None:
            try:
                state.spec.check(method, f"http://standin{self.path}", raw if method == "POST" else None)
            except AssertionError as violation:
                with state.lock:
                    state.violations.append(str(violation))
                refusal = {"error": {"type": "invalid_request_error", "message": f"spec: {violation}"}}
                self._send(400, json.dumps(refusal).encode())
                return
        with state.lock:
            state.requests.append({"method": method, "path": path, "idempotency_key": key})
            fingerprint = f"{method} {path} {raw}"
            keyed = method == "POST" and bool(key)
            if keyed and key in state.in_flight:
                self._send(409, json.dumps(_in_progress(str(key))).encode())
                return
            if keyed and key in state.idempotency:
                stored = state.idempotency[str(key)]
                if stored[0] != fingerprint:
                    self._send(400, json.dumps(_IDEMPOTENCY_ERROR).encode(), {"Idempotent-Replayed": "true"})
                else:
                    self._send(stored[1], stored[2], {**stored[3], "Idempotent-Replayed": "true"})
                return
            if keyed:
                state.in_flight.add(str(key))
            delay = state.delays.pop(path, 0.0)
            fault = state.faults.pop(path, None)
        try:
            if delay:
                time.sleep(delay)  # the key stays in flight, the lock is free for other requests
            with state.lock:
                headers: dict[str, str] = {}
                saved = True
                if fault is not None:
                    status, should_retry = fault
                    obj: dict[str, Any] = {"error": {"type": "api_error", "message": "An unknown error occurred"}}
                    headers["Stripe-Should-Retry"] = should_retry
                    saved = should_retry == "false"  # "true": Stripe failed before executing
                else:
                    try:
                        self._auth()
                        status, obj = 200, self._route(method, path, params)
                    except _Fail as fail:
                        status, obj = fail.status, fail.body
                body = json.dumps(obj).encode()
                if keyed and saved and status not in (401, 403, 429):
                    state.idempotency[str(key)] = (fingerprint, status, body, headers)
        finally:
            if keyed:
                with state.lock:
                    state.in_flight.discard(str(key))
        self._send(status, body, headers)

    def _auth(self) -> None:
        auth = self.headers.get("Authorization", "")
        api_key = auth.removeprefix("Bearer ").strip()
        if not api_key or api_key == "sk_test_revoked":
            raise _Fail(401, "invalid_request_error", "Invalid API Key provided: sk_test_********oked")
        rule = _PERMISSIONS.get(api_key)
        if rule is not None and self.path.startswith(rule[0]) and self.command == "POST":
            raise _Fail(
                403,
                "invalid_request_error",
                f"The provided key 'rk_test_***' does not have the required permissions for this endpoint on "
                f"account 'acct_standin'. Having the '{rule[1]}' permission would allow this request to continue.",
            )

    def _control(self, method: str, path: str, query: dict[str, Any]) -> None:
        state = self.state
        with state.lock:
            if path == "/_standin/fail" and method == "POST":
                state.faults[query["path"]] = (int(query.get("status", "500")), query.get("should_retry", "false"))
                self._send(200, b"{}")
                return
            if path == "/_standin/forget" and method == "POST":
                state.idempotency.clear()  # as Stripe prunes keys once they are 24 hours old
                self._send(200, b"{}")
                return
            if path == "/_standin/delay" and method == "POST":
                state.delays[query["path"]] = float(query["seconds"])
                self._send(200, b"{}")
                return
            if path == "/_standin/stats":
                body = {
                    "requests": len(state.requests),
                    "sessions": len(state.sessions),
                    "intents": len(state.intents),
                    "refunds": len(state.refunds),
                    "in_flight": len(state.in_flight),
                    "violations": state.violations,
                    "log": state.requests[-50:],
                }
                self._send(200, json.dumps(body).encode())
                return
            if path.startswith("/_standin/authenticate/") and method == "POST":
                intent = state.intents[path.rsplit("/", 1)[1]]
                try:
                    state.authenticate(intent, query.get("result", "pass") == "pass")
                except _Fail as fail:
                    self._send(fail.status, json.dumps(fail.body).encode())
                    return
                self._send(200, json.dumps({"status": intent["status"]}).encode())
                return
            if path.startswith("/_standin/decline/") and method == "POST":
                session = state.sessions[path.rsplit("/", 1)[1]]
                try:
                    intent = state.decline(session, query.get("decline_code", "generic_decline"))
                except _Fail as fail:
                    self._send(fail.status, json.dumps(fail.body).encode())
                    return
                self._send(200, json.dumps({"payment_intent": intent["id"]}).encode())
                return
            if path.startswith("/_standin/pay/") and method == "POST":
                session = state.sessions[path.rsplit("/", 1)[1]]
                declined = state.intents.get(session["payment_intent"] or "")
                if declined is not None:  # another card on the session whose first one was declined
                    state.settle(declined)
                    intent = declined
                else:
                    intent = state.intent(
                        session["amount_total"],
                        session["currency"],
                        session["_capture_method"],
                        session["_intent_metadata"],
                    )
                session.update(
                    status="complete",
                    payment_intent=intent["id"],
                    payment_status="paid" if intent["status"] == "succeeded" else "unpaid",
                )
                self._send(200, json.dumps({"payment_intent": intent["id"]}).encode())
                return
        self._send(404, b"{}")

    # -- the API --------------------------------------------------------------------------
    def _route(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        state = self.state
        parts = path.strip("/").split("/")
        expand = list(params.get("expand") or [])
        if path == "/v1/checkout/sessions" and method == "POST":
            return state.view_session(state.session(params, self.port), [])
        if path == "/v1/checkout/sessions" and method == "GET":
            # Stripe's list object (docs.stripe.com/api/checkout/sessions/list). Filtered by
            # payment_intent: "the Checkout Session for the PaymentIntent specified" (spec3.yaml,
            # GetCheckoutSessions), none for a PaymentIntent no session made. Unfiltered: empty.
            wanted = params.get("payment_intent")
            listed = [s for s in state.sessions.values() if wanted is not None and s["payment_intent"] == wanted]
            data = [state.view_session(s, expand) for s in listed]
            return {"object": "list", "data": data, "has_more": False, "url": path}
        if parts[:3] == ["v1", "checkout", "sessions"] and len(parts) >= 4:
            session = state.sessions.get(parts[3])
            if session is None:
                raise _missing("checkout.session", parts[3])
            if len(parts) == 5 and parts[4] == "expire" and method == "POST":
                if session["status"] != "open":
                    raise _Fail(400, "invalid_request_error", "Only open sessions can be expired.", "session_expired")
                session["status"] = "expired"
                return state.view_session(session, [])
            return state.view_session(session, expand)
        if path == "/v1/payment_intents" and method == "POST":
            return self._authorize(params)
        if parts[:2] == ["v1", "payment_intents"] and len(parts) >= 3:
            intent = state.intents.get(parts[2])
            if intent is None:
                raise _missing("payment_intent", parts[2])
            if len(parts) == 4 and parts[3] == "capture":
                return self._capture(intent, params)
            if len(parts) == 4 and parts[3] == "cancel":
                if intent["status"] not in ("requires_capture", "requires_payment_method", "requires_action"):
                    raise _unexpected_state(
                        state.view_intent(intent, []),
                        f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}. Only a "
                        "PaymentIntent with one of the following statuses may be canceled: requires_payment_method, "
                        "requires_capture, requires_confirmation, requires_action, processing.",
                    )
                intent.update(status="canceled", amount_capturable=0)
                return state.view_intent(intent, [])
            return state.view_intent(intent, expand)
        if path == "/v1/refunds" and method == "POST":
            return self._refund(params)
        if parts[:2] == ["v1", "refunds"] and len(parts) == 3:
            found = state.refunds.get(parts[2])
            if found is None:
                raise _missing("refund", parts[2])
            return found
        if parts[:2] == ["v1", "charges"] and len(parts) == 3 and method == "GET":
            charge = state.charges.get(parts[2])
            if charge is None:
                raise _missing("charge", parts[2])
            return dict(charge)
        if parts[:2] in (["v1", "products"], ["v1", "prices"]) and len(parts) == 3:
            raise _missing(parts[1][:-1], parts[2])
        raise _Fail(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    def _authorize(self, params: dict[str, Any]) -> dict[str, Any]:
        method = params.get("payment_method", "")
        amount = int(params["amount"])
        if method == "pm_card_chargeDeclined":
            raise _Fail(402, "card_error", "Your card was declined.", "card_declined", decline_code="generic_decline")
        if method == "pm_card_chargeDeclinedInsufficientFunds":
            raise _Fail(
                402, "card_error", "Your card has insufficient funds.", "card_declined",
                decline_code="insufficient_funds",
            )  # fmt: skip
        if method == "pm_card_threeDSecure2Required":
            return self.state.view_intent(self.state.intent_awaiting_3ds(amount, params["currency"], params), [])
        if method != "pm_card_visa":
            raise _missing("payment_method", method)
        intent = self.state.intent(
            amount, params["currency"], params.get("capture_method", "automatic"), params.get("metadata") or {}
        )
        return self.state.view_intent(intent, [])

    def _capture(self, intent: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        if intent["status"] != "requires_capture":
            raise _unexpected_state(
                self.state.view_intent(intent, []),
                f"This PaymentIntent could not be captured because it has a status of {intent['status']}. Only a "
                "PaymentIntent with one of the following statuses may be captured: requires_capture.",
            )
        amount = int(params.get("amount_to_capture") or intent["amount_capturable"])
        if amount > intent["amount_capturable"]:
            raise _Fail(
                400, "invalid_request_error", "amount_to_capture is greater than amount_capturable",
                "amount_too_large", param="amount_to_capture",
            )  # fmt: skip
        charge = self.state.charges[intent["latest_charge"]]
        # Like Stripe: the released remainder of a partial capture counts as refunded on the charge.
        charge.update(captured=True, amount_captured=amount, amount_refunded=charge["amount"] - amount)
        intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
        return self.state.view_intent(intent, [])

    def _refund(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self.state
        if "payment_intent" in params:
            found = state.intents.get(params["payment_intent"])
            if found is None:
                raise _missing("payment_intent", params["payment_intent"])
            if found["latest_charge"] is None:  # awaiting 3-D Secure, or failed it: nothing was charged
                raise _Fail(
                    400, "invalid_request_error", "This PaymentIntent does not have a successful charge to refund."
                )
            intent, charge = found, state.charges[found["latest_charge"]]
        else:
            found = state.charges.get(params.get("charge", ""))
            if found is None:
                raise _missing("charge", params.get("charge", ""))
            charge, intent = found, state.intents[found["payment_intent"]]
        if not charge["captured"]:
            raise _Fail(400, "invalid_request_error", "This charge has not been captured.", "charge_not_captured")
        released = charge["amount"] - charge["amount_captured"]
        remaining = charge["amount_captured"] - (charge["amount_refunded"] - released)
        if remaining <= 0:
            raise _Fail(
                400, "invalid_request_error", f"Charge {charge['id']} has already been refunded.",
                "charge_already_refunded",
            )  # fmt: skip
        amount = int(params.get("amount") or remaining)
        if amount > remaining:
            raise _Fail(
                400, "invalid_request_error", "Refund amount is greater than unrefunded amount on charge.",
                "amount_too_large", param="amount",
            )  # fmt: skip
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] - released >= charge["amount_captured"]
        refund = {
            "id": _id("re"),
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "currency": charge["currency"],
            "payment_intent": intent["id"],
            "reason": params.get("reason"),
            "metadata": params.get("metadata") or {},
            "status": "succeeded",
        }
        state.refunds[refund["id"]] = refund
        return refund


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Handler.state = State()
    if "--spec-check" in sys.argv:
        from tests.stripe_gateway.speccheck import load_spec

        Handler.state.spec = load_spec()
    Handler.port = server.server_address[1]
    print(f"PORT {Handler.port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
