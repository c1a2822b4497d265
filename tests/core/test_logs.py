"""Logs: one structured line per operation, and no secret, token or card number anywhere."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway_core import (
    AuthorizeRequest,
    CaptureRequest,
    CheckoutRequest,
    CheckoutSession,
    GatewayError,
    GatewayManager,
    GatewaySettings,
    Money,
    OperationContext,
    RefundRequest,
    VoidRequest,
    hookimpl,
)
from gateway_core.fake import Outcome, Scripted
from gateway_core.fake.gateway import SIGNATURE_HEADER

from .conftest import build_manager, fake, fake_table, provider_plugin


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def checkout(amount: str = "10.00") -> CheckoutRequest:
    return CheckoutRequest.single("Ticket", eur(amount), "https://shop.example/ok", "https://shop.example/no")


def operation_lines(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if str(e["event"]).startswith("gateway.") and "operation" in e]


def test_one_line_per_operation_with_its_fields(one_fake: GatewayManager) -> None:
    f = fake(one_fake, "fake")
    with capture_logs() as logs:
        session = one_fake.create_checkout("fake", checkout(), idempotency_key="co-1")
        auth = one_fake.authorize("fake", AuthorizeRequest(eur("25.00"), "pm_card_visa"), idempotency_key="au-1")
        one_fake.capture("fake", CaptureRequest(auth.id, eur("20.00")), idempotency_key="ca-1")
        one_fake.refund("fake", RefundRequest(auth.id, eur("5.00")), idempotency_key="re-1")
        f.script(Scripted(Outcome.DECLINE, operation="refund", decline_code="refund_declined"))
        with pytest.raises(GatewayError):
            one_fake.refund("fake", RefundRequest(auth.id, eur("1.00")), idempotency_key="re-2")
        one_fake.payment_status("fake", auth.id)
        other = one_fake.authorize("fake", AuthorizeRequest(eur("3.00"), "pm_card_visa"), idempotency_key="au-2")
        one_fake.void("fake", VoidRequest(other.id), idempotency_key="vo-1")

    lines = operation_lines(logs)
    assert [line["event"] for line in lines] == [
        "gateway.checkout.created",
        "gateway.authorize.succeeded",
        "gateway.capture.succeeded",
        "gateway.refund.created",
        "gateway.refund.failed",
        "gateway.status.retrieved",
        "gateway.authorize.succeeded",
        "gateway.void.succeeded",
    ]
    created, authorized, captured, refunded, failed, status, _, voided = lines
    assert created["log_level"] == "info"
    assert {k: created[k] for k in ("gateway", "provider", "operation", "amount", "currency", "idempotency_key")} == {
        "gateway": "fake",
        "provider": "fake",
        "operation": "checkout",
        "amount": "10.00",
        "currency": "EUR",
        "idempotency_key": "co-1",
    }
    assert created["result_id"] == session.id
    assert isinstance(created["duration_ms"], float)
    assert (authorized["amount"], authorized["idempotency_key"], authorized["result_id"]) == ("25.00", "au-1", auth.id)
    assert (captured["operation"], captured["amount"]) == ("capture", "20.00")
    assert (refunded["operation"], refunded["amount"], refunded["idempotency_key"]) == ("refund", "5.00", "re-1")
    assert failed["log_level"] == "warning"
    assert {
        k: failed[k] for k in ("gateway", "operation", "amount", "idempotency_key", "error", "code", "retryable")
    } == {
        "gateway": "fake",
        "operation": "refund",
        "amount": "1.00",
        "idempotency_key": "re-2",
        "error": "PaymentDeclined",
        "code": "declined",
        "retryable": False,
    }
    assert failed["provider_code"] == "card_declined"
    assert failed["http_status"] == 402
    assert "idempotency_key" not in status
    # Where the request names no amount, the line carries the result's (a status: the payment's).
    assert (status["amount"], status["currency"]) == ("25.00", "EUR")
    assert "amount" not in voided  # a Void carries no amount
    assert voided["idempotency_key"] == "vo-1"


def test_webhooks_log_verified_and_rejected(two_fakes: GatewayManager) -> None:
    f = fake(two_fakes, "alpha")
    session = two_fakes.create_checkout("alpha", checkout(), idempotency_key="k")
    f.complete_checkout(session.id)
    first, *_ = f.drain_webhooks()
    with capture_logs() as logs:
        two_fakes.parse_webhook("alpha", first.headers, first.body)
        with pytest.raises(GatewayError):
            two_fakes.parse_webhook("alpha", {}, first.body)
    assert [(e["event"], e["gateway"], e["operation"]) for e in operation_lines(logs)] == [
        ("gateway.webhook.verified", "alpha", "webhook"),
        ("gateway.webhook.rejected", "alpha", "webhook"),
    ]
    assert operation_lines(logs)[1]["error"] == "WebhookVerificationFailed"


def test_a_plugin_crash_is_logged_as_a_failure_of_its_operation() -> None:
    manager = build_manager({"c": {"provider": "crash"}}, plugins=[provider_plugin("crash", Crashing)])
    with capture_logs() as logs, pytest.raises(GatewayError):
        manager.create_checkout("c", checkout(), idempotency_key="k")
    [line] = operation_lines(logs)
    assert (line["event"], line["error"], line["code"]) == ("gateway.checkout.failed", "GatewayError", "provider_error")


# --------------------------------------------------------------------------------------------
# Secrets never leak
# --------------------------------------------------------------------------------------------

WEBHOOK_SECRET = "whsec_LEAKCHECK_6f1d0a9e"
API_KEY = "sk_live_LEAKCHECK_51Hx9qZ"
CARD = "4242424242424242"
CARD_SPACED = "4242 4242 4242 4242"


class Crashing:
    """A provider's gateway object whose SDK echoes credentials and card data in its errors."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.name = settings.name
        self.api_key = settings.secret("api_key") if "api_key" in settings.settings else None

    @hookimpl
    def gateway_create_checkout(self, request: CheckoutRequest, context: OperationContext) -> CheckoutSession:
        key = self.api_key.reveal() if self.api_key is not None else "none"
        raise RuntimeError(f"401 for Authorization: Bearer {key}; card {CARD}")


def test_no_secret_token_or_card_number_in_any_log_line_or_error() -> None:
    environ = {"FAKE_WEBHOOK_SECRET": WEBHOOK_SECRET, "CRASH_API_KEY": API_KEY}
    errors: list[BaseException] = []
    with capture_logs() as logs:
        manager = build_manager(
            {
                "f": fake_table(settings={"webhook_secret": {"env": "FAKE_WEBHOOK_SECRET"}}),
                "crash": {"provider": "crash", "settings": {"api_key": {"env": "CRASH_API_KEY"}}},
            },
            plugins=[provider_plugin("crash", Crashing)],
            environ=environ,
        )
        f = fake(manager, "f")

        def attempt(call: Any) -> Any:
            try:
                return call()
            except GatewayError as exc:
                errors.append(exc)
                if exc.__cause__ is not None:
                    errors.append(exc.__cause__)
                return None

        # successes and every scripted failure, with a card number as the payment method token
        for outcome in (
            None,
            Outcome.DECLINE,
            Outcome.REQUIRES_3DS,
            Outcome.RATE_LIMITED,
            Outcome.TIMEOUT_AFTER_SUCCESS,
        ):
            if outcome is not None:
                f.script(outcome)
            request = AuthorizeRequest(eur("10.00"), CARD, customer_email="payer@example.com")
            attempt(lambda request=request, o=outcome: manager.authorize("f", request, idempotency_key=f"a-{o}"))
        attempt(lambda: manager.authorize("f", AuthorizeRequest(eur("10.00"), CARD_SPACED), idempotency_key="sp"))
        attempt(lambda: manager.capture("f", CaptureRequest(CARD), idempotency_key="c"))  # a card where an id goes
        attempt(lambda: manager.payment_status("f", CARD))
        # webhooks signed with the secret: good, tampered, unsigned
        session = manager.create_checkout("f", checkout(), idempotency_key="co")
        f.complete_checkout(session.id)
        for delivery in f.drain_webhooks():
            attempt(lambda d=delivery: manager.parse_webhook("f", d.headers, d.body))
            attempt(lambda d=delivery: manager.parse_webhook("f", d.headers, d.body + b"x"))
            attempt(
                lambda d=delivery: manager.parse_webhook("f", {SIGNATURE_HEADER: f"t=1,v1={WEBHOOK_SECRET}"}, d.body)
            )
        # the API key travels through config into a plugin whose SDK error echoes it
        attempt(lambda: manager.create_checkout("crash", checkout(), idempotency_key="x"))
        # the core's own refusals
        attempt(lambda: manager.authorize("f", AuthorizeRequest(eur("10.00"), CARD)))
        attempt(lambda: manager.void("crash", VoidRequest(CARD), idempotency_key="v"))

    # the crash's original text holds the secrets by construction; everything the host sees must not
    host_visible = [e for e in errors if isinstance(e, GatewayError)]
    assert len(host_visible) >= 8
    assert any(isinstance(e.__cause__, RuntimeError) for e in host_visible)
    assert operation_lines(logs)

    config_texts = [
        repr(manager.config),
        str(manager.config),
        repr(manager.gateway("f")),
        repr(manager.gateway("crash")),
    ]
    texts = [repr(event) for event in logs] + config_texts
    texts += [text for e in host_visible for text in (str(e), repr(e), e.message, repr(e.args))]
    for secret in (WEBHOOK_SECRET, API_KEY, CARD, CARD_SPACED):
        for text in texts:
            assert secret not in text, text


def test_a_full_capture_or_refund_logs_the_amount_moved_and_a_webhook_its_type(one_fake: GatewayManager) -> None:
    f = fake(one_fake, "fake")
    with capture_logs() as logs:
        auth = one_fake.authorize("fake", AuthorizeRequest(eur("25.00"), "pm_card_visa"), idempotency_key="au-f")
        one_fake.capture("fake", CaptureRequest(auth.id), idempotency_key="ca-f")  # no amount: all of it
        one_fake.refund("fake", RefundRequest(auth.id), idempotency_key="re-f")  # no amount: what remains
        delivery = f.drain_webhooks()[-1]
        event = one_fake.parse_webhook("fake", delivery.headers, delivery.body)
    captured, refunded, verified = operation_lines(logs)[1:]
    assert (captured["event"], captured["amount"], captured["currency"]) == (
        "gateway.capture.succeeded",
        "25.00",
        "EUR",
    )
    assert (refunded["event"], refunded["amount"], refunded["currency"]) == ("gateway.refund.created", "25.00", "EUR")
    assert (verified["event"], verified["event_type"]) == ("gateway.webhook.verified", event.type.value)
