"""AsyncGatewayManager with thread-run (synchronous) providers: overlap and a responsive loop.

No timing is asserted. Overlap is proven by a barrier that opens only when N hooks are in flight
at once; responsiveness by a hook that waits for an event only a task on the loop can set. The
waits carry a generous timeout purely so that a regression fails instead of hanging the run.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Awaitable, Callable

import pytest
import structlog

from gateway_core import (
    AsyncGatewayManager,
    AuthorizeRequest,
    CapabilityNotSupported,
    CaptureRequest,
    CheckoutRequest,
    CheckoutSession,
    CheckoutStatus,
    GatewayError,
    GatewayManager,
    GatewaySettings,
    InvalidRequest,
    Money,
    OperationContext,
    OutcomeUnknown,
    PaymentState,
    RefundRequest,
    UnsupportedCurrency,
    VoidRequest,
    hookimpl,
)
from gateway_core.fake import Outcome

from .conftest import build_manager, fake, provider_plugin

SAFETY_TIMEOUT = 30.0  # never reached when the code is right; turns a hang into a failure
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


def checkout(amount: str = "10.00") -> CheckoutRequest:
    return CheckoutRequest.single("t", Money.of(amount, "EUR"), "https://s.example", "https://c.example")


class Blocking:
    """A synchronous gateway object whose checkout blocks the calling thread until released."""

    barrier: threading.Barrier | None = None
    started = threading.Event()
    release = threading.Event()

    def __init__(self, settings: GatewaySettings) -> None:
        self.name = settings.name
        self.threads: set[int] = set()
        self.request_ids: list[str] = []
        self.lock = threading.Lock()

    @hookimpl
    def gateway_create_checkout(self, request: CheckoutRequest, context: OperationContext) -> CheckoutSession:
        with self.lock:
            self.threads.add(threading.get_ident())
            self.request_ids.append(REQUEST_ID.get())
        if self.barrier is not None:
            self.barrier.wait()  # opens only when every party is inside this hook at once
        else:
            self.started.set()
            if not self.release.wait(SAFETY_TIMEOUT):
                raise RuntimeError("the event loop never released the hook")
        key = context.idempotency_key or ""
        return CheckoutSession(self.name, f"cs_{key}", "https://pay.example", request.amount, CheckoutStatus.OPEN, None)


def blocking_manager() -> tuple[GatewayManager, Blocking]:
    manager = build_manager({"slow": {"provider": "slow"}}, plugins=[provider_plugin("slow", Blocking)])
    obj = manager.gateway_object("slow")
    assert isinstance(obj, Blocking)
    obj.started = threading.Event()
    obj.release = threading.Event()
    return manager, obj


@pytest.mark.parametrize("n", [2, 8])
def test_concurrent_operations_overlap(n: int) -> None:
    manager, obj = blocking_manager()
    obj.barrier = threading.Barrier(n, timeout=SAFETY_TIMEOUT)

    async def main() -> list[CheckoutSession]:
        async with AsyncGatewayManager(manager, max_workers=n) as amanager:
            return await asyncio.gather(
                *(amanager.create_checkout("slow", checkout(), idempotency_key=f"k{i}") for i in range(n))
            )

    sessions = asyncio.run(main())
    assert sorted(s.id for s in sessions) == sorted(f"cs_k{i}" for i in range(n))
    assert len(obj.threads) == n
    assert threading.get_ident() not in obj.threads


def test_the_event_loop_stays_responsive_while_a_hook_blocks() -> None:
    manager, obj = blocking_manager()
    progress: list[str] = []

    async def loop_side() -> None:
        while not obj.started.is_set():  # the hook is running on a worker thread ...
            await asyncio.sleep(0)
        progress.append("loop ran while the hook was blocked")
        obj.release.set()  # ... and only the loop can let it finish

    async def main() -> CheckoutSession:
        async with AsyncGatewayManager(manager) as amanager:
            session, _ = await asyncio.gather(
                amanager.create_checkout("slow", checkout(), idempotency_key="k"), loop_side()
            )
            return session

    session = asyncio.run(main())
    assert session.id == "cs_k"
    assert progress == ["loop ran while the hook was blocked"]


def test_a_thread_run_operation_whose_caller_is_cancelled_is_logged_with_its_key() -> None:
    """As for an asyncio-native one: the caller gave up, the operation may still reach the provider.

    The worker thread cannot be cancelled, so the line says the operation continues; its own
    line follows when it ends.
    """
    manager, obj = blocking_manager()

    async def main() -> None:
        async with AsyncGatewayManager(manager) as amanager:
            task = asyncio.ensure_future(amanager.create_checkout("slow", checkout("12.50"), idempotency_key="gone"))
            while not obj.started.is_set():
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            obj.release.set()  # aclose() waits for the worker, which then finishes

    with structlog.testing.capture_logs() as logs:
        asyncio.run(main())
    events = [line["event"] for line in logs]
    assert events == ["gateway.checkout.cancelled", "gateway.checkout.created"]
    line = logs[0]
    assert line["log_level"] == "warning"
    assert (line["gateway"], line["idempotency_key"], line["amount"], line["currency"]) == (
        "slow",
        "gone",
        "12.50",
        "EUR",
    )
    assert (line["error"], line["continues"]) == ("CancelledError", True)
    assert line["duration_ms"] >= 0


def test_contextvars_follow_the_call_onto_the_worker_thread() -> None:
    manager, obj = blocking_manager()
    obj.release.set()

    async def main() -> None:
        async with AsyncGatewayManager(manager) as amanager:
            REQUEST_ID.set("req-123")
            await amanager.create_checkout("slow", checkout(), idempotency_key="k")

    asyncio.run(main())
    assert obj.request_ids == ["req-123"]


def test_checks_run_before_any_thread_is_used() -> None:
    manager, obj = blocking_manager()  # never released: a call that reached the hook would fail

    async def main() -> None:
        async with AsyncGatewayManager(manager) as amanager:
            with pytest.raises(InvalidRequest, match="pass idempotency_key= or operation_id="):
                await amanager.create_checkout("slow", checkout())
            with pytest.raises(UnsupportedCurrency):
                await amanager.create_checkout(
                    "slow",
                    CheckoutRequest.single("t", Money.of("1", "USD"), "https://s.example", "https://c.example"),
                    idempotency_key="k",
                )
            with pytest.raises(CapabilityNotSupported):
                await amanager.refund("slow", RefundRequest("p"), idempotency_key="k")

    asyncio.run(main())
    assert obj.threads == set()


def test_the_async_api_runs_the_fake_end_to_end() -> None:
    manager = build_manager({"f": {"provider": "fake", "settings": {"test_mode": True}}})
    f = fake(manager, "f")

    async def main() -> None:
        async with AsyncGatewayManager(manager) as amanager:
            session = await amanager.create_checkout("f", checkout(), operation_id="cart-1")
            f.complete_checkout(session.id)
            [_completed, succeeded] = f.drain_webhooks()
            event = await amanager.parse_webhook("f", succeeded.headers, succeeded.body)
            assert event.checkout_id == session.id
            status = await amanager.payment_status("f", session.id)
            assert status.state is PaymentState.SUCCEEDED

            f.script(Outcome.TIMEOUT_AFTER_SUCCESS)
            request = AuthorizeRequest(Money.of("5", "EUR"), "pm_card_visa")
            with pytest.raises(OutcomeUnknown):
                await amanager.authorize("f", request, idempotency_key="a")
            again = await amanager.authorize("f", request, idempotency_key="a")
            assert again.state is PaymentState.AUTHORIZED

    asyncio.run(main())
    assert f.payments_made() == 2  # the checkout's payment and one authorization


def test_a_plugin_crash_reaches_async_callers_as_gateway_error() -> None:
    manager, obj = blocking_manager()
    obj.barrier = threading.Barrier(2, timeout=0.01)  # can never fill with one caller: the hook raises

    async def main() -> None:
        async with AsyncGatewayManager(manager) as amanager:
            with pytest.raises(GatewayError) as info:
                await amanager.create_checkout("slow", checkout(), idempotency_key="k")
            assert type(info.value) is GatewayError
            assert info.value.gateway == "slow"
            assert isinstance(info.value.__cause__, threading.BrokenBarrierError)

    asyncio.run(main())


def every_operation(amanager: AsyncGatewayManager, gateway: str) -> dict[str, Callable[[], Awaitable[object]]]:
    """Each of the async API's operations, with arguments the core's checks accept, by log name."""
    return {
        "checkout": lambda: amanager.create_checkout(gateway, checkout(), operation_id="closed-co"),
        "authorize": lambda: amanager.authorize(
            gateway, AuthorizeRequest(Money.of("5", "EUR"), "pm_card_visa"), operation_id="closed-au"
        ),
        "capture": lambda: amanager.capture(gateway, CaptureRequest("pi_closed"), operation_id="closed-ca"),
        "void": lambda: amanager.void(gateway, VoidRequest("pi_closed"), operation_id="closed-vo"),
        "refund": lambda: amanager.refund(gateway, RefundRequest("pi_closed"), operation_id="closed-re"),
        "status": lambda: amanager.payment_status(gateway, "pi_closed"),
        "webhook": lambda: amanager.parse_webhook(gateway, {"X-Fake-Signature": "t=1,v1=00"}, b"{}"),
        "check": lambda: amanager.check(gateway),
    }


def test_an_operation_after_aclose_is_a_logged_invalid_request_and_reaches_no_plugin() -> None:
    manager = build_manager({"f": {"provider": "fake", "settings": {"test_mode": True}}})
    f = fake(manager, "f")

    async def main() -> list[tuple[str, BaseException | None]]:
        amanager = AsyncGatewayManager(manager)
        await amanager.aclose()
        outcomes: list[tuple[str, BaseException | None]] = []
        for operation, call in every_operation(amanager, "f").items():
            try:
                await call()
            except BaseException as exc:  # what escapes is what the test checks
                outcomes.append((operation, exc))
            else:
                outcomes.append((operation, None))
        await amanager.aclose()  # closing twice is harmless
        return outcomes

    with structlog.testing.capture_logs() as logs:
        outcomes = asyncio.run(main())
    for operation, error in outcomes:
        assert isinstance(error, InvalidRequest), (operation, error)
        assert "closed" in error.message
        assert error.gateway == "f"
    refused = [(line["event"], line["error"]) for line in logs if line["log_level"] == "warning"]
    assert refused == [(f"gateway.{op}.refused", "InvalidRequest") for op, _ in outcomes]
    assert f.payments_made() == 0
