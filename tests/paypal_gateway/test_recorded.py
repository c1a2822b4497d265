"""Real PayPal sandbox recordings (saleor PR 5577, 2020-08-18) replayed through the plugin, network blocked.

The recordings were made by another SDK against ``https://api.sandbox.paypal.com``, so the gateway
is configured with that ``base_url``; requests match on the request line only (method, scheme,
host, port, path and query): the bodies differ by design, the plugin sends its own, and each body
it sends is checked against PayPal's spec instead. See ``data/SOURCES.md``.

Every test plays its cassette with vcrpy's record mode ``none`` whatever ``--record-mode`` says
(these files cannot be recorded again), and runs with every connection refused, loopback
included (:data:`NO_HOST`): nothing here reaches a server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import vcr as vcrpy  # type: ignore[import-untyped]
import yaml

from gateway_core.config import DeploymentConfig, GatewaySettings, Secret
from gateway_core.errors import NotFound
from gateway_core.manager import GatewayManager
from gateway_core.models import (
    CaptureRequest,
    CheckoutRequest,
    CheckoutStatus,
    PaymentState,
    RefundRequest,
    RefundStatus,
)
from gateway_core.money import Money
from tests.paypal_gateway.conftest import NO_HOST, check_sent, observe

pytestmark = pytest.mark.block_network(allowed_hosts=NO_HOST)

RECORDED = Path(__file__).parent / "data" / "recorded"
GATEWAY = "paypal_sandbox"
#: The request line only: the recorded bodies are another SDK's (see the module docstring).
MATCH_ON = ["method", "scheme", "host", "port", "path", "query"]


@pytest.fixture
def sandbox() -> GatewayManager:
    settings = {
        "client_id": Secret("recorded-client-id"),
        "client_secret": Secret("recorded-client-secret"),
        "environment": "sandbox",
        "base_url": "https://api.sandbox.paypal.com",
        "max_retries": 0,
    }
    return GatewayManager(DeploymentConfig([GatewaySettings(GATEWAY, "paypal", settings)]))


@contextmanager
def play(cassette: Path) -> Iterator[Any]:
    with vcrpy.VCR(record_mode="none", match_on=MATCH_ON).use_cassette(str(cassette)) as played:
        yield played
    assert played.all_played, f"{cassette.name}: not every recorded interaction was requested"


def with_404s(name: str, tmp_path: Path, *paths: str) -> Path:
    """The recording plus read-only GETs of ``paths`` the plugin makes, answered 404.

    Before capturing, the plugin GETs ``/v2/payments/authorizations/{id}`` to learn whether the id
    is an authorization or an order; after a refund's 404 it looks the id up as an order and as an
    authorization. The recordings predate those lookups, so each 404 is synthesized in PayPal's
    error envelope (copied from the recorded capture 404, debug id ``synthesized01``); every other
    interaction is the real recording.
    """
    data = yaml.safe_load((RECORDED / name).read_text())
    template = yaml.safe_load((RECORDED / "test_capture_error.yaml").read_text())["interactions"][1]
    for path in paths:
        lookup: dict[str, Any] = yaml.safe_load(yaml.safe_dump(template))
        lookup["request"]["method"] = "GET"
        lookup["request"]["body"] = None
        lookup["request"]["uri"] = f"https://api.sandbox.paypal.com{path}"
        lookup["response"]["headers"]["Paypal-Debug-Id"] = ["synthesized01"]
        lookup["response"]["body"]["string"] = (
            template["response"]["body"]["string"]
            .replace("a962facfb0bcb", "synthesized01")
            .replace("INVALID-PAYPAL-ORDER-ID", path.rsplit("/", 1)[1])
        )
        data["interactions"].append(lookup)
    out = tmp_path / name
    out.write_text(yaml.safe_dump(data))
    return out


def test_order_create_replays(sandbox: GatewayManager) -> None:
    sent = observe(sandbox, GATEWAY)
    request = CheckoutRequest.single(
        "Order", Money.of("42.42", "EUR"), "https://shop.example/ok", "https://shop.example/cancel", reference="r-1"
    )
    with play(RECORDED / "test_create_paypal_order.yaml"):
        session = sandbox.create_checkout(GATEWAY, request, idempotency_key="recorded-create")
    assert session.id == "8UT45527HV521594P"
    assert session.url == "https://www.sandbox.paypal.com/checkoutnow?token=8UT45527HV521594P"
    assert session.status is CheckoutStatus.OPEN
    assert session.amount == Money.of("42.42", "EUR")
    assert [r.method for r in sent] == ["POST", "POST"]  # the token, then the order
    check_sent(sent)
    # The recorded order was created without a reference: PayPal filled in reference_id "default",
    # which is no reference of the host's.
    assert session.raw["purchase_units"][0]["reference_id"] == "default"
    status = sandbox.gateway_object(GATEWAY).order_status(session.raw)  # type: ignore[attr-defined]
    assert status.reference is None
    assert status.state is PaymentState.PENDING


def test_capture_replays_as_pending_not_paid(sandbox: GatewayManager, tmp_path: Path) -> None:
    sent = observe(sandbox, GATEWAY)
    cassette = with_404s("test_capture_success.yaml", tmp_path, "/v2/payments/authorizations/8UT45527HV521594P")
    with play(cassette):
        capture = sandbox.capture(GATEWAY, CaptureRequest("8UT45527HV521594P"), idempotency_key="recorded-capture")
    check_sent(sent)
    # The order is COMPLETED, but its capture is PENDING (PENDING_REVIEW): not paid.
    assert capture.raw["status"] == "COMPLETED"
    assert capture.id == "5DH34141WG814093W"
    assert capture.payment_id == "8UT45527HV521594P"
    assert capture.state is PaymentState.PENDING
    assert capture.amount == Money.of("42.42", "EUR")
    gateway = sandbox.gateway_object(GATEWAY)
    status = gateway.order_status(capture.raw)  # type: ignore[attr-defined]
    assert status.state is PaymentState.PENDING
    assert not status.is_paid
    assert status.amount_captured == Money.zero("EUR")
    assert status.reference is None  # reference_id "default" again


def test_capture_error_replays_as_not_found(sandbox: GatewayManager, tmp_path: Path) -> None:
    cassette = with_404s("test_capture_error.yaml", tmp_path, "/v2/payments/authorizations/INVALID-PAYPAL-ORDER-ID")
    with play(cassette), pytest.raises(NotFound) as info:
        sandbox.capture(GATEWAY, CaptureRequest("INVALID-PAYPAL-ORDER-ID"), idempotency_key="recorded-capture-error")
    # The error is the recorded one: PayPal's debug_id is the request id.
    assert info.value.request_id == "a962facfb0bcb"
    assert info.value.http_status == 404
    assert info.value.provider_code == "INVALID_RESOURCE_ID"
    assert info.value.gateway == GATEWAY


def test_refund_replays(sandbox: GatewayManager) -> None:
    sent = observe(sandbox, GATEWAY)
    with play(RECORDED / "test_refund_success.yaml"):
        refund = sandbox.refund(
            GATEWAY, RefundRequest("5DH34141WG814093W", Money.of("24.24", "EUR")), idempotency_key="recorded-refund"
        )
    assert refund.id == "9NC06711XS952841K"
    assert refund.amount == Money.of("24.24", "EUR")
    assert refund.status is RefundStatus.PENDING  # status_details.reason ECHECK
    assert refund.payment_id == "5DH34141WG814093W"
    check_sent(sent)
    (refund_post,) = [r for r in sent if r.url.endswith("/refund")]
    assert refund_post.body is not None
    assert yaml.safe_load(refund_post.body) == {"amount": {"currency_code": "EUR", "value": "24.24"}}


def test_refund_error_replays_as_not_found(sandbox: GatewayManager, tmp_path: Path) -> None:
    cassette = with_404s(
        "test_refund_error.yaml",
        tmp_path,
        "/v2/checkout/orders/NON-EXISTENT-CAPTURE-ID",
        "/v2/payments/authorizations/NON-EXISTENT-CAPTURE-ID",
    )
    with play(cassette), pytest.raises(NotFound) as info:
        sandbox.refund(GATEWAY, RefundRequest("NON-EXISTENT-CAPTURE-ID"), idempotency_key="recorded-refund-error")
    # The refund's own recorded 404 is reported, not one of the synthesized lookups.
    assert info.value.request_id == "46eeafaf6c930"
    assert info.value.http_status == 404
    assert info.value.provider_code == "INVALID_RESOURCE_ID"
    assert info.value.gateway == GATEWAY


def test_recordings_hold_no_credentials() -> None:
    for path in RECORDED.glob("*.yaml"):
        text = path.read_text()
        for interaction in yaml.safe_load(text)["interactions"]:
            for value in interaction["request"]["headers"].get("Authorization", []):
                assert value in ("Basic REDACTED", "Bearer REDACTED"), path.name
        assert '"access_token":"REDACTED"' in text, path.name
