"""Checkout, completion, authorize/capture/void, refunds and status against the local stand-in."""

from __future__ import annotations

import decimal
import json
import uuid
from collections.abc import Callable

import pytest

from gateway_core.errors import (
    AmountOutOfRange,
    AuthenticationRequired,
    InvalidAmount,
    InvalidRequest,
    NotFound,
    OutcomeUnknown,
    PaymentDeclined,
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
    VoidRequest,
)
from gateway_core.money import Money
from tests.paypal_gateway.conftest import GATEWAY, StandIn


def key() -> str:
    return f"test-{uuid.uuid4().hex}"


def checkout(manager: GatewayManager, amount: Money, *, capture: bool = True, **kwargs: object) -> str:
    request = CheckoutRequest.single(
        "Ticket", amount, "https://shop.example/paid", "https://shop.example/cancel", capture=capture, **kwargs
    )
    return manager.create_checkout(GATEWAY, request, idempotency_key=key()).id


def paid_capture(manager: GatewayManager, standin: StandIn, amount: Money) -> str:
    order_id = checkout(manager, amount)
    standin.approve(order_id)
    return manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key=key()).id


def posts(standin: StandIn, suffix: str) -> list[dict[str, object]]:
    return [r for r in standin.requests() if r["method"] == "POST" and str(r["path"]).endswith(suffix)]


def test_checkout_sends_an_order_with_reference_ids_and_urls(manager: GatewayManager, standin: StandIn) -> None:
    request = CheckoutRequest(
        line_items=(LineItem("Ticket", Money.of("12.50", "EUR"), 2), LineItem("Fee", Money.of("1.00", "EUR"))),
        success_url="https://shop.example/paid",
        cancel_url="https://shop.example/cancel",
        reference="order-42",
        customer_email="payer@example.com",
        locale="de-DE",
        metadata={"invoice_id": "INV-42"},
    )
    session = manager.create_checkout(GATEWAY, request, idempotency_key="checkout-key-1")
    assert session.status is CheckoutStatus.OPEN
    assert session.amount == Money.of("26.00", "EUR")
    assert session.url == f"https://www.sandbox.paypal.com/checkoutnow?token={session.id}"
    assert session.payment_id == session.id
    assert session.expires_at is not None
    assert not session.live
    (sent,) = posts(standin, "/v2/checkout/orders")
    assert sent["request_id"] == "checkout-key-1"
    body = sent["body"]
    assert isinstance(body, dict)
    assert body["intent"] == "CAPTURE"
    unit = body["purchase_units"][0]
    assert unit["amount"]["value"] == "26.00"
    assert unit["amount"]["breakdown"]["item_total"] == {"currency_code": "EUR", "value": "26.00"}
    assert [i["quantity"] for i in unit["items"]] == ["2", "1"]
    assert (unit["reference_id"], unit["custom_id"], unit["invoice_id"]) == ("order-42", "order-42", "INV-42")
    context = body["payment_source"]["paypal"]["experience_context"]
    assert context["return_url"] == "https://shop.example/paid"
    assert context["cancel_url"] == "https://shop.example/cancel"
    assert context["locale"] == "de-DE"


def test_authorize_only_checkout_uses_intent_authorize(manager: GatewayManager, standin: StandIn) -> None:
    checkout(manager, Money.of("5.00", "USD"), capture=False)
    (sent,) = posts(standin, "/v2/checkout/orders")
    assert isinstance(sent["body"], dict)
    assert sent["body"]["intent"] == "AUTHORIZE"


def test_whole_unit_currencies_go_as_whole_units(manager: GatewayManager, standin: StandIn) -> None:
    for code in ("HUF", "JPY", "TWD"):
        checkout(manager, Money.of("1250", code))
    values = [r["body"]["purchase_units"][0]["amount"]["value"] for r in posts(standin, "/v2/checkout/orders")]  # type: ignore[index]
    assert values == ["1250", "1250", "1250"]


def test_the_callers_decimal_context_changes_no_amount_sent(manager: GatewayManager, standin: StandIn) -> None:
    """A host that lowers the decimal precision (or changes its rounding) sends PayPal the exact amount.

    The context is the caller's (a contextvar): the sync API runs the hook on the calling thread.
    """
    with decimal.localcontext(decimal.Context(prec=3, rounding=decimal.ROUND_FLOOR)):
        checkout(manager, Money.of("12345.67", "EUR"))
        checkout(manager, Money.of("123456", "JPY"))
        capture_id = paid_capture(manager, standin, Money.of("9876.54", "USD"))
        refund = manager.refund(GATEWAY, RefundRequest(capture_id, Money.of("1234.56", "USD")), idempotency_key=key())
    orders = [r["body"]["purchase_units"][0]["amount"]["value"] for r in posts(standin, "/v2/checkout/orders")]  # type: ignore[index]
    assert orders == ["12345.67", "123456", "9876.54"]
    (refund_post,) = posts(standin, "/refund")
    assert refund_post["body"] == {"amount": {"currency_code": "USD", "value": "1234.56"}}
    assert refund.amount == Money.of("1234.56", "USD")


def test_fractional_whole_unit_amount_is_refused_before_sending(manager: GatewayManager, standin: StandIn) -> None:
    with pytest.raises(InvalidAmount):
        checkout(manager, Money.of("1250.50", "HUF"))
    assert standin.requests() == []


def test_bad_locale_is_refused_before_sending(manager: GatewayManager, standin: StandIn) -> None:
    with pytest.raises(InvalidRequest, match="locale"):
        checkout(manager, Money.of("5.00", "EUR"), locale="german")
    assert standin.requests() == []


def test_same_key_returns_the_same_order(manager: GatewayManager, standin: StandIn) -> None:
    request = CheckoutRequest.single("T", Money.of("5.00", "EUR"), "https://a.example/ok", "https://a.example/no")
    first = manager.create_checkout(GATEWAY, request, idempotency_key="same")
    second = manager.create_checkout(GATEWAY, request, idempotency_key="same")
    assert first.id == second.id
    assert standin.counts()["orders"] == 1


def test_capture_of_an_approved_order_is_paid(manager: GatewayManager, standin: StandIn) -> None:
    amount = Money.of("19.99", "EUR")
    order_id = checkout(manager, amount, reference="ref-1")
    assert manager.payment_status(GATEWAY, order_id).state is PaymentState.PENDING
    standin.approve(order_id)
    capture = manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key=key())
    assert capture.state is PaymentState.SUCCEEDED
    assert capture.amount == amount
    assert capture.payment_id == order_id
    status = manager.payment_status(GATEWAY, order_id)
    assert status.is_paid
    assert status.payment_id == capture.id
    assert status.checkout_id == order_id
    assert status.reference == "ref-1"
    assert status.amount_captured == amount
    by_capture = manager.payment_status(GATEWAY, capture.id)
    assert by_capture.state is PaymentState.SUCCEEDED
    assert by_capture.checkout_id == order_id


def test_capture_before_approval_needs_the_payer(manager: GatewayManager, standin: StandIn) -> None:
    order_id = checkout(manager, Money.of("5.00", "EUR"), capture=True)
    with pytest.raises(AuthenticationRequired) as info:
        manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key=key())
    assert info.value.provider_code == "ORDER_NOT_APPROVED"
    assert info.value.request_id
    assert info.value.payment_id == order_id  # the order waiting for the payer
    assert info.value.action_url is None  # the error's information_link is no place for a payer
    auth_only = checkout(manager, Money.of("5.00", "EUR"), capture=False)
    with pytest.raises(AuthenticationRequired) as unapproved:
        manager.authorize(GATEWAY, AuthorizeRequest(Money.of("5.00", "EUR"), auth_only), idempotency_key=key())
    assert unapproved.value.payment_id == auth_only
    assert unapproved.value.provider_code == "ORDER_NOT_APPROVED"


def test_a_payer_action_error_carries_its_payer_action_link(manager: GatewayManager, standin: StandIn) -> None:
    order_id = checkout(manager, Money.of("5.00", "EUR"))
    standin.approve(order_id)
    link = f"https://www.sandbox.paypal.com/checkoutnow?token={order_id}"
    body = json.dumps(
        {
            "name": "UNPROCESSABLE_ENTITY",
            "message": "The requested action could not be performed.",
            "debug_id": "f2b1c3d4e5a6",
            "details": [{"issue": "PAYER_ACTION_REQUIRED", "description": "The payer must act."}],
            "links": [
                {"href": "https://developer.paypal.com/docs/api/orders/v2/#error-PAYER_ACTION_REQUIRED",
                 "rel": "information_link", "method": "GET"},
                {"href": link, "rel": "payer-action", "method": "GET"},
            ],
        }
    )  # fmt: skip
    standin.fault(
        "POST", f"/orders/{order_id}/capture", "garbage_after", status=422, body=body, content_type="application/json"
    )
    with pytest.raises(AuthenticationRequired) as info:
        manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key=key())
    assert (info.value.action_url, info.value.payment_id) == (link, order_id)
    assert info.value.provider_code == "PAYER_ACTION_REQUIRED"
    assert info.value.request_id == "f2b1c3d4e5a6"


def test_a_vaulted_card_that_needs_3ds_is_authentication_required(manager: GatewayManager, standin: StandIn) -> None:
    """PayPal answers 201 with an order in PAYER_ACTION_REQUIRED: the payer must act, nothing is unknown."""
    request = AuthorizeRequest(Money.of("10.00", "EUR"), "card:3DS-VAULT-1")
    idempotency_key = key()
    with pytest.raises(AuthenticationRequired) as info:
        manager.authorize(GATEWAY, request, idempotency_key=idempotency_key)
    assert not isinstance(info.value, OutcomeUnknown)
    assert info.value.retryable is False
    assert info.value.provider_code == "PAYER_ACTION_REQUIRED"
    order_id = info.value.payment_id
    assert order_id is not None
    assert info.value.action_url == f"https://www.sandbox.paypal.com/checkoutnow?token={order_id}"
    # follow the order: a card order waiting for the payer is waiting for 3-D Secure, the state
    # AuthenticationRequired.payment_id is documented to be in (a hosted checkout not yet approved,
    # also PAYER_ACTION_REQUIRED at PayPal, stays PENDING: test_capture_before_approval_needs_the_payer)
    assert manager.payment_status(GATEWAY, order_id).state is PaymentState.REQUIRES_ACTION
    assert standin.counts() | {"tokens": 0} == {
        "tokens": 0, "orders": 1, "authorizations": 0, "captures": 0, "refunds": 0
    }  # fmt: skip
    with pytest.raises(AuthenticationRequired) as again:  # the same key: the same order, no second one
        manager.authorize(GATEWAY, request, idempotency_key=idempotency_key)
    assert again.value.payment_id == order_id
    assert standin.counts()["orders"] == 1


@pytest.mark.parametrize("shared", [False, True], ids=["ids_per_endpoint", "ids_shared_across_endpoints"])
def test_the_3ds_follow_up_may_reuse_the_operation_id_and_sends_its_own_request_id(
    manager: GatewayManager, standin: StandIn, shared: bool
) -> None:
    """A vaulted card's authorize that needs 3-D Secure, then ``authorize(order id)`` once the payer has
    acted, with the same ``operation_id``: one operation, two endpoints, two ``PayPal-Request-Id``s.

    PayPal does not document whether its ids are scoped per endpoint; where they are not
    (``shared``), one id on both would get the create's stored answer back (the order awaiting the
    payer) instead of an authorization.
    """
    standin.config(shared_request_ids=shared)
    amount = Money.of("10.00", "EUR")
    with pytest.raises(AuthenticationRequired) as info:
        manager.authorize(GATEWAY, AuthorizeRequest(amount, "card:3DS-VAULT-2"), operation_id="purchase-7")
    order_id = info.value.payment_id
    assert order_id is not None
    standin.approve(order_id)  # the payer authenticated
    auth = manager.authorize(GATEWAY, AuthorizeRequest(amount, order_id), operation_id="purchase-7")
    assert (auth.state, auth.amount) == (PaymentState.AUTHORIZED, amount)
    again = manager.authorize(GATEWAY, AuthorizeRequest(amount, order_id), operation_id="purchase-7")
    assert again.id == auth.id
    assert standin.counts()["authorizations"] == 1
    (created,) = posts(standin, "/v2/checkout/orders")
    first, retried = posts(standin, f"/orders/{order_id}/authorize")
    assert created["request_id"] != first["request_id"]
    assert first["request_id"] == retried["request_id"]  # derived, not random: a retry acts once


def test_completed_order_with_a_declined_capture_is_not_paid(manager: GatewayManager, standin: StandIn) -> None:
    order_id = checkout(manager, Money.of("5.00", "EUR"))
    standin.approve(order_id, capture_outcome="DECLINED")
    with pytest.raises(PaymentDeclined) as info:
        manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key=key())
    assert info.value.decline_code == "DECLINED"
    status = manager.payment_status(GATEWAY, order_id)
    assert status.raw["status"] == "COMPLETED"
    assert status.state is PaymentState.FAILED
    assert not status.is_paid


def test_completed_order_with_a_pending_capture_is_not_paid(manager: GatewayManager, standin: StandIn) -> None:
    order_id = checkout(manager, Money.of("5.00", "EUR"))
    standin.approve(order_id, capture_outcome="PENDING")
    capture = manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key=key())
    assert capture.state is PaymentState.PENDING
    status = manager.payment_status(GATEWAY, order_id)
    assert status.raw["status"] == "COMPLETED"
    assert status.state is PaymentState.PENDING
    assert not status.is_paid
    assert status.amount_captured == Money.zero("EUR")


def test_authorize_only_checkout_then_partial_captures_and_void(manager: GatewayManager, standin: StandIn) -> None:
    amount = Money.of("30.00", "USD")
    order_id = checkout(manager, amount, capture=False)
    standin.approve(order_id)
    with pytest.raises(InvalidRequest, match="authorize-only"):
        manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key=key())
    auth = manager.authorize(GATEWAY, AuthorizeRequest(amount, order_id), idempotency_key=key())
    assert auth.state is PaymentState.AUTHORIZED
    assert auth.amount == amount
    with pytest.raises(AmountOutOfRange):
        manager.capture(GATEWAY, CaptureRequest(auth.id, Money.of("30.01", "USD")), idempotency_key=key())
    part = manager.capture(GATEWAY, CaptureRequest(auth.id, Money.of("10.00", "USD")), idempotency_key=key())
    assert (part.amount, part.payment_id, part.state) == (Money.of("10.00", "USD"), auth.id, PaymentState.SUCCEEDED)
    (partial_post,) = posts(standin, f"/authorizations/{auth.id}/capture")[-1:]
    assert partial_post["body"] == {"final_capture": False, "amount": {"currency_code": "USD", "value": "10.00"}}
    status = manager.payment_status(GATEWAY, auth.id)
    assert status.amount_captured == Money.of("10.00", "USD")
    void = manager.void(GATEWAY, VoidRequest(auth.id), idempotency_key=key())
    assert void.state is PaymentState.SUCCEEDED  # the rest is voided; the 10.00 captured stays
    assert manager.payment_status(GATEWAY, order_id).amount_captured == Money.of("10.00", "USD")


def test_capture_in_full_after_a_partial_capture_captures_what_remains(
    manager: GatewayManager, standin: StandIn
) -> None:
    """``CaptureRequest(auth_id)`` after a partial capture captures the rest, named explicitly.

    Payments v2 ``capture_request.amount``: "If amount is not specified, the full authorized amount
    is captured", which after a partial capture is more than remains (refused, or over-captured on
    an account allowed to capture above the authorization).
    """
    amount = Money.of("30.00", "USD")
    order_id = checkout(manager, amount, capture=False)
    standin.approve(order_id)
    auth = manager.authorize(GATEWAY, AuthorizeRequest(amount, order_id), idempotency_key=key())
    manager.capture(GATEWAY, CaptureRequest(auth.id, Money.of("10.00", "USD")), idempotency_key=key())
    manager.capture(GATEWAY, CaptureRequest(auth.id, Money.of("5.00", "USD")), idempotency_key=key())
    with pytest.raises(AmountOutOfRange, match="MAX_CAPTURE_AMOUNT_EXCEEDED"):
        manager.capture(GATEWAY, CaptureRequest(auth.id, Money.of("15.01", "USD")), idempotency_key=key())
    rest = manager.capture(GATEWAY, CaptureRequest(auth.id), idempotency_key=key())
    assert (rest.amount, rest.state) == (Money.of("15.00", "USD"), PaymentState.SUCCEEDED)
    assert posts(standin, f"/authorizations/{auth.id}/capture")[-1]["body"] == {
        "final_capture": True,
        "amount": {"currency_code": "USD", "value": "15.00"},
    }
    status = manager.payment_status(GATEWAY, order_id)
    assert (status.state, status.amount_captured) == (PaymentState.SUCCEEDED, amount)
    # Captured in parts: a capture in full cannot tell them from its own lost attempt's; read the status.
    with pytest.raises(OutcomeUnknown, match="AUTHORIZATION_ALREADY_CAPTURED") as info:
        manager.capture(GATEWAY, CaptureRequest(auth.id), idempotency_key=key())
    assert info.value.retryable is False


def test_capture_in_full_of_a_fresh_authorization_sends_no_amount(manager: GatewayManager, standin: StandIn) -> None:
    amount = Money.of("30.00", "USD")
    order_id = checkout(manager, amount, capture=False)
    standin.approve(order_id)
    auth = manager.authorize(GATEWAY, AuthorizeRequest(amount, order_id), idempotency_key=key())
    full = manager.capture(GATEWAY, CaptureRequest(auth.id), idempotency_key=key())
    assert full.amount == amount
    (sent,) = posts(standin, f"/authorizations/{auth.id}/capture")
    assert sent["body"] == {"final_capture": True}


def test_authorize_refuses_another_amount_before_authorizing(manager: GatewayManager, standin: StandIn) -> None:
    order_id = checkout(manager, Money.of("30.00", "USD"), capture=False)
    standin.approve(order_id)
    with pytest.raises(AmountOutOfRange):
        manager.authorize(GATEWAY, AuthorizeRequest(Money.of("31.00", "USD"), order_id), idempotency_key=key())
    assert standin.counts()["authorizations"] == 0


def test_authorize_with_a_vaulted_payment_method(manager: GatewayManager, standin: StandIn) -> None:
    auth = manager.authorize(
        GATEWAY, AuthorizeRequest(Money.of("8.00", "GBP"), "card:VAULT-OK-1"), idempotency_key=key()
    )
    assert auth.state is PaymentState.AUTHORIZED
    (sent,) = posts(standin, "/v2/checkout/orders")
    assert isinstance(sent["body"], dict)
    assert sent["body"]["payment_source"] == {"card": {"vault_id": "VAULT-OK-1"}}
    with pytest.raises(PaymentDeclined) as info:
        manager.authorize(GATEWAY, AuthorizeRequest(Money.of("8.00", "GBP"), "paypal:DECLINE-1"), idempotency_key=key())
    assert info.value.decline_code == "INSTRUMENT_DECLINED"


def test_full_partial_and_repeated_refunds(manager: GatewayManager, standin: StandIn) -> None:
    capture_id = paid_capture(manager, standin, Money.of("50.00", "EUR"))
    first = manager.refund(
        GATEWAY, RefundRequest(capture_id, Money.of("20.00", "EUR"), "damaged"), idempotency_key=key()
    )
    assert first.amount == Money.of("20.00", "EUR")
    assert first.payment_id == capture_id
    status = manager.payment_status(GATEWAY, capture_id)
    assert (status.state, status.amount_refunded) == (PaymentState.PARTIALLY_REFUNDED, Money.of("20.00", "EUR"))
    with pytest.raises(AmountOutOfRange):
        manager.refund(GATEWAY, RefundRequest(capture_id, Money.of("30.01", "EUR")), idempotency_key=key())
    rest = manager.refund(GATEWAY, RefundRequest(capture_id), idempotency_key=key())
    assert rest.amount == Money.of("30.00", "EUR")
    status = manager.payment_status(GATEWAY, capture_id)
    assert (status.state, status.amount_refunded) == (PaymentState.REFUNDED, Money.of("50.00", "EUR"))
    refund_posts = posts(standin, "/refund")
    assert refund_posts[0]["body"] == {"amount": {"currency_code": "EUR", "value": "20.00"}, "note_to_payer": "damaged"}


def test_unknown_ids_are_not_found(manager: GatewayManager, standin: StandIn) -> None:
    with pytest.raises(NotFound):
        manager.payment_status(GATEWAY, "NOSUCHID000000000")
    with pytest.raises(NotFound):
        manager.capture(GATEWAY, CaptureRequest("NOSUCHID000000000"), idempotency_key=key())
    with pytest.raises(NotFound):
        manager.refund(GATEWAY, RefundRequest("NOSUCHID000000000"), idempotency_key=key())
    with pytest.raises(NotFound):
        manager.void(GATEWAY, VoidRequest("NOSUCHID000000000"), idempotency_key=key())


def test_a_long_idempotency_key_is_sent_as_a_stable_108_character_request_id(
    make_manager: Callable[..., GatewayManager], standin: StandIn
) -> None:
    """The core takes keys up to 255 characters; PayPal-Request-Id takes 1 to 108 (Orders v2 spec)."""
    from paypal_gateway.gateway import MAX_REQUEST_ID, paypal_request_id

    manager = make_manager(timeout=0.5)
    long_key = "host-order-" + "x" * 230 + "-attempt"
    assert len(long_key) > MAX_REQUEST_ID
    sent_id = paypal_request_id(long_key)
    assert len(sent_id) <= MAX_REQUEST_ID
    assert sent_id == paypal_request_id(long_key)  # derived, not random
    assert sent_id != paypal_request_id(long_key[:-1] + "X")  # another key, another id
    assert paypal_request_id("short-key") == "short-key"
    order_id = checkout(manager, Money.of("10.00", "EUR"))
    standin.approve(order_id)
    standin.fault("POST", f"/orders/{order_id}/capture", "drop_after")  # lost answer: the plugin retries
    manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key=long_key)
    assert [r["request_id"] for r in posts(standin, "/capture")] == [sent_id, sent_id]
    assert standin.counts()["captures"] == 1
    # A later retry of the same operation by the host sends the same id and captures nothing more.
    manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key=long_key)
    assert [r["request_id"] for r in posts(standin, "/capture")] == [sent_id] * 3
    assert standin.counts()["captures"] == 1


def test_invoice_id_is_sent_only_when_the_host_gives_one(manager: GatewayManager, standin: StandIn) -> None:
    """PayPal takes an invoice_id once per account: two checkouts for one reference must both be payable."""
    for _attempt in range(2):  # e.g. the payer abandoned the first approval and the host tried again
        order_id = checkout(manager, Money.of("5.00", "EUR"), reference="order-77")
        standin.approve(order_id)
        assert manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key=key()).state is PaymentState.SUCCEEDED
    units = [r["body"]["purchase_units"][0] for r in posts(standin, "/v2/checkout/orders")]  # type: ignore[index]
    assert [("invoice_id" in u, u["custom_id"], u["reference_id"]) for u in units] == [
        (False, "order-77", "order-77")
    ] * 2


def test_a_repeated_invoice_id_is_refused_clearly(manager: GatewayManager, standin: StandIn) -> None:
    first = checkout(manager, Money.of("5.00", "EUR"), metadata={"invoice_id": "INV-9"})
    standin.approve(first)
    manager.capture(GATEWAY, CaptureRequest(first), idempotency_key=key())
    second = checkout(manager, Money.of("5.00", "EUR"), metadata={"invoice_id": "INV-9"})
    standin.approve(second)
    with pytest.raises(InvalidRequest, match="invoice_id was already paid") as info:
        manager.capture(GATEWAY, CaptureRequest(second), idempotency_key=key())
    assert info.value.provider_code == "DUPLICATE_INVOICE_ID"
    assert standin.counts()["captures"] == 1


@pytest.mark.parametrize("reason", ["x" * 256, "line one\nline two"])
def test_a_refund_reason_paypal_cannot_show_is_refused_before_sending(
    manager: GatewayManager, standin: StandIn, reason: str
) -> None:
    capture_id = paid_capture(manager, standin, Money.of("10.00", "EUR"))
    with pytest.raises(InvalidRequest, match="note_to_payer"):
        manager.refund(GATEWAY, RefundRequest(capture_id, reason=reason), idempotency_key=key())
    assert posts(standin, "/refund") == []
    manager.refund(GATEWAY, RefundRequest(capture_id, reason="y" * 255), idempotency_key=key())
    (sent,) = posts(standin, "/refund")
    assert sent["body"] == {"note_to_payer": "y" * 255}


def test_partly_capturing_an_order_is_invalid_not_not_found(manager: GatewayManager, standin: StandIn) -> None:
    order_id = checkout(manager, Money.of("20.00", "EUR"))
    standin.approve(order_id)
    with pytest.raises(InvalidRequest, match="in full only") as info:
        manager.capture(GATEWAY, CaptureRequest(order_id, Money.of("5.00", "EUR")), idempotency_key=key())
    assert not isinstance(info.value, NotFound)
    authorize_only = checkout(manager, Money.of("20.00", "EUR"), capture=False)
    with pytest.raises(InvalidRequest, match="authorize-only"):
        manager.capture(GATEWAY, CaptureRequest(authorize_only, Money.of("5.00", "EUR")), idempotency_key=key())
    with pytest.raises(NotFound):
        manager.capture(GATEWAY, CaptureRequest("NOSUCHID000000000", Money.of("5.00", "EUR")), idempotency_key=key())
    assert standin.counts()["captures"] == 0
    assert posts(standin, "/capture") == []


def test_refund_by_order_or_authorization_id_refunds_its_single_capture(
    manager: GatewayManager, standin: StandIn
) -> None:
    order_id = checkout(manager, Money.of("20.00", "EUR"))
    standin.approve(order_id)
    capture = manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key=key())
    refund_key = key()
    by_order = manager.refund(GATEWAY, RefundRequest(order_id, Money.of("5.00", "EUR")), idempotency_key=refund_key)
    assert (by_order.payment_id, by_order.amount) == (capture.id, Money.of("5.00", "EUR"))
    again = manager.refund(GATEWAY, RefundRequest(order_id, Money.of("5.00", "EUR")), idempotency_key=refund_key)
    assert again.id == by_order.id  # a retry refunds once
    assert standin.counts()["refunds"] == 1
    auth = manager.authorize(
        GATEWAY, AuthorizeRequest(Money.of("9.00", "USD"), "card:VAULT-OK-2"), idempotency_key=key()
    )
    part = manager.capture(GATEWAY, CaptureRequest(auth.id, Money.of("4.00", "USD")), idempotency_key=key())
    by_auth = manager.refund(GATEWAY, RefundRequest(auth.id), idempotency_key=key())
    assert (by_auth.payment_id, by_auth.amount) == (part.id, Money.of("4.00", "USD"))


def test_refund_by_an_id_with_several_or_no_captures_is_refused(manager: GatewayManager, standin: StandIn) -> None:
    order_id = checkout(manager, Money.of("9.00", "USD"), capture=False)
    standin.approve(order_id)
    auth = manager.authorize(GATEWAY, AuthorizeRequest(Money.of("9.00", "USD"), order_id), idempotency_key=key())
    for payment_id in (order_id, auth.id):
        with pytest.raises(InvalidRequest, match="no capture") as none:
            manager.refund(GATEWAY, RefundRequest(payment_id), idempotency_key=key())
        assert none.value.provider_code == "NOT_CAPTURED"
    captures = [
        manager.capture(GATEWAY, CaptureRequest(auth.id, Money.of(value, "USD")), idempotency_key=key()).id
        for value in ("3.00", "2.00")
    ]
    for payment_id, kind in ((order_id, "order"), (auth.id, "authorization")):
        with pytest.raises(InvalidRequest, match="2 captures") as several:
            manager.refund(GATEWAY, RefundRequest(payment_id), idempotency_key=key())
        assert several.value.provider_code == "SEVERAL_CAPTURES"
        assert f"PayPal {kind} {payment_id} has 2 captures ({', '.join(captures)})" in several.value.message
        assert "refund one of them by its id" in several.value.message
    assert standin.counts()["refunds"] == 0
    refund = manager.refund(GATEWAY, RefundRequest(captures[0]), idempotency_key=key())  # by its id, it is refunded
    assert refund.amount == Money.of("3.00", "USD")


def test_an_order_without_a_reference_reports_none(manager: GatewayManager, standin: StandIn) -> None:
    order_id = checkout(manager, Money.of("5.00", "EUR"))
    status = manager.payment_status(GATEWAY, order_id)
    assert status.raw["purchase_units"][0]["reference_id"] == "default"  # what PayPal fills in
    assert status.reference is None


def test_a_fractional_whole_unit_line_item_is_refused_before_sending(manager: GatewayManager, standin: StandIn) -> None:
    """0.50 HUF x 2 totals a whole 1 HUF, so routing (which sees totals) picks PayPal; the plugin refuses it."""
    request = CheckoutRequest(
        line_items=(LineItem("Sticker", Money.of("0.50", "HUF"), 2),),
        success_url="https://shop.example/paid",
        cancel_url="https://shop.example/cancel",
    )
    assert manager.route(request.amount).best == GATEWAY
    with pytest.raises(InvalidAmount):
        manager.create_checkout(GATEWAY, request, idempotency_key=key())
    assert standin.requests() == []
