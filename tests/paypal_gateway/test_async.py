"""The asyncio API runs the synchronous SDK off the event loop; concurrent calls share one token and act once per key."""

from __future__ import annotations

import asyncio

from gateway_core.aio import AsyncGatewayManager
from gateway_core.manager import GatewayManager
from gateway_core.models import RefundRequest
from gateway_core.money import Money
from tests.paypal_gateway.conftest import GATEWAY, StandIn
from tests.paypal_gateway.test_checkout import paid_capture


def test_concurrent_refunds_with_one_key_refund_once(manager: GatewayManager, standin: StandIn) -> None:
    capture_id = paid_capture(manager, standin, Money.of("40.00", "EUR"))

    async def main() -> list[str]:
        async with AsyncGatewayManager(manager) as aio:
            request = RefundRequest(capture_id, Money.of("5.00", "EUR"))
            same = [aio.refund(GATEWAY, request, idempotency_key="async-refund") for _ in range(4)]
            other = [
                aio.refund(GATEWAY, RefundRequest(capture_id, Money.of("1.00", "EUR")), idempotency_key=f"async-{i}")
                for i in range(3)
            ]
            refunds = await asyncio.gather(*same, *other)
        return [r.id for r in refunds]

    ids = asyncio.run(main())
    assert len(set(ids[:4])) == 1
    assert len(set(ids[4:])) == 3
    assert standin.counts()["refunds"] == 4
    assert manager.payment_status(GATEWAY, capture_id).amount_refunded == Money.of("8.00", "EUR")
    assert [r["path"] for r in standin.requests()].count("/v1/oauth2/token") == 1


def test_the_event_loop_keeps_running_during_a_slow_paypal_call(manager: GatewayManager, standin: StandIn) -> None:
    """The SDK is synchronous; under the asyncio API it runs on a worker thread, never on the loop."""
    from tests.paypal_gateway.test_checkout import checkout

    order_id = checkout(manager, Money.of("10.00", "EUR"))
    standin.fault("GET", f"/v2/checkout/orders/{order_id}", "delay_after", seconds=1.0)

    async def main() -> tuple[int, object]:
        async with AsyncGatewayManager(manager) as aio:
            call = asyncio.ensure_future(aio.payment_status(GATEWAY, order_id))
            ticks = 0
            while not call.done():  # a coroutine ticking while PayPal takes its time
                ticks += 1
                await asyncio.sleep(0.01)
            return ticks, await call

    ticks, status = asyncio.run(main())
    # Had the call blocked the loop, the ticker would have run once, before it, and never again.
    assert ticks >= 3, f"the event loop ticked {ticks} time(s) during a 1 s call"
    assert getattr(status, "checkout_id", None) == order_id
