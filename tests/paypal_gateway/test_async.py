"""The asyncio API runs the synchronous SDK off the event loop; concurrent calls share one token and act once per key."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import structlog

from gateway_core.aio import AsyncGatewayManager
from gateway_core.errors import GatewayError, OutcomeUnknown
from gateway_core.manager import GatewayManager
from gateway_core.models import Refund, RefundRequest
from gateway_core.money import Money
from tests.paypal_gateway.conftest import GATEWAY, StandIn
from tests.paypal_gateway.test_checkout import paid_capture


def _same_key_outcomes(results: list[object]) -> tuple[set[str], list[GatewayError]]:
    """The refund ids and the errors among concurrent same-key calls; anything else fails the test."""
    ids = {r.id for r in results if isinstance(r, Refund)}
    errors = [r for r in results if isinstance(r, GatewayError)]
    assert len(ids) + len(errors) >= 1
    assert [r for r in results if not isinstance(r, Refund | GatewayError)] == []
    return ids, errors


def test_concurrent_refunds_with_one_key_refund_once(manager: GatewayManager, standin: StandIn) -> None:
    """Four calls with one key at once refund once; three with their own keys refund three times.

    "Refunds once" is what matters, and what is asserted. PayPal documents that of two
    simultaneous requests with one ``PayPal-Request-Id`` it "processes the first request and might
    fail the second", so a same-key call may also end in a *retryable* error (409
    ``PREVIOUS_REQUEST_IN_PROGRESS``: :class:`OutcomeUnknown`) instead of the same refund; every
    call that does return a refund returns the one refund. (The stand-in here serializes the
    calls, so they all get that refund; the next test makes it answer 409 as PayPal may.)
    """
    capture_id = paid_capture(manager, standin, Money.of("40.00", "EUR"))

    async def main() -> list[object]:
        async with AsyncGatewayManager(manager, close_manager=False) as aio:  # read back below, synchronously
            request = RefundRequest(capture_id, Money.of("5.00", "EUR"))
            same = [aio.refund(GATEWAY, request, idempotency_key="async-refund") for _ in range(4)]
            other = [
                aio.refund(GATEWAY, RefundRequest(capture_id, Money.of("1.00", "EUR")), idempotency_key=f"async-{i}")
                for i in range(3)
            ]
            return list(await asyncio.gather(*same, *other, return_exceptions=True))

    results = asyncio.run(main())
    ids, errors = _same_key_outcomes(results[:4])
    assert len(ids) <= 1
    assert all(e.retryable for e in errors), errors
    others = results[4:]
    assert all(isinstance(r, Refund) for r in others), others
    assert len({r.id for r in others if isinstance(r, Refund)}) == 3
    assert standin.counts()["refunds"] == 4  # one for the shared key, one per other key
    assert manager.payment_status(GATEWAY, capture_id).amount_refunded == Money.of("8.00", "EUR")
    assert [r["path"] for r in standin.requests()].count("/v1/oauth2/token") == 1


def test_a_same_key_refund_paypal_fails_as_in_progress_is_retryable_and_refunds_once(
    make_manager: Callable[..., GatewayManager], standin: StandIn
) -> None:
    """As PayPal may: the first same-key request is still being answered, the others get 409.

    They are :class:`OutcomeUnknown` and retryable; retried with the same key once the first is
    answered, each gets that first refund. PayPal refunded once.
    """
    manager = make_manager(max_retries=1)
    capture_id = paid_capture(manager, standin, Money.of("40.00", "EUR"))
    standin.config(conflict_in_flight=True)
    standin.fault("POST", "/refund", "delay_after", seconds=1.0)  # the first one is answered late
    request = RefundRequest(capture_id, Money.of("5.00", "EUR"))

    async def main() -> list[object]:
        async with AsyncGatewayManager(manager, close_manager=False) as aio:  # retried below, synchronously
            calls = [aio.refund(GATEWAY, request, idempotency_key="in-progress") for _ in range(4)]
            return list(await asyncio.gather(*calls, return_exceptions=True))

    ids, errors = _same_key_outcomes(asyncio.run(main()))
    assert len(ids) == 1
    assert errors, "no call collided with the one in flight"
    for error in errors:
        assert isinstance(error, OutcomeUnknown)
        assert error.retryable
        assert (error.http_status, error.provider_code) == (409, "PREVIOUS_REQUEST_IN_PROGRESS")
    retried = {manager.refund(GATEWAY, request, idempotency_key="in-progress").id for _ in errors}
    assert retried == ids
    assert standin.counts()["refunds"] == 1
    assert manager.payment_status(GATEWAY, capture_id).amount_refunded == Money.of("5.00", "EUR")


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


def test_a_cancelled_refund_runs_to_its_end_on_its_thread_is_logged_and_a_retry_refunds_once(
    manager: GatewayManager, standin: StandIn
) -> None:
    """What the host guide says of a thread-run provider: the awaiting task is cancelled, not the refund.

    The cancellation is logged at once (``continues=True``); the refund goes on in its worker
    thread, its own line comes when it ends, ``aclose()`` waits for it, and a retry with the same
    ``operation_id`` gets that refund.
    """
    capture_id = paid_capture(manager, standin, Money.of("40.00", "EUR"))
    standin.fault("POST", "/refund", "delay_after", seconds=1.0)
    request = RefundRequest(capture_id, Money.of("5.00", "EUR"))

    async def main() -> tuple[list[str], str]:
        async with AsyncGatewayManager(manager, close_manager=False) as aio:  # retried below, synchronously
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(aio.refund(GATEWAY, request, operation_id="refund-cancelled"), 0.3)
            at_cancel = [line["event"] for line in logs]
        retried = manager.refund(GATEWAY, request, operation_id="refund-cancelled")  # after aclose() returned
        return at_cancel, retried.id

    with structlog.testing.capture_logs() as logs:
        at_cancel, retried_id = asyncio.run(main())
    assert at_cancel == ["gateway.refund.cancelled"]  # logged when the task gave up; the refund still ran
    cancelled, *refunds = [line for line in logs if line["event"].startswith("gateway.refund.")]
    assert (cancelled["continues"], cancelled["idempotency_key"]) == (True, refunds[0]["idempotency_key"])
    assert [line["event"] for line in refunds] == ["gateway.refund.created", "gateway.refund.created"]
    assert refunds[0]["result_id"] == refunds[1]["result_id"] == retried_id
    assert refunds[0]["duration_ms"] >= 1000  # the first line is the cancelled call's, logged when it ended
    assert standin.counts()["refunds"] == 1
    assert manager.payment_status(GATEWAY, capture_id).amount_refunded == Money.of("5.00", "EUR")
