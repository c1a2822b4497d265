"""The example plugin against a cassette recorded from its stand-in, with the shared recording config.

By default (what CI runs) the cassette in ``cassettes/test_recorded/`` is replayed with the
network blocked and no stand-in running: the gateway points at a port nothing listens on, and
every answer comes from the cassette. To re-record (then read the diff before committing)::

    uv run pytest tests/example_gateway/test_recorded.py --record-mode=rewrite

which starts the stand-in on a free loopback port for each test. The port is not matched, the
``Idempotency-Key`` header is not matched, and the checkout's ``expires_at`` is a volatile field;
every other part of each request is.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from example_gateway.stand_in import ExamplePaymentsAPI

from gateway_core import (
    AuthorizeRequest,
    CaptureRequest,
    CheckoutRequest,
    GatewayManager,
    Money,
    PaymentState,
    RefundRequest,
)
from gateway_core.testing.recording import vcr_config as recording_config
from tests.example_gateway.conftest import API_KEY, WEBHOOK_SECRET, example_manager

pytestmark = pytest.mark.vcr

#: Replayed, the gateway is pointed here: nothing listens, so only the cassette can answer.
NOWHERE = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return recording_config(secrets=[API_KEY, WEBHOOK_SECRET])


@pytest.fixture
def recorded(record_mode: str) -> Iterator[GatewayManager]:
    """A manager for the example gateway: on a fresh stand-in when recording, on nothing when replaying."""
    if record_mode == "none":
        yield example_manager(NOWHERE)
        return
    with ExamplePaymentsAPI(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET) as api:
        yield example_manager(api.base_url)


def test_authorize_capture_refund_and_status(recorded: GatewayManager) -> None:
    request = AuthorizeRequest(Money.of("42.50", "EUR"), "pm_card_ok", reference="order-recorded-1")
    auth = recorded.authorize("example", request, idempotency_key="rec-auth-1")
    assert (auth.state, auth.amount) == (PaymentState.AUTHORIZED, Money.of("42.50", "EUR"))
    capture = recorded.capture("example", CaptureRequest(auth.id), idempotency_key="rec-capture-1")
    assert capture.amount == Money.of("42.50", "EUR")
    refund = recorded.refund(
        "example", RefundRequest(auth.id, Money.of("10.00", "EUR")), idempotency_key="rec-refund-1"
    )
    assert refund.amount == Money.of("10.00", "EUR")
    status = recorded.payment_status("example", auth.id)
    assert status.state is PaymentState.PARTIALLY_REFUNDED
    assert (status.amount_captured, status.amount_refunded) == (Money.of("42.50", "EUR"), Money.of("10.00", "EUR"))


def test_checkout_in_jpy_with_an_expiry(recorded: GatewayManager) -> None:
    now = recorded.clock()
    expiry = recorded.gateway("example").capabilities.checkout_expiry
    assert expiry is not None
    request = CheckoutRequest.single(
        "Ticket",
        Money.of("500", "JPY"),
        "https://shop.example/ok",
        "https://shop.example/no",
        reference="order-recorded-2",
        expires_at=expiry.fit(now + timedelta(hours=2), now),
    )
    session = recorded.create_checkout("example", request, idempotency_key="rec-checkout-2")
    assert session.amount == Money.of("500", "JPY")
    assert session.raw["amount"] == 500  # the recorded request and answer: 500 yen, not 50000
