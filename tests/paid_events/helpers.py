"""Test helpers: pay a fake checkout, deliver the fake's signed webhooks, snapshot the store, build managers."""

from __future__ import annotations

import re
from collections.abc import Generator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa
from paid_events import config as pe_config
from paid_events import outbox
from paid_events.config import PlatformConfig
from paid_events.service import PaidEvents, WebhookOutcome
from paid_events.store import Base, Store

import gateway_core.fake
from gateway_core import (
    CheckoutRequest,
    CheckoutSession,
    DeploymentConfig,
    GatewayManager,
    Money,
    OperationContext,
    hookimpl,
)
from gateway_core.fake import FakeGateway

if TYPE_CHECKING:
    from .conftest import Clock

EUR = "EUR"


def eur(amount: str) -> Money:
    return Money.of(amount, EUR)


@attrs.define
class Mailbox:
    """A real outbox sender that keeps what it sends (to read tokens the way a participant would)."""

    messages: list[outbox.Message] = attrs.field(factory=list)

    def send(self, message: outbox.Message) -> None:
        self.messages.append(message)

    def token(self, recipient: str) -> str:
        for message in reversed(self.messages):
            if message.recipient == recipient and message.kind == "confirmation":
                found = re.search(r"access token: (\S+)", message.body)
                assert found is not None
                return found.group(1)
        raise AssertionError(f"no confirmation for {recipient}")


#: The one-off test event starts this long after the test clock's "now".
STARTS_IN = timedelta(days=15, hours=8)


def make_event(service: PaidEvents, **overrides: Any) -> str:
    """An event on the service's clock: a ``timedelta`` for a date means that long from now."""
    kwargs: dict[str, Any] = {
        "organizer": "org-1",
        "title": "Pricing webinar",
        "kind": "one_off",
        "price": eur("20"),
        "capacity": 50,
        "gateways": ["stripe-like", "paypal-like"],
        "starts_at": STARTS_IN,
    }
    if overrides.get("kind", "one_off") != "one_off":
        kwargs["starts_at"] = None  # a series has sessions, an on-demand event no date
    kwargs.update(overrides)
    now = service.clock()
    for name in ("starts_at", "early_until", "early_from"):
        if isinstance(kwargs.get(name), timedelta):
            kwargs[name] = now + kwargs[name]
    kwargs["sessions"] = [now + s if isinstance(s, timedelta) else s for s in kwargs.get("sessions", ())]
    return service.create_event(**kwargs).id


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


def snapshot(store: Store) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every paid_events table, in a stable order: "changes nothing" compares contents, not counts."""
    out: dict[str, list[tuple[object, ...]]] = {}
    with store.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = conn.execute(sa.select(table)).all()
            out[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return out


def manager_with(
    gateways: Mapping[str, Mapping[str, Any]], *providers: object, clock: Clock | None = None
) -> GatewayManager:
    """A manager over ``gateways`` (``gateway.toml`` tables) with extra provider plugins registered in code."""
    from .conftest import on_clock

    deployment = DeploymentConfig.from_mapping({"gateways": {k: dict(v) for k, v in gateways.items()}})
    manager = GatewayManager(deployment, plugins=[gateway_core.fake, *providers], load_entry_points=False)
    return manager if clock is None else on_clock(manager, clock)


class Audit:
    """A wrapper plugin that keeps every checkout request that reached a provider, by gateway."""

    def __init__(self) -> None:
        self.requests: list[CheckoutRequest] = []
        self.by_gateway: dict[str, list[CheckoutRequest]] = {}

    @hookimpl(wrapper=True)
    def gateway_create_checkout(
        self, request: CheckoutRequest, context: OperationContext
    ) -> Generator[None, CheckoutSession, CheckoutSession]:
        self.requests.append(request)
        self.by_gateway.setdefault(context.gateway, []).append(request)
        return (yield)


def audited(store: Store, clock: Clock, platform: PlatformConfig | None = None) -> tuple[PaidEvents, Audit]:
    """A service on the example configuration's fakes, on ``clock``, with an :class:`Audit` on checkouts."""
    from .conftest import on_clock

    audit = Audit()
    base, deployment = pe_config.load()
    manager = GatewayManager(deployment, plugins=[gateway_core.fake, audit], load_entry_points=False)
    return PaidEvents(store, on_clock(manager, clock), platform or base, clock=clock), audit
