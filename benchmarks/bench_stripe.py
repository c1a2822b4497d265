"""Stripe plugin overhead: a checkout creation through gateway-core against the same call made
directly with ``StripeClient``, both to the same local stand-in, in one run (a figure, not a test).

Run: ``uv run python -m benchmarks.bench_stripe [--calls 600] [--log-level warning] [--profile]``

The stand-in is ``tests/stripe_gateway/standin.py`` (localstripe has no Checkout Sessions), started
on a free loopback port and stopped by PID. Every path uses the SDK's ``RequestsClient`` (one
keep-alive session each), the same parameters, the same retry setting and a fresh idempotency key
per call, and does equivalent work:

* ``direct``: what an integration without gateway-core writes -- the request's amount converted
  to Stripe's minor units, the parameters built, ``StripeClient.v1.checkout.sessions.create``,
  and the fields a host needs read back (id, URL, total as a ``Decimal``, status, expiry). It does
  *not* call ``to_dict()`` (the plugin does not either; it reads the response's parsed JSON);
* ``hook``: the plugin's ``gateway_create_checkout`` called directly (parameters validated and
  built, the SDK call, the normalized ``CheckoutSession``);
* ``manager``: ``GatewayManager.create_checkout`` (the core's checks, routing to the gateway, the
  log line, then the hook).

Samples are interleaved call by call (the order rotates each round, so no path always goes first)
and compared pairwise: each round's framework time over the same round's direct time. The figure
printed is the median of those per-round ratios with its interquartile range, and each path's
median and spread. Goal: the framework at most 5 % slower.

A second, in-process measurement takes the network and the stand-in out: the SDK's HTTP-client
seam answers every path with the same canned Checkout Session, so what is left is CPU time in the
SDK, the plugin and the manager. The paired per-round differences there are the framework's own
cost per call, free of loopback noise. A third runs the same in-process paths with the process
idle for a few milliseconds before each call, as it is while a real call waits on its socket:
the added microseconds it prints are what the same code costs once the CPU caches have gone cold,
which is what the loopback figures carry. ``--log-level warning`` drops the manager's success log
line (to see its share); ``--profile`` also runs cProfile over the manager path.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import pstats
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import stripe  # noqa: TID251 - the baseline is the SDK called directly
from stripe_gateway import PROVIDER
from stripe_gateway.gateway import StripeGateway
from stripe_gateway.metadata import STRIPE_API_VERSION, capabilities

from benchmarks.bench_core import configure_logging
from gateway_core import CheckoutRequest, DeploymentConfig, GatewayManager, Money
from gateway_core.config import GatewaySettings, Secret
from gateway_core.hookspecs import ProviderDefinition, hookimpl
from gateway_core.models import OperationContext

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "sk_test_benchmark_not_a_real_key"
OK, NO = "https://shop.example/ok", "https://shop.example/no"
RETRIES = 2
IDLE = 0.003  # seconds


def _start_standin() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.stripe_gateway.standin"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("PORT "):
        process.kill()
        raise SystemExit(f"stand-in did not start: {line!r}")
    return process, f"http://127.0.0.1:{int(line.split()[1])}"


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    if process.stdout is not None:
        process.stdout.close()
    process.wait(timeout=10)


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


_CANNED = json.dumps(
    {
        "id": "cs_test_canned",
        "object": "checkout.session",
        "amount_total": 1234,
        "currency": "eur",
        "status": "open",
        "url": "https://checkout.example/c/cs_test_canned",
        "expires_at": 1_900_000_000,
        "payment_intent": None,
        "client_reference_id": "bench-1",
        "livemode": False,
        "metadata": {},
    }
).encode()


class CannedClient(stripe.HTTPClient):
    """The SDK's HTTP-client seam answering every request with the same Checkout Session."""

    name = "canned"

    def request(  # type: ignore[override]  # the SDK annotates str bodies; bytes are what clients return
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        return _CANNED, 200, {"Request-Id": "req_canned", "Content-Type": "application/json"}

    def close(self) -> None:
        return None


class _CannedStripe:
    """The real ``stripe`` provider, its gateways built on :class:`CannedClient`."""

    def __init__(self, client: CannedClient) -> None:
        factory = partial(StripeGateway.from_settings, http_client=client)
        self.definition = ProviderDefinition(PROVIDER, capabilities(), factory, "stripe (canned)", asyncio_native=True)

    @hookimpl
    def gateway_providers(self) -> Sequence[ProviderDefinition]:
        return [self.definition]


def _paths(
    manager: GatewayManager, direct_client: stripe.StripeClient, request: CheckoutRequest
) -> dict[str, Callable[[], object]]:
    gateway = manager.gateway_object("bench")

    def manager_path() -> object:
        return manager.create_checkout("bench", request, idempotency_key=uuid.uuid4().hex)

    def hook_path() -> object:
        context = OperationContext("bench", "stripe", "checkout", uuid.uuid4().hex)
        return gateway.gateway_create_checkout(request, context)  # type: ignore[attr-defined]

    def direct_path() -> object:
        item = request.line_items[0]
        unit_minor = int(item.unit_amount.amount * 100)
        session = direct_client.v1.checkout.sessions.create(
            {
                "mode": "payment",
                "line_items": [
                    {
                        "quantity": item.quantity,
                        "price_data": {
                            "currency": item.unit_amount.currency.lower(),
                            "unit_amount": unit_minor,
                            "product_data": {"name": item.name},
                        },
                    }
                ],
                "success_url": request.success_url,
                "cancel_url": request.cancel_url,
                "client_reference_id": "bench-1",
                "payment_intent_data": {"metadata": {"reference": "bench-1"}},
            },
            {"idempotency_key": uuid.uuid4().hex},
        )
        expires = session.expires_at
        return (
            session.id,
            session.url,
            Decimal(session.amount_total or 0) / 100,
            session.currency,
            session.status,
            datetime.fromtimestamp(expires, UTC) if expires else None,
        )

    return {"manager": manager_path, "hook": hook_path, "direct": direct_path}


def _interleaved(
    paths: dict[str, Callable[[], object]], calls: int, warmup: int, *, pause: float = 0.0
) -> dict[str, list[float]]:
    names = list(paths)
    for _ in range(warmup):  # connections, caches, the lazily built SDK client
        for fn in paths.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(calls):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            if pause:
                time.sleep(pause)  # idle before the call, as a process waiting on the network is
            started = time.perf_counter()
            paths[name]()
            samples[name].append((time.perf_counter() - started) * 1e6)
    return samples


def _report(samples: dict[str, list[float]], *, goal: bool) -> None:
    print(f"{'path':<10} {'median':>10} {'q1':>10} {'q3':>10}  (us per checkout)")
    for name, values in samples.items():
        q1, median, q3 = _quartiles(values)
        print(f"{name:<10} {median:10.1f} {q1:10.1f} {q3:10.1f}")
    for name in ("manager", "hook"):
        ratios = [a / b for a, b in zip(samples[name], samples["direct"], strict=True)]
        extra = [a - b for a, b in zip(samples[name], samples["direct"], strict=True)]
        r1, ratio, r3 = _quartiles(ratios)
        e1, added, e3 = _quartiles(extra)
        target = "; goal at most +5 %" if goal else ""
        print(
            f"{name}/direct, paired per round: ratio {ratio:.3f} (IQR {r1:.3f}-{r3:.3f}, {(ratio - 1) * 100:+.1f} %"
            f"{target}), added {added:+.1f} us (IQR {e1:+.1f}..{e3:+.1f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=600, help="calls per path (interleaved)")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--profile", action="store_true", help="also profile the framework path")
    parser.add_argument(
        "--log-level",
        choices=["info", "warning"],
        default="info",
        help="warning drops the manager's one success line per operation (to see what it costs)",
    )
    args = parser.parse_args()
    configure_logging(logging.INFO if args.log_level == "info" else logging.WARNING)  # as bench_core does

    process, url = _start_standin()
    try:
        config = DeploymentConfig(
            [
                GatewaySettings(
                    "bench", "stripe", {"api_key": Secret(API_KEY), "api_base": url, "max_network_retries": RETRIES}
                )
            ]
        )
        manager = GatewayManager(config)
        request = CheckoutRequest.single("Benchmark item", Money.of("12.34", "EUR"), OK, NO, reference="bench-1")
        direct_client = stripe.StripeClient(
            API_KEY,
            stripe_version=STRIPE_API_VERSION,
            base_addresses={"api": url},
            max_network_retries=RETRIES,
            http_client=stripe.RequestsClient(timeout=30),
        )
        paths = _paths(manager, direct_client, request)
        print(f"Over loopback HTTP to the stand-in ({url}), {args.calls} interleaved calls per path:")
        _report(_interleaved(paths, args.calls, args.warmup), goal=True)

        canned = CannedClient()
        in_process = GatewayManager(config, plugins=[_CannedStripe(canned)], load_entry_points=False)
        canned_direct = stripe.StripeClient(
            API_KEY,
            stripe_version=STRIPE_API_VERSION,
            base_addresses={"api": url},
            max_network_retries=RETRIES,
            http_client=canned,
        )
        calls = args.calls * 5
        print(f"\nIn process (canned response at the SDK's HTTP-client seam), {calls} interleaved calls per path:")
        # No I/O in the denominator here, so the ratio says nothing about the goal; the added us do.
        canned_paths = _paths(in_process, canned_direct, request)
        _report(_interleaved(canned_paths, calls, args.warmup), goal=False)
        print(
            f"\nIn process again, the process idle {IDLE * 1000:g} ms before each call (no socket, no stand-in), "
            f"{args.calls} interleaved calls per path:"
        )
        # The same code run after the process has slept, as it has while waiting on a socket: on a
        # shared machine the CPU caches are cold by then, and every path's Python costs more.
        _report(_interleaved(canned_paths, args.calls, args.warmup, pause=IDLE), goal=False)
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(args.calls):
                paths["manager"]()
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out).sort_stats("tottime")
            stats.print_stats(25)
            print(f"\ncProfile of {args.calls} calls through the manager (top 25 by own time):")
            print(out.getvalue())
    finally:
        _stop(process)


if __name__ == "__main__":
    main()
