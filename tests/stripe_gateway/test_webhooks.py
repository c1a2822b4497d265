"""Webhooks signed with the SDK's own helper: mapped when genuine, refused otherwise."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from stripe_gateway.gateway import StripeGateway, WebhookAccountMismatch

from gateway_core.config import GatewaySettings, Secret
from gateway_core.errors import ConfigurationError, WebhookVerificationFailed
from gateway_core.models import EventType, WebhookRequest
from gateway_core.money import Money
from tests.stripe_gateway.conftest import WEBHOOK_SECRET, make_manager
from tests.stripe_gateway.transport import CheckedClient
from tests.stripe_gateway.webhooks_util import event_body, sign

GW = "stripe_test"


def gateway(**kwargs: Any) -> StripeGateway:
    kwargs.setdefault("webhook_secret", Secret(WEBHOOK_SECRET))
    return StripeGateway(GW, api_key=Secret("sk_test_webhooks"), **kwargs)


def parse(gw: StripeGateway, body: bytes, headers: dict[str, str] | None = None) -> Any:
    delivered = headers if headers is not None else dict(sign(body, WEBHOOK_SECRET).headers)
    return gw.parse_webhook(WebhookRequest(delivered, body))


SESSION = {"object": "checkout.session", "id": "cs_test_1", "amount_total": 2500, "currency": "eur",
           "payment_intent": "pi_test_1", "client_reference_id": "order-5"}  # fmt: skip


@pytest.mark.parametrize(
    ("provider_type", "obj", "expected", "amount"),
    [
        ("checkout.session.completed", {**SESSION, "payment_status": "paid"}, EventType.PAYMENT_SUCCEEDED, "25.00"),
        ("checkout.session.completed", {**SESSION, "payment_status": "unpaid"}, EventType.CHECKOUT_COMPLETED, "25.00"),
        ("checkout.session.async_payment_succeeded", SESSION, EventType.PAYMENT_SUCCEEDED, "25.00"),
        ("checkout.session.async_payment_failed", SESSION, EventType.PAYMENT_FAILED, "25.00"),
        ("checkout.session.expired", {**SESSION, "payment_intent": None}, EventType.CHECKOUT_EXPIRED, "25.00"),
        (
            "payment_intent.payment_failed",
            {"object": "payment_intent", "id": "pi_test_1", "amount": 2500, "currency": "eur",
             "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds"}},
            EventType.PAYMENT_FAILED, "25.00",
        ),
        (
            "charge.refunded",  # the second of two refunds: the event's amount is that refund's, not the total
            {"object": "charge", "id": "ch_1", "payment_intent": "pi_test_1", "amount": 2500, "amount_refunded": 1600,
             "currency": "eur", "refunds": {"object": "list", "data": [
                 {"object": "refund", "id": "re_2", "amount": 1000, "created": 1700000200, "currency": "eur",
                  "status": "succeeded"},
                 {"object": "refund", "id": "re_1", "amount": 600, "created": 1700000100, "currency": "eur",
                  "status": "succeeded"}]}},
            EventType.REFUND_SUCCEEDED, "10.00",
        ),
        (
            "charge.refunded",  # the newest refund is pending: sent at its creation, the money has not moved
            {"object": "charge", "id": "ch_1", "payment_intent": "pi_test_1", "amount": 2500, "amount_refunded": 1600,
             "currency": "eur", "refunds": {"object": "list", "data": [
                 {"object": "refund", "id": "re_2", "amount": 1000, "created": 1700000200, "currency": "eur",
                  "status": "pending"},
                 {"object": "refund", "id": "re_1", "amount": 600, "created": 1700000100, "currency": "eur",
                  "status": "succeeded"}]}},
            EventType.REFUND_PENDING, "10.00",
        ),
        (
            "charge.refunded",  # API >= 2022-11-15: no refund list, so no refund status, amount or id to claim
            {"object": "charge", "id": "ch_1", "payment_intent": "pi_test_1", "amount": 2500, "amount_refunded": 1600,
             "currency": "eur"},
            EventType.UNKNOWN, None,
        ),
        (
            "refund.updated",
            {"object": "refund", "id": "re_1", "payment_intent": "pi_test_1", "amount": 1000, "currency": "eur",
             "status": "succeeded"},
            EventType.REFUND_SUCCEEDED, "10.00",
        ),
        (
            "refund.updated",
            {"object": "refund", "id": "re_1", "payment_intent": "pi_test_1", "amount": 1000, "currency": "eur",
             "status": "canceled"},
            EventType.REFUND_FAILED, "10.00",
        ),
        (
            "refund.created",  # a card refund is usually created succeeded, with no refund.updated after it
            {"object": "refund", "id": "re_3", "payment_intent": "pi_test_1", "amount": 700, "currency": "eur",
             "status": "succeeded"},
            EventType.REFUND_SUCCEEDED, "7.00",
        ),
        (
            "refund.created",
            {"object": "refund", "id": "re_4", "payment_intent": "pi_test_1", "amount": 700, "currency": "eur",
             "status": "pending"},
            EventType.REFUND_PENDING, "7.00",
        ),
        (
            "refund.failed",
            {"object": "refund", "id": "re_1", "payment_intent": "pi_test_1", "amount": 1000, "currency": "eur",
             "status": "failed", "failure_reason": "expired_or_canceled_card"},
            EventType.REFUND_FAILED, "10.00",
        ),
        (
            "charge.dispute.created",
            {"object": "dispute", "id": "dp_1", "charge": "ch_1", "payment_intent": "pi_test_1", "amount": 2500,
             "currency": "eur"},
            EventType.DISPUTE_OPENED, "25.00",
        ),
        ("customer.created", {"object": "customer", "id": "cus_1"}, EventType.UNKNOWN, None),
    ],
)  # fmt: skip
def test_events_map_to_core_types(
    provider_type: str, obj: dict[str, Any], expected: EventType, amount: str | None
) -> None:
    event = parse(gateway(), event_body(provider_type, obj, "evt_test_map"))
    assert event.type is expected
    assert event.provider_type == provider_type
    assert event.id == "evt_test_map"
    assert event.gateway == GW
    assert event.amount == (Money.of(amount, "EUR") if amount else None)
    if obj["object"] == "payment_intent":
        assert event.payment_id == obj["id"]
    elif obj["object"] != "customer":
        assert event.payment_id == obj.get("payment_intent")


def test_event_details_are_carried() -> None:
    failed = parse(
        gateway(),
        event_body(
            "payment_intent.payment_failed",
            {"object": "payment_intent", "id": "pi_9", "amount": 100, "currency": "isk", "metadata": {"reference": "o-9"},
             "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds"}},
        ),
    )  # fmt: skip
    assert failed.failure_code == "insufficient_funds"
    assert failed.reference == "o-9"
    assert failed.amount == Money.of("1", "ISK")
    refund = parse(
        gateway(),
        event_body("refund.failed", {"object": "refund", "id": "re_7", "charge": "ch_7", "amount": 5, "currency": "jpy",
                                     "status": "failed", "failure_reason": "lost_or_stolen_card"}),
    )  # fmt: skip
    assert refund.refund_id == "re_7"
    assert refund.payment_id == "ch_7"
    assert refund.failure_code == "lost_or_stolen_card"
    assert refund.amount == Money.of("5", "JPY")
    refunded = parse(
        gateway(),
        event_body("charge.refunded", {"object": "charge", "id": "ch_8", "payment_intent": "pi_8", "amount": 900,
                                       "amount_refunded": 900, "currency": "eur", "refunds": {"data": [
                                           {"object": "refund", "id": "re_8", "amount": 900, "created": 1,
                                            "status": "succeeded"}]}}),
    )  # fmt: skip
    assert refunded.type is EventType.REFUND_SUCCEEDED  # the listed refund says succeeded
    assert (refunded.refund_id, refunded.payment_id, refunded.amount) == ("re_8", "pi_8", Money.of("9.00", "EUR"))
    pending = parse(
        gateway(),
        event_body("refund.updated", {"object": "refund", "id": "re_9", "payment_intent": "pi_9", "amount": 300,
                                      "currency": "eur", "status": "pending"}),
    )  # fmt: skip
    assert pending.type is EventType.REFUND_PENDING
    assert (pending.refund_id, pending.payment_id, pending.amount) == ("re_9", "pi_9", Money.of("3.00", "EUR"))
    odd = parse(
        gateway(),
        event_body("refund.updated", {"object": "refund", "id": "re_10", "payment_intent": "pi_9", "amount": 300,
                                      "currency": "eur", "status": "some_future_status"}),
    )  # fmt: skip
    assert odd.type is EventType.UNKNOWN  # not guessed: reported as it came
    assert odd.provider_type == "refund.updated"
    checkout = parse(gateway(), event_body("checkout.session.expired", SESSION))
    assert checkout.checkout_id == "cs_test_1"
    assert checkout.reference == "order-5"
    assert checkout.occurred_at is not None


def test_tampered_body_is_refused() -> None:
    body = event_body("checkout.session.completed", {**SESSION, "payment_status": "paid"})
    headers = dict(sign(body, WEBHOOK_SECRET).headers)
    with pytest.raises(WebhookVerificationFailed):
        parse(gateway(), body.replace(b"2500", b"2"), headers)


def test_a_body_that_is_not_utf8_is_refused_as_unverified() -> None:
    body = event_body("checkout.session.expired", SESSION)
    headers = dict(sign(body, WEBHOOK_SECRET).headers)
    with pytest.raises(WebhookVerificationFailed, match="not UTF-8"):
        parse(gateway(), body + b"\xff", headers)


def test_unsigned_and_malformed_signatures_are_refused() -> None:
    body = event_body("checkout.session.expired", SESSION)
    for headers in ({}, {"Stripe-Signature": ""}, {"Stripe-Signature": "garbage"}, {"Stripe-Signature": "t=1"}):
        with pytest.raises(WebhookVerificationFailed):
            parse(gateway(), body, headers)


@pytest.mark.parametrize("signature", ["v1=\u00e9", "v1=" + chr(0xD800), "v1=\u00e9" * 40])
def test_a_signature_that_is_not_ascii_is_refused_as_unverified(signature: str) -> None:
    # A forged header a web framework hands over as text: hmac's comparison of non-ASCII str
    # raises TypeError, which reached the host as an unmapped error (a 500, not a 400).
    body = event_body("checkout.session.expired", SESSION)
    with pytest.raises(WebhookVerificationFailed, match="not ASCII"):
        parse(gateway(), body, {"Stripe-Signature": f"t={int(time.time())},{signature}"})


def test_wrong_secret_is_refused() -> None:
    body = event_body("checkout.session.expired", SESSION)
    with pytest.raises(WebhookVerificationFailed):
        parse(gateway(), body, dict(sign(body, "whsec_someone_else").headers))


def test_stale_and_future_timestamps_are_refused_with_the_configured_tolerance() -> None:
    body = event_body("checkout.session.expired", SESSION)
    now = int(time.time())
    gw = gateway(webhook_tolerance=60)
    for timestamp in (now - 61, now + 61):
        with pytest.raises(WebhookVerificationFailed):
            parse(gw, body, dict(sign(body, WEBHOOK_SECRET, timestamp).headers))
    assert parse(gw, body, dict(sign(body, WEBHOOK_SECRET, now - 30).headers)).type is EventType.CHECKOUT_EXPIRED


def test_replayed_delivery_is_refused_when_stale() -> None:
    body = event_body("checkout.session.expired", SESSION)
    captured = dict(sign(body, WEBHOOK_SECRET, int(time.time())).headers)
    later = time.time() + 301
    gw = gateway(clock=lambda: later)
    with pytest.raises(WebhookVerificationFailed):
        parse(gw, body, captured)


def test_replayed_delivery_within_tolerance_is_refused_by_default() -> None:
    body = event_body("checkout.session.expired", SESSION)
    headers = dict(sign(body, WEBHOOK_SECRET).headers)
    gw = gateway()
    assert gw.refuse_replayed_webhooks is True
    assert parse(gw, body, headers).type is EventType.CHECKOUT_EXPIRED
    with pytest.raises(WebhookVerificationFailed, match="already accepted"):
        parse(gw, body, headers)
    # Stripe re-signs each retry, so a genuine redelivery of the same event still passes; the host
    # deduplicates those on the event id.
    again = parse(gw, body, dict(sign(body, WEBHOOK_SECRET, int(time.time()) - 1).headers))
    assert again.id == json.loads(body)["id"]


def test_a_replay_with_extra_signatures_in_its_header_is_still_a_replay() -> None:
    # The SDK accepts a header if any v1 signature matches, so an attacker can vary the header;
    # the memory is keyed on what was signed (timestamp and body), not on the header's text.
    body = event_body("checkout.session.expired", SESSION)
    header = sign(body, WEBHOOK_SECRET).headers["Stripe-Signature"]
    gw = gateway()
    parse(gw, body, {"Stripe-Signature": header})
    for variant in (f"{header},v1={'0' * 64}", f"{header},v0=abc", f"v0=abc,{header}"):
        with pytest.raises(WebhookVerificationFailed, match="already accepted"):
            parse(gw, body, {"Stripe-Signature": variant})


def test_replay_refusal_can_be_turned_off_through_the_settings() -> None:
    body = event_body("checkout.session.expired", SESSION)
    headers = dict(sign(body, WEBHOOK_SECRET).headers)
    settings = GatewaySettings(
        GW,
        "stripe",
        {
            "api_key": Secret("sk_test_webhooks"),
            "webhook_secret": Secret(WEBHOOK_SECRET),
            "refuse_replayed_webhooks": False,
        },
    )
    lenient = StripeGateway.from_settings(settings)
    first, second = parse(lenient, body, headers), parse(lenient, body, headers)
    assert first.id == second.id  # accepted twice: deduplicating on the id is then the host's only guard


def test_the_replay_memory_is_bounded_and_forgets_what_is_stale_anyway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("stripe_gateway.gateway._REPLAY_MEMORY", 5)
    now = [float(int(time.time()))]
    gw = gateway(webhook_tolerance=60, clock=lambda: now[0])
    deliveries = []
    for i in range(8):
        body = event_body("checkout.session.expired", SESSION, f"evt_bound_{i}")
        headers = dict(sign(body, WEBHOOK_SECRET, int(now[0])).headers)
        parse(gw, body, headers)
        deliveries.append((body, headers))
    assert len(gw._seen_deliveries) == 5  # the three oldest were forgotten, oldest first
    with pytest.raises(WebhookVerificationFailed):
        parse(gw, *deliveries[-1])
    now[0] += 121  # past twice the tolerance: every remembered delivery would be stale now
    fresh = event_body("checkout.session.expired", SESSION, "evt_bound_fresh")
    parse(gw, fresh, dict(sign(fresh, WEBHOOK_SECRET, int(now[0])).headers))
    assert len(gw._seen_deliveries) == 1


def test_concurrent_replays_are_accepted_once() -> None:
    body = event_body("checkout.session.expired", SESSION)
    headers = dict(sign(body, WEBHOOK_SECRET).headers)
    gw = gateway()
    start = threading.Barrier(8, timeout=10)

    def deliver(_: int) -> bool:
        start.wait()
        try:
            parse(gw, body, headers)
        except WebhookVerificationFailed:
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        accepted = list(pool.map(deliver, range(8)))
    assert accepted.count(True) == 1


# -- Connect: an event is believed only by the gateway of its account -----------------------------


def connect_event(account: str | None) -> bytes:
    payload = json.loads(event_body("checkout.session.completed", {**SESSION, "payment_status": "paid"}))
    if account is not None:
        payload["account"] = account
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    ("bound_to", "event_account"),
    [("acct_1A", "acct_1B"), ("acct_1A", None), (None, "acct_1B")],
    ids=["other-connected-account", "platform-event-to-connected-gateway", "connected-event-to-platform-gateway"],
)
def test_an_event_for_another_account_is_refused(bound_to: str | None, event_account: str | None) -> None:
    gw = gateway(connected_account=bound_to)
    with pytest.raises(WebhookAccountMismatch) as info:
        parse(gw, connect_event(event_account))
    assert isinstance(info.value, WebhookVerificationFailed)
    assert (info.value.account, info.value.expected) == (event_account, bound_to)
    assert info.value.gateway == GW


@pytest.mark.parametrize("account", ["acct_1A", None])
def test_an_event_for_the_gateways_own_account_is_believed(account: str | None) -> None:
    event = parse(gateway(connected_account=account), connect_event(account))
    assert event.type is EventType.PAYMENT_SUCCEEDED


@pytest.mark.parametrize(
    ("provider_type", "obj", "expected"),
    [
        ("charge.dispute.created",
         {"object": "dispute", "id": "dp_xcg", "charge": "ch_xcg", "payment_intent": "pi_xcg", "amount": 5000,
          "currency": "xcg"},
         EventType.DISPUTE_OPENED),
        ("payment_intent.succeeded",
         {"object": "payment_intent", "id": "pi_xcg", "amount": 5000, "amount_received": 5000, "currency": "xcg",
          "status": "succeeded", "metadata": {"reference": "o-xcg"}},
         EventType.PAYMENT_SUCCEEDED),
        ("checkout.session.completed",
         {**SESSION, "payment_intent": "pi_xcg", "amount_total": 5000, "currency": "xcg", "payment_status": "paid"},
         EventType.PAYMENT_SUCCEEDED),
    ],
)  # fmt: skip
def test_a_verified_event_in_an_undeclared_currency_reaches_the_host_without_an_amount(
    provider_type: str, obj: dict[str, Any], expected: EventType, client: CheckedClient
) -> None:
    """XCG is not declared by the plugin; the event is Stripe's, verified, and must not be refused."""
    manager = make_manager(client, "http://127.0.0.1:9")  # no request is made: parsing is local
    body = event_body(provider_type, obj, "evt_test_xcg")
    event = manager.parse_webhook(GW, dict(sign(body, WEBHOOK_SECRET).headers), body)
    assert event.type is expected
    assert event.id == "evt_test_xcg"
    assert event.payment_id == "pi_xcg"
    assert event.amount is None
    assert event.raw["data"]["object"]["currency"] == "xcg"
    assert client.sent == []


def test_signature_from_a_rolled_secret_is_accepted_among_several() -> None:
    body = event_body("checkout.session.expired", SESSION)
    old = sign(body, "whsec_old_secret").headers["Stripe-Signature"]
    new = sign(body, WEBHOOK_SECRET).headers["Stripe-Signature"]
    both = f"{old},{new.split(',')[1]}"
    assert parse(gateway(), body, {"Stripe-Signature": both}).type is EventType.CHECKOUT_EXPIRED


@pytest.mark.parametrize(
    ("provider_type", "obj"),
    [
        ("checkout.session.completed", {**SESSION, "client_reference_id": 5, "payment_status": "unpaid"}),
        ("payment_intent.payment_failed",
         {"object": "payment_intent", "id": "pi_test_1", "amount": 2500, "currency": "eur", "metadata": ["reference"],
          "last_payment_error": {"code": {"type": "card_error"}, "decline_code": 51}}),
        ("payment_intent.payment_failed",
         {"object": "payment_intent", "id": "pi_test_1", "amount": 2500, "currency": "eur",
          "metadata": {"reference": {"order": 5}}, "last_payment_error": {"decline_code": ""}}),
        ("refund.failed", {"object": "refund", "id": "re_1", "amount": 600, "currency": "eur",
                           "payment_intent": "pi_test_1", "status": "failed", "failure_reason": ["lost_or_stolen_card"]}),
    ],
)  # fmt: skip
def test_mistyped_references_and_codes_of_a_verified_event_read_as_absent(
    provider_type: str, obj: dict[str, Any]
) -> None:
    # Signed by Stripe, so believed, but read by shape: a number or an object where Stripe sends a
    # string reaches the host as no value, never as "5" or "{'type': 'card_error'}".
    event = parse(gateway(), event_body(provider_type, obj))
    assert event.type is not EventType.UNKNOWN
    assert event.reference is None
    assert event.failure_code is None
    assert event.payment_id == "pi_test_1"


def test_verified_but_malformed_payload_is_refused() -> None:
    for body in (b"[]", b'{"id": "evt_1", "type": "x"}'):
        with pytest.raises(WebhookVerificationFailed):
            parse(gateway(), body)


def test_no_webhook_secret_is_a_configuration_error() -> None:
    gw = StripeGateway(GW, api_key=Secret("sk_test_x"))
    body = event_body("checkout.session.expired", SESSION)
    with pytest.raises(ConfigurationError):
        parse(gw, body)


def test_verification_errors_never_echo_the_secret_or_signature() -> None:
    body = event_body("checkout.session.expired", SESSION)
    headers = dict(sign(body, "whsec_someone_else").headers)
    with pytest.raises(WebhookVerificationFailed) as info:
        parse(gateway(), body, headers)
    text = f"{info.value} {info.value!r}"
    assert WEBHOOK_SECRET not in text
    assert headers["Stripe-Signature"].split("v1=")[1] not in text


@pytest.mark.parametrize("smuggled", [" t={now}", "t ={now}", "\tt={now}"])
def test_a_stale_delivery_with_a_fresh_timestamp_smuggled_into_its_header_is_refused(smuggled: str) -> None:
    # The SDK verifies the signature over the first item named exactly "t"; a second,
    # whitespace-padded "t" item must not be the timestamp the tolerance and the replay
    # memory judge, or a captured delivery could be replayed forever with a new "t" in front.
    body = event_body("checkout.session.expired", SESSION)
    old = int(time.time()) - 3600
    captured = sign(body, WEBHOOK_SECRET, old).headers["Stripe-Signature"]
    gw = gateway()
    forged = f"{smuggled.format(now=int(time.time()))},{captured}"
    with pytest.raises(WebhookVerificationFailed):
        parse(gw, body, {"Stripe-Signature": forged})
    assert gw._seen_deliveries == {}  # nothing remembered from a refused delivery


@pytest.mark.parametrize(
    ("provider_type", "fields", "expected", "amount"),
    [
        # A partial capture of 60.00 of a 100.00 authorization: Stripe keeps ``amount`` (what was
        # intended) and reports what it collected in ``amount_received``; the rest was released.
        ("payment_intent.succeeded", {"status": "succeeded", "amount_received": 6000, "amount_capturable": 0},
         EventType.PAYMENT_SUCCEEDED, "60.00"),
        # Authorized for less than intended (a partial authorization): what can be captured.
        ("payment_intent.amount_capturable_updated",
         {"status": "requires_capture", "amount_received": 0, "amount_capturable": 7500},
         EventType.PAYMENT_AUTHORIZED, "75.00"),
        # Older shapes without the fields: the intended amount, as before.
        ("payment_intent.succeeded", {"status": "succeeded"}, EventType.PAYMENT_SUCCEEDED, "100.00"),
    ],
)  # fmt: skip
def test_a_payment_intent_events_amount_is_what_was_collected_or_can_be(
    provider_type: str, fields: dict[str, Any], expected: EventType, amount: str
) -> None:
    obj = {"object": "payment_intent", "id": "pi_partial", "amount": 10000, "currency": "eur", **fields}
    event = parse(gateway(), event_body(provider_type, obj))
    assert event.type is expected
    assert event.amount == Money.of(amount, "EUR")
