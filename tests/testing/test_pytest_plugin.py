"""The opt-in pytest plugin, exercised the way a host uses it: a host test suite run by pytester."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from gateway_core import CheckoutRequest, ConfigurationError, GatewayManager, Money, WebhookVerificationFailed
from gateway_core.testing.pytest_plugin import WebhookDeliverer, fake_config, fake_gateways, post_to
from tests.testing.local_server import local_http_server

pytest_plugins = ["pytester"]

HOST_CONFTEST = 'pytest_plugins = ["gateway_core.testing.pytest_plugin"]\n'

HOST_TESTS = '''
import pytest
from gateway_core import CheckoutRequest, EventType, Money, OutcomeUnknown, PaymentDeclined, PaymentState, RefundRequest
from gateway_core.fake import Outcome


def order_checkout(manager, order_id):
    """The host's own code under test: start a checkout for an order."""
    request = CheckoutRequest.single("Ticket", Money.of("25.00", "EUR"), "https://shop.test/ok", "https://shop.test/no",
                                     reference=order_id)
    return manager.create_checkout("fake", request, operation_id=f"order-{order_id}")


def test_paid_checkout_reaches_the_host_webhook(gateway_manager, complete_checkout, deliver_webhooks):
    session = order_checkout(gateway_manager, "o-1")
    complete_checkout(session)
    paid = set()

    def webhook_view(headers, body):  # what the host's web framework would call
        event = gateway_manager.parse_webhook("fake", headers, body)
        if event.type is EventType.PAYMENT_SUCCEEDED:
            paid.add(event.reference)
        return event.id

    ids = deliver_webhooks(webhook_view, duplicate=True)
    assert paid == {"o-1"}
    assert len(ids) == 4 and len(set(ids)) == 2  # each event twice; the host dedupes on the id


def test_declined_checkout_is_not_paid_and_the_payer_may_try_again(
    gateway_manager, decline_checkout, complete_checkout, deliver_webhooks
):
    session = order_checkout(gateway_manager, "o-2")
    status = decline_checkout(session, "insufficient_funds")
    assert (status.state, status.is_paid) == (PaymentState.PENDING, False)  # awaiting the payer, not failed
    events = deliver_webhooks(lambda h, b: gateway_manager.parse_webhook("fake", h, b))
    assert [(e.type, e.failure_code) for e in events] == [(EventType.PAYMENT_FAILED, "insufficient_funds")]
    assert complete_checkout(session).state is PaymentState.SUCCEEDED  # another card, the same checkout


def test_abandoned_checkout_is_canceled(gateway_manager, abandon_checkout):
    session = order_checkout(gateway_manager, "o-3")
    assert abandon_checkout(session.id).state is PaymentState.CANCELED


def test_scripted_decline_charges_nothing_and_its_retry_is_declined_again(gateway_manager, fake_gateway):
    fake_gateway.script(Outcome.DECLINE)
    with pytest.raises(PaymentDeclined) as declined:
        order_checkout(gateway_manager, "o-4")
    assert declined.value.decline_code == "card_declined"
    assert not declined.value.retryable
    with pytest.raises(PaymentDeclined):  # the same operation id is the same key: the same answer
        order_checkout(gateway_manager, "o-4")
    assert fake_gateway.payments_made() == 0


def test_timeout_after_success_and_retry_is_one_payment(gateway_manager, fake_gateway):
    fake_gateway.script(Outcome.TIMEOUT_AFTER_SUCCESS)
    with pytest.raises(OutcomeUnknown) as unknown:
        order_checkout(gateway_manager, "o-6")
    assert unknown.value.retryable
    session = order_checkout(gateway_manager, "o-6")  # the retry reuses the operation id, so the same key
    assert session.amount == Money.of("25.00", "EUR")
    assert fake_gateway.payments_made() == 1


def test_refund_after_payment(gateway_manager, complete_checkout):
    session = order_checkout(gateway_manager, "o-5")
    payment_id = complete_checkout(session).payment_id
    refund = gateway_manager.refund("fake", RefundRequest(payment_id), operation_id="refund-o-5")
    assert refund.amount == Money.of("25.00", "EUR")


def test_a_payment_that_settles_later_with_its_webhook_held_back(
    gateway_manager, fake_gateway, complete_checkout, deliver_webhooks
):
    session = order_checkout(gateway_manager, "o-7")
    status = complete_checkout(session, settle=False)  # a bank debit: complete, not yet paid
    assert status.state is PaymentState.PENDING
    fake_gateway.settle_payment(status.payment_id)
    view = lambda h, b: gateway_manager.parse_webhook("fake", h, b).type  # noqa: E731
    first = deliver_webhooks(view, hold={"payment.pending"})
    assert first == [EventType.CHECKOUT_COMPLETED, EventType.PAYMENT_SUCCEEDED]
    assert fake_gateway.pending_webhooks() == ["payment.pending"]
    assert deliver_webhooks(view) == [EventType.PAYMENT_PENDING]  # late, after the success
'''


def test_host_suite_uses_the_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(HOST_CONFTEST)
    pytester.makepyfile(test_host=HOST_TESTS)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=7)


def test_a_wrong_host_expectation_fails(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(HOST_CONFTEST)
    pytester.makepyfile(
        test_host=HOST_TESTS
        + """

def test_wrongly_expects_a_declined_checkout_to_be_paid(gateway_manager, decline_checkout):
    session = order_checkout(gateway_manager, "o-9")
    assert decline_checkout(session).state is PaymentState.SUCCEEDED
"""
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=7, failed=1)


def test_the_plugin_is_opt_in(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_host="def test_needs_it(gateway_manager):\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'gateway_manager' not found*"])


def test_gateway_config_is_overridable_from_a_toml_file(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        gateway_test="""
[gateways.shop_eur]
provider = "fake"
currencies = ["EUR"]
[gateways.shop_eur.settings]
test_mode = true
webhook_secret = { env = "SHOP_WEBHOOK_SECRET" }
minimums = { EUR = "1.00" }
""",
    )
    pytester.makeconftest(
        HOST_CONFTEST
        + """
import pytest
from gateway_core import DeploymentConfig

@pytest.fixture
def gateway_config(request):
    path = request.config.rootpath / "gateway_test.toml"
    return DeploymentConfig.from_toml(path, environ={"SHOP_WEBHOOK_SECRET": "whsec_shop_test"})
"""
    )
    pytester.makepyfile(
        test_host="""
import pytest
from gateway_core import AmountOutOfRange, CheckoutRequest, Money

def test_host_config_is_used(gateway_manager, fake_gateway, complete_checkout, deliver_webhooks):
    assert gateway_manager.gateway_names() == ("shop_eur",)
    assert fake_gateway.name == "shop_eur"
    with pytest.raises(AmountOutOfRange):
        gateway_manager.create_checkout("shop_eur", CheckoutRequest.single(
            "Pin", Money.of("0.50", "EUR"), "https://s.test/a", "https://s.test/b"), idempotency_key="k1")
    session = gateway_manager.create_checkout("shop_eur", CheckoutRequest.single(
        "Pin", Money.of("1.00", "EUR"), "https://s.test/a", "https://s.test/b"), idempotency_key="k2")
    complete_checkout(session)
    events = deliver_webhooks(lambda h, b: gateway_manager.parse_webhook("shop_eur", h, b), gateway="shop_eur")
    assert {e.gateway for e in events} == {"shop_eur"}
"""
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


# -- delivery to a URL on 127.0.0.1: a real HTTP server in this process ----------------------


@pytest.fixture
def manager() -> GatewayManager:
    return GatewayManager(fake_config())


@pytest.fixture
def webhook_server(manager: GatewayManager) -> Iterator[tuple[str, list[Any]]]:
    """The host's webhook endpoint: verifies with the manager, answers 200 or 400."""
    received: list[Any] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                received.append(manager.parse_webhook("fake", dict(self.headers.items()), body))
                self.send_response(200)
            except WebhookVerificationFailed:
                self.send_response(400)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with local_http_server(Handler) as base_url:
        yield f"{base_url}/webhooks/fake", received


def test_webhooks_are_posted_to_a_local_url(manager: GatewayManager, webhook_server: tuple[str, list[Any]]) -> None:
    url, received = webhook_server
    fake = fake_gateways(manager)["fake"]
    request = CheckoutRequest.single("Ticket", Money.of("9.99", "EUR"), "https://h.test/a", "https://h.test/b")
    fake.complete_checkout(manager.create_checkout("fake", request, idempotency_key="k").id)
    statuses = WebhookDeliverer(manager)(url)
    assert statuses == [200, 200]
    assert [e.amount for e in received] == [Money.of("9.99", "EUR")] * 2


def test_a_forged_delivery_is_answered_400(manager: GatewayManager, webhook_server: tuple[str, list[Any]]) -> None:
    url, received = webhook_server
    fake = fake_gateways(manager)["fake"]
    request = CheckoutRequest.single("Ticket", Money.of("9.99", "EUR"), "https://h.test/a", "https://h.test/b")
    fake.complete_checkout(manager.create_checkout("fake", request, idempotency_key="k").id)

    post = post_to(url)
    statuses = WebhookDeliverer(manager)(lambda headers, body: post(headers, body.replace(b"9.99", b"0.01")))
    assert statuses == [400, 400]
    assert received == []


def test_only_local_urls_are_posted_to(manager: GatewayManager) -> None:
    with pytest.raises(ConfigurationError, match=r"127\.0\.0\.1"):
        WebhookDeliverer(manager)("https://shop.example.com/webhooks")
