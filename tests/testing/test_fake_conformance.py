"""The fake gateway passes the conformance suite: it is the suite's first user.

Two configurations: a narrowed one with minimums (so the "below the minimum" and "undeclared
currency" tests have something to refuse), and the default one offering every ISO 4217 currency
(so every currency round-trips through the wire format).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

import gateway_core.fake
from gateway_core import DeploymentConfig, GatewayManager, Money, Secret
from gateway_core.fake import FakeGateway
from gateway_core.fake.gateway import SIGNATURE_HEADER, sign
from gateway_core.models import CheckoutRequest, CheckoutSession
from gateway_core.testing.conformance import (
    ConformanceHarness,
    GatewayConformance,
    MetadataConformance,
    MoneyConformance,
    SignedWebhook,
)

WEBHOOK_SECRET = "whsec_fake_conformance_0123456789"


def fake_harness(gateway: Mapping[str, Any]) -> ConformanceHarness:
    environ = {"FAKE_WEBHOOK_SECRET": WEBHOOK_SECRET}
    config = DeploymentConfig.from_mapping({"gateways": {"fake": dict(gateway)}}, environ)
    manager = GatewayManager(config, plugins=[gateway_core.fake], load_entry_points=False, environ=environ)
    fake = manager.gateway_object("fake")
    assert isinstance(fake, FakeGateway)

    def pay(session: CheckoutSession) -> str:
        return fake.complete_checkout(session.id).payment_id

    def signed_webhook(*, secret: str | None = None, timestamp: int | None = None) -> SignedWebhook:
        # A real event from the fake: a checkout paid by the payer, delivered as the fake signs it.
        session = manager.create_checkout(
            "fake",
            CheckoutRequest.single(
                "Webhook item", Money.of("7.00", "EUR"), "https://h.example/ok", "https://h.example/no"
            ),
            operation_id=f"webhook-{len(fake.requests)}",
        )
        fake.complete_checkout(session.id)
        delivery = fake.drain_webhooks()[-1]
        assert json.loads(delivery.body)["type"] == "payment.succeeded"
        if secret is None and timestamp is None:
            return SignedWebhook(delivery.headers, delivery.body)
        key = Secret(secret or WEBHOOK_SECRET)
        header = sign(delivery.body, key, int(fake.clock()) if timestamp is None else timestamp)
        return SignedWebhook({**delivery.headers, SIGNATURE_HEADER: header}, delivery.body)

    return ConformanceHarness(
        manager=manager,
        gateway="fake",
        requests_sent=lambda: len(fake.requests),
        secrets=[WEBHOOK_SECRET],
        pay=pay,
        payment_method="pm_fake_visa",
        signed_webhook=signed_webhook,
        currency="EUR",
    )


NARROWED = {
    "provider": "fake",
    "currencies": ["EUR", "USD", "JPY", "KWD", "HUF", "BGN"],
    "settings": {
        "test_mode": True,
        "webhook_secret": {"env": "FAKE_WEBHOOK_SECRET"},
        "minimums": {"EUR": "0.50", "USD": "0.50", "JPY": "50", "KWD": "0.100"},
    },
}


class TestFakeConformance(GatewayConformance):
    @pytest.fixture
    def conformance_harness(self) -> ConformanceHarness:
        return fake_harness(NARROWED)


class TestFakeEveryCurrencyConformance(MetadataConformance, MoneyConformance):
    """The default fake offers every currency; each must round-trip exactly."""

    @pytest.fixture
    def conformance_harness(self) -> ConformanceHarness:
        return fake_harness({"provider": "fake", "settings": {"test_mode": True}})
