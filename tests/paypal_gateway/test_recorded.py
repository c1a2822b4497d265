"""Real PayPal sandbox recordings (saleor PR 5577, 2020-08-18) replayed through the plugin, network blocked.

The recordings were made by another SDK against ``https://api.sandbox.paypal.com``, so the gateway
is configured with that ``base_url``; requests match on method, scheme, host, port, path and query
(the bodies differ by design: the plugin sends its own). See ``data/SOURCES.md``.
"""

from __future__ import annotations

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
from tests.paypal_gateway import spec

RECORDED = Path(__file__).parent / "data" / "recorded"
GATEWAY = "paypal_sandbox"


@pytest.fixture
def sent() -> list[Any]:
    """Every request the plugin made while a cassette played (vcrpy passes each through the hook)."""
    return []


@pytest.fixture
def vcr_config(sent: list[Any]) -> dict[str, Any]:
    def remember(request: Any) -> Any:
        sent.append(request)
        return request

    return {
        "record_mode": "none",
        "match_on": ["method", "scheme", "host", "port", "path", "query"],
        "filter_headers": ["authorization"],
        "before_record_request": remember,
    }


@pytest.fixture
def vcr_cassette_dir() -> str:
    return str(RECORDED)


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


def sent_bodies(requests: list[Any]) -> list[tuple[str, str, Any]]:
    """The (method, path, JSON body) of every API request the plugin made (not the recorded ones)."""
    import json
    from urllib.parse import urlsplit

    out = []
    for request in requests:
        path = urlsplit(request.uri).path
        if path == "/v1/oauth2/token":
            continue
        body = json.loads(request.body) if request.body else None
        out.append((request.method, path, body))
    return out


@pytest.mark.vcr("test_create_paypal_order.yaml")
def test_order_create_replays(sandbox: GatewayManager, vcr: Any, sent: list[Any]) -> None:
    sent.clear()  # loading the cassette passed the recorded requests through the hook
    request = CheckoutRequest.single(
        "Order", Money.of("42.42", "EUR"), "https://shop.example/ok", "https://shop.example/cancel", reference="r-1"
    )
    session = sandbox.create_checkout(GATEWAY, request, idempotency_key="recorded-create")
    assert session.id == "8UT45527HV521594P"
    assert session.url == "https://www.sandbox.paypal.com/checkoutnow?token=8UT45527HV521594P"
    assert session.status is CheckoutStatus.OPEN
    assert session.amount == Money.of("42.42", "EUR")
    assert vcr.play_count == 2
    bodies = sent_bodies(sent)
    assert bodies
    for method, path, body in bodies:
        spec.validate_request(method, path, body)


def with_authorization_404(name: str, payment_id: str, tmp_path: Path) -> Path:
    """The recording plus the plugin's read-only authorization lookup, answered 404.

    Before capturing, the plugin GETs ``/v2/payments/authorizations/{id}`` to learn whether the id is
    an authorization or an order. The recordings predate that lookup, so its 404 is synthesized in
    PayPal's error envelope (copied from the recorded 404, marked ``synthesized``); every other
    interaction is the real recording.
    """
    data = yaml.safe_load((RECORDED / name).read_text())
    template = yaml.safe_load((RECORDED / "test_capture_error.yaml").read_text())["interactions"][1]
    lookup: dict[str, Any] = yaml.safe_load(yaml.safe_dump(template))
    lookup["request"]["method"] = "GET"
    lookup["request"]["body"] = None
    lookup["request"]["uri"] = f"https://api.sandbox.paypal.com/v2/payments/authorizations/{payment_id}"
    lookup["response"]["headers"]["Paypal-Debug-Id"] = ["synthesized01"]
    lookup["response"]["body"]["string"] = (
        template["response"]["body"]["string"]
        .replace("a962facfb0bcb", "synthesized01")
        .replace('"order_id"', '"authorization_id"')
        .replace("INVALID-PAYPAL-ORDER-ID", payment_id)
    )
    data["interactions"].insert(1, lookup)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_capture_replays_as_pending_not_paid(
    sandbox: GatewayManager, tmp_path: Path, vcr_config: dict[str, Any]
) -> None:
    cassette = with_authorization_404("test_capture_success.yaml", "8UT45527HV521594P", tmp_path)
    with vcrpy.VCR(**vcr_config).use_cassette(str(cassette)) as played:
        capture = sandbox.capture(GATEWAY, CaptureRequest("8UT45527HV521594P"), idempotency_key="recorded-capture")
        assert played.play_count == 3
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


def test_capture_error_replays_as_not_found(
    sandbox: GatewayManager, tmp_path: Path, vcr_config: dict[str, Any]
) -> None:
    cassette = with_authorization_404("test_capture_error.yaml", "INVALID-PAYPAL-ORDER-ID", tmp_path)
    with vcrpy.VCR(**vcr_config).use_cassette(str(cassette)) as played:
        with pytest.raises(NotFound) as info:
            sandbox.capture(
                GATEWAY, CaptureRequest("INVALID-PAYPAL-ORDER-ID"), idempotency_key="recorded-capture-error"
            )
        assert played.play_count == 3
    # The error is the recorded one: PayPal's debug_id is the request id.
    assert info.value.request_id == "a962facfb0bcb"
    assert info.value.http_status == 404
    assert info.value.provider_code == "INVALID_RESOURCE_ID"
    assert info.value.gateway == GATEWAY


@pytest.mark.vcr("test_refund_success.yaml")
def test_refund_replays(sandbox: GatewayManager, sent: list[Any]) -> None:
    sent.clear()  # loading the cassette passed the recorded requests through the hook
    refund = sandbox.refund(
        GATEWAY, RefundRequest("5DH34141WG814093W", Money.of("24.24", "EUR")), idempotency_key="recorded-refund"
    )
    assert refund.id == "9NC06711XS952841K"
    assert refund.amount == Money.of("24.24", "EUR")
    assert refund.status is RefundStatus.PENDING  # status_details.reason ECHECK
    assert refund.payment_id == "5DH34141WG814093W"
    bodies = sent_bodies(sent)
    assert bodies
    for method, path, body in bodies:
        spec.validate_request(method, path, body)
        assert body == {"amount": {"currency_code": "EUR", "value": "24.24"}}


@pytest.mark.vcr("test_refund_error.yaml")
def test_refund_error_replays_as_not_found(sandbox: GatewayManager) -> None:
    with pytest.raises(NotFound) as info:
        sandbox.refund(GATEWAY, RefundRequest("NON-EXISTENT-CAPTURE-ID"), idempotency_key="recorded-refund-error")
    assert info.value.http_status == 404
    assert info.value.request_id


def test_recordings_hold_no_credentials() -> None:
    for path in RECORDED.glob("*.yaml"):
        text = path.read_text()
        for interaction in yaml.safe_load(text)["interactions"]:
            for value in interaction["request"]["headers"].get("Authorization", []):
                assert value in ("Basic REDACTED", "Bearer REDACTED"), path.name
        assert '"access_token":"REDACTED"' in text, path.name
