"""GatewayManager.close(): every gateway's gateway_close once, operations refused after, failures contained.

The gateway objects here hold a real resource, one end of a ``socket.socketpair()``: "released"
is the socket closed (``fileno() == -1``), not a flag the object sets for the test to read.
"""

from __future__ import annotations

import inspect
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
import structlog

from gateway_core import (
    AuthorizeRequest,
    CaptureRequest,
    CheckoutRequest,
    CheckoutSession,
    CheckoutStatus,
    Feature,
    GatewayError,
    GatewayManager,
    GatewaySettings,
    InvalidRequest,
    Money,
    OperationContext,
    OutcomeUnknown,
    PluginLoadError,
    RefundRequest,
    VoidRequest,
    hookimpl,
)

from .conftest import build_manager, fake, fake_table, provider_plugin

pytest_plugins = ["pytester"]

SAFETY_TIMEOUT = 30.0  # never reached when the code is right; turns a hang into a failure
#: What a failing close's exception carries; it must reach no log line and no error message.
LEAKY = "sk_live_close_failure_secret_0000"


class Holding:
    """A gateway object holding one end of a socket pair until ``gateway_close`` releases it."""

    #: Names of the gateways whose close raises (``RuntimeError`` with a secret in its message).
    failing: frozenset[str] = frozenset()

    def __init__(self, settings: GatewaySettings) -> None:
        self.name = settings.name
        self.sock, self._peer = socket.socketpair()
        self.closes: list[OperationContext] = []
        self.threads: list[int] = []
        self.checkouts = 0

    @hookimpl
    def gateway_create_checkout(self, request: CheckoutRequest, context: OperationContext) -> CheckoutSession:
        self.checkouts += 1
        return CheckoutSession(
            self.name, f"cs_{context.idempotency_key}", "https://pay.example", request.amount, CheckoutStatus.OPEN, None
        )

    @hookimpl
    def gateway_close(self, context: OperationContext) -> None:
        self.closes.append(context)
        self.threads.append(threading.get_ident())
        self.sock.close()
        self._peer.close()
        if self.name in self.failing:
            raise RuntimeError(f"could not close the pool for {LEAKY}")

    def released(self) -> bool:
        return self.sock.fileno() == -1


def holding_manager(*names: str, with_fake: bool = True) -> GatewayManager:
    gateways: dict[str, dict[str, Any]] = {name: {"provider": "holding"} for name in names}
    if with_fake:
        gateways["f"] = fake_table()  # the fake holds nothing and has no gateway_close
    return build_manager(gateways, plugins=[provider_plugin("holding", Holding)])


def held(manager: GatewayManager, name: str) -> Holding:
    obj = manager.gateway_object(name)
    assert isinstance(obj, Holding)
    return obj


@pytest.fixture
def failing() -> Iterator[Callable[..., None]]:
    def fail(*names: str) -> None:
        Holding.failing = frozenset(names)

    yield fail
    Holding.failing = frozenset()


@pytest.fixture(autouse=True)
def _close_what_is_left() -> Iterator[list[Holding]]:
    """Close the test's socket pairs if a failing test left them open (no ResourceWarning hides the failure)."""
    made: list[Holding] = []
    original = Holding.__init__

    def tracked(self: Holding, settings: GatewaySettings) -> None:
        original(self, settings)
        made.append(self)

    Holding.__init__ = tracked  # type: ignore[method-assign]
    yield made
    Holding.__init__ = original  # type: ignore[method-assign]
    for obj in made:
        obj.sock.close()
        obj._peer.close()


def checkout() -> CheckoutRequest:
    return CheckoutRequest.single("t", Money.of("10.00", "EUR"), "https://s.example", "https://c.example")


def every_operation(manager: GatewayManager, gateway: str) -> dict[str, Callable[[], object]]:
    """Each of the sync API's operations, with arguments the core's checks accept, by log name."""
    return {
        "checkout": lambda: manager.create_checkout(gateway, checkout(), operation_id="closed-co"),
        "authorize": lambda: manager.authorize(
            gateway, AuthorizeRequest(Money.of("5", "EUR"), "pm_card_visa"), operation_id="closed-au"
        ),
        "capture": lambda: manager.capture(gateway, CaptureRequest("pi_closed"), operation_id="closed-ca"),
        "void": lambda: manager.void(gateway, VoidRequest("pi_closed"), operation_id="closed-vo"),
        "refund": lambda: manager.refund(gateway, RefundRequest("pi_closed"), operation_id="closed-re"),
        "status": lambda: manager.payment_status(gateway, "pi_closed"),
        "webhook": lambda: manager.parse_webhook(gateway, {"X-Fake-Signature": "t=1,v1=00"}, b"{}"),
        "check": lambda: manager.check(gateway),
    }


def test_close_releases_every_gateway_once_even_when_called_twice() -> None:
    manager = holding_manager("a", "b")
    a, b = held(manager, "a"), held(manager, "b")
    assert not a.released()
    assert not b.released()
    manager.close()
    assert manager.closed
    assert a.released()
    assert b.released()
    manager.close()  # a second close does nothing and raises nothing
    assert (len(a.closes), len(b.closes)) == (1, 1)
    assert [(c.gateway, c.provider, c.operation, c.idempotency_key) for c in a.closes + b.closes] == [
        ("a", "holding", "close", None),
        ("b", "holding", "close", None),
    ]


def test_a_with_block_closes_the_manager() -> None:
    with holding_manager("a") as manager:
        a = held(manager, "a")
        assert not a.released()
    assert manager.closed
    assert a.released()


def test_gateway_close_is_listed_as_implemented_where_it_is() -> None:
    manager = holding_manager("a")
    assert "gateway_close" in manager.gateway("a").implemented
    assert "gateway_close" not in manager.gateway("f").implemented
    manager.close()


def test_every_operation_after_close_is_a_logged_invalid_request_that_reaches_no_plugin() -> None:
    manager = holding_manager("a")
    f = fake(manager, "f")
    manager.close()
    outcomes: list[tuple[str, BaseException | None]] = []
    with structlog.testing.capture_logs() as logs:
        for operation, call in every_operation(manager, "f").items():
            try:
                call()
            except BaseException as exc:  # what escapes is what the test checks
                outcomes.append((operation, exc))
            else:
                outcomes.append((operation, None))
    for operation, error in outcomes:
        assert isinstance(error, InvalidRequest), (operation, error)
        assert "closed" in error.message
        assert error.gateway == "f"
    refused = [(line["event"], line["error"], line["gateway"]) for line in logs if line["log_level"] == "warning"]
    assert refused == [(f"gateway.{op}.refused", "InvalidRequest", "f") for op, _ in outcomes]
    assert f.payments_made() == 0


def test_what_does_no_io_keeps_working_after_close() -> None:
    manager = holding_manager("a")
    manager.close()
    amount = Money.of("10.00", "EUR")
    assert set(manager.gateway_names()) == {"a", "f"}
    assert "f" in manager.route(amount).eligible
    assert Feature.REFUND in manager.gateway("f").capabilities.features
    assert manager.minimum_price("EUR") is not None
    assert manager.round_up(amount, "f") == amount
    assert isinstance(manager.gateway_object("a"), Holding)
    assert "fake" in manager.providers()


def test_one_failing_close_stops_no_other_and_is_raised_once_without_its_message(
    failing: Callable[..., None],
) -> None:
    failing("b")
    manager = holding_manager("a", "b", "c")
    objs = [held(manager, name) for name in ("a", "b", "c")]
    with structlog.testing.capture_logs() as logs, pytest.raises(GatewayError) as info:
        manager.close()
    assert all(obj.released() for obj in objs)  # c was closed after b failed
    error = info.value
    assert type(error) is GatewayError
    assert error.gateway == "b"
    assert "'b'" in error.message
    assert "RuntimeError" in error.message
    assert isinstance(error.__cause__, RuntimeError)
    assert LEAKY not in str(error)
    [line] = [line for line in logs if line["event"] == "gateway.close.failed"]
    assert (line["gateway"], line["provider"], line["error"], line["log_level"]) == (
        "b",
        "holding",
        "RuntimeError",
        "warning",
    )
    assert LEAKY not in repr(logs)
    manager.close()  # closed already: b is not closed again, nothing is raised again
    assert [len(obj.closes) for obj in objs] == [1, 1, 1]


def test_several_failing_closes_are_named_in_one_error(failing: Callable[..., None]) -> None:
    failing("a", "c")
    manager = holding_manager("a", "b", "c")
    with pytest.raises(GatewayError) as info:
        manager.close()
    assert info.value.gateway is None
    assert "'a'" in info.value.message
    assert "'c'" in info.value.message
    assert "'b'" not in info.value.message
    assert held(manager, "b").released()


def test_a_failing_close_never_replaces_the_with_blocks_own_exception(failing: Callable[..., None]) -> None:
    failing("a")
    manager = holding_manager("a")
    with structlog.testing.capture_logs() as logs, pytest.raises(OutcomeUnknown), manager:
        raise OutcomeUnknown("the refund's answer was lost", gateway="f")
    assert manager.closed
    assert held(manager, "a").released()
    assert [line["gateway"] for line in logs if line["event"] == "gateway.close.failed"] == ["a"]


def test_a_failing_close_is_raised_on_leaving_a_with_block_normally(failing: Callable[..., None]) -> None:
    failing("a")
    with pytest.raises(GatewayError, match="failed to close"), holding_manager("a"):
        pass


def test_a_close_waits_for_another_threads_close_and_closes_each_gateway_once() -> None:
    """Two threads closing at once: one closes, the other returns only once everything is closed."""
    started, release = threading.Event(), threading.Event()

    class Slow(Holding):
        @hookimpl
        def gateway_close(self, context: OperationContext) -> None:
            started.set()
            release.wait(SAFETY_TIMEOUT)
            super().gateway_close(context)

    manager = build_manager({"slow": {"provider": "slow"}}, plugins=[provider_plugin("slow", Slow)])
    slow = manager.gateway_object("slow")
    assert isinstance(slow, Slow)
    first = threading.Thread(target=manager.close)
    first.start()
    assert started.wait(SAFETY_TIMEOUT)
    second = threading.Thread(target=manager.close)
    second.start()
    second.join(0.2)
    assert second.is_alive(), "the second close() returned while the first was still closing"
    assert manager.closed  # operations are refused from the moment the first close() began
    release.set()
    first.join(SAFETY_TIMEOUT)
    second.join(SAFETY_TIMEOUT)
    assert slow.released()
    assert len(slow.closes) == 1


def test_a_close_that_returns_an_awaitable_fails_and_the_awaitable_is_closed() -> None:
    """gateway_close is synchronous even for asyncio-native providers; a coroutine would never run."""

    class AsyncClose(Holding):
        returned: Coroutine[Any, Any, None] | None = None

        async def _close(self) -> None:
            raise AssertionError("never awaited")

        @hookimpl
        def gateway_close(self) -> Coroutine[Any, Any, None]:  # type: ignore[override]
            self.sock.close()
            self._peer.close()
            self.returned = self._close()
            return self.returned

    manager = build_manager({"n": {"provider": "native"}}, plugins=[provider_plugin("native", AsyncClose)])
    obj = manager.gateway_object("n")
    assert isinstance(obj, AsyncClose)
    with structlog.testing.capture_logs() as logs, pytest.raises(GatewayError, match="failed to close"):
        manager.close()
    assert obj.returned is not None
    assert inspect.getcoroutinestate(obj.returned) == inspect.CORO_CLOSED  # no "never awaited" warning
    [line] = [line for line in logs if line["event"] == "gateway.close.failed"]
    assert "awaitable" in line["reason"]


def test_a_wrapper_sees_each_gateways_close() -> None:
    seen: list[tuple[str, str]] = []

    class Audit:
        @hookimpl(wrapper=True)
        def gateway_close(self, context: OperationContext) -> Iterator[None]:
            seen.append((context.gateway, context.operation))
            return (yield)

    manager = build_manager(
        {"a": {"provider": "holding"}, "b": {"provider": "holding"}},
        plugins=[provider_plugin("holding", Holding), Audit()],
    )
    manager.close()
    assert seen == [("a", "close"), ("b", "close")]


def test_gateway_close_at_module_level_is_refused() -> None:
    class ModuleLevelClose:
        __name__ = "closing_module"

        @hookimpl
        def gateway_close(self) -> None:  # would be called for every gateway: it belongs on gateway objects
            return None

    with pytest.raises(PluginLoadError, match="implements gateway_close at module level"):
        build_manager({"f": fake_table()}, plugins=[ModuleLevelClose()])


HOST_SUITE = """
from gateway_core.testing.pytest_plugin import fake_config

pytest_plugins = ["gateway_core.testing.pytest_plugin"]
MANAGERS = []


def test_uses_the_manager(gateway_manager):
    MANAGERS.append(gateway_manager)
    assert not gateway_manager.closed


def test_the_previous_tests_manager_was_closed():
    assert [m.closed for m in MANAGERS] == [True]
"""


def test_the_host_pytest_plugins_gateway_manager_is_closed_after_its_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_host=HOST_SUITE)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
