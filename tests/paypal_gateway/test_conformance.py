"""The core's conformance suite (gateway_core.testing.conformance) run against the PayPal plugin.

The harness drives the local stand-in: ``pay`` approves the order as the payer would and then
completes the checkout the way a host does (capture with the order id), returning the capture id;
``payment_method`` is a vaulted card the stand-in authorizes; webhooks are signed offline with a
chain the tests generate (a "wrong secret" is a signature by another key), and the webhook about a
payment is PayPal's ``PAYMENT.CAPTURE.COMPLETED`` around the capture read back from the stand-in.

What PayPal recorded is read back through PayPal's own API on the stand-in (``GET`` the order or
authorization with a token the harness fetches itself), converted to minor units with PayPal's
currency table (the stand-in's ``WHOLE_UNITS``), not the plugin's. Faults come from the stand-in's
fault endpoint (a 500 or 429 before acting; an answer held back past the client's timeout after
acting) or a closed port, on a manager built for the block with the plugin's own retries off.
The access tokens the plugin fetches at runtime are secrets too.
"""

from __future__ import annotations

import base64
import json
import socket
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from paypal_gateway.gateway import PayPalGateway
from paypal_gateway.webhooks import CertificateStore, signed_message

from gateway_core.config import Secret
from gateway_core.manager import GatewayManager
from gateway_core.models import CaptureRequest, CheckoutSession
from gateway_core.testing.conformance import ConformanceHarness, GatewayConformance, RecordedAmount, SignedWebhook
from tests.paypal_gateway import certs
from tests.paypal_gateway.conftest import CLIENT_ID, CLIENT_SECRET, GATEWAY, WEBHOOK_ID, StandIn
from tests.paypal_gateway.standin import WHOLE_UNITS

CERT_URL = "https://api-m.sandbox.paypal.com/v1/notifications/certs/CERT-conformance-0001"


#: The conformance suite's fault names, as the stand-in's fault kinds.
FAULTS = {"timeout": "delay_after", "5xx": "500", "429": "429"}
#: Where each operation the suite faults goes at PayPal.
FAULTED_REQUEST = {
    "checkout": ("POST", "/v2/checkout/orders"),
    "authorize": ("POST", "/v2/checkout/orders"),
    "payment_status": ("GET", "/v2/"),
}


class PayPalReader:
    """Reads objects back from the stand-in through PayPal's API, with a token of its own."""

    def __init__(self, standin: StandIn) -> None:
        self.standin = standin
        self._token: str | None = None

    def get(self, path: str) -> Any:
        if self._token is None:
            basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            token = urllib.request.Request(
                f"{self.standin.base_url}/v1/oauth2/token",
                data=b"grant_type=client_credentials",
                headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
            )
            with urllib.request.urlopen(token, timeout=10) as response:
                self._token = str(json.loads(response.read())["access_token"])
        request = urllib.request.Request(
            self.standin.base_url + path, headers={"Authorization": f"Bearer {self._token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def recorded_amount(self, operation: str, object_id: str) -> RecordedAmount:
        if operation == "checkout":
            amount = self.get(f"/v2/checkout/orders/{object_id}")["purchase_units"][0]["amount"]
        else:
            amount = self.get(f"/v2/payments/authorizations/{object_id}")["amount"]
        code = str(amount["currency_code"])
        exponent = 0 if code in WHOLE_UNITS else 2  # PayPal's table: HUF, JPY and TWD in whole units
        return RecordedAmount(int(Decimal(amount["value"]).scaleb(exponent)), code)


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


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

        reader = PayPalReader(standin)

        def signed_webhook(
            *, secret: str | None = None, timestamp: int | None = None, payment_id: str | None = None
        ) -> SignedWebhook:
            if payment_id is None:
                resource: dict[str, Any] = {"id": "42311647XV020574X", "status": "COMPLETED", "amount": {"currency_code": "USD", "value": "10.00"}}  # fmt: skip
            else:  # PayPal's PAYMENT.CAPTURE.COMPLETED carries the capture as PayPal (the stand-in) holds it
                resource = reader.get(f"/v2/payments/captures/{payment_id}")
                assert resource["status"] == "COMPLETED", f"capture {payment_id} is {resource['status']}"
            event = {
                "id": f"WH-{uuid.uuid4().hex[:20].upper()}",
                "event_version": "1.0",
                "event_type": "PAYMENT.CAPTURE.COMPLETED",
                "resource_type": "capture",
                "create_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "resource": resource,
            }
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

        def provider_objects() -> int:
            counts = standin.counts()
            return sum(counts[kind] for kind in ("orders", "authorizations", "captures", "refunds"))

        @contextmanager
        def fault(kind: str, operation: str) -> Iterator[GatewayManager]:
            if kind == "refused":
                yield make_manager(base_url=f"http://127.0.0.1:{closed_port()}", max_retries=0)
                return
            method, path = FAULTED_REQUEST[operation]
            standin.fault(method, path, FAULTS[kind], seconds=1.5)
            yield make_manager(timeout=0.5, max_retries=0)

        def transport_fault(kind: str, operation: str) -> AbstractContextManager[GatewayManager]:
            return fault(kind, operation)

        @contextmanager
        def short_refund_answer() -> Iterator[GatewayManager]:
            # PayPal refunds (and keeps the whole answer for the request id); the plugin gets one without an id.
            body = json.dumps({"status": "COMPLETED"})
            standin.fault("POST", "/refund", "garbage_after", status=201, body=body, content_type="application/json")
            yield make_manager(max_retries=0)

        def short_answer(operation: str) -> AbstractContextManager[GatewayManager] | None:
            return short_refund_answer() if operation == "refund" else None

        def minted_tokens() -> list[str]:
            # The OAuth token the plugin fetched while the scenario ran (cached: no new request).
            return [gateway.client.access_token()]

        return ConformanceHarness(
            manager=manager,
            gateway=GATEWAY,
            requests_sent=lambda: len(standin.requests()),
            secrets=[CLIENT_ID, CLIENT_SECRET, minted_tokens],
            recorded_amount=reader.recorded_amount,
            provider_objects=provider_objects,
            second_worker=make_manager,
            pay=pay,
            payment_method="card:VAULT-CONFORMANCE-1",
            signed_webhook=signed_webhook,
            transport_fault=transport_fault,
            decline=lambda: "card:DECLINE-CONFORMANCE-1",
            wrong_credentials=lambda: make_manager(client_secret=Secret("not-the-conformance-secret-91c2")),
            short_answer=short_answer,
        )
