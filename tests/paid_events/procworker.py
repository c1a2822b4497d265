"""A separate application process for the multi-process test: its own store pool, manager and fake gateway."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import structlog
from paid_events import config as pe_config
from paid_events.service import PaidEvents
from paid_events.store import Store

import gateway_core.fake
from gateway_core import GatewayManager
from gateway_core.fake import FakeGateway


def register_many(url: str, schema: str, event_id: str, prefix: str, attempts: int, threads: int) -> dict[str, int]:
    """Make ``attempts`` registration attempts on ``threads`` threads; pay each checkout; deliver webhooks."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    store = Store.open(url, schema=schema, run_migrations=False, pool_size=threads)
    platform, deployment = pe_config.load()
    manager = GatewayManager(deployment, plugins=[gateway_core.fake], load_entry_points=False)
    service = PaidEvents(store, manager, platform)
    fake = manager.gateway_object("stripe-like")
    assert isinstance(fake, FakeGateway)

    def deliver() -> None:
        for d in fake.drain_webhooks():
            service.handle_webhook("stripe-like", d.headers, d.body)

    def attempt(i: int) -> str:
        try:
            result = service.checkout(event_id, f"{prefix}{i}@example.com")
        except Exception as exc:
            return type(exc).__name__
        fake.complete_checkout(result.checkout_id or "")
        deliver()
        return "checkout"

    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            outcomes = Counter(pool.map(attempt, range(attempts)))
        deliver()
        return dict(outcomes)
    finally:
        store.close()
