"""Under the asyncio API the plugin is asyncio-native: its hooks run the SDK's ``*_async`` methods.

``AsyncGatewayManager`` calls an asyncio-native gateway on the event loop; these tests check that
each operation went through the SDK's async path (httpx), with the same idempotency keys, spec
checks and fault handling as the sync path.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
import structlog
from stripe_gateway import definition
from stripe_gateway._http import AsyncHTTPClient

from gateway_core.aio import AsyncGatewayManager
from gateway_core.errors import NotFound, OutcomeUnknown, PaymentDeclined
from gateway_core.models import (
    AuthorizeRequest,
    CaptureRequest,
    CheckoutRequest,
    PaymentState,
    RefundRequest,
    VoidRequest,
)
from gateway_core.money import Money
from tests.stripe_gateway.conftest import API_KEY, ROOT, WEBHOOK_SECRET, StandIn, make_manager
from tests.stripe_gateway.transport import CheckedClient

GW = "stripe_test"
T = TypeVar("T")


def run(client: CheckedClient, standin: StandIn, scenario: Callable[[AsyncGatewayManager], Awaitable[T]]) -> T:
    async def main() -> T:
        async with AsyncGatewayManager(make_manager(client, standin.url)) as manager:
            return await scenario(manager)

    return asyncio.run(main())


def test_the_provider_is_declared_asyncio_native() -> None:
    assert definition().asyncio_native is True


def test_checkout_status_and_refund_use_the_async_client(client: CheckedClient, standin: StandIn) -> None:
    async def scenario(manager: AsyncGatewayManager) -> None:
        request = CheckoutRequest.single("Async", Money.of("21.00", "EUR"), "https://a.example/", "https://b.example/")
        session = await manager.create_checkout(GW, request, idempotency_key="async-co")
        assert session.amount == Money.of("21.00", "EUR")
        assert (await manager.payment_status(GW, session.id)).state is PaymentState.PENDING
        payment_id = standin.pay(session.id)
        refund = await manager.refund(GW, RefundRequest(payment_id, Money.of("1.00", "EUR")), idempotency_key="async-r")
        assert refund.amount == Money.of("1.00", "EUR")
        status = await manager.payment_status(GW, payment_id)
        assert status.state is PaymentState.PARTIALLY_REFUNDED

    run(client, standin, scenario)
    assert client.async_requests == len(client.sent) == 5  # create, status, retrieve, refund, status
    assert [s.idempotency_key for s in client.posts()] == ["async-co", "async-r"]


def test_authorize_capture_void_and_errors_async(client: CheckedClient, standin: StandIn) -> None:
    async def scenario(manager: AsyncGatewayManager) -> None:
        auth = await manager.authorize(
            GW, AuthorizeRequest(Money.of("8.00", "USD"), "pm_card_visa"), idempotency_key="aa"
        )
        capture = await manager.capture(GW, CaptureRequest(auth.id, Money.of("5.00", "USD")), idempotency_key="ac")
        assert capture.amount == Money.of("5.00", "USD")
        other = await manager.authorize(
            GW, AuthorizeRequest(Money.of("8.00", "USD"), "pm_card_visa"), idempotency_key="ab"
        )
        assert (await manager.void(GW, VoidRequest(other.id), idempotency_key="av")).state is PaymentState.CANCELED
        with pytest.raises(PaymentDeclined) as declined:
            await manager.authorize(
                GW, AuthorizeRequest(Money.of("8.00", "USD"), "pm_card_chargeDeclined"), idempotency_key="ad"
            )
        assert declined.value.decline_code == "generic_decline"
        with pytest.raises(NotFound):
            await manager.payment_status(GW, "pi_missing_async")

    run(client, standin, scenario)
    assert client.async_requests == len(client.sent)


def test_async_retry_after_a_dropped_connection_makes_one_session(client: CheckedClient, standin: StandIn) -> None:
    before = standin.stats()["sessions"]
    client.faults.append("drop_after_send")

    async def scenario(manager: AsyncGatewayManager) -> None:
        request = CheckoutRequest.single("Async", Money.of("3.00", "EUR"), "https://a.example/", "https://b.example/")
        await manager.create_checkout(GW, request, idempotency_key="async-drop")

    run(client, standin, scenario)
    assert [s.idempotency_key for s in client.posts()] == ["async-drop", "async-drop"]
    assert standin.stats()["sessions"] == before + 1


def test_async_faults_beyond_the_budget_are_outcome_unknown(client: CheckedClient, standin: StandIn) -> None:
    client.faults.extend(["timeout"] * 3)

    async def scenario(manager: AsyncGatewayManager) -> None:
        request = CheckoutRequest.single("Async", Money.of("3.00", "EUR"), "https://a.example/", "https://b.example/")
        with pytest.raises(OutcomeUnknown):
            await manager.create_checkout(GW, request, idempotency_key="async-timeout")

    run(client, standin, scenario)


def test_gateway_check_runs_async(client: CheckedClient, standin: StandIn) -> None:
    async def scenario(manager: AsyncGatewayManager) -> list[bool]:
        return [r.ok for r in await manager.check(GW)]

    assert run(client, standin, scenario) == [True] * 6  # credentials and five write permissions
    assert client.async_requests == 6


@pytest.fixture
def httpx_clients(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every ``httpx.AsyncClient`` built during the test, in order (to check each was closed)."""
    import httpx

    opened: list[httpx.AsyncClient] = []
    real_init = httpx.AsyncClient.__init__

    def counting_init(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
        opened.append(self)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "__init__", counting_init)
    return opened


def test_no_httpx_client_is_built_until_an_async_request_and_none_outlives_it(
    client: CheckedClient, standin: StandIn, httpx_clients: list[Any]
) -> None:
    opened = httpx_clients
    AsyncHTTPClient(timeout=5)  # what every gateway's default client carries as its async fallback
    built = make_manager(client, standin.url).gateway_object(GW).client  # type: ignore[attr-defined]
    assert built is not None
    assert opened == []

    async def scenario(manager: AsyncGatewayManager) -> None:
        with pytest.raises(NotFound):
            await manager.payment_status(GW, "pi_missing_for_httpx")

    run(client, standin, scenario)
    assert len(opened) == 1  # one per request (the test client's async path is the plugin's)
    assert all(c.is_closed for c in opened)


def test_an_unreadable_refund_answer_is_outcome_unknown_async(client: CheckedClient, standin: StandIn) -> None:
    async def scenario(manager: AsyncGatewayManager) -> None:
        request = CheckoutRequest.single("Async", Money.of("21.00", "EUR"), "https://a.example/", "https://b.example/")
        payment_id = standin.pay((await manager.create_checkout(GW, request, idempotency_key="async-short")).id)
        client.rewrite["/v1/refunds"] = lambda body: {k: v for k, v in body.items() if k != "amount"}
        with pytest.raises(OutcomeUnknown) as info:
            await manager.refund(GW, RefundRequest(payment_id, Money.of("1.00", "EUR")), idempotency_key="async-sr")
        assert info.value.retryable is False
        assert not info.value.unmapped
        assert (await manager.payment_status(GW, payment_id)).amount_refunded == Money.of("1.00", "EUR")

    run(client, standin, scenario)
    assert client.async_requests == len(client.sent)  # every request went through the async client


class Boom(Exception):
    """A sibling task's failure, which makes a TaskGroup cancel the checkout in flight."""


def test_a_checkout_cancelled_mid_post_is_logged_releases_its_connection_and_retries_once(
    client: CheckedClient, standin: StandIn, httpx_clients: list[Any]
) -> None:
    """A TaskGroup cancels a checkout whose POST Stripe is still processing.

    The host's group ends with its sibling's failure (the checkout's task was cancelled), the
    core logs the operation as cancelled with its key, no httpx client stays open, and a retry
    with the same ``operation_id`` gets the session Stripe made: one session, not two.
    """
    opened = httpx_clients
    request = CheckoutRequest.single("Async", Money.of("9.00", "EUR"), "https://a.example/", "https://b.example/")
    before = standin.stats()["sessions"]
    standin.delay("/v1/checkout/sessions", 1.0)

    async def scenario(manager: AsyncGatewayManager) -> str:
        async def fail_once_sent() -> None:
            while not client.posts():
                await asyncio.sleep(0.01)
            raise Boom

        async def both() -> None:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(manager.create_checkout(GW, request, operation_id="order-cancelled"))
                tasks.create_task(fail_once_sent())

        with pytest.raises(ExceptionGroup) as group:
            await both()
        assert group.group_contains(Boom)
        assert all(c.is_closed for c in opened)
        await asyncio.sleep(1.5)  # Stripe finishes the request it got
        return (await manager.create_checkout(GW, request, operation_id="order-cancelled")).id

    with structlog.testing.capture_logs() as logs:
        session_id = run(client, standin, scenario)
    assert standin.stats()["sessions"] == before + 1
    assert session_id.startswith("cs_")
    ends = [line for line in logs if line["event"].startswith("gateway.checkout.")]
    assert [line["event"] for line in ends] == ["gateway.checkout.cancelled", "gateway.checkout.created"]
    assert ends[0]["idempotency_key"] == ends[1]["idempotency_key"]
    assert ends[0]["error"] == "CancelledError"
    keys = {s.idempotency_key for s in client.posts()}
    assert keys == {ends[0]["idempotency_key"]}
    assert all(c.is_closed for c in opened)


#: Run in a fresh interpreter (the SDK is imported once per process): which thread imports the
#: SDK, httpx's transport layer (httpcore) and anyio's asyncio backend (what httpx connects with)
#: for a first async operation, and the loop's thread.
FIRST_OPERATION = """
import asyncio, json, sys, threading

importers = {}


class Spy:
    def find_spec(self, name, path=None, target=None):
        if name in ("stripe", "httpcore", "anyio._backends._asyncio"):
            importers.setdefault(name, threading.get_ident())


sys.meta_path.insert(0, Spy())
import stripe_gateway
from gateway_core import AsyncGatewayManager, DeploymentConfig, GatewayManager, GatewaySettings, NotFound
from gateway_core.config import Secret

settings = {"api_key": Secret(sys.argv[2], source="test"), "api_base": sys.argv[1], "max_network_retries": 0}
config = DeploymentConfig([GatewaySettings("s", "stripe", settings)])
manager = GatewayManager(config, plugins=[stripe_gateway], load_entry_points=False)
assert "stripe" not in importers


async def main():
    async with AsyncGatewayManager(manager) as amanager:
        try:
            await amanager.payment_status("s", "pi_missing_first")
        except NotFound:
            pass
    return threading.get_ident()


print(json.dumps({"loop": asyncio.run(main()), **importers}))
"""


def test_the_first_async_operation_imports_the_sdk_off_the_event_loop(standin: StandIn) -> None:
    """Importing the SDK takes about half a second, and httpx's transport a few tenths: not on the loop.

    Run on the loop, they froze every other task of the application for that long, on the first
    operation of each process (a ticker task on the loop saw one gap of 0.9 to 1.2 s; now none
    longer than about 0.1 s, while the imports hold the interpreter lock).
    """
    done = subprocess.run(
        [sys.executable, "-c", FIRST_OPERATION, standin.url, API_KEY],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    threads = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(threads) == {"loop", "stripe", "httpcore", "anyio._backends._asyncio"}
    on_the_loop = [name for name, thread in threads.items() if name != "loop" and thread == threads["loop"]]
    assert on_the_loop == [], f"imported on the event loop: {on_the_loop}"


#: Run in a fresh interpreter: which threads import the SDK's modules (``stripe`` and every
#: ``stripe.*``) while the first webhook is parsed through the asyncio API, and the loop's thread.
#: The delivery is signed by hand (HMAC-SHA256 of ``"{t}.{body}"``, as the SDK's helper signs it),
#: so that nothing imports the SDK before the webhook does.
FIRST_WEBHOOK = """
import asyncio, hashlib, hmac, json, sys, threading, time

importers = {}


class Spy:
    def find_spec(self, name, path=None, target=None):
        if name == "stripe" or name.startswith("stripe."):
            importers.setdefault(threading.get_ident(), []).append(name)


sys.meta_path.insert(0, Spy())
import stripe_gateway
from gateway_core import AsyncGatewayManager, DeploymentConfig, GatewayManager, GatewaySettings
from gateway_core.config import Secret

secret = sys.argv[2]
settings = {"api_key": Secret(sys.argv[1], source="test"), "webhook_secret": Secret(secret, source="test")}
config = DeploymentConfig([GatewaySettings("s", "stripe", settings)])
manager = GatewayManager(config, plugins=[stripe_gateway], load_entry_points=False)
assert importers == {}, importers
body = json.dumps({"id": "evt_first_async", "object": "event", "type": "customer.created", "created": 1,
                   "livemode": False, "data": {"object": {"object": "customer", "id": "cus_1"}}}).encode()
t = int(time.time())
signature = hmac.new(secret.encode(), b"%d." % t + body, hashlib.sha256).hexdigest()
headers = {"Stripe-Signature": f"t={t},v1={signature}"}


async def main():
    ticks = 0

    async def ticker():  # another task of the application, running while the webhook is parsed
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    async with AsyncGatewayManager(manager) as amanager:
        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        first = await amanager.parse_webhook("s", headers, body)
        task.cancel()
    return threading.get_ident(), first.id


loop, event_id = asyncio.run(main())
print(json.dumps({"loop": loop, "event": event_id, "importers": {str(k): v for k, v in importers.items()}}))
"""


def test_the_first_async_webhook_imports_the_sdk_off_the_event_loop() -> None:
    """A process that only receives webhooks imports the SDK (half a second) on its first: not on the loop."""
    done = subprocess.run(
        [sys.executable, "-c", FIRST_WEBHOOK, API_KEY, WEBHOOK_SECRET],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["event"] == "evt_first_async"
    importers = seen["importers"]
    assert any("stripe" in names for names in importers.values())  # the SDK was imported, by some thread
    on_the_loop = importers.get(str(seen["loop"]), [])
    assert on_the_loop == [], f"imported on the event loop: {on_the_loop[:5]}"


def test_a_second_first_request_waits_for_the_preparation_off_the_loop(
    standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two first requests at once: the second must not build its httpx client on the loop mid-preparation.

    The preparation builds a throwaway ``httpx.AsyncHTTPTransport`` (importing httpcore: the slow
    part) on a worker thread; here that build waits for the test's go-ahead, so the second request
    starts while the first one's preparation is under way. It must wait for that preparation
    (without blocking the loop) instead of building its ``AsyncClient``, and the transport it
    imports with, on the loop while the preparation is still under way.
    """
    import httpx

    started, release = threading.Event(), threading.Event()
    prepared = threading.Event()
    built_before_prepared: list[str] = []
    loop_thread = threading.get_ident()
    real_transport_init = httpx.AsyncHTTPTransport.__init__
    real_client_init = httpx.AsyncClient.__init__

    def transport_init(self: httpx.AsyncHTTPTransport, *args: Any, **kwargs: Any) -> None:
        if threading.get_ident() != loop_thread and not prepared.is_set():  # the preparation's
            started.set()
            release.wait(30)
            real_transport_init(self, *args, **kwargs)
            prepared.set()
            return
        if not prepared.is_set():
            built_before_prepared.append("transport")
        real_transport_init(self, *args, **kwargs)

    def client_init(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
        if not prepared.is_set():
            built_before_prepared.append("client")
        real_client_init(self, *args, **kwargs)

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "__init__", transport_init)
    monkeypatch.setattr(httpx.AsyncClient, "__init__", client_init)
    http = AsyncHTTPClient(timeout=10)
    url = f"{standin.url}/v1/payment_intents/pi_missing_race"
    headers = {"Authorization": f"Bearer {API_KEY}"}

    async def main() -> list[int]:
        first = asyncio.create_task(http.request_async("get", url, headers))
        assert await asyncio.to_thread(started.wait, 30)  # the first request's preparation is under way
        second = asyncio.create_task(http.request_async("get", url, headers))
        await asyncio.sleep(0)  # the second request runs up to its first real suspension
        await asyncio.sleep(0)
        release.set()
        return [status for _, status, _ in await asyncio.gather(first, second)]

    try:
        statuses = asyncio.run(main())
    finally:
        release.set()
    assert statuses == [404, 404]
    assert built_before_prepared == []


def test_closing_the_async_http_client_never_raises(standin: StandIn, httpx_clients: list[Any]) -> None:
    """It keeps no pooled client (the SDK's ``close_async`` would close one it never built): nothing to close.

    ``RequestsClient.close_async`` (every gateway's default client) delegates to it.
    """
    import stripe

    url = f"{standin.url}/v1/payment_intents/pi_missing_close"
    headers = {"Authorization": f"Bearer {API_KEY}"}

    async def main() -> int:
        unused = AsyncHTTPClient(timeout=5)
        unused.close()
        await unused.close_async()
        default = stripe.RequestsClient(async_fallback_client=AsyncHTTPClient(timeout=5))
        await default.close_async()  # type: ignore[no-untyped-call]
        used = AsyncHTTPClient(timeout=5)
        _, status, _ = await used.request_async("get", url, headers)
        await used.close_async()
        used.close()
        _, again, _ = await used.request_async("get", url, headers)  # closing ended nothing it still needs
        assert again == status
        return status

    assert asyncio.run(main()) == 404
    assert len(httpx_clients) == 2
    assert all(c.is_closed for c in httpx_clients)
