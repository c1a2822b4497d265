"""Core benchmarks: print figures, assert nothing (goals are read, not enforced by tests).

Run: ``uv run python -m benchmarks.bench_core``

1. Overhead of one operation through the manager to the fake gateway, against calling the fake's
   hook implementation directly (goal: at most 30 us added, median). The two are timed in
   alternating batches (direct, manager, manager, direct, ...) so that a change in machine load
   hits both alike, and the figure is the median of the per-round differences with its spread.
2. Routing among 50 registered gateways (goal: at most 50 us per decision, median).
3. ``gateway plugins`` from a cold start in a fresh interpreter, with every installed plugin
   (goal: under 300 ms), and whether any provider SDK was imported to read metadata. Bytecode
   caching is turned on for the child (this environment sets ``PYTHONDONTWRITEBYTECODE=1``, which
   would time compiling every module from source), into a temporary ``PYTHONPYCACHEPREFIX`` filled
   by one warm-up run; the figure without the cache is printed too, for reference.
"""

from __future__ import annotations

import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
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


def _batch_us(fn: Callable[[], object], per_round: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(per_round):
        fn()
    return (time.perf_counter_ns() - start) / per_round / 1000


def _median_us(fn: Callable[[], object], rounds: int = 31, per_round: int = 200) -> float:
    return statistics.median(_batch_us(fn, per_round) for _ in range(rounds))


def _interleaved(
    direct: Callable[[], object], via: Callable[[], object], rounds: int = 41, per_round: int = 200
) -> tuple[float, float, float, float, float]:
    """Median direct and via-manager times, and the median, first and third quartile of their difference."""
    directs: list[float] = []
    vias: list[float] = []
    for i in range(rounds):
        if i % 2:
            vias.append(_batch_us(via, per_round))
            directs.append(_batch_us(direct, per_round))
        else:
            directs.append(_batch_us(direct, per_round))
            vias.append(_batch_us(via, per_round))
    added = [v - d for v, d in zip(vias, directs, strict=True)]
    q1, _, q3 = statistics.quantiles(added, n=4)
    return statistics.median(directs), statistics.median(vias), statistics.median(added), q1, q3


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


def _show(label: str, figures: tuple[float, float, float, float, float]) -> None:
    direct, via, added, q1, q3 = figures
    print(
        f"  {label:<9} direct {direct:7.2f} us | via manager {via:7.2f} us | "
        f"added {added:6.2f} us median (quartiles {q1:.2f}..{q3:.2f}; goal <= 30)"
    )


def bench_overhead() -> None:
    manager = GatewayManager(
        DeploymentConfig.from_mapping({"gateways": {"fake": {"provider": "fake", "settings": {"test_mode": True}}}})
    )
    fake = manager.gateway_object("fake")
    assert isinstance(fake, FakeGateway)
    request = CheckoutRequest.single("Ticket", Money.of("10", "EUR"), "https://e.invalid/s", "https://e.invalid/c")
    # One logging configuration per process: with cache_logger_on_first_use a later configure() would not apply.
    configure_logging()
    session = manager.create_checkout("fake", request, operation_id="bench")
    status_request = StatusRequest(session.id)
    counter = iter(range(10**9))

    # Short batches, many rounds: on a loaded machine a preemption spoils only the batch it hits,
    # and the median of the differences ignores those.
    status = _interleaved(
        lambda: fake.gateway_payment_status(status_request),
        lambda: manager.payment_status("fake", session.id),
        rounds=401,
        per_round=25,
    )
    checkout = _interleaved(
        lambda: fake.gateway_create_checkout(
            request, OperationContext("fake", "fake", "checkout", f"d{next(counter)}")
        ),
        lambda: manager.create_checkout("fake", request, idempotency_key=f"m{next(counter)}"),
        rounds=301,
        per_round=10,
    )
    print("manager overhead, info lines written as JSON, direct and via manager in alternating batches:")
    _show("status:", status)
    _show("checkout:", checkout)
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
    t1 = _median_us(lambda: router.route(huf), rounds=201, per_round=20)
    t2 = _median_us(lambda: router.route(eur, [Feature.PARTIAL_REFUND]), rounds=201, per_round=20)
    decision = router.route(huf)
    print(
        f"routing among 50 gateways: {t1:6.2f} us (HUF, {len(decision.eligible)} eligible) | "
        f"{t2:6.2f} us (EUR + feature) per decision (goal <= 50)"
    )


PROBE = (
    "import sys, time; t = time.perf_counter();"
    "from gateway_core.cli import main\n"
    "try:\n    main(['plugins', '--json'])\nexcept SystemExit:\n    pass\n"
    f"print('SDKS', [m for m in {SDK_MODULES!r} if m in sys.modules], file=sys.stderr)\n"
    "print('BYTECODE', not sys.dont_write_bytecode, sys.pycache_prefix, file=sys.stderr)"
)


def _cold_runs(env: Mapping[str, str], runs: int) -> tuple[list[float], list[float], str, str]:
    """Wall-clock and CPU milliseconds of ``runs`` fresh interpreters, the SDKs and bytecode lines they print."""
    walls, cpus = [], []
    sdks = bytecode = ""
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, env=env)
        walls.append((time.perf_counter() - start) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000)
        sdks = next(line for line in done.stderr.splitlines() if line.startswith("SDKS"))
        bytecode = next(line for line in done.stderr.splitlines() if line.startswith("BYTECODE"))
    return walls, cpus, sdks.removeprefix("SDKS "), bytecode.removeprefix("BYTECODE ")


def bench_cold_start(runs: int = 15) -> None:
    with tempfile.TemporaryDirectory(prefix="gateway-pycache-") as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        _cold_runs(env, 1)  # warm-up: writes the bytecode cache
        walls, cpus, sdks, bytecode = _cold_runs(env, runs)
    uncached, _, _, _ = _cold_runs({**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, 3)
    writes, prefix = bytecode.split(" ", 1)
    print(
        f"`gateway plugins` cold start: median {statistics.median(walls):.0f} ms wall over {runs} runs "
        f"(min {min(walls):.0f}, max {max(walls):.0f}; goal < 300), median {statistics.median(cpus):.0f} ms CPU; "
        f"provider SDKs imported: {sdks}"
    )
    print(
        f"  bytecode caching on: {writes == 'True'} (cache in {prefix}, filled by one warm-up run); "
        f"compiling everything from source instead (PYTHONDONTWRITEBYTECODE=1): {statistics.median(uncached):.0f} ms"
    )


def main() -> None:
    print(f"python {sys.version.split()[0]}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    bench_overhead()
    bench_routing()
    bench_cold_start()


if __name__ == "__main__":
    main()
