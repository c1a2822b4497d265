"""Webhooks: offline verification against a generated chain, the verify API on the stand-in, event mapping."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from paypal_gateway.gateway import PayPalGateway
from paypal_gateway.webhooks import CertificateStore, check_cert_url, signed_message

from gateway_core.errors import ConfigurationError, WebhookVerificationFailed
from gateway_core.manager import GatewayManager
from gateway_core.models import EventType
from gateway_core.money import Money
from tests.paypal_gateway import certs
from tests.paypal_gateway.conftest import GATEWAY, WEBHOOK_ID, StandIn
from tests.paypal_gateway.standin import api_signature

CERT_URL = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77"


def capture_event(event_type: str = "PAYMENT.CAPTURE.COMPLETED", **resource: Any) -> dict[str, Any]:
    """A capture event in PayPal's documented shape (developer.paypal.com/api/rest/webhooks/event-names)."""
    return {
        "id": f"WH-{uuid.uuid4().hex[:20].upper()}",
        "event_version": "1.0",
        "create_time": "2026-11-25T09:00:00.000Z",
        "resource_type": "capture",
        "resource_version": "2.0",
        "event_type": event_type,
        "summary": "Payment completed for EUR 10.5 EUR",
        "resource": {
            "id": "42311647XV020574X",
            "amount": {"currency_code": "EUR", "value": "10.50"},
            "final_capture": True,
            "status": "COMPLETED",
            "custom_id": "order-42",
            "supplementary_data": {"related_ids": {"order_id": "5O190127TN364715T"}},
            "create_time": "2026-11-25T08:59:58Z",
            **resource,
        },
    }


def deliver(
    chain: certs.Chain,
    event: dict[str, Any],
    *,
    when: datetime | None = None,
    cert_url: str = CERT_URL,
    key: Any = None,
    webhook_id: str = WEBHOOK_ID,
) -> tuple[dict[str, str], bytes]:
    body = json.dumps(event).encode()
    transmission_id = str(uuid.uuid4())
    transmission_time = (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    message = signed_message(transmission_id, transmission_time, webhook_id, body)
    headers = {
        "PAYPAL-TRANSMISSION-ID": transmission_id,
        "PAYPAL-TRANSMISSION-TIME": transmission_time,
        "PAYPAL-TRANSMISSION-SIG": chain.sign(message, key),
        "PAYPAL-CERT-URL": cert_url,
        "PAYPAL-AUTH-ALGO": "SHA256withRSA",
        "Content-Type": "application/json",
    }
    return headers, body


@pytest.fixture(scope="module")
def chain() -> certs.Chain:
    return certs.make_chain()


class Fetcher:
    """Serves a chain for any URL and remembers what was asked (to prove refused URLs are never fetched)."""

    def __init__(self, served: bytes) -> None:
        self.served = served
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        return self.served


@pytest.fixture
def offline(make_manager: Callable[..., GatewayManager], chain: certs.Chain) -> tuple[GatewayManager, Fetcher]:
    manager = make_manager(webhook_verification="offline")
    fetcher = Fetcher(chain.served)
    gateway = manager.gateway_object(GATEWAY)
    assert isinstance(gateway, PayPalGateway)
    gateway.use_certificate_store(CertificateStore("sandbox", fetcher, certs.pem(chain.root), gateway=GATEWAY))
    return manager, fetcher


def test_offline_genuine_delivery_is_parsed(offline: tuple[GatewayManager, Fetcher], chain: certs.Chain) -> None:
    manager, fetcher = offline
    event = capture_event()
    headers, body = deliver(chain, event)
    parsed = manager.parse_webhook(GATEWAY, headers, body)
    assert parsed.id == event["id"]
    assert parsed.type is EventType.PAYMENT_SUCCEEDED
    assert parsed.provider_type == "PAYMENT.CAPTURE.COMPLETED"
    assert parsed.payment_id == "42311647XV020574X"
    assert parsed.checkout_id == "5O190127TN364715T"
    assert parsed.reference == "order-42"
    assert parsed.amount == Money.of("10.50", "EUR")
    assert parsed.occurred_at == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    # A second delivery uses the cached certificate.
    manager.parse_webhook(GATEWAY, *deliver(chain, capture_event()))
    assert fetcher.urls == [CERT_URL]


def test_offline_tampered_body_fails(offline: tuple[GatewayManager, Fetcher], chain: certs.Chain) -> None:
    manager, _ = offline
    headers, body = deliver(chain, capture_event())
    tampered = body.replace(b'"10.50"', b'"99.50"')
    with pytest.raises(WebhookVerificationFailed, match="signature"):
        manager.parse_webhook(GATEWAY, headers, tampered)


def test_offline_signature_by_another_key_fails(offline: tuple[GatewayManager, Fetcher], chain: certs.Chain) -> None:
    manager, _ = offline
    headers, body = deliver(chain, capture_event(), key=certs.other_key())
    with pytest.raises(WebhookVerificationFailed):
        manager.parse_webhook(GATEWAY, headers, body)


def test_offline_signature_for_another_webhook_id_fails(
    offline: tuple[GatewayManager, Fetcher], chain: certs.Chain
) -> None:
    manager, _ = offline
    headers, body = deliver(chain, capture_event(), webhook_id="WH-SOMEONE-ELSE")
    with pytest.raises(WebhookVerificationFailed):
        manager.parse_webhook(GATEWAY, headers, body)


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/v1/notifications/certs/CERT-1",
        "http://api.sandbox.paypal.com/v1/notifications/certs/CERT-1",
        "https://api.sandbox.paypal.com/v1/other/CERT-1",
        "https://api.sandbox.paypal.com.evil.example/v1/notifications/certs/CERT-1",
        "https://api.paypal.com/v1/notifications/certs/CERT-1",  # live host for a sandbox gateway
        "https://api.sandbox.paypal.com:8443/v1/notifications/certs/CERT-1",
        "https://user@api.sandbox.paypal.com/v1/notifications/certs/CERT-1",
        "https://api.sandbox.paypal.com/v1/notifications/certs/../../oauth2/token",
        "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1?x=1",
    ],
)
def test_offline_cert_url_off_paypal_is_refused_without_fetching(
    offline: tuple[GatewayManager, Fetcher], chain: certs.Chain, url: str
) -> None:
    manager, fetcher = offline
    headers, body = deliver(chain, capture_event(), cert_url=url)
    with pytest.raises(WebhookVerificationFailed, match="PAYPAL-CERT-URL"):
        manager.parse_webhook(GATEWAY, headers, body)
    assert fetcher.urls == []


def test_cert_url_on_paypal_hosts_is_accepted() -> None:
    for url in (CERT_URL, "https://api-m.sandbox.paypal.com/v1/notifications/certs/CERT-1"):
        assert check_cert_url(url, "sandbox") == url
    assert check_cert_url("https://api-m.paypal.com/v1/notifications/certs/CERT-1", "live")


@pytest.mark.parametrize(
    ("served", "reason"),
    [
        ("untrusted", "trusted root"),
        ("wrong_subject", "subject"),
        ("expired", "not valid now"),
        ("leaf_only", "trusted root"),
        ("garbage", "PEM"),
    ],
)
def test_offline_bad_certificate_chain_is_refused(
    make_manager: Callable[..., GatewayManager], chain: certs.Chain, served: str, reason: str
) -> None:
    if served == "untrusted":
        other = certs.make_chain()
        signer, pem = other, other.served
    elif served == "wrong_subject":
        other = certs.make_chain("www.paypal.com")
        signer, pem = other, other.served
    elif served == "expired":
        other = certs.make_chain(expired=True)
        signer, pem = other, other.served
    elif served == "leaf_only":
        signer, pem = chain, certs.pem(chain.leaf)
    else:
        signer, pem = chain, b"not a certificate"
    manager = make_manager(webhook_verification="offline")
    gateway = manager.gateway_object(GATEWAY)
    assert isinstance(gateway, PayPalGateway)
    roots = certs.pem(chain.root) if served != "wrong_subject" and served != "expired" else certs.pem(signer.root)
    gateway.use_certificate_store(CertificateStore("sandbox", Fetcher(pem), roots, gateway=GATEWAY))
    with pytest.raises(WebhookVerificationFailed, match=reason):
        manager.parse_webhook(GATEWAY, *deliver(signer, capture_event()))


def test_stale_or_future_transmission_time_is_refused(
    offline: tuple[GatewayManager, Fetcher], chain: certs.Chain
) -> None:
    manager, fetcher = offline
    for shift in (timedelta(hours=-1), timedelta(hours=1)):
        headers, body = deliver(chain, capture_event(), when=datetime.now(UTC) + shift)
        with pytest.raises(WebhookVerificationFailed, match="tolerance"):
            manager.parse_webhook(GATEWAY, headers, body)
    assert fetcher.urls == []


def test_missing_headers_are_refused(offline: tuple[GatewayManager, Fetcher], chain: certs.Chain) -> None:
    manager, _ = offline
    headers, body = deliver(chain, capture_event())
    del headers["PAYPAL-TRANSMISSION-SIG"]
    with pytest.raises(WebhookVerificationFailed, match="PAYPAL-TRANSMISSION-SIG"):
        manager.parse_webhook(GATEWAY, headers, body)


def test_webhooks_need_a_webhook_id(make_manager: Callable[..., GatewayManager], chain: certs.Chain) -> None:
    manager = make_manager(webhook_id=None)
    with pytest.raises(ConfigurationError):
        manager.parse_webhook(GATEWAY, *deliver(chain, capture_event()))


def api_delivery(event: dict[str, Any], *, sig: str | None = None) -> tuple[dict[str, str], bytes]:
    body = json.dumps(event).encode()
    transmission_id = str(uuid.uuid4())
    transmission_time = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    signature = sig or api_signature(transmission_id, transmission_time, WEBHOOK_ID, event)
    return {
        "paypal-transmission-id": transmission_id,
        "paypal-transmission-time": transmission_time,
        "paypal-transmission-sig": signature,
        "paypal-cert-url": CERT_URL,
        "paypal-auth-algo": "SHA256withRSA",
    }, body


def test_api_verification_believes_only_paypal(manager: GatewayManager, standin: StandIn) -> None:
    event = capture_event("PAYMENT.CAPTURE.REFUNDED")
    headers, body = api_delivery(event)
    parsed = manager.parse_webhook(GATEWAY, headers, body)
    assert parsed.id == event["id"]
    (verify,) = [r for r in standin.requests() if r["path"] == "/v1/notifications/verify-webhook-signature"]
    assert verify["auth"] == "Bearer"
    assert verify["body"]["webhook_event"] == event
    assert verify["body"]["webhook_id"] == WEBHOOK_ID
    tampered = body.replace(b'"10.50"', b'"99.50"')
    with pytest.raises(WebhookVerificationFailed):
        manager.parse_webhook(GATEWAY, headers, tampered)
    with pytest.raises(WebhookVerificationFailed):
        manager.parse_webhook(GATEWAY, *api_delivery(event, sig="c2lnbmF0dXJl"))


def test_api_mode_refuses_a_body_that_is_not_json(manager: GatewayManager, standin: StandIn) -> None:
    headers, _ = api_delivery(capture_event())
    with pytest.raises(WebhookVerificationFailed):
        manager.parse_webhook(GATEWAY, headers, b"\xff not json")
    assert [r for r in standin.requests() if "verify" in r["path"]] == []


ORDER = {
    "id": "5O190127TN364715T",
    "intent": "CAPTURE",
    "status": "APPROVED",
    "purchase_units": [
        {"reference_id": "order-7", "custom_id": "order-7", "amount": {"currency_code": "HUF", "value": "1250"}}
    ],
}
REFUND = {
    "id": "1JU08902781691411",
    "amount": {"currency_code": "EUR", "value": "4.00"},
    "status": "COMPLETED",
    "custom_id": "order-42",
    "links": [{"href": "https://api.paypal.com/v2/payments/captures/42311647XV020574X", "rel": "up", "method": "GET"}],
}
AUTH = {"id": "0VF52814937998046", "status": "VOIDED", "amount": {"currency_code": "USD", "value": "7.00"}}


@pytest.mark.parametrize(
    ("event_type", "resource_type", "resource", "expected", "fields"),
    [
        ("CHECKOUT.ORDER.APPROVED", "checkout-order", ORDER, EventType.CHECKOUT_COMPLETED, {"checkout_id": "5O190127TN364715T", "payment_id": "5O190127TN364715T", "reference": "order-7", "amount": Money.of("1250", "HUF")}),
        ("CHECKOUT.ORDER.COMPLETED", "checkout-order", ORDER, EventType.CHECKOUT_COMPLETED, {"checkout_id": "5O190127TN364715T"}),
        ("CHECKOUT.PAYMENT-APPROVAL.REVERSED", "checkout-order", ORDER, EventType.PAYMENT_FAILED, {"checkout_id": "5O190127TN364715T"}),
        ("PAYMENT.CAPTURE.COMPLETED", "capture", None, EventType.PAYMENT_SUCCEEDED, {"payment_id": "42311647XV020574X"}),
        ("PAYMENT.CAPTURE.PENDING", "capture", None, EventType.PAYMENT_PENDING, {"payment_id": "42311647XV020574X"}),
        ("PAYMENT.CAPTURE.DENIED", "capture", None, EventType.PAYMENT_FAILED, {"payment_id": "42311647XV020574X"}),
        ("PAYMENT.CAPTURE.DECLINED", "capture", None, EventType.PAYMENT_FAILED, {"payment_id": "42311647XV020574X"}),
        ("PAYMENT.CAPTURE.REFUNDED", "refund", REFUND, EventType.REFUND_SUCCEEDED, {"refund_id": "1JU08902781691411", "payment_id": "42311647XV020574X", "amount": Money.of("4.00", "EUR")}),
        ("PAYMENT.CAPTURE.REVERSED", "refund", REFUND, EventType.PAYMENT_REVERSED, {"payment_id": "42311647XV020574X"}),
        ("PAYMENT.AUTHORIZATION.VOIDED", "authorization", AUTH, EventType.PAYMENT_CANCELED, {"payment_id": "0VF52814937998046"}),
        ("CUSTOMER.DISPUTE.CREATED", "dispute", {"dispute_id": "PP-D-1"}, EventType.UNKNOWN, {}),
    ],
)  # fmt: skip
def test_event_types_map_onto_the_core(
    offline: tuple[GatewayManager, Fetcher],
    chain: certs.Chain,
    event_type: str,
    resource_type: str,
    resource: dict[str, Any] | None,
    expected: EventType,
    fields: dict[str, Any],
) -> None:
    manager, _ = offline
    event = capture_event(event_type)
    if resource is not None:
        event["resource"] = resource
    event["resource_type"] = resource_type
    parsed = manager.parse_webhook(GATEWAY, *deliver(chain, event))
    assert parsed.type is expected
    assert parsed.provider_type == event_type
    for name, value in fields.items():
        assert getattr(parsed, name) == value, name
