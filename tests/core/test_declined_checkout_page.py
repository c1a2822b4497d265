"""A declined card on the fake's hosted checkout page: the page stays usable and the payer pays on it.

As on Stripe's hosted Checkout, a declined card leaves the checkout open (the PaymentIntent "returns
to requires_payment_method so that the payment can be retried", stripe.com/docs/payments/paymentintents/lifecycle):
the payment reads ``PENDING``, the page says the card was declined and still offers Pay, and the
payer pays there with another card. Driven over real HTTP on 127.0.0.1, as a browser would.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest

from gateway_core import CheckoutRequest, CheckoutStatus, EventType, GatewayManager, Money, PaymentState
from gateway_core.fake import FakeGateway
from gateway_core.fake.server import FakeCheckoutServer

from .conftest import build_manager, fake, fake_table


@pytest.fixture
def manager() -> GatewayManager:
    return build_manager({"fake": fake_table()})


@pytest.fixture
def f(manager: GatewayManager) -> FakeGateway:
    return fake(manager, "fake")


@pytest.fixture
def server(f: FakeGateway) -> Iterator[FakeCheckoutServer]:
    with FakeCheckoutServer(f) as srv:
        yield srv


def post(url: str) -> tuple[int, str, str]:
    """POST as the page's form does and follow the 303: the status, final URL and page shown."""
    request = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status), response.url, response.read().decode()


def test_a_declined_card_leaves_the_page_open_and_the_payer_pays_on_it(
    manager: GatewayManager, f: FakeGateway, server: FakeCheckoutServer
) -> None:
    request = CheckoutRequest.single("Ticket", Money.of("12.50", "EUR"), "https://e.invalid/s", "https://e.invalid/c")
    session = manager.create_checkout("fake", request, idempotency_key="page-decline")

    status, url, page = post(f"{server.url}/c/{session.id}/decline")
    assert status == 200
    assert url.startswith(f"{server.url}/c/{session.id}")  # back on the same checkout page
    assert "Your card was declined" in page  # the payer is told, as a provider's page does
    assert "payment: pending" in page  # not failed: the checkout still takes a payment
    assert f'action="/c/{session.id}/pay"' in page  # ... and still offers it
    assert manager.payment_status("fake", session.id).state is PaymentState.PENDING
    assert f.pending_webhooks() == [EventType.PAYMENT_FAILED.value]  # the attempt is reported

    status, url, page = post(f"{server.url}/c/{session.id}/pay")  # another card, on the same page
    assert status == 200
    assert manager.payment_status("fake", session.id).state is PaymentState.SUCCEEDED
    assert f.checkout(session.id).status is CheckoutStatus.COMPLETE
    assert "declined" not in page  # the page now shows the payment, without the old decline
    assert "/pay" not in page
    assert f.payments_made() == 1


def test_the_decline_notice_is_shown_only_while_the_checkout_is_open(
    manager: GatewayManager, f: FakeGateway, server: FakeCheckoutServer
) -> None:
    request = CheckoutRequest.single("Ticket", Money.of("5", "EUR"), "https://e.invalid/s", "https://e.invalid/c")
    session = manager.create_checkout("fake", request, idempotency_key="page-notice")
    post(f"{server.url}/c/{session.id}/decline")
    f.abandon_checkout(session.id)
    with urllib.request.urlopen(f"{server.url}/c/{session.id}?declined=1", timeout=10) as response:
        page = response.read().decode()
    assert "Checkout: expired; payment: canceled" in page
    assert "declined" not in page
