"""The gateway-core conformance suite, run against the Stripe plugin and the stand-in server.

What the provider recorded is read from the stand-in through Stripe's own API (``GET`` the
Checkout Session or PaymentIntent with the test key, bypassing the plugin); faults are injected at
the SDK's HTTP-client seam (:class:`~tests.stripe_gateway.transport.CheckedClient`) of a manager
built for the block, with the SDK's own retries off so one fault fails the one attempt. The
webhook about a payment is Stripe's ``payment_intent.succeeded`` around the PaymentIntent read
back from the stand-in, signed with the SDK's own signature helper.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest

from gateway_core.manager import GatewayManager
from gateway_core.testing.conformance import ConformanceHarness, GatewayConformance, RecordedAmount, SignedWebhook
from tests.stripe_gateway.conftest import API_KEY, WEBHOOK_SECRET, StandIn, make_manager
from tests.stripe_gateway.transport import CheckedClient
from tests.stripe_gateway.webhooks_util import event_body, sign

SESSION = {
    "id": "cs_test_conformance",
    "object": "checkout.session",
    "amount_total": 2000,
    "currency": "eur",
    "payment_status": "paid",
    "status": "complete",
    "payment_intent": "pi_test_conformance",
    "client_reference_id": "order-1",
}

#: The conformance suite's fault names, as CheckedClient's.
FAULTS = {"timeout": "timeout", "refused": "refuse_connection", "5xx": "500", "429": "429"}


def stripe_get(standin: StandIn, path: str) -> Any:
    """``GET`` a Stripe object from the stand-in with the test key, as the Dashboard would show it."""
    request = urllib.request.Request(standin.url + path, headers={"Authorization": f"Bearer {API_KEY}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


class TestStripeConformance(GatewayConformance):
    @pytest.fixture
    def conformance_harness(self, client: CheckedClient, standin: StandIn) -> ConformanceHarness:
        session_completed = event_body("checkout.session.completed", SESSION)

        def signed_webhook(
            *, secret: str | None = None, timestamp: int | None = None, payment_id: str | None = None
        ) -> SignedWebhook:
            if payment_id is None:
                return sign(session_completed, secret or WEBHOOK_SECRET, timestamp)
            # Stripe's payment_intent.succeeded carries the PaymentIntent as the stand-in holds it.
            intent = stripe_get(standin, f"/v1/payment_intents/{payment_id}")
            assert intent["status"] == "succeeded", f"{payment_id} is {intent['status']}, not succeeded"
            return sign(event_body("payment_intent.succeeded", intent), secret or WEBHOOK_SECRET, timestamp)

        def recorded_amount(operation: str, object_id: str) -> RecordedAmount:
            if operation == "checkout":
                session = stripe_get(standin, f"/v1/checkout/sessions/{object_id}")
                return RecordedAmount(int(session["amount_total"]), str(session["currency"]))
            intent = stripe_get(standin, f"/v1/payment_intents/{object_id}")
            return RecordedAmount(int(intent["amount"]), str(intent["currency"]))

        def provider_objects() -> int:
            stats = standin.stats()
            return int(stats["sessions"]) + int(stats["intents"]) + int(stats["refunds"])

        @contextmanager
        def fault(kind: str) -> Iterator[GatewayManager]:
            faulty = CheckedClient(client.spec)
            faulty.faults.append(FAULTS[kind])
            yield make_manager(faulty, standin.url, max_network_retries=0)

        def transport_fault(kind: str, operation: str) -> AbstractContextManager[GatewayManager]:
            return fault(kind)

        @contextmanager
        def short_refund_answer() -> Iterator[GatewayManager]:
            cut = CheckedClient(client.spec)
            cut.rewrite["/v1/refunds"] = lambda body: {k: v for k, v in body.items() if k != "id"}
            yield make_manager(cut, standin.url)

        def short_answer(operation: str) -> AbstractContextManager[GatewayManager] | None:
            return short_refund_answer() if operation == "refund" else None

        return ConformanceHarness(
            manager=make_manager(client, standin.url),
            gateway="stripe_test",
            requests_sent=standin.requests_sent,
            secrets=[API_KEY, WEBHOOK_SECRET],
            recorded_amount=recorded_amount,
            provider_objects=provider_objects,
            second_worker=lambda: make_manager(CheckedClient(client.spec), standin.url),
            pay=lambda session: standin.pay(session.id),
            payment_method="pm_card_visa",
            signed_webhook=signed_webhook,
            transport_fault=transport_fault,
            decline=lambda: "pm_card_chargeDeclined",
            wrong_credentials=lambda: make_manager(client, standin.url, api_key="sk_test_revoked"),
            short_answer=short_answer,
        )
