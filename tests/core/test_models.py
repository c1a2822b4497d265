"""Requests refuse bad input with InvalidRequest at construction; results keep provider payloads out of repr."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from gateway_core import (
    Authorization,
    AuthorizeRequest,
    CaptureRequest,
    CheckoutRequest,
    CurrencyMismatch,
    InvalidAmount,
    InvalidRequest,
    LineItem,
    Money,
    PaymentState,
    RefundRequest,
    WebhookRequest,
)


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


OK, NO = "https://shop.example/ok", "https://shop.example/no"


def test_checkout_amount_is_the_exact_sum_of_its_lines() -> None:
    request = CheckoutRequest(
        line_items=[LineItem("Ticket", eur("0.10"), 3), LineItem("Fee", eur("0.20"))], success_url=OK, cancel_url=NO
    )
    assert request.amount == eur("0.50")
    assert CheckoutRequest.single("x", eur("12.34"), OK, NO).amount == eur("12.34")


@pytest.mark.parametrize(
    ("build", "said"),
    [
        (lambda: LineItem(" ", eur("1")), "line item name must not be empty"),
        (lambda: LineItem("x", eur("1"), 0), "quantity must be a positive int"),
        (lambda: LineItem("x", eur("1"), True), "quantity must be a positive int"),
        (lambda: LineItem("x", eur("0")), "unit_amount must be positive"),
        (lambda: LineItem("x", eur("-1")), "unit_amount must be positive"),
        (lambda: LineItem("x", Money.of("-0", "EUR")), "unit_amount must be positive, got 0.00 EUR"),
        (lambda: LineItem("x", "1.00"), "unit_amount must be Money, not str"),  # type: ignore[arg-type]
        (lambda: CheckoutRequest(line_items=[], success_url=OK, cancel_url=NO), "at least one line item"),
        (
            lambda: CheckoutRequest(
                line_items=[LineItem("a", eur("1")), LineItem("b", Money.of("1", "USD"))], success_url=OK, cancel_url=NO
            ),
            "line items mix currencies: EUR, USD",
        ),
        (lambda: CheckoutRequest.single("x", eur("1"), "/ok", NO), "success_url must be an absolute http"),
        (lambda: CheckoutRequest.single("x", eur("1"), OK, "javascript:alert(1)"), "cancel_url must be an absolute"),
        (
            lambda: CheckoutRequest.single("x", eur("1"), OK, NO, expires_at=datetime(2026, 1, 1)),  # noqa: DTZ001
            "expires_at must be timezone-aware",
        ),
        (
            lambda: CheckoutRequest.single("x", eur("1"), OK, NO, metadata={str(i): "v" for i in range(41)}),
            "metadata has 41 keys; at most 40",
        ),
        (
            lambda: CheckoutRequest.single("x", eur("1"), OK, NO, metadata={"n": 1}),
            "metadata keys and values must be str",
        ),
        (
            lambda: CheckoutRequest.single("x", eur("1"), OK, NO, application_fee=eur("1.01")),
            "application_fee must be between zero and the checkout amount",
        ),
        (
            lambda: CheckoutRequest.single("x", eur("1"), OK, NO, application_fee=eur("-0.01")),
            "application_fee must be between zero",
        ),
        (
            lambda: CheckoutRequest.single("x", eur("1"), OK, NO, application_fee=Money.of("0.10", "USD")),
            "application_fee must be in the checkout's currency",
        ),
        (lambda: AuthorizeRequest(eur("0"), "pm"), "amount must be positive"),
        # what an untyped caller passes is refused as InvalidRequest, never AttributeError or TypeError
        (lambda: LineItem(None, eur("1")), "line item name must be a str, not NoneType"),  # type: ignore[arg-type]
        (
            lambda: CheckoutRequest(line_items=[LineItem("x", eur("1"))], success_url=None, cancel_url=NO),  # type: ignore[arg-type]
            "success_url must be an absolute http(s) URL, not NoneType",
        ),
        (
            lambda: CheckoutRequest(line_items=[LineItem("x", eur("1"))], success_url=OK, cancel_url=5),  # type: ignore[arg-type]
            "cancel_url must be an absolute http(s) URL, not int",
        ),
        (
            lambda: CheckoutRequest(line_items=None, success_url=OK, cancel_url=NO),
            "line_items must be a collection of LineItem, not NoneType",
        ),
        (
            lambda: CheckoutRequest(line_items=["Ticket"], success_url=OK, cancel_url=NO),
            "line_items must all be LineItem, not str",
        ),
        (
            lambda: CheckoutRequest.single("x", eur("1"), OK, NO, expires_at="2026-01-01T00:00:00Z"),
            "expires_at must be a datetime or None, not str",
        ),
        (
            lambda: CheckoutRequest.single("x", eur("1"), OK, NO, metadata="order=42"),
            "metadata must be a mapping of str to str, not str",
        ),
        (
            lambda: CheckoutRequest.single("x", eur("1"), OK, NO, application_fee=0.5),
            "application_fee must be Money or None, not float",
        ),
        (
            lambda: AuthorizeRequest(eur("1"), "pm", application_fee=0.5),  # type: ignore[arg-type]
            "application_fee must be Money or None, not float",
        ),
        (
            lambda: AuthorizeRequest(eur("1"), "pm", application_fee=Money.of("0.10", "USD")),
            "application_fee must be in the authorization's currency",
        ),
        (
            lambda: AuthorizeRequest(eur("1"), "pm", application_fee=eur("1.01")),
            "application_fee must be between zero and the authorization amount",
        ),
        (lambda: CaptureRequest("p", eur("-1")), "amount must be positive"),
        (lambda: RefundRequest("p", eur("0")), "amount must be positive"),
    ],
)
def test_bad_requests_are_refused_at_construction(build: object, said: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        build()  # type: ignore[operator]
    assert said in str(info.value)


def test_metadata_is_read_only() -> None:
    request = CheckoutRequest.single("x", eur("1"), OK, NO, metadata={"order": "42"})
    with pytest.raises(TypeError):
        request.metadata["order"] = "43"  # type: ignore[index]


def test_equal_requests_compare_equal() -> None:
    # the fake (like a provider) compares the parameters a reused idempotency key was sent with
    expires = datetime.now().astimezone() + timedelta(hours=1)
    a = CheckoutRequest.single("x", eur("1"), OK, NO, metadata={"k": "v"}, expires_at=expires)
    b = CheckoutRequest.single("x", eur("1.00"), OK, NO, metadata={"k": "v"}, expires_at=expires)
    assert a == b
    assert a != CheckoutRequest.single("x", eur("1"), OK, NO, metadata={"k": "w"}, expires_at=expires)


def test_webhook_request_headers_are_case_insensitive() -> None:
    request = WebhookRequest({"Fake-Signature": "t=1,v1=x"}, b"{}")
    assert request.header("fake-signature") == "t=1,v1=x"
    assert request.header("FAKE-SIGNATURE") == "t=1,v1=x"
    assert request.header("missing") is None


def test_raw_payloads_stay_out_of_repr_and_equality() -> None:
    a = Authorization("g", "pi_1", eur("1"), PaymentState.AUTHORIZED, raw={"card": {"number": "4242424242424242"}})
    b = Authorization("g", "pi_1", eur("1"), PaymentState.AUTHORIZED, raw={})
    assert "4242" not in repr(a)
    assert a == b


def test_line_totals_in_different_currencies_never_add() -> None:
    with pytest.raises(CurrencyMismatch):
        _ = LineItem("a", eur("1")).total + LineItem("b", Money.of("1", "USD")).total


@pytest.mark.parametrize("amount", [Decimal("NaN"), Decimal("Infinity"), Decimal("1.001"), 1.5])
def test_a_line_item_cannot_be_given_an_invalid_amount(amount: object) -> None:
    # The positive check can rely on a valid Money: no Money holds NaN, infinity or stray decimals.
    with pytest.raises(InvalidAmount):
        LineItem("x", Money(amount, "EUR"))  # type: ignore[arg-type]


TOKEN, EMAIL, SIGNATURE = "pm_card_4242424242424242", "ann@payer.example", "Bearer sk_live_TOPSECRET"


@pytest.mark.parametrize(
    ("request_", "shown"),
    [
        (
            AuthorizeRequest(eur("10"), TOKEN, reference="o-1", customer_email=EMAIL, metadata={"order": EMAIL}),
            [
                "payment_method=<hidden: 24 chars>",
                "reference='o-1'",
                "customer_email=<hidden: 17 chars>",
                "metadata={'order': <hidden: 17 chars>}",
            ],
        ),
        (
            CheckoutRequest.single("Ticket", eur("1"), OK, NO, customer_email=EMAIL, metadata={"payer": EMAIL}),
            ["customer_email=<hidden: 17 chars>", "metadata={'payer': <hidden: 17 chars>}", "'Ticket'", repr(OK)],
        ),
        (
            WebhookRequest(
                {"Authorization": SIGNATURE, "Fake-Signature": "t=1,v1=ab"}, f'{{"email": "{EMAIL}"}}'.encode()
            ),
            [
                "headers={'authorization': <hidden: 24 chars>, 'fake-signature': <hidden: 9 chars>}",
                "body=<hidden: 30 bytes>",
            ],
        ),
    ],
    ids=["authorize", "checkout", "webhook"],
)
def test_a_requests_repr_hides_tokens_e_mails_metadata_and_webhook_contents(request_: object, shown: list[str]) -> None:
    text = repr(request_)
    for secret in (TOKEN, "4242", EMAIL, "payer.example", "sk_live", "TOPSECRET", "t=1,v1=ab"):
        assert secret not in text
    for part in shown:
        assert part in text


def test_hidden_fields_are_still_read_and_compared() -> None:
    a = AuthorizeRequest(eur("1"), TOKEN, customer_email=EMAIL)
    assert a.payment_method == TOKEN
    assert a.customer_email == EMAIL
    assert a != AuthorizeRequest(eur("1"), "pm_card_other_4242424242", customer_email=EMAIL)
    assert "customer_email=None" in repr(AuthorizeRequest(eur("1"), TOKEN))
    assert WebhookRequest({}, b"a") != WebhookRequest({}, b"b")
