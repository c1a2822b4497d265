"""The gateway-core conformance suite, run against the Stripe plugin and the stand-in server."""

from __future__ import annotations

import pytest

from gateway_core.testing.conformance import ConformanceHarness, GatewayConformance, SignedWebhook
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


class TestStripeConformance(GatewayConformance):
    @pytest.fixture
    def conformance_harness(self, client: CheckedClient, standin: StandIn) -> ConformanceHarness:
        body = event_body("checkout.session.completed", SESSION)

        def signed_webhook(*, secret: str | None = None, timestamp: int | None = None) -> SignedWebhook:
            return sign(body, secret or WEBHOOK_SECRET, timestamp)

        return ConformanceHarness(
            manager=make_manager(client, standin.url),
            gateway="stripe_test",
            requests_sent=standin.requests_sent,
            secrets=[API_KEY, WEBHOOK_SECRET],
            pay=lambda session: standin.pay(session.id),
            payment_method="pm_card_visa",
            signed_webhook=signed_webhook,
        )
