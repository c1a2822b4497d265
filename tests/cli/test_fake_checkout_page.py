"""The fake's hosted checkout page, driven over real HTTP on 127.0.0.1 as a person's browser would."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from gateway_core import CheckoutRequest, DeploymentConfig, GatewayManager, Money, PaymentState
from gateway_core.fake.gateway import FakeGateway
from gateway_core.fake.server import FakeCheckoutServer


@pytest.fixture
def manager() -> GatewayManager:
    return GatewayManager(
        DeploymentConfig.from_mapping({"gateways": {"fake": {"provider": "fake", "settings": {"test_mode": True}}}})
    )


@pytest.fixture
def server(manager: GatewayManager) -> Iterator[FakeCheckoutServer]:
    fake = manager.gateway_object("fake")
    assert isinstance(fake, FakeGateway)
    with FakeCheckoutServer(fake) as srv:
        yield srv


def _checkout(manager: GatewayManager, key: str) -> str:
    request = CheckoutRequest.single("Ticket", Money.of("12.50", "EUR"), "https://e.invalid/s", "https://e.invalid/c")
    session = manager.create_checkout("fake", request, idempotency_key=key)
    return session.id


def _post(url: str) -> int:
    req = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:  # follows the 303 back to the page
        return int(resp.status)


def test_server_binds_loopback_and_checkout_urls_point_at_it(
    manager: GatewayManager, server: FakeCheckoutServer
) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    request = CheckoutRequest.single("Ticket", Money.of("5", "EUR"), "https://e.invalid/s", "https://e.invalid/c")
    session = manager.create_checkout("fake", request, idempotency_key="url")
    assert session.url == f"{server.url}/c/{session.id}"
    with urllib.request.urlopen(session.url, timeout=10) as resp:
        page = resp.read().decode()
    assert "5.00 EUR" in page
    assert "not live" in page


@pytest.mark.parametrize(
    ("action", "state"),
    [("pay", PaymentState.SUCCEEDED), ("decline", PaymentState.PENDING), ("abandon", PaymentState.CANCELED)],
)
def test_a_person_pays_declines_or_abandons(
    manager: GatewayManager, server: FakeCheckoutServer, action: str, state: PaymentState
) -> None:
    checkout_id = _checkout(manager, f"person-{action}")
    assert _post(f"{server.url}/c/{checkout_id}/{action}") == 200
    assert manager.payment_status("fake", checkout_id).state is state


def test_a_paid_checkout_cannot_be_paid_again(manager: GatewayManager, server: FakeCheckoutServer) -> None:
    checkout_id = _checkout(manager, "twice")
    _post(f"{server.url}/c/{checkout_id}/pay")
    with pytest.raises(urllib.error.HTTPError) as err:
        _post(f"{server.url}/c/{checkout_id}/pay")
    assert err.value.code == 409
    err.value.close()
    fake = manager.gateway_object("fake")
    assert isinstance(fake, FakeGateway)
    assert fake.payments_made() == 1


def test_unknown_paths_are_404(server: FakeCheckoutServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{server.url}/c/fake_cs_0000/../../etc", timeout=10)
    assert err.value.code == 404
    err.value.close()


def test_running_the_module_explains_instead_of_serving_an_empty_fake() -> None:
    # A server in a process of its own would know none of the host's checkouts: it says so.
    done = subprocess.run(
        [sys.executable, "-m", "gateway_core.fake.server"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "FakeCheckoutServer(fake).start()" in done.stderr
    assert "gateway demo --interactive" in done.stderr
