"""``gateway demo``: one whole payment flow on the fake gateway, each step printed.

No keys, no network: two fake gateways stand in for two providers with different currencies and
minimums, so routing has something to decide. The flow: route, create a checkout, the payer pays
(by the test hook, or a person on the local checkout page with ``--interactive``), receive and
verify the webhooks (a tampered copy is refused, a duplicate is recognised), check the status,
refund part of the payment, and verify the refund webhook.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC
from typing import Any, cast

from gateway_core.config import DeploymentConfig, Secret
from gateway_core.errors import GatewayError, WebhookVerificationFailed
from gateway_core.fake.gateway import FakeGateway
from gateway_core.fake.server import FakeCheckoutServer
from gateway_core.manager import GatewayManager
from gateway_core.models import CheckoutRequest, CheckoutStatus, RefundRequest
from gateway_core.money import Money

DEMO_CONFIG = {
    "gateways": {
        # Stands in for a card provider that takes HUF with a 175 HUF minimum.
        "cards": {
            "provider": "fake",
            "priority": 10,
            "currencies": ["EUR", "USD", "HUF"],
            "settings": {
                "test_mode": True,
                "minimums": {"EUR": "0.50", "USD": "0.50", "HUF": "175"},
                # A deployment reads secrets from the environment ({ env = "VAR" } in gateway.toml).
                "webhook_secret": Secret("whsec_demo_cards", source="demo"),
            },
        },
        # Stands in for a wallet provider without HUF and a 1.00 EUR minimum.
        "wallet": {
            "provider": "fake",
            "priority": 20,
            "currencies": ["EUR", "USD"],
            "settings": {
                "test_mode": True,
                "minimums": {"EUR": "1.00", "USD": "1.00"},
                "webhook_secret": Secret("whsec_demo_wallet", source="demo"),
            },
        },
    }
}


class Report:
    """Where the demo tells its story: numbered steps, each with optional detail lines.

    ``echo`` receives each line as it happens (text mode); :attr:`steps` keeps them for ``--json``.
    """

    def __init__(self, echo: Callable[[str], object] | None = None) -> None:
        self._echo = echo
        self.steps: list[dict[str, Any]] = []

    def step(self, text: str) -> None:
        self.steps.append({"step": len(self.steps) + 1, "text": text, "details": []})
        if self._echo is not None:
            self._echo(f"[{len(self.steps):>2}] {text}")

    def detail(self, text: str) -> None:
        self.steps[-1]["details"].append(text)
        if self._echo is not None:
            self._echo(f"      {text}")


class DemoFailed(GatewayError):
    """The demo saw the core or the fake misbehave (a tampered webhook believed, for instance)."""


def run_demo(
    report: Report | Callable[[str], object],
    *,
    interactive: bool = False,
    timeout: int = 300,
    plugins: Iterable[object] = (),
    tell: Callable[[str], object] | None = None,
) -> None:
    """Run the flow, telling ``report`` each step (a plain ``echo`` callable prints them).

    ``plugins`` are extra plugin objects for the demo's manager (wrappers, in tests). ``tell``
    shows the interactive instructions to a person (default: the report's detail lines).
    """
    if not isinstance(report, Report):
        report = Report(report)
    manager = GatewayManager(DeploymentConfig.from_mapping(DEMO_CONFIG), plugins=plugins)

    step = report.step
    step("Gateways configured: " + ", ".join(manager.gateway_names()))

    for amount in (Money.of("0.75", "EUR"), Money.of("1500", "HUF"), Money.of("0.30", "EUR")):
        decision = manager.route(amount)
        step(f"Route {amount}: eligible {list(decision.eligible) or 'none'}")
        for exclusion in decision.excluded:
            report.detail(f"excluded {exclusion}")
    step(f"Lowest acceptable EUR price across gateways: {manager.minimum_price('EUR')}")
    step(f"0.30 EUR rounded up to the 'wallet' minimum: {manager.round_up(Money.of('0.30', 'EUR'), 'wallet')}")

    price = Money.of("1500", "HUF")
    gateway = manager.route(price).best
    fake = cast(FakeGateway, manager.gateway_object(gateway))
    request = CheckoutRequest.single(
        "Webinar ticket",
        price,
        "https://example.invalid/paid",
        "https://example.invalid/cancelled",
        reference="order-1",
    )
    session = manager.create_checkout(gateway, request, operation_id="demo-order-1")
    expires = (
        f"expires {session.expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        if session.expires_at is not None
        else "no expiry set by the provider"
    )
    step(f"Checkout {session.id} on {gateway} for {session.amount}, {expires}")
    again = manager.create_checkout(gateway, request, operation_id="demo-order-1")
    step(
        f"Retried with the same operation id: same checkout ({again.id == session.id}), payments made: {fake.payments_made()}"
    )

    if interactive:
        with FakeCheckoutServer(fake) as server:
            (tell or report.detail)(
                f"Open {server.url}/c/{session.id} in a browser and pay or abandon "
                "(a declined card leaves the checkout open for another try)."
            )
            deadline = time.monotonic() + timeout
            # A declined card leaves the checkout open for another attempt: wait for pay or abandon.
            while fake.checkout(session.id).status is CheckoutStatus.OPEN and time.monotonic() < deadline:
                time.sleep(0.2)
    else:
        fake.complete_checkout(session.id)
        step("The payer paid on the hosted checkout page")

    _receive_webhooks(manager, gateway, fake, step)

    status = manager.payment_status(gateway, session.id)
    step(f"Status of {status.payment_id}: {status.state}, captured {status.amount_captured}")
    if not status.is_paid:
        step("Not paid, so nothing to refund. Done.")
        return

    refund = manager.refund(
        gateway,
        RefundRequest(status.payment_id, Money.of("500", "HUF"), reason="requested_by_customer"),
        operation_id="demo-refund-1",
    )
    step(f"Refunded {refund.amount} ({refund.status}), refund {refund.id}")
    for delivery in fake.drain_webhooks():
        event = manager.parse_webhook(gateway, delivery.headers, delivery.body)
        step(f"Webhook verified: {event.type} for {event.payment_id} ({event.amount})")
    status = manager.payment_status(gateway, session.id)
    step(f"Final state: {status.state}; captured {status.amount_captured}, refunded {status.amount_refunded}")
    step("Demo complete: no keys, no network, nothing live.")


def _receive_webhooks(manager: GatewayManager, gateway: str, fake: FakeGateway, step: Callable[[str], None]) -> None:
    """Deliver every pending webhook twice, deduplicate on event id, and show a tampered copy refused.

    A tampered copy that is believed means verification is broken: the demo fails (DemoFailed).
    """
    deliveries = fake.drain_webhooks(duplicate=True)
    seen: set[str] = set()
    for delivery in deliveries:
        event = manager.parse_webhook(gateway, delivery.headers, delivery.body)
        if event.id in seen:  # a host keys this on (gateway, event.id) in its database
            step(f"Webhook {event.type} delivered again: recognised as duplicate {event.id}, ignored")
            continue
        seen.add(event.id)
        step(f"Webhook verified: {event.type} for {event.payment_id} ({event.amount})")
    if not deliveries:
        return
    original = deliveries[0].body
    tampered = original.replace(b'"amount": "', b'"amount": "9', 1)
    if tampered == original:
        raise DemoFailed("demo: the webhook has no amount to tamper with", gateway=gateway)
    try:
        believed = manager.parse_webhook(gateway, deliveries[0].headers, tampered)
    except WebhookVerificationFailed as exc:
        step(f"Tampered webhook refused: {exc.message}")
        return
    raise DemoFailed(
        f"demo: a tampered webhook was accepted as {believed.type} ({believed.amount}); webhook verification is broken",
        gateway=gateway,
    )
