"""Closing a manager closes the PayPal plugin's ``requests.Session``: no connection to PayPal is left open.

The managers load the plugin through its real entry point, nothing injected, and talk to the
stand-in over real sockets; what is open is asked of the kernel
(:func:`tests.core.sockets.connections_to`). All threads share the client's one session.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from paypal_gateway.client import PayPalClient
from paypal_gateway.settings import PayPalSettings

from gateway_core import AsyncGatewayManager, InvalidRequest, NotFound
from gateway_core.config import GatewaySettings
from gateway_core.manager import GatewayManager
from tests.core.sockets import opened_since_now
from tests.paypal_gateway.conftest import GATEWAY, StandIn, paypal_settings


@pytest.fixture
def managers(make_manager: Callable[..., GatewayManager]) -> Iterator[Callable[[], GatewayManager]]:
    """Managers as a host builds them; whatever a test leaves open is closed after it."""
    made: list[GatewayManager] = []

    def make() -> GatewayManager:
        made.append(make_manager())
        return made[-1]

    yield make
    for manager in made:
        manager.close()


@pytest.fixture
def opened(standin: StandIn) -> Callable[[], int]:
    """How many of the connections to the stand-in this process opened since the test began are open."""
    return opened_since_now(standin.base_url)


def read(manager: GatewayManager) -> None:
    """Requests to the stand-in (a token, then reads) that leave their connections pooled."""
    with pytest.raises(NotFound):
        manager.payment_status(GATEWAY, "0MISSING0CLOSE00")


def test_close_closes_every_connection_the_session_pooled(
    managers: Callable[[], GatewayManager], opened: Callable[[], int]
) -> None:
    manager = managers()
    both = threading.Barrier(2)

    def on_a_worker(_: int) -> None:
        both.wait(10)  # two requests at once: two connections in the one session's pool
        read(manager)

    with ThreadPoolExecutor(2) as pool:
        read(manager)
        list(pool.map(on_a_worker, range(2)))
        assert opened() >= 1
        manager.close()  # while the worker threads still run
        assert opened() == 0


def test_close_twice_is_harmless_and_operations_after_it_send_nothing(
    managers: Callable[[], GatewayManager], opened: Callable[[], int], standin: StandIn
) -> None:
    manager = managers()
    read(manager)
    manager.close()
    manager.close()
    sent = len(standin.requests())
    with pytest.raises(InvalidRequest, match="closed"):
        manager.payment_status(GATEWAY, "0MISSING0CLOSE00")
    assert len(standin.requests()) == sent
    assert opened() == 0


def test_aclose_closes_the_session_the_worker_threads_used(
    managers: Callable[[], GatewayManager], opened: Callable[[], int]
) -> None:
    manager = managers()

    async def main() -> None:
        async with AsyncGatewayManager(manager) as amanager:
            with pytest.raises(NotFound):
                await amanager.payment_status(GATEWAY, "0MISSING0CLOSE00")
            assert opened() >= 1

    asyncio.run(main())
    assert manager.closed
    assert opened() == 0


def test_a_session_handed_to_the_client_is_left_to_its_owner(standin: StandIn, opened: Callable[[], int]) -> None:
    settings = PayPalSettings.from_gateway(GatewaySettings(GATEWAY, "paypal", paypal_settings(standin)))
    session = requests.Session()
    client = PayPalClient(settings, session=session)
    client.access_token()
    client.close()
    assert opened() == 1  # the owner's session is still open
    session.close()
    assert opened() == 0
    own = PayPalClient(settings)
    own.access_token()
    own.close()
    own.close()
    assert opened() == 0


_NEVER_USED = """
import sys
from gateway_core.config import DeploymentConfig, GatewaySettings, Secret
from gateway_core.manager import GatewayManager
settings = {"client_id": Secret("id"), "client_secret": Secret("secret"), "environment": "sandbox"}
with GatewayManager(DeploymentConfig([GatewaySettings("p1", "paypal", settings)])) as manager:
    pass
manager.close()
loaded = sorted(n for n in sys.modules if n.split(".")[0] in ("paypalserversdk", "apimatic_core", "requests"))
print("after closing an unused gateway:", loaded)
"""


def test_closing_a_gateway_that_never_ran_an_operation_imports_no_sdk() -> None:
    out = subprocess.run([sys.executable, "-c", _NEVER_USED], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["after closing an unused gateway: []"]
