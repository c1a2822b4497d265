"""The asyncio API: the same operations as :class:`GatewayManager`, as coroutines.

Every check (currency, amount, features, idempotency key) runs on the loop first: it does no I/O.
Then a gateway whose provider is asyncio-native (``ProviderDefinition.asyncio_native``) is called
on the event loop and its awaitable awaited; any other gateway's synchronous hook runs on a worker
thread of a bounded pool. Either way the event loop is never blocked and concurrent operations
overlap (up to ``max_workers`` for thread-run gateways). ``contextvars`` (e.g.
``structlog.contextvars`` bindings) follow the call onto the worker thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import TypeVar

from gateway_core.manager import GatewayManager, _check_results, _Prepared
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
    """Async façade over a :class:`GatewayManager`. Use as ``async with`` or call :meth:`aclose`."""

    def __init__(self, manager: GatewayManager, *, max_workers: int = 32) -> None:
        self.manager = manager
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="gateway-core")

    async def __aenter__(self) -> AsyncGatewayManager:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Wait for running operations to finish and release the worker threads."""
        await asyncio.get_running_loop().run_in_executor(None, functools.partial(self._executor.shutdown, wait=True))

    async def _execute(self, prepared: _Prepared[R]) -> R:
        if prepared.asyncio_native:
            return await self.manager._arun(prepared)
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, self.manager._run, prepared)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def create_checkout(
        self,
        gateway: str,
        request: CheckoutRequest,
        *,
        idempotency_key: str | None = None,
        operation_id: str | None = None,
    ) -> CheckoutSession:
        return await self._execute(self.manager._prepare_checkout(gateway, request, idempotency_key, operation_id))

    async def authorize(
        self,
        gateway: str,
        request: AuthorizeRequest,
        *,
        idempotency_key: str | None = None,
        operation_id: str | None = None,
    ) -> Authorization:
        return await self._execute(self.manager._prepare_authorize(gateway, request, idempotency_key, operation_id))

    async def capture(
        self,
        gateway: str,
        request: CaptureRequest,
        *,
        idempotency_key: str | None = None,
        operation_id: str | None = None,
    ) -> Capture:
        return await self._execute(self.manager._prepare_capture(gateway, request, idempotency_key, operation_id))

    async def void(
        self,
        gateway: str,
        request: VoidRequest,
        *,
        idempotency_key: str | None = None,
        operation_id: str | None = None,
    ) -> Void:
        return await self._execute(self.manager._prepare_void(gateway, request, idempotency_key, operation_id))

    async def refund(
        self,
        gateway: str,
        request: RefundRequest,
        *,
        idempotency_key: str | None = None,
        operation_id: str | None = None,
    ) -> Refund:
        return await self._execute(self.manager._prepare_refund(gateway, request, idempotency_key, operation_id))

    async def payment_status(self, gateway: str, payment_id: str) -> PaymentStatus:
        return await self._execute(self.manager._prepare_status(gateway, payment_id))

    async def parse_webhook(self, gateway: str, headers: WebhookHeaders, body: bytes) -> WebhookEvent:
        return await self._execute(self.manager._prepare_webhook(gateway, headers, body))

    async def check(self, gateway: str) -> tuple[CheckResult, ...]:
        return _check_results(gateway, await self._execute(self.manager._prepare_check(gateway)))
