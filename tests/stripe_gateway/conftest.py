"""Fixtures for the Stripe plugin tests: the spec, the stand-in server, gateways wired to both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import pytest
from stripe_gateway import PROVIDER, definition
from stripe_gateway.gateway import StripeGateway

from gateway_core.config import DeploymentConfig, GatewaySettings, Secret
from gateway_core.hookspecs import ProviderDefinition, hookimpl
from gateway_core.manager import GatewayManager
from tests.stripe_gateway.speccheck import Spec, load_spec
from tests.stripe_gateway.transport import CheckedClient

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"

API_KEY = "sk_test_gateway_core_51TestKeyNotReal0000"
WEBHOOK_SECRET = "whsec_gateway_core_test_secret_0000"


@pytest.fixture(scope="session")
def spec() -> Spec:
    return load_spec()


@pytest.fixture(autouse=True)
def no_spec_violations() -> Iterator[None]:
    """Fail a test in which any request broke Stripe's spec, even where the error itself was caught."""
    CheckedClient.violations.clear()
    yield
    found = list(CheckedClient.violations)
    CheckedClient.violations.clear()
    assert not found, f"requests Stripe's spec refuses: {found}"


@attrs.define
class StandIn:
    """The stand-in server process (tests/stripe_gateway/standin.py) on a loopback port."""

    process: subprocess.Popen[str]
    url: str

    def _call(self, method: str, path: str) -> Any:
        req = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/_standin/stats")  # type: ignore[no-any-return]

    def requests_sent(self) -> int:
        return int(self.stats()["requests"])

    def pay(self, checkout_id: str) -> str:
        return str(self._call("POST", f"/_standin/pay/{checkout_id}")["payment_intent"])

    def decline(self, checkout_id: str, decline_code: str = "generic_decline") -> str:
        """The payer's card is declined on the hosted page (the session stays open); returns its PaymentIntent."""
        return str(self._call("POST", f"/_standin/decline/{checkout_id}?decline_code={decline_code}")["payment_intent"])

    def authenticate(self, payment_intent_id: str, *, passed: bool = True) -> str:
        """The payer completes (or fails) 3-D Secure; returns the PaymentIntent's status after it."""
        result = "pass" if passed else "fail"
        return str(self._call("POST", f"/_standin/authenticate/{payment_intent_id}?result={result}")["status"])

    def fail(self, path: str, status: int = 500, *, should_retry: bool = False) -> None:
        """The next API request to ``path`` answers ``status`` (saved under its key unless retryable)."""
        retry = "true" if should_retry else "false"
        self._call("POST", f"/_standin/fail?path={path}&status={status}&should_retry={retry}")

    def forget_keys(self) -> None:
        """Forget every saved idempotency key, as Stripe prunes keys 24 hours old."""
        self._call("POST", "/_standin/forget")

    def delay(self, path: str, seconds: float) -> None:
        """The next API request to ``path`` is processed after ``seconds``, its key held meanwhile."""
        self._call("POST", f"/_standin/delay?path={path}&seconds={seconds}")


def start_process(args: Sequence[str], ready_prefix: str) -> tuple[subprocess.Popen[str], str]:
    """Start a helper process and read its first line (which must start with ``ready_prefix``)."""
    process = subprocess.Popen(
        list(args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=os.environ.copy()
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith(ready_prefix):
        process.stdout.close()
        process.kill()
        process.wait(timeout=10)
        raise RuntimeError(f"{args[0]} did not start: {line!r}")
    return process, line


def stop_process(process: subprocess.Popen[str]) -> None:
    """Stop a helper process by its PID (terminate, then kill if it lingers)."""
    process.terminate()
    if process.stdout is not None:
        process.stdout.close()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def standin() -> Iterator[StandIn]:
    process, line = start_process([sys.executable, "-m", "tests.stripe_gateway.standin"], "PORT ")
    try:
        yield StandIn(process, f"http://127.0.0.1:{int(line.split()[1])}")
    finally:
        stop_process(process)


class _InCodeStripe:
    """Registers the real ``stripe`` provider with a factory that injects the test HTTP client."""

    def __init__(self, client: CheckedClient, *, localstripe_compatible: bool = False) -> None:
        # The plugin's own definition (capabilities, configure, asyncio), with the test client injected.
        self.definition = attrs.evolve(
            definition(),
            factory=partial(
                StripeGateway.from_settings, http_client=client, localstripe_compatible=localstripe_compatible
            ),
        )

    @hookimpl
    def gateway_providers(self) -> Sequence[ProviderDefinition]:
        return [self.definition]


def settings(api_base: str, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "api_key": Secret(extra.pop("api_key", API_KEY), source="test"),
        "webhook_secret": Secret(WEBHOOK_SECRET, source="test"),
        "api_base": api_base,
    }
    base.update(extra)
    return base


def make_manager(
    client: CheckedClient,
    api_base: str,
    name: str = "stripe_test",
    *,
    localstripe_compatible: bool = False,
    **extra: Any,
) -> GatewayManager:
    """A manager whose ``stripe`` gateway ``name`` talks to ``api_base`` through ``client``.

    ``extra`` are gateway settings; ``localstripe_compatible`` is the factory's test-only switch
    (not a setting) for the cassette-recording tests.
    """
    config = DeploymentConfig([GatewaySettings(name, PROVIDER, settings(api_base, **extra))])
    plugin = _InCodeStripe(client, localstripe_compatible=localstripe_compatible)
    return GatewayManager(config, plugins=[plugin], load_entry_points=False)


@pytest.fixture
def client(spec: Spec) -> CheckedClient:
    return CheckedClient(spec)


@pytest.fixture
def manager(client: CheckedClient, standin: StandIn) -> GatewayManager:
    return make_manager(client, standin.url)
