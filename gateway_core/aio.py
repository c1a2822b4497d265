"""The asyncio API: the same operations as :class:`GatewayManager`, as coroutines.

Every check (currency, amount, features, idempotency key) runs on the loop first: it does no I/O.
Then a gateway whose provider is asyncio-native (``ProviderDefinition.asyncio_native``) is called
on the event loop and its awaitable awaited; any other gateway's synchronous hook runs on a worker
thread of a bounded pool. Either way the event loop is never blocked and concurrent operations
overlap (up to ``max_workers`` for thread-run gateways). ``contextvars`` (e.g.
``structlog.contextvars`` bindings) follow the call onto the worker thread.

:meth:`AsyncGatewayManager.aclose` waits for the operations running (on worker threads, and
those of asyncio-native gateways on this event loop), releases the worker threads, and then
closes the wrapped :class:`GatewayManager` (:meth:`GatewayManager.close`: every gateway's
``gateway_close``, so the plugins' HTTP sessions and pooled connections are released), on a
worker thread, since a plugin's close may block. An operation asked of a closed manager is
refused with :class:`~gateway_core.errors.InvalidRequest` and logged like any refusal.

Closing the wrapped manager is the default because the usual host builds the
``GatewayManager`` for the ``AsyncGatewayManager`` alone (``AsyncGatewayManager(GatewayManager(config))``):
``async with`` then releases everything. A host that shares one ``GatewayManager`` between
synchronous code and the asyncio API, or wraps it more than once, passes
``close_manager=False`` and closes the manager itself when the last user is done.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import NoReturn, TypeVar

from gateway_core.errors import GatewayError, InvalidRequest
from gateway_core.manager import GatewayManager, _check_results, _log_fields, _logs_refusal, _Prepared, log
from gateway_core.models import (
    Authorization,
    AuthorizeRequest,
    Capture,
    CaptureRequest,
    CheckoutRequest,
    CheckoutSession,
    CheckResult,
    PaymentStatus,
    Refund,
    RefundRequest,
    Void,
    VoidRequest,
    WebhookEvent,
    WebhookHeaders,
)

__all__ = ["AsyncGatewayManager"]

R = TypeVar("R")


class AsyncGatewayManager:
    """Async façade over a :class:`GatewayManager`. Use as ``async with`` or call :meth:`aclose`.

    ``close_manager`` (default true): :meth:`aclose` closes ``manager`` as well (see the module
    docstring); pass false when the manager is shared and closed by its owner.
    """

    def __init__(self, manager: GatewayManager, *, max_workers: int = 32, close_manager: bool = True) -> None:
        self.manager = manager
        self.close_manager = close_manager
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="gateway-core")
        self._closed = False
        #: One future per asyncio-native operation running, done when it ends (aclose waits for them).
        self._running: set[asyncio.Future[None]] = set()

    async def __aenter__(self) -> AsyncGatewayManager:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self.aclose()
        except GatewayError:
            if exc is None:
                raise
            # The block's own exception goes on; the failed closes were logged (as GatewayManager.__exit__).

    async def aclose(self) -> None:
        """Refuse new operations, wait for running ones to finish, release the worker threads, close the manager.

        "Running" covers the operations on worker threads, and those of asyncio-native gateways
        on this event loop (an operation awaited on another loop cannot be waited for here).
        Then, with ``close_manager`` (the default), :meth:`GatewayManager.close` runs on a worker
        thread (a plugin's close may block): it raises the :class:`GatewayError` naming the
        gateways that failed to close, once, as it does. Calling ``aclose`` again does nothing more.
        """
        self._closed = True
        loop = asyncio.get_running_loop()
        running = [done for done in self._running if done.get_loop() is loop]
        if running:
            await asyncio.wait(running)
        await loop.run_in_executor(None, functools.partial(self._executor.shutdown, wait=True))
        if self.close_manager:
            await asyncio.to_thread(self.manager.close)

    def _require_open(self, operation: str, gateway: str) -> None:
        if self._closed:
            _logs_refusal(operation)(_refuse_closed)(self, gateway)

    async def _execute(self, prepared: _Prepared[R]) -> R:
        if prepared.asyncio_native:
            done = asyncio.get_running_loop().create_future()
            self._running.add(done)
            try:
                return await self.manager._arun(prepared)
            finally:
                self._running.discard(done)
                done.set_result(None)
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, self.manager._run, prepared)
        started = time.perf_counter()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except asyncio.CancelledError:
            # The awaiting task was cancelled (a timeout, a TaskGroup, a client gone); the worker
            # thread cannot be, so the operation goes on and its own line (created, failed) follows
            # when it ends, a result nobody receives. The caller's side gets its line now, as on the
            # event loop (GatewayManager._arun), with the key that a retry learns the outcome by.
            log.warning(
                f"gateway.{prepared.ctx.operation}.cancelled",
                **_log_fields(prepared),
                error="CancelledError",
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                continues=True,
            )
            raise

    async def create_checkout(
        self,
        gateway: str,
        request: CheckoutRequest,
        *,
        idempotency_key: str | None = None,
        operation_id: str | None = None,
    ) -> CheckoutSession:
        self._require_open("checkout", gateway)
        return await self._execute(self.manager._prepare_checkout(gateway, request, idempotency_key, operation_id))

    async def authorize(
        self,
        gateway: str,
        request: AuthorizeRequest,
        *,
        idempotency_key: str | None = None,
        operation_id: str | None = None,
    ) -> Authorization:
        self._require_open("authorize", gateway)
        return await self._execute(self.manager._prepare_authorize(gateway, request, idempotency_key, operation_id))

    async def capture(
        self,
        gateway: str,
        request: CaptureRequest,
        *,
        idempotency_key: str | None = None,
        operation_id: str | None = None,
    ) -> Capture:
        self._require_open("capture", gateway)
        return await self._execute(self.manager._prepare_capture(gateway, request, idempotency_key, operation_id))

    async def void(
        self,
        gateway: str,
        request: VoidRequest,
        *,
        idempotency_key: str | None = None,
        operation_id: str | None = None,
    ) -> Void:
        self._require_open("void", gateway)
        return await self._execute(self.manager._prepare_void(gateway, request, idempotency_key, operation_id))

    async def refund(
        self,
        gateway: str,
        request: RefundRequest,
        *,
        idempotency_key: str | None = None,
        operation_id: str | None = None,
    ) -> Refund:
        self._require_open("refund", gateway)
        return await self._execute(self.manager._prepare_refund(gateway, request, idempotency_key, operation_id))

    async def payment_status(self, gateway: str, payment_id: str) -> PaymentStatus:
        self._require_open("status", gateway)
        return await self._execute(self.manager._prepare_status(gateway, payment_id))

    async def parse_webhook(self, gateway: str, headers: WebhookHeaders, body: bytes) -> WebhookEvent:
        self._require_open("webhook", gateway)
        return await self._execute(self.manager._prepare_webhook(gateway, headers, body))

    async def check(self, gateway: str) -> tuple[CheckResult, ...]:
        self._require_open("check", gateway)
        return _check_results(gateway, await self._execute(self.manager._prepare_check(gateway)))


def _refuse_closed(amanager: AsyncGatewayManager, gateway: str) -> NoReturn:
    # (amanager, gateway): the arguments _logs_refusal reads the gateway from
    raise InvalidRequest(
        "this AsyncGatewayManager is closed (aclose() was called): nothing was sent; "
        "build a new one to run more operations",
        gateway=gateway if isinstance(gateway, str) else None,
    )
