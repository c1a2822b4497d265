"""A payment's status asked by its PaymentIntent id (``pi_``), as a host has it from a webhook.

``payment_intent.payment_failed`` carries only the PaymentIntent, so a host that reads the status on
each webhook asks by ``pi_``. A declined card on a Checkout Session that is still open is not the
payment's end (the payer may try another card on the same session): by ``pi_`` it must read as by
``cs_``, ``PENDING``, not ``FAILED``, which the core's contract makes final. Only a ``FAILED``
PaymentIntent costs a second request (the session found by ``payment_intent``); every other path
stays one request. All against the stand-in, every request spec-checked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from gateway_core.aio import AsyncGatewayManager
from gateway_core.errors import AuthenticationRequired, GatewayUnavailable
from gateway_core.manager import GatewayManager
from gateway_core.models import AuthorizeRequest, CheckoutRequest, PaymentState, VoidRequest
from gateway_core.money import Money
from tests.stripe_gateway.conftest import StandIn, make_manager
from tests.stripe_gateway.transport import CheckedClient

GW = "stripe_test"
OK, NO = "https://shop.example/ok", "https://shop.example/no"
PI = "/v1/payment_intents/{intent}"
LIST = "/v1/checkout/sessions"
T = TypeVar("T")


def open_checkout(manager: GatewayManager, key: str, *, capture: bool = True) -> str:
    request = CheckoutRequest.single("Seat", Money.of("25.00", "EUR"), OK, NO, reference=f"ref-{key}", capture=capture)
    return manager.create_checkout(GW, request, idempotency_key=key).id


def reads(client: CheckedClient) -> list[tuple[str, str, dict[str, Any]]]:
    return [(s.method, s.template, dict(s.params)) for s in client.sent]


def test_a_declined_card_on_an_open_session_reads_pending_by_its_payment_intent(
    manager: GatewayManager, client: CheckedClient, standin: StandIn
) -> None:
    checkout_id = open_checkout(manager, "pi-open")
    payment_id = standin.decline(checkout_id, "insufficient_funds")
    client.sent.clear()
    status = manager.payment_status(GW, payment_id)
    assert status.state is PaymentState.PENDING  # the payer may still pay on the session
    assert status.payment_id == payment_id
    assert status.checkout_id == checkout_id
    assert status.reference == "ref-pi-open"
    assert status.amount_captured == Money.zero("EUR")
    assert reads(client) == [
        ("GET", PI, {"expand": ["latest_charge"]}),
        ("GET", LIST, {"payment_intent": payment_id}),
    ]
    by_session = manager.payment_status(GW, checkout_id)
    assert (by_session.state, by_session.payment_id, by_session.checkout_id) == (
        status.state,
        status.payment_id,
        status.checkout_id,
    )


def test_after_another_card_pays_the_session_its_payment_intent_reads_succeeded_in_one_request(
    manager: GatewayManager, client: CheckedClient, standin: StandIn
) -> None:
    checkout_id = open_checkout(manager, "pi-retry")
    payment_id = standin.decline(checkout_id)
    assert standin.pay(checkout_id) == payment_id  # the same PaymentIntent, another card
    client.sent.clear()
    status = manager.payment_status(GW, payment_id)
    assert status.state is PaymentState.SUCCEEDED
    assert status.amount_captured == Money.of("25.00", "EUR")
    assert [t for _, t, _ in reads(client)] == [PI]


def test_after_the_session_expired_its_declined_payment_intent_reads_as_the_session_does(
    manager: GatewayManager, client: CheckedClient, standin: StandIn
) -> None:
    """Final once the session cannot take a payment: ``CANCELED``, as the core's contract says of
    a checkout that expired unpaid, by either id.

    The stand-in leaves the PaymentIntent as the decline left it (requires_payment_method with its
    error) when the session expires; the expired session decides: nothing more can be paid on it.
    """
    checkout_id = open_checkout(manager, "pi-expired")
    payment_id = standin.decline(checkout_id)
    assert manager.void(GW, VoidRequest(checkout_id), idempotency_key="pi-expired-void").state is PaymentState.CANCELED
    client.sent.clear()
    status = manager.payment_status(GW, payment_id)
    assert status.state is PaymentState.CANCELED
    assert status.checkout_id == checkout_id
    assert status.raw["checkout_session"]["status"] == "expired"
    assert [t for _, t, _ in reads(client)] == [PI, LIST]
    assert manager.payment_status(GW, checkout_id).state is status.state


def test_a_failed_payment_intent_no_session_made_stays_failed(
    manager: GatewayManager, client: CheckedClient, standin: StandIn
) -> None:
    """``authorize`` made it (3-D Secure failed): no Checkout Session, nothing else takes a payment."""
    request = AuthorizeRequest(Money.of("40.00", "EUR"), "pm_card_threeDSecure2Required")
    with pytest.raises(AuthenticationRequired) as info:
        manager.authorize(GW, request, idempotency_key="pi-no-session")
    payment_id = info.value.payment_id
    assert payment_id is not None
    assert standin.authenticate(payment_id, passed=False) == "requires_payment_method"
    client.sent.clear()
    status = manager.payment_status(GW, payment_id)
    assert status.state is PaymentState.FAILED
    assert status.checkout_id is None
    assert reads(client) == [
        ("GET", PI, {"expand": ["latest_charge"]}),
        ("GET", LIST, {"payment_intent": payment_id}),
    ]


def test_a_list_answer_naming_another_payment_intent_lends_it_no_session(
    manager: GatewayManager, client: CheckedClient, standin: StandIn
) -> None:
    """An answer that ignored the filter (another payment's open session) does not make this one PENDING."""
    other = open_checkout(manager, "pi-other")
    other_pi = standin.decline(other)
    request = AuthorizeRequest(Money.of("40.00", "EUR"), "pm_card_threeDSecure2Required")
    with pytest.raises(AuthenticationRequired) as info:
        manager.authorize(GW, request, idempotency_key="pi-unfiltered")
    payment_id = info.value.payment_id
    assert payment_id is not None
    standin.authenticate(payment_id, passed=False)
    session = manager.payment_status(GW, other).raw["checkout_session"]
    assert session["payment_intent"]["id"] == other_pi
    unfiltered = {**session, "payment_intent": other_pi}
    client.rewrite[LIST] = lambda body: {**body, "data": [unfiltered]}
    assert manager.payment_status(GW, payment_id).state is PaymentState.FAILED


def test_a_session_lookup_that_fails_is_an_error_not_a_failed_payment(
    manager: GatewayManager, client: CheckedClient, standin: StandIn
) -> None:
    """Without the session nothing says whether the payer may still pay: unavailable, never FAILED."""
    payment_id = standin.decline(open_checkout(manager, "pi-list-down"))
    client.targeted.extend([(LIST, "500")] * 3)  # the first attempt and the SDK's two retries
    with pytest.raises(GatewayUnavailable):
        manager.payment_status(GW, payment_id)


@pytest.mark.parametrize("capture", [True, False], ids=["paid", "authorized"])
def test_a_paid_or_authorized_payment_intent_costs_one_request(
    manager: GatewayManager, client: CheckedClient, standin: StandIn, capture: bool
) -> None:
    payment_id = standin.pay(open_checkout(manager, f"pi-one-{capture}", capture=capture))
    client.sent.clear()
    status = manager.payment_status(GW, payment_id)
    assert status.state is (PaymentState.SUCCEEDED if capture else PaymentState.AUTHORIZED)
    assert status.checkout_id is None  # not looked for: the PaymentIntent alone decides
    assert reads(client) == [("GET", PI, {"expand": ["latest_charge"]})]


def test_a_payment_intent_awaiting_the_payer_costs_one_request(manager: GatewayManager, client: CheckedClient) -> None:
    request = AuthorizeRequest(Money.of("40.00", "EUR"), "pm_card_threeDSecure2Required")
    with pytest.raises(AuthenticationRequired) as info:
        manager.authorize(GW, request, idempotency_key="pi-one-3ds")
    assert info.value.payment_id is not None
    client.sent.clear()
    assert manager.payment_status(GW, info.value.payment_id).state is PaymentState.REQUIRES_ACTION
    assert len(client.sent) == 1


def run_async(client: CheckedClient, standin: StandIn, scenario: Callable[[AsyncGatewayManager], Awaitable[T]]) -> T:
    async def main() -> T:
        async with AsyncGatewayManager(make_manager(client, standin.url)) as manager:
            return await scenario(manager)

    return asyncio.run(main())


def test_the_asyncio_api_finds_the_session_too_and_only_for_a_failed_payment_intent(
    client: CheckedClient, standin: StandIn
) -> None:
    async def scenario(manager: AsyncGatewayManager) -> None:
        request = CheckoutRequest.single("Seat", Money.of("25.00", "EUR"), OK, NO)
        declined_checkout = (await manager.create_checkout(GW, request, idempotency_key="pi-async-d")).id
        declined = standin.decline(declined_checkout)
        paid = standin.pay((await manager.create_checkout(GW, request, idempotency_key="pi-async-p")).id)
        client.sent.clear()
        status = await manager.payment_status(GW, declined)
        assert (status.state, status.checkout_id) == (PaymentState.PENDING, declined_checkout)
        assert [t for _, t, _ in reads(client)] == [PI, LIST]
        client.sent.clear()
        assert (await manager.payment_status(GW, paid)).state is PaymentState.SUCCEEDED
        assert [t for _, t, _ in reads(client)] == [PI]

    run_async(client, standin, scenario)
    assert client.async_requests == 5  # two checkouts, two reads for the declined one, one for the paid one
