"""Test helpers: pay a fake checkout and deliver the fake's signed webhooks to the service."""

from __future__ import annotations

from paid_events.service import PaidEvents, WebhookOutcome

from gateway_core import GatewayManager
from gateway_core.fake import FakeGateway


def fake_of(manager: GatewayManager, name: str) -> FakeGateway:
    obj = manager.gateway_object(name)
    assert isinstance(obj, FakeGateway)
    return obj


def deliver(service: PaidEvents, gateway: str) -> list[WebhookOutcome]:
    """Deliver every pending webhook of ``gateway`` once, in order."""
    fake = fake_of(service.gateways, gateway)
    return [service.handle_webhook(gateway, d.headers, d.body) for d in fake.drain_webhooks()]


def pay(service: PaidEvents, gateway: str, checkout_id: str | None) -> list[WebhookOutcome]:
    """The payer pays on the fake's hosted page; the fake's webhooks are then delivered."""
    assert checkout_id is not None
    fake_of(service.gateways, gateway).complete_checkout(checkout_id)
    return deliver(service, gateway)
