"""Stripe's official sample objects and real recorded Stripe responses parse into the right results.

Responses are served through the SDK's HTTP-client seam (:class:`ReplayClient`), so the real SDK
parses each one (and maps each error) exactly as it would parse Stripe's answer. Every request the
plugin makes on the way is still checked against the spec. Sources and licences: data/SOURCES.md.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from stripe_gateway import normalize
from stripe_gateway.gateway import StripeGateway
from stripe_gateway.metadata import currency_rules

from gateway_core.config import Secret
from gateway_core.errors import (
    AmountOutOfRange,
    AuthenticationRequired,
    InvalidRequest,
    NotFound,
    OutcomeUnknown,
    PaymentDeclined,
)
from gateway_core.manager import GatewayManager
from gateway_core.models import (
    AuthorizeRequest,
    CaptureRequest,
    CheckoutStatus,
    EventType,
    PaymentState,
    RefundRequest,
    RefundStatus,
    VoidRequest,
    WebhookEvent,
    WebhookRequest,
)
from gateway_core.money import Money
from tests.stripe_gateway.conftest import DATA, WEBHOOK_SECRET, make_manager
from tests.stripe_gateway.speccheck import Spec
from tests.stripe_gateway.transport import ReplayClient, parse_raw_http
from tests.stripe_gateway.webhooks_util import event_body, sign

RECORDED = DATA / "recorded"
GW = "stripe_test"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, dict[str, Any]] = json.loads((DATA / "fixtures3_subset.json").read_text())
    return data[name]


def wire() -> normalize.Wire:
    return normalize.Wire(currency_rules(), GW)


@pytest.fixture
def replay(spec: Spec) -> ReplayClient:
    return ReplayClient(spec)


@pytest.fixture
def mgr(replay: ReplayClient) -> GatewayManager:
    return make_manager(replay, "http://127.0.0.1:9")


def serve_file(replay: ReplayClient, name: str) -> None:
    status, headers, body = parse_raw_http((RECORDED / name).read_text())
    replay.respond(status, headers, body)


def serve_json(replay: ReplayClient, obj: dict[str, Any], status: int = 200) -> None:
    replay.respond(status, {"Content-Type": "application/json", "Request-Id": "req_fixture"}, json.dumps(obj).encode())


def serve_sessions(replay: ReplayClient, *sessions: dict[str, Any]) -> None:
    """Answer a List Checkout Sessions request (``?payment_intent=``) with ``sessions``.

    Built here, not recorded: none of the recordings holds a list of Checkout Sessions. The envelope
    is Stripe's list object as docs.stripe.com/api/checkout/sessions/list shows it (``object``,
    ``url``, ``has_more``, ``data``). The plugin asks for it after a PaymentIntent that reads
    ``FAILED``, to learn whether a Checkout Session still open takes another card.
    """
    serve_json(replay, {"object": "list", "url": "/v1/checkout/sessions", "has_more": False, "data": list(sessions)})


def cassette(name: str) -> list[dict[str, Any]]:
    """The interactions of one of Saleor's real Stripe cassettes (data/recorded/saleor_*.yaml)."""
    interactions: list[dict[str, Any]] = yaml.safe_load((RECORDED / name).read_text())["interactions"]
    return interactions


def serve_interactions(replay: ReplayClient, name: str, *indexes: int) -> list[tuple[str, str]]:
    """Queue the recorded responses; return the recorded (method, path) the plugin must have sent."""
    recorded = []
    for i in indexes:
        interaction = cassette(name)[i]
        response = interaction["response"]
        headers = {k: v[0] for k, v in response["headers"].items() if k.lower() != "content-length"}
        replay.respond(response["status"]["code"], headers, response["body"]["string"].encode())
        request = interaction["request"]
        recorded.append((request["method"], urlsplit(request["uri"]).path))
    return recorded


def recorded_body(name: str, index: int) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(cassette(name)[index]["response"]["body"]["string"])
    return body


def sent(replay: ReplayClient) -> list[tuple[str, str]]:
    return [(s.method, s.path) for s in replay.sent]


def event_around(obj: dict[str, Any], event_type: str) -> dict[str, Any]:
    """A Stripe event envelope around a real recorded object (the envelope is built, the object is not)."""
    return {"id": "evt_recorded", "object": "event", "type": event_type, "data": {"object": obj}}


# -- Stripe's official sample objects (stripe-mock fixtures3.json) ---------------------------------


def test_fixture_checkout_session_parses() -> None:
    session = fixture("checkout.session")
    result = normalize.checkout_session(session, wire(), GW, amount=Money.of("10.99", "USD"))
    assert result.id == session["id"]
    assert result.status is CheckoutStatus.OPEN
    assert result.url == session["url"]
    assert result.payment_id == "pi_1PgafyB7WZ01zgkWSjxsAJo3"
    assert result.expires_at is not None
    assert int(result.expires_at.timestamp()) == 1234567890
    assert result.live is False
    assert "raw" not in repr(result)


def test_fixture_session_with_total_reports_the_total_in_stripe_units() -> None:
    session = {**fixture("checkout.session"), "amount_total": 150000, "currency": "isk"}
    result = normalize.checkout_session(session, wire(), GW)
    assert result.amount == Money.of("1500", "ISK")  # Stripe sends ISK with two decimals


def test_fixture_payment_intent_after_a_failed_attempt_is_failed_unless_its_session_is_open(
    replay: ReplayClient, mgr: GatewayManager
) -> None:
    sample = fixture("payment_intent")
    assert sample["status"] == "requires_payment_method"
    assert sample["last_payment_error"]
    serve_json(replay, sample)
    serve_sessions(replay)  # no Checkout Session made it (a built answer: see serve_sessions)
    status = mgr.payment_status(GW, "pi_1PgafyB7WZ01zgkWSjxsAJo3")
    assert status.state is PaymentState.FAILED
    assert status.amount == Money.of("10.99", "USD")
    assert status.amount_captured == Money.zero("USD")
    assert not status.is_paid
    assert status.checkout_id is None
    assert replay.sent[0].params == {"expand": ["latest_charge"]}
    assert (replay.sent[1].path, replay.sent[1].params) == (
        "/v1/checkout/sessions",
        {"payment_intent": "pi_1PgafyB7WZ01zgkWSjxsAJo3"},
    )
    # stripe-mock's sample session names this very PaymentIntent and is open: the payer may pay on it.
    session = fixture("checkout.session")
    assert (session["payment_intent"], session["status"]) == ("pi_1PgafyB7WZ01zgkWSjxsAJo3", "open")
    serve_json(replay, sample)
    serve_sessions(replay, session)
    status = mgr.payment_status(GW, "pi_1PgafyB7WZ01zgkWSjxsAJo3")
    assert (status.state, status.checkout_id) == (PaymentState.PENDING, session["id"])
    serve_json(replay, {**sample, "last_payment_error": None})  # no failed attempt: one request, no list
    assert mgr.payment_status(GW, "pi_1PgafyB7WZ01zgkWSjxsAJo3").state is PaymentState.PENDING
    assert len(replay.sent) == 5
    assert not replay.responses


def test_fixture_refund_parses() -> None:
    obj = fixture("refund")
    result = normalize.refund(obj, wire(), GW, payment_id="pi_x", reason=None)
    assert result.amount == Money.of("1.00", "USD")
    assert result.status is RefundStatus.SUCCEEDED
    assert result.payment_id == "pi_x"


def test_fixture_charge_and_dispute_events_map() -> None:
    charge = {**fixture("charge"), "amount_refunded": 60}
    assert charge["refunds"]["data"] == []  # the sample lists no refund
    event = normalize.event({"id": "evt_1", "type": "charge.refunded", "data": {"object": charge}}, wire(), GW)
    # Which refund, how much, and whether it settled, the charge does not say: the event claims
    # none of them (not the charge's cumulative amount_refunded as if it were this refund's, and
    # not refund.succeeded for a refund that may be pending).
    assert event.type is EventType.UNKNOWN
    assert (event.refund_id, event.amount) == (None, None)
    assert event.payment_id == charge["id"]
    dispute = fixture("dispute")
    event = normalize.event({"id": "evt_2", "type": "charge.dispute.created", "data": {"object": dispute}}, wire(), GW)
    assert event.type is EventType.DISPUTE_OPENED
    assert event.amount == Money.of("10.00", "USD")
    assert event.payment_id == dispute["charge"]


def test_fixture_event_of_an_unmapped_type_is_unknown() -> None:
    event = normalize.event(fixture("event"), wire(), GW)
    assert event.type is EventType.UNKNOWN
    assert event.provider_type == "plan.created"
    assert event.id == "evt_1Pgc76B7WZ01zgkWwyRHS12y"


# -- real recorded Stripe responses ------------------------------------------------------------


def test_real_card_declined_without_a_decline_code_reports_stripes_code(
    replay: ReplayClient, mgr: GatewayManager
) -> None:
    recorded = parse_raw_http((RECORDED / "omnipay_Charges_PurchaseFailure.txt").read_text())[2]
    assert "decline_code" not in json.loads(recorded)["error"]  # Stripe gave only code=card_declined
    serve_file(replay, "omnipay_Charges_PurchaseFailure.txt")
    with pytest.raises(PaymentDeclined) as info:
        mgr.authorize(GW, AuthorizeRequest(Money.of("80.00", "EUR"), "pm_card_visa"), idempotency_key="k-decline")
    # The documented rule (docs/stripe.md, Errors): with no decline_code, decline_code is Stripe's
    # code, so it equals provider_code -- the sign that Stripe gave no more specific reason.
    assert info.value.decline_code == info.value.provider_code == "card_declined"
    assert info.value.http_status == 402
    assert info.value.retryable is False
    assert replay.sent[0].idempotency_key == "k-decline"


def test_real_decline_without_code_is_still_a_decline(replay: ReplayClient, mgr: GatewayManager) -> None:
    serve_file(replay, "omnipay_Charges_PurchaseFailureWithoutCode.txt")
    with pytest.raises(PaymentDeclined) as info:
        mgr.authorize(GW, AuthorizeRequest(Money.of("80.00", "EUR"), "pm_card_visa"), idempotency_key="k-d2")
    assert (info.value.decline_code, info.value.provider_code) == (None, None)  # nothing to report, nothing made up


def test_real_missing_intent_is_not_found(replay: ReplayClient, mgr: GatewayManager) -> None:
    serve_file(replay, "omnipay_PaymentIntents_FetchIntentFailure.txt")
    with pytest.raises(NotFound) as info:
        mgr.payment_status(GW, "pi_missing")
    assert info.value.request_id is not None
    assert info.value.request_id.startswith("req_")


def test_saleor_cassette_missing_intent_is_not_found(replay: ReplayClient, mgr: GatewayManager) -> None:
    serve_interactions(replay, "saleor_test_void_error_response.yaml", 0)
    with pytest.raises(NotFound) as info:
        mgr.void(GW, VoidRequest("pi_THIS_INTENT_DOES_NOT_EXISTS"), idempotency_key="k-void-missing")
    assert info.value.http_status == 404
    assert not replay.responses


# -- Saleor's real Stripe cassettes (api.stripe.com, Aug 2019, API 2019-05-16) ----------------------


def test_saleor_authorize_without_capture_is_authorized(replay: ReplayClient, mgr: GatewayManager) -> None:
    recorded = serve_interactions(replay, "saleor_test_authorize_without_capture.yaml", 0)
    auth = mgr.authorize(GW, AuthorizeRequest(Money.of("42.42", "USD"), "pm_card_pl"), idempotency_key="s-auth")
    assert sent(replay) == recorded
    assert auth.state is PaymentState.AUTHORIZED
    assert auth.id == "pi_1F5BsRIUmJaD6Oqvz2XMKZCD"
    assert auth.amount == Money.of("42.42", "USD")
    assert auth.live is False
    assert not replay.responses


def test_saleor_capture_reads_the_authorization_then_captures_it(replay: ReplayClient, mgr: GatewayManager) -> None:
    recorded = serve_interactions(replay, "saleor_test_capture.yaml", 0, 1)
    capture = mgr.capture(
        GW, CaptureRequest("pi_1F5BsRIUmJaD6Oqvz2XMKZCD", Money.of("42.42", "USD")), idempotency_key="s-cap"
    )
    assert sent(replay) == recorded
    assert replay.sent[1].params == {"amount_to_capture": "4242"}
    assert capture.state is PaymentState.SUCCEEDED
    assert capture.amount == Money.of("42.42", "USD")
    # API 2019-05-16 embeds the charges instead of latest_charge; the capture still names the charge.
    assert capture.id == "ch_1F5BsRIUmJaD6Oqvl2WF1xdU"
    assert not replay.responses


def test_saleor_capture_beyond_the_authorization_is_refused_after_reading_it(
    replay: ReplayClient, mgr: GatewayManager
) -> None:
    serve_interactions(replay, "saleor_test_capture.yaml", 0)
    with pytest.raises(AmountOutOfRange, match=r"42\.42 USD is authorized"):
        mgr.capture(GW, CaptureRequest("pi_1F5BsRIUmJaD6Oqvz2XMKZCD", Money.of("42.43", "USD")), idempotency_key="s-c2")
    assert [s.method for s in replay.sent] == ["GET"]


def test_saleor_captured_payment_reads_as_paid_and_refuses_a_refund_in_another_currency(
    replay: ReplayClient, mgr: GatewayManager
) -> None:
    serve_interactions(replay, "saleor_test_refund.yaml", 0)
    status = mgr.payment_status(GW, "pi_1F5BsRIUmJaD6Oqvz2XMKZCD")
    assert (status.state, status.amount_captured) == (PaymentState.SUCCEEDED, Money.of("42.42", "USD"))
    serve_interactions(replay, "saleor_test_refund.yaml", 0)
    # 10 EUR against a USD payment would refund 10.00 USD: refused after the read, before any POST.
    # (More than remains is Stripe's to refuse: test_checkout.py, on the stand-in.)
    with pytest.raises(InvalidRequest, match="USD"):
        mgr.refund(GW, RefundRequest("pi_1F5BsRIUmJaD6Oqvz2XMKZCD", Money.of("10.00", "EUR")), idempotency_key="s-r")
    assert [s.method for s in replay.sent] == ["GET", "GET"]
    assert not replay.responses


@pytest.mark.parametrize(
    ("name", "refund_id", "amount"),
    [
        ("saleor_test_refund.yaml", "re_1F5ES2IUmJaD6Oqv7emYlU1k", "10.00"),  # a partial refund
        ("saleor_test_void.yaml", "re_1F5TepIUmJaD6OqvC6ujUiMh", "42.42"),  # Saleor's "void": a full refund
    ],
)
def test_saleor_refunded_charge_as_a_charge_refunded_event(name: str, refund_id: str, amount: str) -> None:
    charge = recorded_body(name, 1)  # the real charge Stripe answered the refund with
    assert charge["object"] == "charge"
    event = normalize.event(event_around(charge, "charge.refunded"), wire(), GW)
    assert event.type is EventType.REFUND_SUCCEEDED
    assert event.refund_id == refund_id
    assert event.amount == Money.of(amount, "USD")
    assert event.payment_id == charge["payment_intent"]


def signed_charge_refunded(charge: dict[str, Any]) -> WebhookEvent:
    """``charge.refunded`` around ``charge``, signed with the SDK's helper and parsed by the gateway."""
    gw = StripeGateway(GW, api_key=Secret("sk_test_recorded"), webhook_secret=Secret(WEBHOOK_SECRET))
    body = event_body("charge.refunded", charge, "evt_recorded_refund")
    return gw.parse_webhook(WebhookRequest(dict(sign(body, WEBHOOK_SECRET).headers), body))


def with_refund_status(charge: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The recorded charge as Stripe would send it had its one refund been created with ``changes``."""
    (refund,) = charge["refunds"]["data"]
    return {**charge, "refunds": {**charge["refunds"], "data": [{**refund, **changes}]}}


def test_saleor_charge_refunded_for_a_pending_refund_is_refund_pending() -> None:
    # Stripe sends charge.refunded when the refund is created (its 2024-10-28 changelog); a refund
    # the balance cannot cover yet, or one whose payment method settles refunds later, is created
    # pending (spec3 Refund.status). Nothing has gone back to the payer: not REFUND_SUCCEEDED.
    charge = with_refund_status(recorded_body("saleor_test_refund.yaml", 1), status="pending")
    event = signed_charge_refunded(charge)
    assert event.type is EventType.REFUND_PENDING
    assert (event.refund_id, event.amount) == ("re_1F5ES2IUmJaD6Oqv7emYlU1k", Money.of("10.00", "USD"))
    assert event.payment_id == charge["payment_intent"]
    assert event.failure_code is None


def test_saleor_charge_refunded_for_a_failed_refund_is_refund_failed() -> None:
    charge = with_refund_status(
        recorded_body("saleor_test_void.yaml", 1), status="failed", failure_reason="expired_or_canceled_card"
    )
    event = signed_charge_refunded(charge)
    assert event.type is EventType.REFUND_FAILED
    assert event.refund_id == "re_1F5TepIUmJaD6OqvC6ujUiMh"
    assert event.failure_code == "expired_or_canceled_card"  # the refund's reason, not the charge's failure_code


def test_saleor_charge_refunded_for_a_refund_without_a_status_is_unknown() -> None:
    event = signed_charge_refunded(with_refund_status(recorded_body("saleor_test_refund.yaml", 1), status=None))
    assert event.type is EventType.UNKNOWN  # not guessed either way
    assert event.refund_id == "re_1F5ES2IUmJaD6Oqv7emYlU1k"


def test_charge_refunded_from_a_current_endpoint_is_unknown_with_the_payment() -> None:
    # API >= 2022-11-15 (the plugin pins 2026-10-28): the charge no longer embeds its refunds, so
    # the event says how much is refunded, in all, but not whether any refund has settled.
    charge = {**fixture("charge"), "amount_refunded": 100, "refunded": True}
    del charge["refunds"]
    event = signed_charge_refunded(charge)
    assert event.type is EventType.UNKNOWN
    assert event.provider_type == "charge.refunded"
    assert event.payment_id == charge["id"]  # enough for the host to read the payment's status
    assert (event.refund_id, event.amount, event.failure_code) == (None, None, None)


# -- omnipay's recorded PaymentIntent responses ---------------------------------------------------


def test_real_authorize_awaiting_confirmation_is_pending_not_authorized(
    replay: ReplayClient, mgr: GatewayManager
) -> None:
    serve_file(replay, "omnipay_PaymentIntents_AuthorizeSuccess.txt")
    auth = mgr.authorize(GW, AuthorizeRequest(Money.of("80.00", "USD"), "pm_card_visa"), idempotency_key="o-auth")
    assert auth.state is PaymentState.PENDING  # status requires_confirmation: nothing is held yet
    assert auth.amount == Money.of("80.00", "USD")
    assert replay.sent[0].idempotency_key == "o-auth"


def test_real_cancel_of_an_authorization_is_canceled(replay: ReplayClient, mgr: GatewayManager) -> None:
    serve_file(replay, "omnipay_PaymentIntents_CancelPaymentIntentSuccess.txt")
    void = mgr.void(GW, VoidRequest("pi_1F4Oq22okp6n5dKoErGka6we"), idempotency_key="o-void")
    assert sent(replay) == [("POST", "/v1/payment_intents/pi_1F4Oq22okp6n5dKoErGka6we/cancel")]
    assert void.state is PaymentState.CANCELED
    assert void.payment_id == "pi_1F4Oq22okp6n5dKoErGka6we"


def test_real_cancel_of_a_canceled_intent_is_the_void(replay: ReplayClient, mgr: GatewayManager) -> None:
    """Stripe's refusal carries the PaymentIntent, canceled: what a void asks, so it is the answer.

    This void's own first attempt, retried under another key, may have canceled it; nothing is read
    again (the error shows the PaymentIntent as it is now).
    """
    serve_file(replay, "omnipay_PaymentIntents_CancelPaymentIntentFailure.txt")
    void = mgr.void(GW, VoidRequest("pi_1Evf5q2okp6n5dKoviPU2IkK"), idempotency_key="o-void2")
    assert sent(replay) == [("POST", "/v1/payment_intents/pi_1Evf5q2okp6n5dKoviPU2IkK/cancel")]
    assert (void.payment_id, void.state) == ("pi_1Evf5q2okp6n5dKoviPU2IkK", PaymentState.CANCELED)


CAPTURED = "pi_1EUon22Tb35ankTnMW9GNjSh"  # omnipay_PaymentIntents_CaptureSuccess.txt: 80.00 USD received


def test_real_capture_of_a_captured_intent_reads_it_back_and_returns_its_capture(
    replay: ReplayClient, mgr: GatewayManager
) -> None:
    """The recorded refusal ("already been captured") carries no PaymentIntent: the plugin reads it.

    The PaymentIntent read back (the recorded capture's answer) received its whole amount, which
    is what a capture in full asks: that capture is the answer, its charge and amount.
    """
    serve_file(replay, "omnipay_PaymentIntents_CaptureFailure.txt")
    serve_file(replay, "omnipay_PaymentIntents_CaptureSuccess.txt")
    capture = mgr.capture(GW, CaptureRequest(CAPTURED), idempotency_key="k-cap")
    assert sent(replay) == [
        ("POST", f"/v1/payment_intents/{CAPTURED}/capture"),
        ("GET", f"/v1/payment_intents/{CAPTURED}"),
    ]
    assert (capture.id, capture.payment_id) == ("ch_1EZvfwFSbr6xR4YAWulsIcYV", CAPTURED)
    assert capture.amount == Money.of("80.00", "USD")
    assert capture.state is PaymentState.PARTIALLY_REFUNDED  # the recorded charge carries a 20.00 refund
    assert not replay.responses


def outcome_unknown(mgr: GatewayManager, request: CaptureRequest) -> OutcomeUnknown:
    with pytest.raises(OutcomeUnknown) as info:
        mgr.capture(GW, request, idempotency_key="k-cap")
    assert info.value.retryable is False
    assert info.value.provider_code == "payment_intent_unexpected_state"
    assert info.value.http_status == 400
    assert "payment_status" in info.value.message
    return info.value


def test_real_capture_refused_whose_intent_cannot_be_read_is_outcome_unknown(
    replay: ReplayClient, mgr: GatewayManager
) -> None:
    serve_file(replay, "omnipay_PaymentIntents_CaptureFailure.txt")
    serve_file(replay, "omnipay_PaymentIntents_FetchIntentFailure.txt")  # the read back: 404
    error = outcome_unknown(mgr, CaptureRequest(CAPTURED))
    assert "already been captured" in error.message
    assert not replay.responses


def test_real_partial_capture_refused_after_a_capture_of_another_amount_is_outcome_unknown(
    replay: ReplayClient, mgr: GatewayManager
) -> None:
    """50.00 asked of a PaymentIntent that received 80.00: that capture is not this one."""
    serve_file(replay, "omnipay_PaymentIntents_CaptureSuccess.txt")  # read first (the partial capture's check)
    serve_file(replay, "omnipay_PaymentIntents_CaptureFailure.txt")
    serve_file(replay, "omnipay_PaymentIntents_CaptureSuccess.txt")  # read back
    outcome_unknown(mgr, CaptureRequest(CAPTURED, Money.of("50.00", "USD")))
    assert [method for method, _ in sent(replay)] == ["GET", "POST", "GET"]
    assert not replay.responses


def refusal_showing(**intent: Any) -> dict[str, Any]:
    """The recorded cancel refusal, its PaymentIntent (real, 10.99 AUD) changed to ``intent``."""
    body = parse_raw_http((RECORDED / "omnipay_PaymentIntents_CancelPaymentIntentFailure.txt").read_text())[2]
    envelope: dict[str, Any] = json.loads(body)
    envelope["error"]["payment_intent"].update(intent)
    return envelope


@pytest.mark.parametrize(
    "intent",
    [
        # Received all of it, but it asked for several captures: one amount does not tell them apart.
        {
            "status": "succeeded",
            "amount_received": 1099,
            "payment_method_options": {"card": {"request_multicapture": "if_available"}},
        },
        {"status": "processing", "amount_received": 0},
        {"status": "canceled", "amount_received": 500},  # canceled, yet something was received
    ],
    ids=["multicapture", "processing", "canceled_after_receiving"],
)
def test_a_capture_refused_for_an_intent_that_is_not_plainly_this_capture_is_outcome_unknown(
    intent: dict[str, Any], replay: ReplayClient, mgr: GatewayManager
) -> None:
    serve_json(replay, refusal_showing(**intent), status=400)
    outcome_unknown(mgr, CaptureRequest("pi_1Evf5q2okp6n5dKoviPU2IkK"))
    assert len(replay.sent) == 1  # the refusal showed the PaymentIntent: nothing read back


def test_a_void_refused_for_a_captured_intent_says_refund_it(replay: ReplayClient, mgr: GatewayManager) -> None:
    serve_json(replay, refusal_showing(status="succeeded", amount_received=1099), status=400)
    with pytest.raises(InvalidRequest) as info:
        mgr.void(GW, VoidRequest("pi_1Evf5q2okp6n5dKoviPU2IkK"), idempotency_key="o-void3")
    assert not isinstance(info.value, OutcomeUnknown)
    assert info.value.provider_code == "payment_intent_unexpected_state"
    assert "refund it instead" in info.value.message


def test_real_capture_success_reports_the_amount_received(replay: ReplayClient, mgr: GatewayManager) -> None:
    serve_file(replay, "omnipay_PaymentIntents_CaptureSuccess.txt")
    capture = mgr.capture(GW, CaptureRequest("pi_123"), idempotency_key="k-cap2")
    assert capture.amount.amount == Decimal("80.00")
    # The recorded charge already carries a 20.00 refund (amount_refunded 2000 of 8000 received).
    assert capture.state is PaymentState.PARTIALLY_REFUNDED
    assert replay.sent[0].idempotency_key == "k-cap2"


def test_real_3ds_redirect_requires_authentication(replay: ReplayClient, mgr: GatewayManager) -> None:
    serve_file(replay, "omnipay_PaymentIntents_ConfirmIntent3dsRedirect.txt")
    with pytest.raises(AuthenticationRequired) as info:
        mgr.authorize(GW, AuthorizeRequest(Money.of("80.00", "EUR"), "pm_card_visa"), idempotency_key="k-3ds")
    assert info.value.action_url is not None
    assert info.value.action_url.startswith("https://")
    assert info.value.payment_id == "pi_1Ev1M1FSbr6xR4YAgJIBBVX0"  # the PaymentIntent waiting for the payer


def test_real_authentication_failure_reads_as_failed(replay: ReplayClient, mgr: GatewayManager) -> None:
    serve_file(replay, "omnipay_PaymentIntents_FetchIntentPaymentMethodRequired.txt")
    # omnipay confirms PaymentIntents itself, no Checkout: no session (a built answer, not recorded).
    serve_sessions(replay)
    status = mgr.payment_status(GW, "pi_123")
    assert status.state is PaymentState.FAILED
    assert not status.is_paid
    assert [s.path for s in replay.sent] == ["/v1/payment_intents/pi_123", "/v1/checkout/sessions"]
    assert not replay.responses


def test_stripe_dotnet_decline_fixture_carries_the_decline_code(replay: ReplayClient, mgr: GatewayManager) -> None:
    serve_json(replay, json.loads((RECORDED / "dotnet_payment_intent_last_payment_error.json").read_text()))
    with pytest.raises(PaymentDeclined) as info:
        mgr.authorize(GW, AuthorizeRequest(Money.of("1.00", "EUR"), "pm_card_visa"), idempotency_key="k-dn")
    assert info.value.decline_code == "generic_decline"


def test_dj_stripe_succeeded_intent_is_paid(replay: ReplayClient, mgr: GatewayManager) -> None:
    serve_json(replay, json.loads((RECORDED / "djstripe_payment_intent.json").read_text()))
    status = mgr.payment_status(GW, "pi_fakefakefakefakefake0001")
    assert status.state is PaymentState.SUCCEEDED
    assert status.is_paid
    assert status.amount_captured == Money.of("20.00", "USD")


def test_localstripe_signed_webhooks_verify_and_map(client: Any, spec: Spec) -> None:
    from stripe_gateway.gateway import StripeGateway

    from gateway_core.config import Secret
    from gateway_core.models import WebhookRequest

    for name, expected, amount in (
        ("payment_intent_succeeded.signed.json", EventType.PAYMENT_SUCCEEDED, "20.00"),
        ("payment_intent_payment_failed.signed.json", EventType.PAYMENT_FAILED, "10.00"),
    ):
        delivery = json.loads((RECORDED / name).read_text())
        timestamp = int(delivery["headers"]["Stripe-Signature"].split(",")[0][2:])

        def clock(t: float = timestamp + 5) -> float:
            return t

        secret = Secret("whsec_test")  # the test-only secret the deliveries were signed with (SOURCES.md)
        gateway = StripeGateway(GW, api_key=Secret("sk_test_x"), webhook_secret=secret, clock=clock)
        event = gateway.parse_webhook(WebhookRequest(delivery["headers"], delivery["raw_body"].encode()))
        assert event.type is expected
        assert event.amount == Money.of(amount, "EUR")
        assert event.payment_id is not None
        assert event.payment_id.startswith("pi_")
