"""Closing a manager closes the connections the Stripe plugin's own HTTP client opened, every thread's.

These managers load the plugin through its real entry point with nothing injected: the SDK's own
``RequestsClient`` talks to the stand-in over real sockets, and what is open is asked of the
kernel (:func:`tests.core.sockets.connections_to`). The SDK keeps one ``requests.Session`` per
thread, and its own ``close()`` closes only the calling thread's; the host's worker threads, and
the asyncio API's, open sessions too.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from stripe_gateway import PROVIDER
from stripe_gateway._http import ThreadSessions

from gateway_core import AsyncGatewayManager, InvalidRequest, NotFound
from gateway_core.config import DeploymentConfig, GatewaySettings
from gateway_core.manager import GatewayManager
from tests.core.sockets import opened_since_now
from tests.stripe_gateway.conftest import StandIn, make_manager, settings
from tests.stripe_gateway.transport import CheckedClient

NAME = "stripe_close"


@pytest.fixture
def real_manager(standin: StandIn) -> Iterator[Callable[[], GatewayManager]]:
    """Managers built as a host builds them: the plugin's entry point, the SDK's own HTTP client.

    Whatever a test leaves open is closed afterwards, so that one failure is not counted again
    by the next test.
    """
    made: list[GatewayManager] = []

    def make() -> GatewayManager:
        made.append(GatewayManager(DeploymentConfig([GatewaySettings(NAME, PROVIDER, settings(standin.url))])))
        return made[-1]

    yield make
    for manager in made:
        manager.close()


@pytest.fixture
def opened(standin: StandIn) -> Callable[[], int]:
    """How many of the connections to the stand-in this process opened since the test began are open."""
    return opened_since_now(standin.url)


def read(manager: GatewayManager, gateway: str = NAME) -> None:
    """One request to the stand-in (a read: no key needed) that leaves its connection pooled."""
    with pytest.raises(NotFound):
        manager.payment_status(gateway, "pi_missing_close")


def test_close_closes_the_connections_of_every_thread_that_sent_a_request(
    real_manager: Callable[[], GatewayManager], opened: Callable[[], int]
) -> None:
    manager = real_manager()
    both = threading.Barrier(2)

    def on_a_worker(_: int) -> None:
        both.wait(10)  # two workers at once: two threads, two sessions
        read(manager)

    with ThreadPoolExecutor(2) as pool:
        read(manager)
        list(pool.map(on_a_worker, range(2)))
        assert opened() == 3  # one kept alive per thread
        manager.close()  # on this thread, while the workers still run
        assert opened() == 0


def test_close_twice_is_harmless_and_operations_after_it_send_nothing(
    real_manager: Callable[[], GatewayManager], opened: Callable[[], int], standin: StandIn
) -> None:
    manager = real_manager()
    read(manager)
    manager.close()
    manager.close()
    sent = standin.requests_sent()
    with pytest.raises(InvalidRequest, match="closed"):
        manager.payment_status(NAME, "pi_missing_close")
    assert standin.requests_sent() == sent
    assert opened() == 0


def test_a_threads_session_is_closed_when_the_thread_ends(
    real_manager: Callable[[], GatewayManager], opened: Callable[[], int]
) -> None:
    """Sessions are kept for close(), but not past their thread: a host making a thread per request leaks none."""
    manager = real_manager()
    for _ in range(3):
        thread = threading.Thread(target=read, args=(manager,))
        thread.start()
        thread.join(10)
    deadline = time.monotonic() + 5
    while opened() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert opened() == 0


def test_an_http_client_handed_in_is_left_to_its_owner(
    standin: StandIn, client: CheckedClient, opened: Callable[[], int]
) -> None:
    manager = make_manager(client, standin.url, name=NAME)
    read(manager)
    manager.close()
    assert opened() == 1  # the test's client: its owner closes it
    client.close()  # type: ignore[no-untyped-call]  # the SDK's RequestsClient.close
    assert opened() == 0


def test_aclose_after_async_operations_leaves_no_connection(
    real_manager: Callable[[], GatewayManager], opened: Callable[[], int]
) -> None:
    """Async requests keep no connection (a client each); aclose() closes what the sync ones pooled."""
    manager = real_manager()

    async def main() -> None:
        async with AsyncGatewayManager(manager) as amanager:
            with pytest.raises(NotFound):
                await amanager.payment_status(NAME, "pi_missing_close")
        assert manager.closed

    read(manager)
    asyncio.run(main())
    assert opened() == 0


_NEVER_USED = """
import sys
from gateway_core.config import DeploymentConfig, GatewaySettings, Secret
from gateway_core.manager import GatewayManager
config = DeploymentConfig([GatewaySettings("s1", "stripe", {"api_key": Secret("sk_test_lazy_close")})])
with GatewayManager(config) as manager:  # through the real entry point
    pass
manager.close()
print("after closing an unused gateway:", "stripe" in sys.modules)
"""


def test_closing_a_gateway_that_never_ran_an_operation_does_not_import_the_sdk() -> None:
    out = subprocess.run([sys.executable, "-c", _NEVER_USED], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["after closing an unused gateway: False"]


def test_a_response_still_referenced_keeps_no_connection_open_after_close(
    standin: StandIn, opened: Callable[[], int]
) -> None:
    """urllib3 closes a cleared pool's connections only once the pool is collected; a response keeps it alive."""
    sessions = ThreadSessions()
    kept = sessions.request("GET", f"{standin.url}/v1/payment_intents/pi_missing_close", timeout=5)
    assert opened() == 1
    sessions.close()
    assert opened() == 0
    assert kept.status_code >= 400  # still readable: only the connection went
    sessions.close()
