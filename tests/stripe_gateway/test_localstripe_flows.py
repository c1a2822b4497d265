"""Stateful PaymentIntent flows against localstripe, recorded as cassettes that CI replays offline.

By default these tests replay ``cassettes/test_localstripe_flows/*.yaml`` with the network
blocked; no localstripe is needed. To re-record (see docs/stripe.md)::

    STRIPE_RECORD=1 uv run pytest tests/stripe_gateway/test_localstripe_flows.py

which starts localstripe on a free loopback port (``--from-scratch``), records, and stops it by PID.
Cassettes are matched on method, scheme, host, path and query (not the port, which is free each
time, nor headers or bodies); the Authorization and client-user-agent headers and client secrets
are scrubbed before anything is written. Every request is still checked against Stripe's spec.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from gateway_core.errors import AmountOutOfRange, NotFound
from gateway_core.manager import GatewayManager
from gateway_core.models import AuthorizeRequest, CaptureRequest, PaymentState, RefundRequest, VoidRequest
from gateway_core.money import Money
from tests.stripe_gateway.conftest import make_manager as _make_manager
from tests.stripe_gateway.conftest import start_process, stop_process
from tests.stripe_gateway.speccheck import Spec
from tests.stripe_gateway.transport import CheckedClient

RECORDING = os.environ.get("STRIPE_RECORD") == "1"
GW = "stripe_test"
EUR = "EUR"

pytestmark = [pytest.mark.vcr, pytest.mark.block_network]

_CLIENT_SECRET = re.compile(rb"(pi_[A-Za-z0-9]+)_secret_[A-Za-z0-9]+")


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    body = response.get("body", {})
    if isinstance(body.get("string"), bytes):
        body["string"] = _CLIENT_SECRET.sub(rb"\1_secret_REDACTED", body["string"])
    return response


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return {
        "record_mode": "rewrite" if RECORDING else "none",
        "match_on": ["method", "scheme", "host", "path", "query"],
        "filter_headers": ["authorization", "x-stripe-client-user-agent", "user-agent"],
        "before_record_response": _scrub_response,
        "decode_compressed_response": True,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def localstripe_url() -> Iterator[str]:
    if not RECORDING:
        yield "http://127.0.0.1:8420"  # replayed: nothing listens, the cassette answers
        return
    port = _free_port()
    process, _ = start_process(
        [sys.executable, "-c", _LAUNCH, str(port)],
        "READY",
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


# localstripe prints nothing when ready; this launcher waits for the port, then says READY.
_LAUNCH = """
import signal, socket, subprocess, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so the finally below stops localstripe
port = sys.argv[1]
proc = subprocess.Popen([sys.executable, "-m", "localstripe", "--port", port, "--from-scratch"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", int(port)), timeout=0.2).close()
        break
    except OSError:
        time.sleep(0.1)
print("READY", flush=True)
try:
    proc.wait()
finally:
    proc.terminate()
    proc.wait(timeout=10)
"""


@pytest.fixture
def ls(spec: Spec, localstripe_url: str) -> tuple[GatewayManager, CheckedClient]:
    client = CheckedClient(spec)
    return _make_manager(client, localstripe_url, localstripe_compatible=True, max_network_retries=0), client


def authorize(manager: GatewayManager, amount: str, key: str) -> str:
    auth = manager.authorize(GW, AuthorizeRequest(Money.of(amount, EUR), "pm_card_visa"), idempotency_key=key)
    assert auth.state is PaymentState.AUTHORIZED
    assert auth.amount == Money.of(amount, EUR)
    assert auth.live is False
    return auth.id


def test_authorize_then_full_capture(ls: tuple[GatewayManager, CheckedClient]) -> None:
    manager, client = ls
    payment_id = authorize(manager, "25.00", "ls-auth-1")
    status = manager.payment_status(GW, payment_id)
    assert status.state is PaymentState.AUTHORIZED
    assert status.amount_captured == Money.zero(EUR)
    capture = manager.capture(GW, CaptureRequest(payment_id), idempotency_key="ls-cap-1")
    assert capture.state is PaymentState.SUCCEEDED
    assert capture.amount == Money.of("25.00", EUR)
    status = manager.payment_status(GW, payment_id)
    assert status.is_paid
    assert status.amount_captured == Money.of("25.00", EUR)
    assert [s.idempotency_key for s in client.posts()] == ["ls-auth-1", "ls-cap-1"]


def test_partial_capture(ls: tuple[GatewayManager, CheckedClient]) -> None:
    manager, client = ls
    payment_id = authorize(manager, "10.00", "ls-auth-2")
    capture = manager.capture(GW, CaptureRequest(payment_id, Money.of("6.00", EUR)), idempotency_key="ls-cap-2")
    assert capture.amount == Money.of("6.00", EUR)
    sent = [s for s in client.posts() if s.template.endswith("/capture")]
    assert sent[0].params == {"amount_to_capture": "600"}


def test_capture_beyond_the_authorization_is_refused_before_sending(ls: tuple[GatewayManager, CheckedClient]) -> None:
    manager, client = ls
    payment_id = authorize(manager, "10.00", "ls-auth-3")
    with pytest.raises(AmountOutOfRange):
        manager.capture(GW, CaptureRequest(payment_id, Money.of("10.01", EUR)), idempotency_key="ls-cap-3")
    assert [s.template for s in client.posts()] == ["/v1/payment_intents"]


def test_void_cancels_the_authorization(ls: tuple[GatewayManager, CheckedClient]) -> None:
    manager, _ = ls
    payment_id = authorize(manager, "12.00", "ls-auth-4")
    void = manager.void(GW, VoidRequest(payment_id), idempotency_key="ls-void-4")
    assert void.state is PaymentState.CANCELED
    assert manager.payment_status(GW, payment_id).state is PaymentState.CANCELED
    # (localstripe would still capture a canceled PaymentIntent; the stand-in tests cover refusal.)


def test_full_partial_and_repeated_refunds(ls: tuple[GatewayManager, CheckedClient]) -> None:
    manager, client = ls
    payment_id = authorize(manager, "30.00", "ls-auth-5")
    manager.capture(GW, CaptureRequest(payment_id), idempotency_key="ls-cap-5")
    first = manager.refund(GW, RefundRequest(payment_id, Money.of("10.00", EUR)), idempotency_key="ls-ref-5a")
    second = manager.refund(GW, RefundRequest(payment_id, Money.of("5.00", EUR)), idempotency_key="ls-ref-5b")
    assert (first.amount, second.amount) == (Money.of("10.00", EUR), Money.of("5.00", EUR))
    assert first.id != second.id
    status = manager.payment_status(GW, payment_id)
    assert status.state is PaymentState.PARTIALLY_REFUNDED
    assert status.amount_refunded == Money.of("15.00", EUR)
    # localstripe has no over-refund check; the plugin refuses before sending anything.
    with pytest.raises(AmountOutOfRange):
        manager.refund(GW, RefundRequest(payment_id, Money.of("15.01", EUR)), idempotency_key="ls-ref-5c")
    rest = manager.refund(GW, RefundRequest(payment_id, Money.of("15.00", EUR)), idempotency_key="ls-ref-5d")
    assert rest.amount == Money.of("15.00", EUR)
    status = manager.payment_status(GW, payment_id)
    assert status.state is PaymentState.REFUNDED
    assert status.amount_refunded == Money.of("30.00", EUR)
    refund_keys = [s.idempotency_key for s in client.posts() if s.template == "/v1/refunds"]
    assert refund_keys == ["ls-ref-5a", "ls-ref-5b", "ls-ref-5d"]


def test_full_refund_of_a_captured_payment(ls: tuple[GatewayManager, CheckedClient]) -> None:
    manager, client = ls
    payment_id = authorize(manager, "20.00", "ls-auth-6")
    manager.capture(GW, CaptureRequest(payment_id), idempotency_key="ls-cap-6")
    refund = manager.refund(GW, RefundRequest(payment_id, reason="order cancelled"), idempotency_key="ls-ref-6")
    assert refund.amount == Money.of("20.00", EUR)
    assert refund.payment_id == payment_id
    status = manager.payment_status(GW, payment_id)
    assert status.state is PaymentState.REFUNDED
    sent = [s.params for s in client.posts() if s.template == "/v1/refunds"]
    # A reason that is not one of Stripe's three travels in metadata (localstripe rejects ``reason``
    # itself; the stand-in tests cover Stripe's own reasons).
    assert sent == [{"payment_intent": payment_id, "metadata": {"reason": "order cancelled"}}]
    assert refund.reason == "order cancelled"


def test_unknown_payment_is_not_found(ls: tuple[GatewayManager, CheckedClient]) -> None:
    manager, _ = ls
    with pytest.raises(NotFound):
        manager.payment_status(GW, "pi_doesnotexist000")
