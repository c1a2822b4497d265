"""3-D Secure on a vaulted card: ``AuthorizeRequest.return_url`` becomes the card's experience context.

Orders v2 ``payment_source.card.experience_context`` (schema ``card_experience_context``) takes
``return_url`` ("upon successfully completing the 3DS challenge") and ``cancel_url`` ("upon
cancelling" it); PayPal's 3-D Secure guide wants both in every 3DS request
(docs.paypal.ai/payments/methods/cards/3ds). The core has one URL, so the plugin sends it as both.
The stand-in answers a vault id starting ``3DS`` with the order in ``PAYER_ACTION_REQUIRED`` and
plays the payer on the ``payer-action`` page (``/_standin/orders/{id}/authenticate``), telling
where PayPal sends them back. Every request is checked against the Orders spec (the ``standin``
fixture), and goes through the real ``GatewayManager``.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from gateway_core.errors import AuthenticationRequired, InvalidRequest
from gateway_core.manager import GatewayManager
from gateway_core.models import AuthorizeRequest, PaymentState
from gateway_core.money import Money
from tests.paypal_gateway.conftest import GATEWAY, StandIn

RETURN = "https://shop.example/orders/o-7/authenticated"
AMOUNT = Money.of("40.00", "EUR")


def key() -> str:
    return f"test-{uuid.uuid4().hex}"


def created_orders(standin: StandIn) -> list[dict[str, Any]]:
    return [r["body"] for r in standin.requests() if r["method"] == "POST" and r["path"] == "/v2/checkout/orders"]


def authenticate(standin: StandIn, order_id: str, result: str) -> dict[str, Any]:
    """The payer on the ``payer-action`` page: where PayPal sends them back, and the order's status."""
    answer: dict[str, Any] = standin._call("POST", f"orders/{order_id}/authenticate", {"result": result})
    return answer


def needs_3ds(manager: GatewayManager, return_url: str | None) -> AuthenticationRequired:
    request = AuthorizeRequest(AMOUNT, "card:3DS-VAULT-7", reference="o-7", return_url=return_url)
    with pytest.raises(AuthenticationRequired) as info:
        manager.authorize(GATEWAY, request, idempotency_key=key())
    return info.value


def test_the_return_url_is_where_paypal_sends_the_payer_back(manager: GatewayManager, standin: StandIn) -> None:
    error = needs_3ds(manager, RETURN)
    order_id = error.payment_id
    assert order_id is not None
    assert error.action_url == f"https://www.sandbox.paypal.com/checkoutnow?token={order_id}"  # payer-action
    (sent,) = created_orders(standin)
    assert sent["payment_source"] == {
        "card": {"vault_id": "3DS-VAULT-7", "experience_context": {"return_url": RETURN, "cancel_url": RETURN}}
    }
    assert manager.payment_status(GATEWAY, order_id).state is PaymentState.REQUIRES_ACTION
    back = authenticate(standin, order_id, "pass")
    assert back["experience_context"] == {"return_url": RETURN, "cancel_url": RETURN}
    assert (back["redirect"], back["status"]) == (RETURN, "APPROVED")
    # the return page asks, then the order is authorized, as without a return_url
    auth = manager.authorize(GATEWAY, AuthorizeRequest(AMOUNT, order_id), idempotency_key=key())
    assert (auth.state, auth.amount) == (PaymentState.AUTHORIZED, AMOUNT)


def test_a_payer_who_cancels_comes_back_to_the_same_page(manager: GatewayManager, standin: StandIn) -> None:
    order_id = needs_3ds(manager, RETURN).payment_id
    assert order_id is not None
    back = authenticate(standin, order_id, "cancel")
    assert (back["redirect"], back["status"]) == (RETURN, "PAYER_ACTION_REQUIRED")
    assert manager.payment_status(GATEWAY, order_id).state is PaymentState.REQUIRES_ACTION  # what the page reads


def test_without_a_return_url_the_order_is_as_before(manager: GatewayManager, standin: StandIn) -> None:
    order_id = needs_3ds(manager, None).payment_id
    assert order_id is not None
    (sent,) = created_orders(standin)
    assert sent["payment_source"] == {"card": {"vault_id": "3DS-VAULT-7"}}
    assert authenticate(standin, order_id, "pass")["redirect"] is None


def test_a_card_that_needs_no_3ds_is_authorized_with_a_return_url(manager: GatewayManager, standin: StandIn) -> None:
    auth = manager.authorize(
        GATEWAY, AuthorizeRequest(AMOUNT, "card:VAULT-1", return_url=RETURN), idempotency_key=key()
    )
    assert (auth.state, auth.amount) == (PaymentState.AUTHORIZED, AMOUNT)


def test_a_saved_paypal_wallet_gets_no_card_experience_context(manager: GatewayManager, standin: StandIn) -> None:
    """Only a card's order carries it: a vaulted PayPal wallet is authorized without the payer."""
    manager.authorize(GATEWAY, AuthorizeRequest(AMOUNT, "paypal:VAULT-2", return_url=RETURN), idempotency_key=key())
    (sent,) = created_orders(standin)
    assert sent["payment_source"] == {"paypal": {"vault_id": "VAULT-2"}}


@pytest.mark.parametrize("url", ["https://a", "https://shop.example/" + "x" * 3980], ids=["short", "long"])
def test_a_return_url_paypal_would_refuse_is_refused_before_sending(
    manager: GatewayManager, standin: StandIn, url: str
) -> None:
    """``card_experience_context`` URLs are 10 to 4000 characters: outside that, nothing is sent."""
    with pytest.raises(InvalidRequest, match="10 to 4000 characters") as info:
        manager.authorize(GATEWAY, AuthorizeRequest(AMOUNT, "card:3DS-VAULT-7", return_url=url), idempotency_key=key())
    assert url not in str(info.value)
    assert created_orders(standin) == []
    assert standin.counts()["orders"] == 0
