"""The example plugin passes the conformance suite, with the harness docs/plugin-authors.md shows."""

from __future__ import annotations

import json

import pytest
from example_gateway.stand_in import ExamplePaymentsAPI

from gateway_core import CheckoutRequest, CheckoutSession, GatewayManager, Money
from gateway_core.testing.conformance import ConformanceHarness, GatewayConformance, SignedWebhook, new_key
from tests.example_gateway.conftest import API_KEY, WEBHOOK_SECRET


class TestExampleConformance(GatewayConformance):
    @pytest.fixture
    def conformance_harness(self, example_api: ExamplePaymentsAPI, manager: GatewayManager) -> ConformanceHarness:
        def pay(session: CheckoutSession) -> str:
            return example_api.pay_checkout(session.id)

        def signed_webhook(*, secret: str | None = None, timestamp: int | None = None) -> SignedWebhook:
            checkout = CheckoutRequest.single(
                "Hook", Money.of("5.00", "EUR"), "https://h.example/a", "https://h.example/b"
            )
            example_api.pay_checkout(manager.create_checkout("example", checkout, idempotency_key=new_key()).id)
            _headers, body = example_api.drain_webhooks()[-1]
            assert json.loads(body)["type"] == "payment.succeeded"
            return SignedWebhook(example_api.webhook_headers(body, secret=secret, timestamp=timestamp), body)

        return ConformanceHarness(
            manager=manager,
            gateway="example",
            requests_sent=lambda: len(example_api.requests),
            secrets=[API_KEY, WEBHOOK_SECRET],
            pay=pay,
            payment_method="pm_card_ok",
            signed_webhook=signed_webhook,
        )
