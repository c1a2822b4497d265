"""Example Payments specifics the conformance suite does not cover: discovery, error mapping, check."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest
from example_gateway.stand_in import ExamplePaymentsAPI

from gateway_core import (
    AuthenticationFailed,
    AuthorizeRequest,
    CheckoutRequest,
    ConfigurationError,
    EventType,
    GatewayError,
    GatewayManager,
    GatewayUnavailable,
    Money,
    OutcomeUnknown,
    PaymentDeclined,
    RateLimited,
    RefundRequest,
    WebhookVerificationFailed,
)
from tests.example_gateway.conftest import API_KEY, ENVIRON, example_manager


def checkout(amount: str = "12.34") -> CheckoutRequest:
    return CheckoutRequest.single("Ticket", Money.of(amount, "EUR"), "https://h.example/ok", "https://h.example/no")


def test_the_plugin_is_found_through_its_entry_point(manager: GatewayManager) -> None:
    info = manager.gateway("example")
    assert info.plugin.name == "example"
    assert info.plugin.distribution == "gateway-core-example"
    assert "gateway_check" in info.implemented


def test_each_mutating_request_carries_the_idempotency_key(
    example_api: ExamplePaymentsAPI, manager: GatewayManager
) -> None:
    session = manager.create_checkout("example", checkout(), idempotency_key="order-42-checkout")
    again = manager.create_checkout("example", checkout(), idempotency_key="order-42-checkout")
    assert again.id == session.id
    assert example_api.requests == ["POST /v1/checkouts", "POST /v1/checkouts"]


def test_a_decline_is_mapped_with_its_code(manager: GatewayManager) -> None:
    with pytest.raises(PaymentDeclined) as info:
        manager.authorize("example", AuthorizeRequest(Money.of("20.00", "EUR"), "pm_decline"), idempotency_key="a-1")
    assert info.value.decline_code == "insufficient_funds"
    assert info.value.provider_code == "card_declined"
    assert info.value.http_status == 402
    assert info.value.request_id is not None


@pytest.mark.parametrize(
    ("status", "code", "expected", "retryable"),
    [
        (429, "rate_limited", RateLimited, True),
        (503, "unavailable", GatewayUnavailable, True),
        (400, "weird", GatewayError, False),
    ],
)
def test_provider_errors_are_mapped(
    example_api: ExamplePaymentsAPI,
    manager: GatewayManager,
    status: int,
    code: str,
    expected: type[GatewayError],
    retryable: bool,
) -> None:
    example_api.fail_next(status, code)
    with pytest.raises(expected) as info:
        manager.create_checkout("example", checkout(), idempotency_key=f"k-{status}")
    assert type(info.value) is expected
    assert info.value.retryable is retryable
    assert (info.value.http_status, info.value.provider_code, info.value.gateway) == (status, code, "example")
    # A throttled or failed request was not stored: the retry with the same key goes through.
    if retryable:
        assert manager.create_checkout("example", checkout(), idempotency_key=f"k-{status}").amount == Money.of(
            "12.34", "EUR"
        )


def test_rate_limit_carries_retry_after(example_api: ExamplePaymentsAPI, manager: GatewayManager) -> None:
    example_api.fail_next(429, "rate_limited")
    with pytest.raises(RateLimited) as info:
        manager.payment_status("example", "pay_x")
    assert info.value.retry_after == 2.0


def test_a_wrong_api_key_is_authentication_failed_and_never_shown(example_api: ExamplePaymentsAPI) -> None:
    wrong = "sk_example_wrong_91b2c3"
    manager = example_manager(example_api.base_url, {**ENVIRON, "EXAMPLE_API_KEY": wrong})
    with pytest.raises(AuthenticationFailed) as info:
        manager.create_checkout("example", checkout(), idempotency_key="k-auth")
    for text in (str(info.value), repr(info.value)):
        assert wrong not in text
        assert API_KEY not in text
    assert [r.name for r in manager.check("example")] == ["credentials"]
    assert not manager.check("example")[0].ok


def test_check_reports_accepted_credentials(manager: GatewayManager) -> None:
    (result,) = manager.check("example")
    assert result.ok
    assert result.name == "credentials"


def test_an_unreachable_provider_is_unavailable() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        closed_port = probe.getsockname()[1]  # nothing listens here once the block ends
    manager = example_manager(f"http://127.0.0.1:{closed_port}")
    with pytest.raises(GatewayUnavailable) as info:
        manager.refund("example", RefundRequest("pay_x"), idempotency_key="r-1")
    assert type(info.value) is GatewayUnavailable, "a refused connection sent nothing: not OutcomeUnknown"


@pytest.fixture
def hangs_up() -> Iterator[str]:
    """A server on 127.0.0.1 that reads the request and closes the connection without answering."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
    listener.close()
    thread.join()


def test_no_answer_to_a_mutating_request_is_outcome_unknown(hangs_up: str) -> None:
    manager = example_manager(hangs_up)
    with pytest.raises(OutcomeUnknown) as info:
        manager.refund("example", RefundRequest("pay_x"), idempotency_key="r-1")
    assert info.value.retryable
    with pytest.raises(GatewayUnavailable) as status:
        manager.payment_status("example", "pay_x")
    assert type(status.value) is GatewayUnavailable, "a read cannot have taken effect"


def test_webhooks_are_normalized(example_api: ExamplePaymentsAPI, manager: GatewayManager) -> None:
    session = manager.create_checkout("example", checkout("30.00"), idempotency_key="c-1")
    payment_id = example_api.pay_checkout(session.id)
    manager.refund("example", RefundRequest(payment_id, Money.of("10.00", "EUR")), idempotency_key="r-1")
    events = [manager.parse_webhook("example", h, b) for h, b in example_api.drain_webhooks()]
    assert [e.type for e in events] == [EventType.PAYMENT_SUCCEEDED, EventType.REFUND_SUCCEEDED]
    assert events[1].amount == Money.of("10.00", "EUR")
    assert events[1].refund_id is not None
    assert {e.payment_id for e in events} == {payment_id}

    unknown = json.dumps({"id": "evt_1", "type": "payout.paid", "created": 1, "livemode": False, "data": {}}).encode()
    event = manager.parse_webhook("example", example_api.webhook_headers(unknown), unknown)
    assert (event.type, event.provider_type) == (EventType.UNKNOWN, "payout.paid")


@pytest.mark.parametrize("forged", ["v1=é", "v1=\u2603\u2603", "v1=ÿ" + "0" * 63, "v1=\ud800"])
def test_a_signature_that_is_not_ascii_is_refused_as_unverified(
    example_api: ExamplePaymentsAPI, manager: GatewayManager, forged: str
) -> None:
    # hmac.compare_digest raises TypeError on a non-ASCII str: the forgery must still be a refusal
    body = json.dumps({"id": "evt_1", "type": "payment.succeeded", "created": 1, "livemode": False, "data": {}})
    genuine = example_api.webhook_headers(body.encode())
    timestamp = genuine["Example-Signature"].split(",")[0]
    for headers in (
        {"Example-Signature": f"{timestamp},{forged}"},
        [(b"Example-Signature", f"{timestamp},{forged}".encode("latin-1", "replace"))],
    ):
        with pytest.raises(WebhookVerificationFailed, match="signature does not match the body") as info:
            manager.parse_webhook("example", headers, body.encode())
        assert not info.value.unmapped


def test_settings_are_checked_at_start_up(example_api: ExamplePaymentsAPI) -> None:
    with pytest.raises(ConfigurationError, match="base_url"):
        example_manager("ftp://127.0.0.1/")
    with pytest.raises(ConfigurationError, match="EXAMPLE_API_KEY"):
        example_manager(example_api.base_url, {"EXAMPLE_WEBHOOK_SECRET": "whsec_x"})


@pytest.mark.parametrize("cut", [("id",), ("amount",), ("currency",)], ids=lambda c: f"no-{c[0]}")
def test_a_refund_answered_without_a_field_is_outcome_unknown(
    example_api: ExamplePaymentsAPI, manager: GatewayManager, cut: tuple[str, ...]
) -> None:
    """The refund happened: a bare KeyError, or InvalidAmount, would tell the host it had not."""
    payment_id = example_api.pay_checkout(manager.create_checkout("example", checkout(), idempotency_key="c").id)
    example_api.cut_next(*cut)
    with pytest.raises(OutcomeUnknown) as info:
        manager.refund("example", RefundRequest(payment_id, Money.of("2.00", "EUR")), idempotency_key="r")
    assert not info.value.unmapped
    assert info.value.retryable is False
    assert "check the payment's status" in info.value.message
    assert manager.payment_status("example", payment_id).amount_refunded == Money.of("2.00", "EUR")
    refund = manager.refund("example", RefundRequest(payment_id, Money.of("2.00", "EUR")), idempotency_key="r")
    assert refund.amount == Money.of("2.00", "EUR")  # the stored answer, whole this time
    assert manager.payment_status("example", payment_id).amount_refunded == Money.of("2.00", "EUR")


def test_a_status_answered_without_a_field_is_unavailable(
    example_api: ExamplePaymentsAPI, manager: GatewayManager
) -> None:
    payment_id = example_api.pay_checkout(manager.create_checkout("example", checkout(), idempotency_key="c").id)
    example_api.cut_next("state")
    with pytest.raises(GatewayUnavailable) as info:
        manager.payment_status("example", payment_id)
    assert not isinstance(info.value, OutcomeUnknown)
    assert not info.value.unmapped
    assert "no 'state'" in info.value.message
    assert manager.payment_status("example", payment_id).is_paid
