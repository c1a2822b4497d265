"""The core's conformance suite (gateway_core.testing.conformance) run against the PayPal plugin.

The harness drives the local stand-in: ``pay`` approves the order as the payer would and then
completes the checkout the way a host does (capture with the order id), returning the capture id;
``payment_method`` is a vaulted card the stand-in authorizes; webhooks are signed offline with a
chain the tests generate (a "wrong secret" is a signature by another key).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from paypal_gateway.gateway import PayPalGateway
from paypal_gateway.webhooks import CertificateStore, signed_message

from gateway_core.manager import GatewayManager
from gateway_core.models import CaptureRequest, CheckoutSession
from gateway_core.testing.conformance import ConformanceHarness, GatewayConformance, SignedWebhook
from tests.paypal_gateway import certs
from tests.paypal_gateway.conftest import CLIENT_ID, CLIENT_SECRET, GATEWAY, WEBHOOK_ID, StandIn

CERT_URL = "https://api-m.sandbox.paypal.com/v1/notifications/certs/CERT-conformance-0001"


@pytest.fixture(scope="module")
def chain() -> certs.Chain:
    return certs.make_chain()


@pytest.fixture(scope="module")
def wrong_key() -> object:
    return certs.other_key()


class TestPayPalConformance(GatewayConformance):
    @pytest.fixture
    def conformance_harness(
        self,
        make_manager: Callable[..., GatewayManager],
        standin: StandIn,
        chain: certs.Chain,
        wrong_key: object,
    ) -> ConformanceHarness:
        manager = make_manager(webhook_verification="offline")
        gateway = manager.gateway_object(GATEWAY)
        assert isinstance(gateway, PayPalGateway)
        gateway.use_certificate_store(
            CertificateStore("sandbox", lambda _url: chain.served, certs.pem(chain.root), gateway=GATEWAY)
        )

        def pay(session: CheckoutSession) -> str:
            standin.approve(session.id)
            return manager.capture(GATEWAY, CaptureRequest(session.id), idempotency_key=f"pay-{session.id}").id

        def signed_webhook(*, secret: str | None = None, timestamp: int | None = None) -> SignedWebhook:
            event = {
                "id": f"WH-{uuid.uuid4().hex[:20].upper()}",
                "event_type": "PAYMENT.CAPTURE.COMPLETED",
                "resource_type": "capture",
                "create_time": "2026-11-25T09:00:00Z",
                "resource": {"id": "42311647XV020574X", "status": "COMPLETED", "amount": {"currency_code": "USD", "value": "10.00"}},
            }  # fmt: skip
            body = json.dumps(event).encode()
            sent = datetime.fromtimestamp(timestamp, UTC) if timestamp is not None else datetime.now(UTC)
            transmission_time = sent.strftime("%Y-%m-%dT%H:%M:%SZ")
            transmission_id = str(uuid.uuid4())
            message = signed_message(transmission_id, transmission_time, WEBHOOK_ID, body)
            key = wrong_key if secret is not None else None
            return SignedWebhook(
                {
                    "PAYPAL-TRANSMISSION-ID": transmission_id,
                    "PAYPAL-TRANSMISSION-TIME": transmission_time,
                    "PAYPAL-TRANSMISSION-SIG": chain.sign(message, key),  # type: ignore[arg-type]
                    "PAYPAL-CERT-URL": CERT_URL,
                    "PAYPAL-AUTH-ALGO": "SHA256withRSA",
                },
                body,
            )

        return ConformanceHarness(
            manager=manager,
            gateway=GATEWAY,
            requests_sent=lambda: len(standin.requests()),
            secrets=[CLIENT_ID, CLIENT_SECRET],
            pay=pay,
            payment_method="card:VAULT-CONFORMANCE-1",
            signed_webhook=signed_webhook,
        )
