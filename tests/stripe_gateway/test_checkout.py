"""Checkout Sessions, PaymentIntents and refunds against the stand-in: what is sent, what comes back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from stripe_gateway import normalize
from stripe_gateway.metadata import currency_rules

from gateway_core.capabilities import Feature
from gateway_core.errors import (
    AmountOutOfRange,
    CapabilityNotSupported,
    IdempotencyConflict,
    InvalidAmount,
    InvalidRequest,
    UnsupportedCurrency,
)
from gateway_core.manager import GatewayManager
from gateway_core.models import (
    AuthorizeRequest,
    CaptureRequest,
    CheckoutRequest,
    CheckoutStatus,
    LineItem,
    PaymentState,
    RefundRequest,
    RefundStatus,
    VoidRequest,
)
from gateway_core.money import Money
from tests.stripe_gateway.conftest import StandIn, make_manager
from tests.stripe_gateway.transport import CheckedClient

GW = "stripe_test"
OK, NO = "https://shop.example/ok", "https://shop.example/no"


def sent_checkout(client: CheckedClient) -> dict[str, object]:
    posts = [s for s in client.posts() if s.template == "/v1/checkout/sessions"]
    assert len(posts) == 1
    return dict(posts[0].params)


def test_checkout_sends_inline_prices_urls_reference_metadata_email_expiry_locale(
    client: CheckedClient, manager: GatewayManager
) -> None:
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    request = CheckoutRequest(
        line_items=(LineItem("Tea", Money.of("3.50", "EUR"), 2), LineItem("Cake", Money.of("4.25", "EUR"))),
        success_url=OK,
        cancel_url=NO,
        reference="order-42",
        customer_email="payer@example.com",
        metadata={"cart": "c-9"},
        expires_at=expires,
        locale="de-AT",
    )
    session = manager.create_checkout(GW, request, idempotency_key="co-1")
    params = sent_checkout(client)
    assert params == {
        "mode": "payment",
        "line_items": [
            {"quantity": "2", "price_data": {"currency": "eur", "unit_amount": "350", "product_data": {"name": "Tea"}}},
            {
                "quantity": "1",
                "price_data": {"currency": "eur", "unit_amount": "425", "product_data": {"name": "Cake"}},
            },
        ],
        "success_url": OK,
        "cancel_url": NO,
        "client_reference_id": "order-42",
        "metadata": {"cart": "c-9"},
        "customer_email": "payer@example.com",
        "expires_at": str(int(expires.timestamp())),
        "locale": "de",
        # The PaymentIntent Stripe makes gets the metadata and the reference too (see the test below).
        "payment_intent_data": {"metadata": {"cart": "c-9", "reference": "order-42"}},
    }
    assert client.posts()[0].idempotency_key == "co-1"
    assert client.posts()[0].headers["Stripe-Version"] == "2026-10-28.endive"
    assert session.amount == Money.of("11.25", "EUR")
    assert session.status is CheckoutStatus.OPEN
    assert session.expires_at == expires
    assert session.reference == "order-42"
    assert session.url.startswith("http")


def test_authorize_only_checkout_asks_for_manual_capture(client: CheckedClient, manager: GatewayManager) -> None:
    request = CheckoutRequest.single("Hold", Money.of("20.00", "USD"), OK, NO, capture=False)
    manager.create_checkout(GW, request, idempotency_key="co-manual")
    assert sent_checkout(client)["payment_intent_data"] == {"capture_method": "manual"}


@pytest.mark.parametrize(
    ("amount", "code", "minor"),
    [("1500", "ISK", "150000"), ("12.340", "KWD", "12340"), ("175.00", "HUF", "17500"), ("5000", "JPY", "5000")],
)
def test_wire_amounts_use_stripe_exponents(
    amount: str, code: str, minor: str, client: CheckedClient, manager: GatewayManager
) -> None:
    session = manager.create_checkout(
        GW, CheckoutRequest.single("X", Money.of(amount, code), OK, NO), idempotency_key=f"w-{code}"
    )
    line = sent_checkout(client)["line_items"]
    assert isinstance(line, list)
    assert line[0]["price_data"]["unit_amount"] == minor
    assert session.amount == Money.of(amount, code)


@pytest.mark.parametrize(
    ("amount", "error"),
    [
        (Money.of("12.345", "KWD"), InvalidAmount),  # three-decimal currencies end in 0
        (Money.of("0.49", "EUR"), AmountOutOfRange),  # Stripe's EUR minimum is 0.50
        (Money.of("1000000.00", "EUR"), AmountOutOfRange),  # eight digits at most (EUR)
        (Money.of("10.00", "RUB"), UnsupportedCurrency),  # restricted, not enabled
        (Money.of("10.00", "BGN"), UnsupportedCurrency),
    ],
)
def test_bad_amounts_are_refused_before_anything_is_sent(
    amount: Money, error: type[Exception], client: CheckedClient, manager: GatewayManager
) -> None:
    with pytest.raises(error):
        manager.create_checkout(GW, CheckoutRequest.single("X", amount, OK, NO), idempotency_key="bad")
    assert client.sent == []


@pytest.mark.parametrize(
    "change",
    [
        {"expires_at": datetime.now(UTC) + timedelta(minutes=5)},
        {"expires_at": datetime.now(UTC) + timedelta(hours=25)},
        {"locale": "xx-YY"},
        {"metadata": {"k" * 41: "v"}},
        {"metadata": {"k": "v" * 501}},
    ],
)
def test_requests_stripe_would_refuse_are_refused_before_sending(
    change: dict[str, object], client: CheckedClient, manager: GatewayManager
) -> None:
    request = CheckoutRequest.single("X", Money.of("5.00", "EUR"), OK, NO, **change)
    with pytest.raises(InvalidRequest):
        manager.create_checkout(GW, request, idempotency_key="refused")
    assert client.sent == []


def test_enabled_rub_is_offered(client: CheckedClient, standin: StandIn) -> None:
    manager = make_manager(client, standin.url, enable_currencies=["RUB"])
    assert "RUB" in manager.gateway(GW).capabilities.currencies
    assert "BGN" not in manager.gateway(GW).capabilities.currencies
    session = manager.create_checkout(
        GW, CheckoutRequest.single("X", Money.of("100.00", "RUB"), OK, NO), idempotency_key="rub"
    )
    assert session.amount == Money.of("100.00", "RUB")


def test_application_fee_goes_to_the_connected_account(client: CheckedClient, standin: StandIn) -> None:
    manager = make_manager(client, standin.url, connected_account="acct_1TestConnected")
    request = CheckoutRequest.single("X", Money.of("50.00", "EUR"), OK, NO, application_fee=Money.of("2.50", "EUR"))
    manager.create_checkout(GW, request, idempotency_key="fee")
    assert sent_checkout(client)["payment_intent_data"] == {"application_fee_amount": "250"}
    assert client.posts()[0].headers["Stripe-Account"] == "acct_1TestConnected"


def test_without_a_connected_account_no_application_fee_is_offered(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    """Stripe takes an application fee only on a Connect charge: such a gateway does not declare one."""
    assert Feature.APPLICATION_FEE not in manager.gateway(GW).capabilities.features
    request = CheckoutRequest.single("X", Money.of("50.00", "EUR"), OK, NO, application_fee=Money.of("2.50", "EUR"))
    with pytest.raises(CapabilityNotSupported, match="application_fee"):
        manager.create_checkout(GW, request, idempotency_key="fee-none")
    assert client.sent == []
    connected = make_manager(client, standin.url, connected_account="acct_1TestConnected")
    assert Feature.APPLICATION_FEE in connected.gateway(GW).capabilities.features


def test_same_key_other_parameters_is_an_idempotency_conflict(manager: GatewayManager, standin: StandIn) -> None:
    manager.create_checkout(
        GW, CheckoutRequest.single("X", Money.of("5.00", "EUR"), OK, NO), idempotency_key="conflict"
    )
    before = standin.stats()["sessions"]
    with pytest.raises(IdempotencyConflict):
        manager.create_checkout(
            GW, CheckoutRequest.single("X", Money.of("6.00", "EUR"), OK, NO), idempotency_key="conflict"
        )
    assert standin.stats()["sessions"] == before


def test_checkout_status_follows_the_session_and_its_payment(manager: GatewayManager, standin: StandIn) -> None:
    session = manager.create_checkout(
        GW, CheckoutRequest.single("X", Money.of("9.99", "GBP"), OK, NO, reference="r-1"), idempotency_key="st"
    )
    open_status = manager.payment_status(GW, session.id)
    assert open_status.state is PaymentState.PENDING
    assert open_status.checkout_id == session.id
    assert open_status.reference == "r-1"
    payment_id = standin.pay(session.id)
    paid = manager.payment_status(GW, session.id)
    assert paid.state is PaymentState.SUCCEEDED
    assert paid.payment_id == payment_id
    assert paid.amount_captured == Money.of("9.99", "GBP")


def declined_first_attempt(session: dict[str, Any]) -> dict[str, Any]:
    """The session's answer after the payer's first card was declined on the hosted page."""
    intent = {
        "id": "pi_declined_once", "object": "payment_intent", "amount": session["amount_total"],
        "amount_received": 0, "currency": session["currency"], "status": "requires_payment_method",
        "livemode": False, "metadata": {}, "latest_charge": None,
        "last_payment_error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds"},
    }  # fmt: skip
    return {**session, "payment_intent": intent}


def test_an_open_checkout_after_a_declined_card_is_still_pending(
    client: CheckedClient, manager: GatewayManager
) -> None:
    """The payer can still pay on the session: FAILED would let a host cancel an order later paid."""
    session = manager.create_checkout(
        GW, CheckoutRequest.single("X", Money.of("9.99", "EUR"), OK, NO, reference="r-decl"), idempotency_key="decl"
    )
    client.rewrite["/v1/checkout/sessions/{session}"] = declined_first_attempt  # the session is still open
    status = manager.payment_status(GW, session.id)
    assert status.raw["checkout_session"]["status"] == "open"
    assert status.state is PaymentState.PENDING
    assert status.payment_id == "pi_declined_once"
    assert status.checkout_id == session.id
    assert status.amount_captured == Money.zero("EUR")


def test_the_same_declined_payment_intent_on_its_own_reads_failed() -> None:
    """Without the session nothing says the payer may try again: the PaymentIntent's own state stands."""
    wire = normalize.Wire(currency_rules(), GW)
    intent = declined_first_attempt({"amount_total": 999, "currency": "eur"})["payment_intent"]
    assert normalize.payment_status(intent, wire, GW).state is PaymentState.FAILED


def test_authorize_only_checkout_paid_is_authorized_then_captured_through_the_session(
    manager: GatewayManager, standin: StandIn
) -> None:
    request = CheckoutRequest.single("Hold", Money.of("30.00", "EUR"), OK, NO, capture=False)
    session = manager.create_checkout(GW, request, idempotency_key="hold")
    standin.pay(session.id)
    assert manager.payment_status(GW, session.id).state is PaymentState.AUTHORIZED
    capture = manager.capture(GW, CaptureRequest(session.id, Money.of("20.00", "EUR")), idempotency_key="hold-cap")
    assert capture.amount == Money.of("20.00", "EUR")
    status = manager.payment_status(GW, session.id)
    assert status.state is PaymentState.SUCCEEDED
    assert status.amount_captured == Money.of("20.00", "EUR")
    assert status.amount_refunded == Money.zero("EUR")


def test_void_expires_an_open_session(manager: GatewayManager) -> None:
    session = manager.create_checkout(
        GW, CheckoutRequest.single("X", Money.of("5.00", "EUR"), OK, NO), idempotency_key="exp"
    )
    void = manager.void(GW, VoidRequest(session.id), idempotency_key="exp-void")
    assert void.state is PaymentState.CANCELED
    status = manager.payment_status(GW, session.id)
    assert status.state is PaymentState.CANCELED


def test_refund_reasons_stripe_knows_go_as_reason_others_as_metadata(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    session = manager.create_checkout(
        GW, CheckoutRequest.single("X", Money.of("40.00", "EUR"), OK, NO), idempotency_key="rr"
    )
    payment_id = standin.pay(session.id)
    first = manager.refund(
        GW, RefundRequest(payment_id, Money.of("10.00", "EUR"), "requested_by_customer"), idempotency_key="rr-1"
    )
    second = manager.refund(
        GW, RefundRequest(payment_id, Money.of("5.00", "EUR"), "damaged in transit"), idempotency_key="rr-2"
    )
    refunds = [s.params for s in client.posts() if s.template == "/v1/refunds"]
    assert refunds[0] == {"payment_intent": payment_id, "amount": "1000", "reason": "requested_by_customer"}
    assert refunds[1] == {"payment_intent": payment_id, "amount": "500", "metadata": {"reason": "damaged in transit"}}
    assert first.status is RefundStatus.SUCCEEDED
    assert second.reason == "damaged in transit"
    assert manager.payment_status(GW, payment_id).state is PaymentState.PARTIALLY_REFUNDED


def test_refund_in_another_currency_is_refused_before_refunding(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    session = manager.create_checkout(
        GW, CheckoutRequest.single("X", Money.of("40.00", "EUR"), OK, NO), idempotency_key="cur"
    )
    payment_id = standin.pay(session.id)
    with pytest.raises(InvalidRequest):
        manager.refund(GW, RefundRequest(payment_id, Money.of("10.00", "USD")), idempotency_key="cur-r")
    assert [s for s in client.posts() if s.template == "/v1/refunds"] == []


def test_authorize_capture_void_through_payment_intents(client: CheckedClient, manager: GatewayManager) -> None:
    auth = manager.authorize(
        GW,
        AuthorizeRequest(Money.of("15.00", "EUR"), "pm_card_visa", reference="o-7", metadata={"a": "b"}),
        idempotency_key="pi-1",
    )
    assert auth.state is PaymentState.AUTHORIZED
    sent = client.posts()[0]
    assert sent.params["capture_method"] == "manual"
    assert sent.params["confirm"] == "true"
    assert sent.params["metadata"] == {"a": "b", "reference": "o-7"}
    assert sent.idempotency_key == "pi-1"
    void = manager.void(GW, VoidRequest(auth.id), idempotency_key="pi-1-void")
    assert void.state is PaymentState.CANCELED
    assert manager.payment_status(GW, auth.id).state is PaymentState.CANCELED


def test_every_post_in_a_flow_carries_the_callers_key(client: CheckedClient, manager: GatewayManager) -> None:
    auth = manager.authorize(GW, AuthorizeRequest(Money.of("15.00", "EUR"), "pm_card_visa"), idempotency_key="flow-a")
    manager.capture(GW, CaptureRequest(auth.id), idempotency_key="flow-c")
    manager.refund(GW, RefundRequest(auth.id), idempotency_key="flow-r")
    assert [s.idempotency_key for s in client.posts()] == ["flow-a", "flow-c", "flow-r"]
    assert all(s.headers.get("Idempotency-Key") is None for s in client.sent if s.method == "GET")


def test_a_locale_newer_than_the_spec_is_sent_under_its_documented_allowance(
    client: CheckedClient, manager: GatewayManager
) -> None:
    # hi-IN is in stripe-python 16's Checkout locales but not in the 2023 spec: speccheck.ALLOWED_NEWER.
    request = CheckoutRequest.single("X", Money.of("500.00", "INR"), OK, NO, locale="hi-IN")
    manager.create_checkout(GW, request, idempotency_key="hi-in")
    assert sent_checkout(client)["locale"] == "hi-IN"


# -- void of a Checkout Session: by what the session has become ------------------------------------


def test_void_of_a_completed_authorize_only_checkout_cancels_its_payment(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    request = CheckoutRequest.single("Hold", Money.of("30.00", "EUR"), OK, NO, capture=False)
    session = manager.create_checkout(GW, request, idempotency_key="void-hold")
    payment_id = standin.pay(session.id)
    assert manager.payment_status(GW, session.id).state is PaymentState.AUTHORIZED
    void = manager.void(GW, VoidRequest(session.id), idempotency_key="void-hold-v")
    assert void.state is PaymentState.CANCELED
    assert void.payment_id == payment_id
    # Stripe expires only open sessions: the PaymentIntent was canceled, the session left alone.
    posts = [(s.path, s.idempotency_key) for s in client.posts()]
    # The session's PaymentIntent is canceled under a key derived from the void's (Stripe binds a
    # key to one endpoint, and the void's may have gone to /expire first).
    assert posts[-1] == (f"/v1/payment_intents/{payment_id}/cancel", "void-hold-v:cancel-intent")
    assert not any(path.endswith("/expire") for path, _ in posts)
    assert manager.payment_status(GW, payment_id).state is PaymentState.CANCELED


def test_void_racing_the_payer_cancels_the_payment_under_a_key_of_its_own(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    """The payer completes the session between the void's read and its expiry.

    The expiry is refused (only open sessions expire) and its answer is saved under the void's
    key, which Stripe binds to /expire: the cancel must go out under another, derived key, and a
    retry of the whole void must take the same path with the same keys.
    """
    request = CheckoutRequest.single("Hold", Money.of("30.00", "EUR"), OK, NO, capture=False)
    session = manager.create_checkout(GW, request, idempotency_key="void-race")
    paid: list[str] = []
    client.before_send["/v1/checkout/sessions/{session}/expire"] = lambda: paid.append(standin.pay(session.id))
    void = manager.void(GW, VoidRequest(session.id), idempotency_key="void-race-v")
    assert void.state is PaymentState.CANCELED
    assert void.payment_id == paid[0]
    posts = [(s.path, s.idempotency_key) for s in client.posts()][1:]
    assert posts == [
        (f"/v1/checkout/sessions/{session.id}/expire", "void-race-v"),
        (f"/v1/payment_intents/{paid[0]}/cancel", "void-race-v:cancel-intent"),
    ]
    again = manager.void(GW, VoidRequest(session.id), idempotency_key="void-race-v")
    assert again.state is PaymentState.CANCELED
    assert manager.payment_status(GW, paid[0]).state is PaymentState.CANCELED


def test_void_of_a_paid_checkout_is_refused_before_sending(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    session = manager.create_checkout(
        GW, CheckoutRequest.single("X", Money.of("8.00", "EUR"), OK, NO), idempotency_key="void-paid"
    )
    standin.pay(session.id)
    with pytest.raises(InvalidRequest, match="refund it instead"):
        manager.void(GW, VoidRequest(session.id), idempotency_key="void-paid-v")
    assert [s.template for s in client.posts()] == ["/v1/checkout/sessions"]
    assert manager.payment_status(GW, session.id).state is PaymentState.SUCCEEDED


def test_void_of_an_expired_checkout_sends_nothing_and_reports_it_canceled(
    client: CheckedClient, manager: GatewayManager
) -> None:
    session = manager.create_checkout(
        GW, CheckoutRequest.single("X", Money.of("5.00", "EUR"), OK, NO), idempotency_key="void-twice"
    )
    assert manager.void(GW, VoidRequest(session.id), idempotency_key="void-twice-1").state is PaymentState.CANCELED
    again = manager.void(GW, VoidRequest(session.id), idempotency_key="void-twice-2")
    assert again.state is PaymentState.CANCELED
    assert [s.idempotency_key for s in client.posts()] == ["void-twice", "void-twice-1"]


# -- refunds by charge id: the same checks as by PaymentIntent -------------------------------------


def charge_of(manager: GatewayManager, payment_id: str) -> str:
    capture_raw = manager.payment_status(GW, payment_id).raw["payment_intent"]
    charge = capture_raw["latest_charge"]
    return str(charge["id"] if isinstance(charge, dict) else charge)


def test_refund_by_charge_in_another_currency_is_refused_before_refunding(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    session = manager.create_checkout(
        GW, CheckoutRequest.single("X", Money.of("40.00", "EUR"), OK, NO), idempotency_key="ch-cur"
    )
    charge_id = charge_of(manager, standin.pay(session.id))
    with pytest.raises(InvalidRequest, match="in EUR, not JPY"):
        manager.refund(GW, RefundRequest(charge_id, Money.of("5", "JPY")), idempotency_key="ch-cur-r")
    assert [s for s in client.posts() if s.template == "/v1/refunds"] == []
    assert [s.template for s in client.sent if s.method == "GET"][-1] == "/v1/charges/{charge}"


def test_refund_by_charge_beyond_what_remains_is_refused_then_the_rest_refunds(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    session = manager.create_checkout(
        GW, CheckoutRequest.single("X", Money.of("40.00", "EUR"), OK, NO), idempotency_key="ch-rem"
    )
    payment_id = standin.pay(session.id)
    charge_id = charge_of(manager, payment_id)
    first = manager.refund(GW, RefundRequest(charge_id, Money.of("30.00", "EUR")), idempotency_key="ch-rem-1")
    assert first.amount == Money.of("30.00", "EUR")
    assert first.payment_id == payment_id
    with pytest.raises(AmountOutOfRange) as refused:  # Stripe's own refusal, mapped
        manager.refund(GW, RefundRequest(charge_id, Money.of("10.01", "EUR")), idempotency_key="ch-rem-2")
    assert refused.value.provider_code == "amount_too_large"
    rest = manager.refund(GW, RefundRequest(charge_id, Money.of("10.00", "EUR")), idempotency_key="ch-rem-3")
    assert rest.amount == Money.of("10.00", "EUR")
    refunds = [s.params for s in client.posts() if s.template == "/v1/refunds"]
    assert refunds == [
        {"charge": charge_id, "amount": "3000"},
        {"charge": charge_id, "amount": "1001"},
        {"charge": charge_id, "amount": "1000"},
    ]
    assert manager.payment_status(GW, payment_id).state is PaymentState.REFUNDED


# -- the reference reaches the PaymentIntent Stripe creates for a checkout --------------------------


def test_a_checkouts_reference_is_on_its_payment_intent(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    request = CheckoutRequest.single("X", Money.of("9.00", "EUR"), OK, NO, reference="order-77", metadata={"k": "v"})
    session = manager.create_checkout(GW, request, idempotency_key="ref-pi")
    assert sent_checkout(client)["payment_intent_data"] == {"metadata": {"k": "v", "reference": "order-77"}}
    assert sent_checkout(client)["metadata"] == {"k": "v"}
    payment_id = standin.pay(session.id)
    # Looked up by its pi_ id (as a payment_intent.* webhook names it), the payment knows its order.
    assert manager.payment_status(GW, payment_id).reference == "order-77"


# -- Connect: reads carry Stripe-Account too -------------------------------------------------------


def test_reads_and_writes_act_for_the_connected_account(client: CheckedClient, standin: StandIn) -> None:
    manager = make_manager(client, standin.url, connected_account="acct_1TestConnected")
    session = manager.create_checkout(
        GW, CheckoutRequest.single("X", Money.of("9.00", "EUR"), OK, NO), idempotency_key="acct-reads"
    )
    payment_id = standin.pay(session.id)
    manager.payment_status(GW, session.id)
    manager.payment_status(GW, payment_id)
    manager.refund(GW, RefundRequest(payment_id, Money.of("1.00", "EUR")), idempotency_key="acct-reads-r")
    gets = [s for s in client.sent if s.method == "GET"]
    assert len(gets) == 3  # the session, the PaymentIntent, the PaymentIntent before the refund
    assert {s.headers.get("Stripe-Account") for s in client.sent} == {"acct_1TestConnected"}


# -- per-currency maxima -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("largest", "code", "minor"),
    [
        ("9999999999.99", "IDR", "999999999999"),  # twelve digits
        ("99999999.99", "COP", "9999999999"),  # ten digits
        ("9999999.99", "INR", "999999999"),  # nine digits
        ("999999.99", "EUR", "99999999"),  # eight digits
    ],
)
def test_the_largest_amount_stripe_takes_in_a_currency_is_sent_and_one_more_is_refused(
    largest: str, code: str, minor: str, client: CheckedClient, manager: GatewayManager
) -> None:
    request = CheckoutRequest.single("Big", Money.of(largest, code), OK, NO)
    manager.create_checkout(GW, request, idempotency_key=f"max-{code}")
    line = sent_checkout(client)["line_items"]
    assert isinstance(line, list)
    assert line[0]["price_data"]["unit_amount"] == minor
    one_more = Money.of(largest, code) + Money.of("0.01", code)
    with pytest.raises(AmountOutOfRange):
        manager.create_checkout(GW, CheckoutRequest.single("Big", one_more, OK, NO), idempotency_key=f"max+{code}")
    assert len(client.posts()) == 1
