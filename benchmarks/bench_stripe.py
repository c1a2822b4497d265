"""Stripe plugin overhead: a checkout creation through gateway-core against the same call made
directly with ``StripeClient``, both to the same local stand-in, in one run (a figure, not a test).

Run: ``uv run python -m benchmarks.bench_stripe [--rounds 15] [--per-round 40]``

The stand-in is ``tests/stripe_gateway/standin.py`` (localstripe has no Checkout Sessions), started
on a free loopback port and stopped by PID. Both paths use the SDK's ``RequestsClient`` (one
keep-alive session), the same parameters and a fresh idempotency key per call; rounds alternate
which path goes first. Goal: the framework at most 5 % slower (median of per-round medians).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import stripe  # noqa: TID251 - the baseline is the SDK called directly
from stripe_gateway.metadata import STRIPE_API_VERSION

from benchmarks.bench_core import configure_logging
from gateway_core import CheckoutRequest, DeploymentConfig, GatewayManager, Money
from gateway_core.config import GatewaySettings, Secret
from gateway_core.models import OperationContext

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "sk_test_benchmark_not_a_real_key"
OK, NO = "https://shop.example/ok", "https://shop.example/no"


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


def _per_call_us(fn: Callable[[], object], calls: int) -> float:
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--per-round", type=int, default=40)
    args = parser.parse_args()
    configure_logging()  # the same production-like setup as bench_core

    process, url = _start_standin()
    try:
        config = DeploymentConfig(
            [
                GatewaySettings(
                    "bench", "stripe", {"api_key": Secret(API_KEY), "api_base": url, "max_network_retries": 2}
                )
            ]
        )
        manager = GatewayManager(config)
        request = CheckoutRequest.single("Benchmark item", Money.of("12.34", "EUR"), OK, NO, reference="bench-1")
        direct = stripe.StripeClient(
            API_KEY,
            stripe_version=STRIPE_API_VERSION,
            base_addresses={"api": url},
            max_network_retries=2,
            http_client=stripe.RequestsClient(timeout=30),
        )

        def through_framework() -> object:
            return manager.create_checkout("bench", request, idempotency_key=uuid.uuid4().hex)

        gateway = manager.gateway_object("bench")

        def plugin_hook_only() -> object:
            context = OperationContext("bench", "stripe", "checkout", uuid.uuid4().hex)
            return gateway.gateway_create_checkout(request, context)  # type: ignore[attr-defined]

        def sdk_directly() -> object:
            session = direct.v1.checkout.sessions.create(
                {
                    "mode": "payment",
                    "line_items": [
                        {
                            "quantity": 1,
                            "price_data": {
                                "currency": "eur",
                                "unit_amount": 1234,
                                "product_data": {"name": "Benchmark item"},
                            },
                        }
                    ],
                    "success_url": OK,
                    "cancel_url": NO,
                    "client_reference_id": "bench-1",
                },
                {"idempotency_key": uuid.uuid4().hex},
            )
            return session.to_dict()

        paths = (through_framework, plugin_hook_only, sdk_directly)
        for fn in paths:  # warm up connections and caches
            _per_call_us(fn, 20)
        medians: dict[str, list[float]] = {fn.__name__: [] for fn in paths}
        for i in range(args.rounds):
            for fn in paths if i % 2 == 0 else tuple(reversed(paths)):
                medians[fn.__name__].append(_per_call_us(fn, args.per_round))
        framework, hook, sdk = (statistics.median(medians[fn.__name__]) for fn in paths)
        print(f"checkout creation via GatewayManager:   {framework:9.1f} us (median of {args.rounds} round medians)")
        print(f"  the plugin's hook called directly:    {hook:9.1f} us")
        print(f"checkout creation via StripeClient:     {sdk:9.1f} us")
        print(
            f"ratio framework/direct: {framework / sdk:.3f} ({(framework / sdk - 1) * 100:+.1f} %; goal at most +5 %)"
        )
        print(
            f"  of which the plugin:  {hook / sdk:.3f} ({hook - sdk:+.1f} us); the core manager: {framework - hook:+.1f} us"
        )
    finally:
        _stop(process)


if __name__ == "__main__":
    main()
