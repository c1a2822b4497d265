"""A conformance harness for the fake gateway (and for deliberately broken variants of it)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import gateway_core.fake
from gateway_core import Capabilities, DeploymentConfig, GatewayManager, Money, ProviderDefinition, Secret, hookimpl
from gateway_core.fake import FakeGateway, default_capabilities
from gateway_core.fake.gateway import SIGNATURE_HEADER, sign
from gateway_core.models import CheckoutRequest, CheckoutSession
from gateway_core.testing.conformance import ConformanceHarness, SignedWebhook

WEBHOOK_SECRET = "whsec_fake_conformance_0123456789"

#: A fake configured with a few currencies and minimums, so refusals have something to refuse.
NARROWED: Mapping[str, Any] = {
    "provider": "fake",
    "currencies": ["EUR", "USD", "JPY", "KWD", "HUF", "BGN"],
    "settings": {
        "test_mode": True,
        "webhook_secret": {"env": "FAKE_WEBHOOK_SECRET"},
        "minimums": {"EUR": "0.50", "USD": "0.50", "JPY": "50", "KWD": "0.100"},
    },
}


class VariantPlugin:
    """Declares the ``fake`` provider built by ``gateway_class`` (a FakeGateway subclass)."""

    def __init__(self, gateway_class: type[FakeGateway], capabilities: Capabilities | None = None) -> None:
        self.definition = ProviderDefinition(
            "fake", capabilities or default_capabilities(), gateway_class.from_settings, "fake variant"
        )

    @hookimpl
    def gateway_providers(self) -> Sequence[ProviderDefinition]:
        return [self.definition]


def fake_harness(
    gateway: Mapping[str, Any] = NARROWED, plugin: object = gateway_core.fake, **overrides: Any
) -> ConformanceHarness:
    environ = {"FAKE_WEBHOOK_SECRET": WEBHOOK_SECRET}
    config = DeploymentConfig.from_mapping({"gateways": {"fake": dict(gateway)}}, environ)
    manager = GatewayManager(config, plugins=[plugin], load_entry_points=False, environ=environ)
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
        header = sign(
            delivery.body, Secret(secret or WEBHOOK_SECRET), int(fake.clock()) if timestamp is None else timestamp
        )
        return SignedWebhook({**delivery.headers, SIGNATURE_HEADER: header}, delivery.body)

    fields: dict[str, Any] = {
        "manager": manager,
        "gateway": "fake",
        "requests_sent": lambda: len(fake.requests),
        "secrets": [WEBHOOK_SECRET],
        "pay": pay,
        "payment_method": "pm_fake_visa",
        "signed_webhook": signed_webhook,
        "currency": "EUR",
    }
    fields.update(overrides)
    return ConformanceHarness(**fields)
