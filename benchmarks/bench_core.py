"""Core benchmarks: print figures, assert nothing (goals are read, not enforced by tests).

Run: ``uv run python -m benchmarks.bench_core``

1. Overhead of one operation through the manager to the fake gateway, against calling the fake's
   hook implementation directly (goal: at most 30 us added, median).
2. Routing among 50 registered gateways (goal: at most 50 us per decision, median).
3. ``gateway plugins`` from a cold start in a fresh interpreter, with every installed plugin
   (goal: under 300 ms), and whether any provider SDK was imported to read metadata.
"""

from __future__ import annotations

import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date

import structlog

from gateway_core import (
    CheckoutRequest,
    DeploymentConfig,
    GatewayManager,
    Money,
    OperationContext,
    StatusRequest,
)
from gateway_core.capabilities import Capabilities, CurrencyRule, Feature, Source
from gateway_core.fake.gateway import FakeGateway
from gateway_core.routing import RouteEntry, Router

SDK_MODULES = ("stripe", "paypalserversdk")


def _median_us(fn: Callable[[], object], rounds: int = 31, per_round: int = 200) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(per_round):
            fn()
        samples.append((time.perf_counter_ns() - start) / per_round / 1000)
    return statistics.median(samples)


def configure_logging(level: int = logging.INFO) -> None:
    """Configure structlog as a production host would: JSON lines, logger cached, output discarded."""
    sink = open(os.devnull, "w")  # noqa: SIM115 - lives for the whole benchmark
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(sink),
        cache_logger_on_first_use=True,
    )


def bench_overhead() -> None:
    manager = GatewayManager(
        DeploymentConfig.from_mapping({"gateways": {"fake": {"provider": "fake", "settings": {"test_mode": True}}}})
    )
    fake = manager.gateway_object("fake")
    assert isinstance(fake, FakeGateway)
    request = CheckoutRequest.single("Ticket", Money.of("10", "EUR"), "https://e.invalid/s", "https://e.invalid/c")
    configure_logging()
    session = manager.create_checkout("fake", request, operation_id="bench")
    status_request = StatusRequest(session.id)
    counter = iter(range(10**9))

    # One logging configuration per process: with cache_logger_on_first_use a later configure() would not apply.
    direct = _median_us(lambda: fake.gateway_payment_status(status_request))
    through = _median_us(lambda: manager.payment_status("fake", session.id))
    direct_c = _median_us(
        lambda: fake.gateway_create_checkout(
            request, OperationContext("fake", "fake", "checkout", f"d{next(counter)}")
        ),
        rounds=21,
        per_round=100,
    )
    via_c = _median_us(
        lambda: manager.create_checkout("fake", request, idempotency_key=f"m{next(counter)}"),
        rounds=21,
        per_round=100,
    )
    print("manager overhead, info lines written as JSON:")
    print(
        f"  status:   direct {direct:7.2f} us | via manager {through:7.2f} us | added {through - direct:6.2f} us (goal <= 30)"
    )
    print(
        f"  checkout: direct {direct_c:7.2f} us | via manager {via_c:7.2f} us | added {via_c - direct_c:6.2f} us (goal <= 30)"
    )
    structlog.reset_defaults()


def bench_routing() -> None:
    source = Source("benchmark", "benchmarks/bench_core.py", date(2026, 11, 25))
    codes = ["EUR", "USD", "GBP", "HUF", "PLN", "JPY", "ISK", "KWD", "SEK", "CHF"]
    entries = []
    for i in range(50):
        offered = codes[: 3 + i % 8]
        caps = Capabilities(
            currencies=[CurrencyRule.iso(c, minimum=None) for c in offered],
            features=[Feature.HOSTED_CHECKOUT, Feature.REFUND] + ([Feature.PARTIAL_REFUND] if i % 2 else []),
            sources=[source],
        )
        entries.append(RouteEntry(f"gw{i:02d}", caps, priority=i % 7))
    router = Router(entries)
    huf = Money.of("1500", "HUF")
    eur = Money.of("0.30", "EUR")
    t1 = _median_us(lambda: router.route(huf))
    t2 = _median_us(lambda: router.route(eur, [Feature.PARTIAL_REFUND]))
    decision = router.route(huf)
    print(
        f"routing among 50 gateways: {t1:6.2f} us (HUF, {len(decision.eligible)} eligible) | "
        f"{t2:6.2f} us (EUR + feature) per decision (goal <= 50)"
    )


def bench_cold_start(runs: int = 7) -> None:
    probe = (
        "import sys, time; t = time.perf_counter();"
        "from gateway_core.cli import main\n"
        "try:\n    main(['plugins', '--json'])\nexcept SystemExit:\n    pass\n"
        f"print('SDKS', [m for m in {SDK_MODULES!r} if m in sys.modules], file=sys.stderr)"
    )
    times = []
    sdks = ""
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
        times.append((time.perf_counter() - start) * 1000)
        sdks = next(line for line in done.stderr.splitlines() if line.startswith("SDKS"))
    print(
        f"`gateway plugins` cold start: median {statistics.median(times):.0f} ms over {runs} runs "
        f"(goal < 300); provider SDKs imported: {sdks.removeprefix('SDKS ')}"
    )


def main() -> None:
    print(f"python {sys.version.split()[0]}")
    bench_overhead()
    bench_routing()
    bench_cold_start()


if __name__ == "__main__":
    main()
