"""The asyncio API: the same operations as :class:`GatewayManager`, as coroutines.

Hooks are synchronous (see :mod:`gateway_core.hookspecs`), so every operation runs on a worker
thread of a bounded pool: the event loop is never blocked and concurrent operations overlap up to
``max_workers``. ``contextvars`` (e.g. ``structlog.contextvars`` bindings) follow the call onto
the worker thread. Routing and other pure computations stay on the loop: they do no I/O.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import ParamSpec, TypeVar

from gateway_core.manager import GatewayManager
from gateway_core.models import (
    Authorization,
    AuthorizeRequest,
    Capture,
    CaptureRequest,
    CheckoutRequest,
    CheckoutSession,
    PaymentStatus,
    Refund,
    RefundRequest,
    Void,
    VoidRequest,
    WebhookEvent,
)

__all__ = ["AsyncGatewayManager"]

P = ParamSpec("P")
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

    async def _run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def create_checkout(
        self,
        gateway: str,
        request: CheckoutRequest,
        *,
        idempotency_key: str | None = None,
        operation_id: str | None = None,
    ) -> CheckoutSession:
        return await self._run(
            self.manager.create_checkout, gateway, request, idempotency_key=idempotency_key, operation_id=operation_id
        )

    async def authorize(
        self,
        gateway: str,
        request: AuthorizeRequest,
        *,
        idempotency_key: str | None = None,
        operation_id: str | None = None,
    ) -> Authorization:
        return await self._run(
            self.manager.authorize, gateway, request, idempotency_key=idempotency_key, operation_id=operation_id
        )

    async def capture(
        self,
        gateway: str,
        request: CaptureRequest,
        *,
        idempotency_key: str | None = None,
        operation_id: str | None = None,
    ) -> Capture:
        return await self._run(
            self.manager.capture, gateway, request, idempotency_key=idempotency_key, operation_id=operation_id
        )

    async def void(
        self,
        gateway: str,
        request: VoidRequest,
        *,
        idempotency_key: str | None = None,
        operation_id: str | None = None,
    ) -> Void:
        return await self._run(
            self.manager.void, gateway, request, idempotency_key=idempotency_key, operation_id=operation_id
        )

    async def refund(
        self,
        gateway: str,
        request: RefundRequest,
        *,
        idempotency_key: str | None = None,
        operation_id: str | None = None,
    ) -> Refund:
        return await self._run(
            self.manager.refund, gateway, request, idempotency_key=idempotency_key, operation_id=operation_id
        )

    async def payment_status(self, gateway: str, payment_id: str) -> PaymentStatus:
        return await self._run(self.manager.payment_status, gateway, payment_id)

    async def parse_webhook(self, gateway: str, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        return await self._run(self.manager.parse_webhook, gateway, headers, body)
