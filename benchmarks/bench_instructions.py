"""Instructions per operation, counted by valgrind's callgrind (a figure, not a test).

Run: ``uv run python -m benchmarks.bench_instructions [--calls 200] [--log-level warning]``

Wall-clock figures on a shared machine move by a third from one run to the next; instruction
counts do not (the same count twice, whatever else the machine is doing). They are what to compare
before and after a change to the hot path. Each path runs in a fresh interpreter under
``valgrind --tool=callgrind`` twice, both times with the same warm-up calls and then with 0 or
``--calls`` counted calls; the difference divided by ``--calls`` is the path's instructions per
call. ``PYTHONHASHSEED=0`` keeps dict and set layouts the same between the two. A full garbage
collection after the warm-up starts the counted calls with every generation empty: an operation
frees what it allocates, so none runs among them, where one full collection (its cost set by the
whole heap, so by how much code is loaded) would otherwise land in the counted window or not
depending on where the warm-up left the collector's counters, and add 10,000 to 20,000
instructions per call to one path and not another.

The paths are the other benchmarks' own, in process and without I/O:

* ``bench_core``'s overhead: the fake gateway's status and checkout hooks called directly, and
  the same operations through ``GatewayManager``;
* ``bench_stripe``'s in-process run: a Stripe checkout with ``StripeClient`` directly, through the
  plugin's hook, and through the manager, every path answered by the same canned Checkout Session.

Logging is configured as in those benchmarks (JSON lines at info, written to ``os.devnull``);
``--log-level warning`` drops the manager's success lines. Without valgrind the benchmark says so
and exits 0.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 100

#: (path, the path it is compared with), in the order printed.
PATHS: tuple[tuple[str, str | None], ...] = (
    ("fake.status.direct", None),
    ("fake.status.manager", "fake.status.direct"),
    ("fake.checkout.direct", None),
    ("fake.checkout.manager", "fake.checkout.direct"),
    ("stripe.checkout.direct", None),
    ("stripe.checkout.hook", "stripe.checkout.direct"),
    ("stripe.checkout.manager", "stripe.checkout.direct"),
)


def _fake_paths() -> dict[str, Callable[[], object]]:
    from gateway_core import CheckoutRequest, DeploymentConfig, GatewayManager, Money, StatusRequest  # noqa: PLC0415
    from gateway_core.fake.gateway import FakeGateway  # noqa: PLC0415
    from gateway_core.models import OperationContext  # noqa: PLC0415

    manager = GatewayManager(
        DeploymentConfig.from_mapping({"gateways": {"fake": {"provider": "fake", "settings": {"test_mode": True}}}})
    )
    fake = manager.gateway_object("fake")
    assert isinstance(fake, FakeGateway)
    request = CheckoutRequest.single("Ticket", Money.of("10", "EUR"), "https://e.invalid/s", "https://e.invalid/c")
    session = manager.create_checkout("fake", request, operation_id="bench")
    status = StatusRequest(session.id)
    return {
        "fake.status.direct": lambda: fake.gateway_payment_status(status),
        "fake.status.manager": lambda: manager.payment_status("fake", session.id),
        "fake.checkout.direct": lambda: fake.gateway_create_checkout(
            request, OperationContext("fake", "fake", "checkout", uuid.uuid4().hex)
        ),
        "fake.checkout.manager": lambda: manager.create_checkout("fake", request, idempotency_key=uuid.uuid4().hex),
    }


def _stripe_paths() -> dict[str, Callable[[], object]]:
    import stripe  # noqa: PLC0415, TID251 - the baseline is the SDK called directly
    from stripe_gateway.metadata import STRIPE_API_VERSION  # noqa: PLC0415

    from benchmarks import bench_stripe  # noqa: PLC0415
    from gateway_core import CheckoutRequest, DeploymentConfig, GatewayManager, Money  # noqa: PLC0415
    from gateway_core.config import GatewaySettings, Secret  # noqa: PLC0415

    url = "http://127.0.0.1:9"  # never reached: the canned client answers
    settings = {"api_key": Secret(bench_stripe.API_KEY), "api_base": url, "max_network_retries": bench_stripe.RETRIES}
    config = DeploymentConfig([GatewaySettings("bench", "stripe", settings)])
    canned = bench_stripe.CannedClient()
    manager = GatewayManager(config, plugins=[bench_stripe._CannedStripe(canned)], load_entry_points=False)
    direct = stripe.StripeClient(
        bench_stripe.API_KEY,
        stripe_version=STRIPE_API_VERSION,
        base_addresses={"api": url},
        max_network_retries=bench_stripe.RETRIES,
        http_client=canned,
    )
    request = CheckoutRequest.single(
        "Benchmark item", Money.of("12.34", "EUR"), bench_stripe.OK, bench_stripe.NO, reference="bench-1"
    )
    paths = bench_stripe._paths(manager, direct, request)
    return {f"stripe.checkout.{name}": fn for name, fn in paths.items()}


def _child(path: str, calls: int, level: int) -> None:
    """Run in the interpreter valgrind counts: set up, warm up, then ``calls`` calls of ``path``."""
    from benchmarks.bench_core import configure_logging  # noqa: PLC0415

    configure_logging(level)
    fn = (_fake_paths() if path.startswith("fake.") else _stripe_paths())[path]
    for _ in range(WARMUP):
        fn()
    gc.collect()  # counted calls start with empty generations (see the module docstring)
    for _ in range(calls):
        fn()


def _count(path: str, calls: int, log_level: str) -> int:
    """Instructions callgrind counts for a whole child interpreter."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "benchmarks.bench_instructions",
            "--child",
            path,
            "--calls",
            str(calls),
            "--log-level",
            log_level,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"callgrind printed no count for {path}:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200, help="counted calls per path")
    parser.add_argument("--log-level", choices=["info", "warning"], default="info")
    parser.add_argument("--child", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    level = logging.INFO if args.log_level == "info" else logging.WARNING
    if args.child:
        _child(args.child, args.calls, level)
        return
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: no instruction counts (Debian: apt-get install valgrind)")
        return

    runs = [(path, calls) for path, _ in PATHS for calls in (0, args.calls)]
    print(
        f"Instructions per call, callgrind, {args.calls} calls after {WARMUP} warm-up calls, "
        f"log level {args.log_level} ({len(runs)} interpreters under valgrind; this takes a few minutes):"
    )
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        totals = dict(zip(runs, pool.map(lambda run: _count(run[0], run[1], args.log_level), runs), strict=True))
    per_call = {path: (totals[(path, args.calls)] - totals[(path, 0)]) / args.calls for path, _ in PATHS}
    print(f"{'path':<26} {'instructions':>13}  compared")
    for path, baseline in PATHS:
        compared = ""
        if baseline is not None:
            added = per_call[path] - per_call[baseline]
            compared = f"{added:+,.0f} ({added / per_call[baseline] * 100:+.1f} %) over {baseline}"
        print(f"{path:<26} {per_call[path]:13,.0f}  {compared}")


if __name__ == "__main__":
    main()
