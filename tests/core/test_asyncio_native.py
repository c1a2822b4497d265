"""Asyncio-native providers: hooks called on the event loop, awaitables awaited, wrappers still see outcomes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Sequence
from datetime import date
from typing import Any

import pytest
import structlog

from gateway_core import (
    AsyncGatewayManager,
    Capabilities,
    CheckoutRequest,
    CheckoutSession,
    CheckoutStatus,
    CurrencyRule,
    DeploymentConfig,
    Feature,
    GatewayError,
    GatewayManager,
    GatewaySettings,
    InvalidRequest,
    Money,
    OperationContext,
    PaymentDeclined,
    ProviderDefinition,
    Source,
    UnsupportedCurrency,
    hookimpl,
)
from gateway_core.hookspecs import on_outcome

SAFETY_TIMEOUT = 30.0  # never reached when the code is right; turns a hang into a failure

CAPS = Capabilities(
    currencies=[CurrencyRule.iso("EUR", minimum="0.50")],
    features=[Feature.HOSTED_CHECKOUT],
    sources=[Source("test", "tests/core/test_asyncio_native.py", date(2026, 11, 25))],
)


class NativeGateway:
    """Returns a coroutine under the asyncio API and a value under the sync API, like an SDK with both clients."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.name = settings.name
        self.calls: list[tuple[bool, int]] = []  # (context.asynchronous, thread id)
        self.started = 0
        self.all_started = asyncio.Event()
        self.expected_concurrent = 1
        self.fail_with: Exception | None = None
        self.misbehave = False  # return an awaitable even to the sync API

    def _session(self, request: CheckoutRequest, key: str | None) -> CheckoutSession:
        return CheckoutSession(
            self.name, f"cs_{key}", "https://pay.example/cs", request.amount, CheckoutStatus.OPEN, None, live=False
        )

    @hookimpl
    def gateway_create_checkout(
        self, request: CheckoutRequest, context: OperationContext
    ) -> CheckoutSession | Awaitable[CheckoutSession]:
        self.calls.append((context.asynchronous, threading.get_ident()))
        if not context.asynchronous and not self.misbehave:
            if self.fail_with is not None:
                raise self.fail_with
            return self._session(request, context.idempotency_key)

        async def create() -> CheckoutSession:
            self.started += 1
            if self.started >= self.expected_concurrent:
                self.all_started.set()
            await self.all_started.wait()
            if self.fail_with is not None:
                raise self.fail_with
            return self._session(request, context.idempotency_key)

        return create()


class NativePlugin:
    @hookimpl
    def gateway_providers(self) -> Sequence[ProviderDefinition]:
        return [ProviderDefinition("native", CAPS, NativeGateway, asyncio_native=True)]


class Audit:
    """A cross-cutting wrapper that records every outcome, sync or awaited."""

    def __init__(self) -> None:
        self.outcomes: list[tuple[str, str]] = []

    @hookimpl(wrapper=True)
    def gateway_create_checkout(self, context: OperationContext) -> Any:
        def record(result: object, error: BaseException | None) -> None:
            self.outcomes.append((context.gateway, type(error or result).__name__))

        try:
            result = yield
        except Exception as exc:
            record(None, exc)
            raise
        return on_outcome(result, record)


@pytest.fixture
def audit() -> Audit:
    return Audit()


@pytest.fixture
def manager(audit: Audit) -> GatewayManager:
    config = DeploymentConfig.from_mapping({"gateways": {"nat": {"provider": "native"}}})
    return GatewayManager(config, plugins=[NativePlugin(), audit], load_entry_points=False)


def gateway_of(manager: GatewayManager) -> NativeGateway:
    gw = manager.gateway_object("nat")
    assert isinstance(gw, NativeGateway)
    return gw


def request(amount: str = "10") -> CheckoutRequest:
    return CheckoutRequest.single("Ticket", Money.of(amount, "EUR"), "https://h.example/ok", "https://h.example/no")


def test_asyncio_api_calls_a_native_provider_on_the_loop_and_awaits_it(manager: GatewayManager, audit: Audit) -> None:
    async def main() -> tuple[CheckoutSession, int]:
        async with AsyncGatewayManager(manager) as amanager:
            session = await amanager.create_checkout("nat", request(), idempotency_key="k1")
            return session, threading.get_ident()

    session, loop_thread = asyncio.run(main())
    assert session.id == "cs_k1"
    assert gateway_of(manager).calls == [(True, loop_thread)]
    assert audit.outcomes == [("nat", "CheckoutSession")]


def test_sync_api_calls_the_same_provider_synchronously(manager: GatewayManager, audit: Audit) -> None:
    session = manager.create_checkout("nat", request(), idempotency_key="k2")
    assert session.id == "cs_k2"
    assert gateway_of(manager).calls == [(False, threading.get_ident())]
    assert audit.outcomes == [("nat", "CheckoutSession")]


def test_native_calls_overlap_on_the_loop(manager: GatewayManager) -> None:
    gateway = gateway_of(manager)
    gateway.expected_concurrent = 5  # each call waits until all five have started: only overlap completes

    async def main() -> list[CheckoutSession]:
        amanager = AsyncGatewayManager(manager)
        calls = [amanager.create_checkout("nat", request(), idempotency_key=f"o{i}") for i in range(5)]
        try:
            return await asyncio.wait_for(asyncio.gather(*calls), timeout=30)
        finally:
            await amanager.aclose()

    sessions = asyncio.run(main())
    assert sorted(s.id for s in sessions) == [f"cs_o{i}" for i in range(5)]


def test_an_error_inside_the_awaitable_reaches_host_and_wrapper(manager: GatewayManager, audit: Audit) -> None:
    gateway_of(manager).fail_with = PaymentDeclined("declined", decline_code="insufficient_funds")

    async def main() -> None:
        async with AsyncGatewayManager(manager) as amanager:
            await amanager.create_checkout("nat", request(), idempotency_key="d1")

    with pytest.raises(PaymentDeclined) as err:
        asyncio.run(main())
    assert err.value.gateway == "nat"
    assert err.value.decline_code == "insufficient_funds"
    assert audit.outcomes == [("nat", "PaymentDeclined")]


def test_a_foreign_error_inside_the_awaitable_is_wrapped(manager: GatewayManager) -> None:
    gateway_of(manager).fail_with = KeyError("sk_live_should_not_leak")

    async def main() -> None:
        async with AsyncGatewayManager(manager) as amanager:
            await amanager.create_checkout("nat", request(), idempotency_key="f1")

    with pytest.raises(GatewayError) as err:
        asyncio.run(main())
    assert type(err.value) is GatewayError
    assert err.value.unmapped
    assert err.value.gateway == "nat"
    assert isinstance(err.value.__cause__, KeyError)
    assert "sk_live_should_not_leak" not in str(err.value)


def test_an_awaitable_returned_to_the_sync_api_is_an_error_not_a_result(manager: GatewayManager) -> None:
    gateway_of(manager).misbehave = True
    with pytest.raises(GatewayError, match="returned an awaitable to a synchronous call"):
        manager.create_checkout("nat", request(), idempotency_key="m1")


def test_core_checks_run_before_a_native_provider_is_called(manager: GatewayManager) -> None:
    async def main() -> None:
        async with AsyncGatewayManager(manager) as amanager:
            await amanager.create_checkout(
                "nat",
                CheckoutRequest.single("T", Money.of("10", "USD"), "https://h.example/a", "https://h.example/b"),
                idempotency_key="c1",
            )

    with pytest.raises(UnsupportedCurrency):
        asyncio.run(main())
    assert gateway_of(manager).calls == []


def test_a_native_operation_after_aclose_is_refused_before_the_provider(manager: GatewayManager) -> None:
    async def main() -> None:
        amanager = AsyncGatewayManager(manager)
        await amanager.aclose()
        await amanager.create_checkout("nat", request(), idempotency_key="after-close")

    with structlog.testing.capture_logs() as logs, pytest.raises(InvalidRequest, match="closed"):
        asyncio.run(main())
    assert gateway_of(manager).calls == []
    assert [line["event"] for line in logs] == ["gateway.checkout.refused"]


def test_aclose_waits_for_native_operations_in_flight(manager: GatewayManager) -> None:
    """As for thread-run gateways, whose worker threads aclose() joins: nothing is left half-sent."""
    gateway = gateway_of(manager)
    gateway.expected_concurrent = 2  # the call waits until a second one starts: only after aclose began

    async def main() -> CheckoutSession:
        amanager = AsyncGatewayManager(manager)
        first = asyncio.create_task(amanager.create_checkout("nat", request(), idempotency_key="in-flight"))
        while gateway.started == 0:
            await asyncio.sleep(0)
        closing = asyncio.create_task(amanager.aclose())
        await asyncio.sleep(0.05)
        assert not closing.done(), "aclose() returned while an operation was still running"
        gateway.all_started.set()  # let the operation finish
        await asyncio.wait_for(closing, SAFETY_TIMEOUT)
        assert first.done()
        return first.result()

    assert asyncio.run(main()).id == "cs_in-flight"


def test_a_native_operation_cancelled_in_flight_is_logged_with_its_key(manager: GatewayManager, audit: Audit) -> None:
    """Cancelled mid-way (here by wait_for's timeout), it may have reached the provider: it is logged.

    The line carries the idempotency key, so an operator can tell which retry learns the outcome.
    """
    gateway_of(manager).expected_concurrent = 2  # never reached: the one call waits until cancelled

    async def main() -> None:
        async with AsyncGatewayManager(manager) as amanager:
            await asyncio.wait_for(amanager.create_checkout("nat", request("12.50"), idempotency_key="gone"), 0.05)

    with structlog.testing.capture_logs() as logs, pytest.raises(TimeoutError):
        asyncio.run(main())
    [line] = logs
    assert line["event"] == "gateway.checkout.cancelled"
    assert line["log_level"] == "warning"
    assert (line["gateway"], line["idempotency_key"], line["amount"], line["currency"]) == (
        "nat",
        "gone",
        "12.50",
        "EUR",
    )
    assert line["error"] == "CancelledError"
    assert line["duration_ms"] >= 0
    assert audit.outcomes == [("nat", "CancelledError")]
