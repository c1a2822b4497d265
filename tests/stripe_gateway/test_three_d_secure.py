"""3-D Secure on a server-confirmed PaymentIntent: with ``return_url`` a page to redirect to, without it Stripe.js.

Stripe's rule (docs.stripe.com/payments/3d-secure/authentication-flow, "Redirect to the bank
website"): a confirmation that carries ``return_url`` leaves a card that needs 3-D Secure in
``requires_action`` with ``next_action.type == "redirect_to_url"`` and the page in
``next_action.redirect_to_url.url``; without one, ``use_stripe_sdk``, which only Stripe.js can
finish. The stand-in answers ``pm_card_threeDSecure2Required`` (Stripe's test payment method that
"must complete 3DS2 authentication") that way, its redirect URL carrying a client secret as
Stripe's does. Every request goes through the real ``GatewayManager`` and the spec check.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from typing import Any

import pytest
import structlog.testing

from gateway_core.aio import AsyncGatewayManager
from gateway_core.errors import AuthenticationRequired
from gateway_core.manager import GatewayManager
from gateway_core.models import AuthorizeRequest, CaptureRequest, PaymentState
from gateway_core.money import Money
from tests.stripe_gateway.conftest import API_KEY, StandIn, make_manager
from tests.stripe_gateway.transport import CheckedClient

GW = "stripe_test"
CARD_3DS = "pm_card_threeDSecure2Required"
RETURN = "https://shop.example/orders/o-7/3ds-done"


def stripe_get(standin: StandIn, path: str) -> Any:
    """A Stripe object as the stand-in holds it, read with the test key (not through the plugin)."""
    request = urllib.request.Request(standin.url + path, headers={"Authorization": f"Bearer {API_KEY}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def needs_3ds(manager: GatewayManager, return_url: str | None, key: str) -> AuthenticationRequired:
    request = AuthorizeRequest(Money.of("40.00", "EUR"), CARD_3DS, return_url=return_url)
    with pytest.raises(AuthenticationRequired) as info:
        manager.authorize(GW, request, idempotency_key=key)
    return info.value


def sent_intents(client: CheckedClient) -> list[dict[str, Any]]:
    return [dict(s.params) for s in client.sent if s.method == "POST" and s.template == "/v1/payment_intents"]


def test_with_a_return_url_the_action_url_is_stripes_redirect_page(
    manager: GatewayManager, client: CheckedClient, standin: StandIn
) -> None:
    error = needs_3ds(manager, RETURN, "3ds-redirect")
    [sent] = sent_intents(client)
    assert sent["return_url"] == RETURN  # sent with confirm=true, as Stripe requires, and spec-checked
    assert sent["confirm"] == "true"
    assert error.payment_id is not None
    assert error.payment_id.startswith("pi_")
    pi = stripe_get(standin, f"/v1/payment_intents/{error.payment_id}")
    assert pi["status"] == "requires_action"
    assert pi["next_action"]["type"] == "redirect_to_url"
    assert pi["next_action"]["redirect_to_url"]["return_url"] == RETURN
    assert error.action_url is not None
    assert error.action_url == pi["next_action"]["redirect_to_url"]["url"]
    assert error.action_url.startswith("https://hooks.stripe.com/")
    assert error.provider_code == "authentication_required"
    assert manager.payment_status(GW, error.payment_id).state is PaymentState.REQUIRES_ACTION


def test_without_one_stripe_asks_for_stripe_js_and_there_is_no_action_url(
    manager: GatewayManager, client: CheckedClient, standin: StandIn
) -> None:
    error = needs_3ds(manager, None, "3ds-sdk")
    [sent] = sent_intents(client)
    assert "return_url" not in sent
    assert error.action_url is None  # use_stripe_sdk's stripe_js address is Stripe.js's, not a redirect
    assert error.payment_id is not None
    pi = stripe_get(standin, f"/v1/payment_intents/{error.payment_id}")
    assert pi["next_action"]["type"] == "use_stripe_sdk"
    # What Stripe.js needs, where docs/stripe.md says to find it.
    assert pi["client_secret"].startswith(f"{error.payment_id}_secret_")
    status = manager.payment_status(GW, error.payment_id)
    assert status.raw["payment_intent"]["client_secret"] == pi["client_secret"]


def test_the_redirect_url_reaches_no_log_line_and_no_message(
    manager: GatewayManager, standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # a host logging everything, the SDK's own lines included
    with structlog.testing.capture_logs() as logs:
        error = needs_3ds(manager, RETURN, "3ds-quiet")
    assert error.action_url is not None
    assert error.payment_id is not None
    pi = stripe_get(standin, f"/v1/payment_intents/{error.payment_id}")
    source_secret = error.action_url.rsplit("/", 1)[1]
    assert source_secret.startswith("src_client_secret_")  # the stand-in's URL carries one, as Stripe's does
    secrets = {
        "the redirect URL": error.action_url,
        "its client secret": source_secret,
        "the PI's": pi["client_secret"],
    }
    texts = [error.message, str(error), repr(error), repr(logs)]
    texts += [f"{r.getMessage()} {r.args!r} {r.__dict__!r}" for r in caplog.records]
    assert logs, "the operation logged nothing: the scan saw nothing"
    assert [(name, i) for i, text in enumerate(texts) for name, s in secrets.items() if s in text] == []


def test_the_payer_who_authenticates_leaves_an_authorization_to_capture(
    manager: GatewayManager, standin: StandIn
) -> None:
    error = needs_3ds(manager, RETURN, "3ds-pass")
    assert error.payment_id is not None
    assert standin.authenticate(error.payment_id) == "requires_capture"  # the payer back from the page
    assert manager.payment_status(GW, error.payment_id).state is PaymentState.AUTHORIZED
    capture = manager.capture(GW, CaptureRequest(error.payment_id), idempotency_key="3ds-pass-capture")
    assert capture.amount == Money.of("40.00", "EUR")
    assert capture.state is PaymentState.SUCCEEDED


def test_the_payer_who_fails_leaves_a_failed_payment(manager: GatewayManager, standin: StandIn) -> None:
    error = needs_3ds(manager, RETURN, "3ds-fail")
    assert error.payment_id is not None
    assert standin.authenticate(error.payment_id, passed=False) == "requires_payment_method"
    status = manager.payment_status(GW, error.payment_id)
    assert status.state is PaymentState.FAILED
    assert not status.is_paid


def test_a_retry_with_the_same_key_gets_the_same_page_and_no_second_intent(
    manager: GatewayManager, standin: StandIn
) -> None:
    before = standin.stats()["intents"]
    first = needs_3ds(manager, RETURN, "3ds-again")
    again = needs_3ds(manager, RETURN, "3ds-again")  # Stripe replays the first answer to the key
    assert (again.action_url, again.payment_id) == (first.action_url, first.payment_id)
    assert standin.stats()["intents"] == before + 1


def test_an_ordinary_card_with_a_return_url_is_authorized_as_before(
    manager: GatewayManager, client: CheckedClient
) -> None:
    request = AuthorizeRequest(Money.of("40.00", "EUR"), "pm_card_visa", return_url=RETURN)
    auth = manager.authorize(GW, request, idempotency_key="3ds-none")
    assert auth.state is PaymentState.AUTHORIZED
    assert sent_intents(client)[0]["return_url"] == RETURN


def test_the_asyncio_api_sends_it_too(client: CheckedClient, standin: StandIn) -> None:
    async def scenario() -> AuthenticationRequired:
        async with AsyncGatewayManager(make_manager(client, standin.url)) as manager:
            request = AuthorizeRequest(Money.of("40.00", "EUR"), CARD_3DS, return_url=RETURN)
            with pytest.raises(AuthenticationRequired) as info:
                await manager.authorize(GW, request, idempotency_key="3ds-async")
            return info.value

    error = asyncio.run(scenario())
    assert client.async_requests >= 1
    assert sent_intents(client)[0]["return_url"] == RETURN
    assert error.action_url is not None
    assert error.action_url.startswith("https://hooks.stripe.com/")
