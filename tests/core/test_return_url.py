"""``AuthorizeRequest.return_url``: checked by the core, carried by the fake's 3-D Secure page back to the host.

The core refuses a bad ``return_url`` the way ``CheckoutRequest`` refuses a bad ``success_url``
(the same check), before any plugin runs, with a ``gateway.authorize.refused`` line. The fake's
``action_url`` for a scripted 3-D Secure carries the ``return_url``, and its checkout server sends
a payer who passes (or fails) there: a host test follows the redirect the way a browser would,
here to a host app served on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import structlog.testing

from gateway_core import (
    AuthenticationRequired,
    AuthorizeRequest,
    CaptureRequest,
    CheckoutRequest,
    GatewayManager,
    InvalidRequest,
    Money,
    PaymentState,
)
from gateway_core.fake import FakeGateway, Outcome, Scripted
from gateway_core.fake.server import FakeCheckoutServer
from tests.testing.local_server import local_http_server

from .conftest import build_manager, fake, fake_table

RETURN = "https://shop.example/orders/o-1/3ds-done?step=2&x=a%20b"

#: Values a return_url may not be, each also refused as a CheckoutRequest's success_url.
BAD_URLS: list[Any] = [
    "",
    "shop.example/done",
    "/orders/o-1/done",
    "ftp://shop.example/done",
    "javascript:alert(1)",
    42,
    b"https://shop.example/done",
]


@pytest.fixture
def manager() -> GatewayManager:
    return build_manager({"fake": fake_table()})


@pytest.fixture
def f(manager: GatewayManager) -> FakeGateway:
    return fake(manager, "fake")


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def needs_3ds(
    manager: GatewayManager, f: FakeGateway, return_url: str | None, key: str = "a"
) -> AuthenticationRequired:
    f.script(Scripted(Outcome.REQUIRES_3DS, operation="authorize"))
    with pytest.raises(AuthenticationRequired) as info:
        manager.authorize(
            "fake", AuthorizeRequest(eur("25.00"), "pm_card_3ds", return_url=return_url), idempotency_key=key
        )
    return info.value


# --------------------------------------------------------------------------------------------
# The core's check
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_URLS, ids=repr)
def test_a_bad_return_url_is_a_logged_refusal_before_any_plugin_runs(
    manager: GatewayManager, f: FakeGateway, bad: Any
) -> None:
    with structlog.testing.capture_logs() as logs, pytest.raises(InvalidRequest) as info:
        manager.authorize("fake", AuthorizeRequest(eur("25.00"), "pm_card_visa", return_url=bad), idempotency_key="k")
    assert info.value.gateway == "fake"
    assert info.value.message.startswith("return_url must be an absolute http(s) URL")
    assert [(e["event"], e["error"], e["code"]) for e in logs] == [
        ("gateway.authorize.refused", "InvalidRequest", "invalid_request")
    ]
    assert f.requests == []  # nothing reached the provider


@pytest.mark.parametrize("bad", BAD_URLS, ids=repr)
def test_the_check_is_the_one_checkout_urls_get(bad: Any) -> None:
    """One rule for every URL the payer is sent back to: what a checkout refuses, an authorization refuses."""
    with pytest.raises(InvalidRequest) as checkout:
        CheckoutRequest.single("T", eur("10"), bad, "https://shop.example/cancel")
    assert checkout.value.message.startswith("success_url must be an absolute http(s) URL")


def test_the_refusal_never_echoes_the_url(manager: GatewayManager) -> None:
    secretish = "shop.example/done?token=order-token-7f3a"  # a host's URL may carry its own tokens
    with structlog.testing.capture_logs() as logs, pytest.raises(InvalidRequest) as info:
        manager.authorize("fake", AuthorizeRequest(eur("5"), "pm_card_visa", return_url=secretish), idempotency_key="k")
    shown = [str(info.value), repr(info.value), repr(logs)]
    assert not [text for text in shown if "order-token" in text]


def test_a_good_return_url_reaches_the_plugin_and_changes_nothing_else(manager: GatewayManager, f: FakeGateway) -> None:
    for url in ("https://shop.example/done", "http://127.0.0.1:8000/done"):
        auth = manager.authorize(
            "fake", AuthorizeRequest(eur("25.00"), "pm_card_visa", return_url=url), idempotency_key=url
        )
        assert auth.state is PaymentState.AUTHORIZED
    assert f.payments_made() == 2


def test_a_retry_with_the_same_key_and_another_return_url_is_a_conflict(
    manager: GatewayManager, f: FakeGateway
) -> None:
    manager.authorize("fake", AuthorizeRequest(eur("25.00"), "pm_card_visa", return_url=RETURN), idempotency_key="k")
    with pytest.raises(Exception, match="idempotency key reused with different parameters"):
        manager.authorize(
            "fake", AuthorizeRequest(eur("25.00"), "pm_card_visa", return_url=RETURN + "&again"), idempotency_key="k"
        )
    assert f.payments_made() == 1


# --------------------------------------------------------------------------------------------
# The fake's action_url
# --------------------------------------------------------------------------------------------


def test_the_action_url_carries_the_return_url(manager: GatewayManager, f: FakeGateway) -> None:
    error = needs_3ds(manager, f, RETURN)
    assert error.payment_id is not None
    assert error.action_url is not None
    split = urlsplit(error.action_url)
    assert (
        f"{split.scheme}://{split.netloc}{split.path}"
        == f"https://checkout.fake-gateway.invalid/3ds/{error.payment_id}"
    )
    assert parse_qs(split.query) == {"return_url": [RETURN]}  # quoted, and read back exactly
    assert f.return_url(error.payment_id) == RETURN
    assert RETURN not in error.message
    assert RETURN not in str(error)


def test_without_a_return_url_the_action_url_is_the_bare_page(manager: GatewayManager, f: FakeGateway) -> None:
    error = needs_3ds(manager, f, None)
    assert error.action_url == f"https://checkout.fake-gateway.invalid/3ds/{error.payment_id}"
    assert error.payment_id is not None
    assert f.return_url(error.payment_id) is None


def test_a_retry_gets_the_same_action_url_and_no_second_payment(manager: GatewayManager, f: FakeGateway) -> None:
    first = needs_3ds(manager, f, RETURN, key="same")
    with pytest.raises(AuthenticationRequired) as again:
        manager.authorize(
            "fake", AuthorizeRequest(eur("25.00"), "pm_card_3ds", return_url=RETURN), idempotency_key="same"
        )
    assert (again.value.action_url, again.value.payment_id) == (first.action_url, first.payment_id)
    assert f.payments_made() == 1


def test_the_payer_back_in_the_test_completes_the_payment(manager: GatewayManager, f: FakeGateway) -> None:
    """Without the server: play the payer with complete_3ds, then the browser's request to return_url."""
    error = needs_3ds(manager, f, RETURN)
    assert error.payment_id is not None
    assert manager.payment_status("fake", error.payment_id).state is PaymentState.REQUIRES_ACTION
    f.complete_3ds(error.payment_id)
    assert f.return_url(error.payment_id) == RETURN
    assert manager.payment_status("fake", error.payment_id).state is PaymentState.AUTHORIZED
    assert (
        manager.capture("fake", CaptureRequest(error.payment_id), idempotency_key="c").state is PaymentState.SUCCEEDED
    )


# --------------------------------------------------------------------------------------------
# The redirect followed over HTTP: the fake's page, then the host's return page
# --------------------------------------------------------------------------------------------


@pytest.fixture
def server(f: FakeGateway) -> Iterator[FakeCheckoutServer]:
    with FakeCheckoutServer(f) as srv:
        yield srv


#: The host's orders: order id -> the provider's payment id (what a host keeps in its database).
ORDERS: dict[str, str] = {}


@pytest.fixture
def host_app(manager: GatewayManager) -> Iterator[str]:
    """A host's return page: it finds the order's payment and reads its state from the provider."""

    class ReturnPage(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            order = parse_qs(urlsplit(self.path).query)["order"][0]
            body = manager.payment_status("fake", ORDERS[order]).state.value.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with local_http_server(ReturnPage) as url:
        yield url


def post_without_following(url: str) -> tuple[int, str | None]:
    split = urlsplit(url)
    connection = http.client.HTTPConnection(split.netloc, timeout=10)
    try:
        connection.request("POST", split.path, body=b"")
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("Location")
    finally:
        connection.close()


def test_the_fake_page_sends_the_payer_back_to_the_return_url(
    manager: GatewayManager, f: FakeGateway, server: FakeCheckoutServer, host_app: str
) -> None:
    error = needs_3ds(manager, f, f"{host_app}/back?order=o-1")  # the host names the order in its URL
    assert error.action_url is not None
    assert error.payment_id is not None
    ORDERS["o-1"] = error.payment_id
    assert error.action_url.startswith(f"{server.url}/3ds/{error.payment_id}?return_url=")
    with urllib.request.urlopen(error.action_url, timeout=10) as page:  # the payer's browser opens it
        html = page.read().decode()
    assert "25.00 EUR" in html
    assert "requires_action" in html
    assert "/pass" in html

    status, location = post_without_following(f"{server.url}/3ds/{error.payment_id}/pass")
    assert (status, location) == (303, f"{host_app}/back?order=o-1")  # exactly the host's URL
    assert manager.payment_status("fake", error.payment_id).state is PaymentState.AUTHORIZED

    assert location is not None
    with urllib.request.urlopen(location, timeout=10) as back:  # the browser follows it to the host
        assert back.read() == b"authorized"


def test_a_failed_authentication_also_goes_back_and_the_payment_is_failed(
    manager: GatewayManager, f: FakeGateway, server: FakeCheckoutServer
) -> None:
    error = needs_3ds(manager, f, "https://shop.example/back")
    assert error.payment_id is not None
    assert post_without_following(f"{server.url}/3ds/{error.payment_id}/fail") == (303, "https://shop.example/back")
    assert manager.payment_status("fake", error.payment_id).state is PaymentState.FAILED
    # The page cannot be used twice: the payment no longer awaits the payer.
    assert post_without_following(f"{server.url}/3ds/{error.payment_id}/pass")[0] == 409


def test_without_a_return_url_the_page_shows_the_outcome(
    manager: GatewayManager, f: FakeGateway, server: FakeCheckoutServer
) -> None:
    error = needs_3ds(manager, f, None)
    assert error.payment_id is not None
    status, location = post_without_following(f"{server.url}/3ds/{error.payment_id}/pass")
    assert (status, location) == (303, f"/3ds/{error.payment_id}")
    with urllib.request.urlopen(f"{server.url}{location}", timeout=10) as page:
        html = page.read().decode()
    assert "authorized" in html
    assert "/pass" not in html  # no buttons once it is done
