"""AsyncGatewayManager.aclose(): waits for running operations, then closes the wrapped manager off the loop."""

from __future__ import annotations

import asyncio
import threading

import pytest
import structlog

from gateway_core import (
    AsyncGatewayManager,
    CheckoutRequest,
    CheckoutSession,
    GatewayError,
    GatewaySettings,
    InvalidRequest,
    OperationContext,
    OutcomeUnknown,
    hookimpl,
)

from .conftest import build_manager, fake_table, provider_plugin
from .test_close import SAFETY_TIMEOUT, Holding, checkout, held, holding_manager


class SlowCheckout(Holding):
    """A Holding gateway whose checkout blocks its worker thread until the test releases it."""

    def __init__(self, settings: GatewaySettings) -> None:
        super().__init__(settings)
        self.inside = threading.Event()
        self.release = threading.Event()
        self.closed_while_running = False

    @hookimpl
    def gateway_create_checkout(self, request: CheckoutRequest, context: OperationContext) -> CheckoutSession:
        self.inside.set()
        if not self.release.wait(SAFETY_TIMEOUT):
            raise RuntimeError("the test never released the checkout")
        self.closed_while_running = self.released()
        return super().gateway_create_checkout(request, context)


def test_aclose_closes_the_gateways_after_the_running_operation_and_off_the_loop() -> None:
    manager = build_manager({"slow": {"provider": "slow"}}, plugins=[provider_plugin("slow", SlowCheckout)])
    slow = manager.gateway_object("slow")
    assert isinstance(slow, SlowCheckout)

    async def main() -> tuple[int, CheckoutSession]:
        amanager = AsyncGatewayManager(manager)
        running = asyncio.create_task(amanager.create_checkout("slow", checkout(), operation_id="before-close"))
        assert await asyncio.to_thread(slow.inside.wait, SAFETY_TIMEOUT)
        closing = asyncio.create_task(amanager.aclose())
        await asyncio.sleep(0.05)
        assert not closing.done(), "aclose() returned while an operation was running"
        assert not slow.released(), "the gateway was closed under a running operation"
        slow.release.set()
        session = await running
        await closing
        return threading.get_ident(), session

    loop_thread, session = asyncio.run(main())
    assert session.id.startswith("cs_")
    assert not slow.closed_while_running
    assert manager.closed
    assert slow.released()
    assert len(slow.closes) == 1
    assert slow.threads != [loop_thread]  # a plugin's close may block: never on the event loop


def test_aclose_twice_closes_each_gateway_once() -> None:
    manager = holding_manager("a")

    async def main() -> None:
        async with AsyncGatewayManager(manager) as amanager:
            await amanager.create_checkout("a", checkout(), operation_id="once")
        await amanager.aclose()

    asyncio.run(main())
    assert len(held(manager, "a").closes) == 1


def test_close_manager_false_leaves_a_shared_manager_to_its_owner() -> None:
    manager = holding_manager("a")
    a = held(manager, "a")

    async def main() -> None:
        async with AsyncGatewayManager(manager, close_manager=False) as amanager:
            await amanager.create_checkout("a", checkout(), operation_id="shared-1")

    asyncio.run(main())
    assert not manager.closed
    assert not a.released()
    manager.create_checkout("a", checkout(), operation_id="shared-2")  # the sync API goes on
    assert a.checkouts == 2
    manager.close()
    assert a.released()


def test_a_failing_close_is_raised_by_aclose_but_never_replaces_the_blocks_exception() -> None:
    Holding.failing = frozenset({"a"})
    try:
        plain, block = holding_manager("a"), holding_manager("a")

        async def closes_plainly() -> None:
            async with AsyncGatewayManager(plain):
                pass

        async def block_fails() -> None:
            async with AsyncGatewayManager(block):
                raise OutcomeUnknown("the answer was lost", gateway="a")

        with pytest.raises(GatewayError, match="'a' failed to close"):
            asyncio.run(closes_plainly())
        with structlog.testing.capture_logs() as logs, pytest.raises(OutcomeUnknown):
            asyncio.run(block_fails())
    finally:
        Holding.failing = frozenset()
    assert held(plain, "a").released()
    assert held(block, "a").released()
    assert [line["gateway"] for line in logs if line["event"] == "gateway.close.failed"] == ["a"]


def test_an_operation_on_a_facade_whose_manager_was_closed_is_refused_once_and_logged() -> None:
    manager = build_manager({"f": fake_table()})
    amanager = AsyncGatewayManager(manager)
    manager.close()  # by its owner, while the façade is still open

    async def main() -> None:
        try:
            await amanager.create_checkout("f", checkout(), operation_id="after-close")
        finally:
            await amanager.aclose()

    with structlog.testing.capture_logs() as logs, pytest.raises(InvalidRequest, match="GatewayManager is closed"):
        asyncio.run(main())
    assert [line["event"] for line in logs if line["log_level"] == "warning"] == ["gateway.checkout.refused"]
