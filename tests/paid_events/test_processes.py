"""Several application processes on one PostgreSQL database still sell exactly the cap."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta

import sqlalchemy as sa
from paid_events import config as pe_config
from paid_events.service import PaidEvents
from paid_events.store import RegistrationRow, Store

import gateway_core.fake
from gateway_core import GatewayManager, Money

from .conftest import TABLES
from .procworker import register_many


def test_four_processes_of_eight_threads_confirm_exactly_the_cap(pg_schema: tuple[str, str]) -> None:
    url, schema = pg_schema
    store = Store.open(url, schema=schema, run_migrations=False)
    try:
        with store.engine.begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {TABLES}"))
        platform, deployment = pe_config.load()
        manager = GatewayManager(deployment, plugins=[gateway_core.fake], load_entry_points=False)
        service = PaidEvents(store, manager, platform)
        event_id = service.create_event(
            organizer="org",
            title="Multi-process webinar",
            kind="one_off",
            price=Money.of("20", "EUR"),
            capacity=50,
            gateways=["stripe-like"],
            starts_at=service.clock() + timedelta(days=15),  # the wall clock, as in the worker processes
        ).id
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=4, mp_context=context) as pool:
            futures = [pool.submit(register_many, url, schema, event_id, f"w{n}-", 100, 8) for n in range(4)]
            outcomes = sum((Counter(f.result(timeout=120)) for f in futures), Counter())
        assert outcomes == Counter({"checkout": 50, "SoldOut": 350})
        with store.transaction() as s:
            confirmed = s.scalar(
                sa.select(sa.func.count()).select_from(RegistrationRow).where(RegistrationRow.status == "confirmed")
            )
        assert confirmed == 50
        assert service.event(event_id).seats_taken == 50
    finally:
        store.close()
