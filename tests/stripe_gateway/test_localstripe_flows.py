"""Stateful PaymentIntent flows against localstripe, recorded as cassettes that CI replays offline.

By default these tests replay ``cassettes/test_localstripe_flows/*.yaml`` with the network
blocked; no localstripe is needed. To re-record (see docs/stripe.md)::

    STRIPE_RECORD=1 uv run pytest tests/stripe_gateway/test_localstripe_flows.py --record-mode=rewrite

``STRIPE_RECORD=1`` starts localstripe on a free loopback port (``--from-scratch``) and stops it by
PID afterwards; ``--record-mode=rewrite`` records. The configuration is the shared one,
:func:`gateway_core.testing.recording.vcr_config` (what is scrubbed before anything is written, what
a request is matched on; the record mode is left to the command line, ``none`` by default). On
replay nothing listens: the base URL is the one the test's cassette was recorded against, and every
recorded interaction must be played. Every request is still checked against Stripe's spec.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from vcr.cassette import Cassette  # type: ignore[import-untyped]

from gateway_core.errors import AmountOutOfRange, NotFound
from gateway_core.manager import GatewayManager
from gateway_core.models import AuthorizeRequest, CaptureRequest, PaymentState, RefundRequest, VoidRequest
from gateway_core.money import Money
from gateway_core.testing.recording import vcr_config as recording_config
from tests.stripe_gateway.conftest import API_KEY, start_process, stop_process
from tests.stripe_gateway.conftest import make_manager as _make_manager
from tests.stripe_gateway.speccheck import Spec
from tests.stripe_gateway.transport import CheckedClient

RECORDING = os.environ.get("STRIPE_RECORD") == "1"
GW = "stripe_test"
EUR = "EUR"

pytestmark = [pytest.mark.vcr, pytest.mark.block_network]


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return recording_config(secrets=[API_KEY])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def localstripe_url() -> Iterator[str | None]:
    if not RECORDING:
        yield None  # replayed: nothing listens, the cassette answers (see ``ls``)
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
def ls(spec: Spec, localstripe_url: str | None, vcr: Cassette) -> Iterator[tuple[GatewayManager, CheckedClient]]:
    url = localstripe_url
    if url is None:  # the URL the cassette was recorded against (its port was a free one)
        recorded = urlsplit(vcr.requests[0].uri)
        url = f"{recorded.scheme}://{recorded.netloc}"
    client = CheckedClient(spec)
    yield _make_manager(client, url, localstripe_compatible=True, max_network_retries=0), client
    if not RECORDING:
        unplayed = len(vcr.data) - vcr.play_count
        assert vcr.all_played, f"{unplayed} recorded interactions were not played: the cassette is stale"


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
    # Refusing more than remains is Stripe's (localstripe has no such check): see test_checkout.py's
    # over-refund tests on the stand-in, which answers amount_too_large as Stripe does.
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
