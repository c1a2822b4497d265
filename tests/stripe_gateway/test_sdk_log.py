"""The Stripe SDK's own log lines (standard-library logger ``stripe``) carry no body and no key."""

from __future__ import annotations

import logging

import pytest
from stripe_gateway import _sdklog
from stripe_gateway.gateway import StripeGateway

from gateway_core.errors import AuthenticationFailed
from gateway_core.manager import GatewayManager
from gateway_core.models import AuthorizeRequest, CheckoutRequest
from gateway_core.money import Money
from tests.stripe_gateway.conftest import API_KEY, StandIn, make_manager
from tests.stripe_gateway.transport import CheckedClient

GW = "stripe_test"
TOKEN, EMAIL, VALUE = "pm_card_visa", "payer.private@example.com", "metadata-value-7f3a"


def test_debug_logging_shows_the_sdks_lines_without_bodies(
    manager: GatewayManager, client: CheckedClient, standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    # A host that turns on debug logging for everything (logging.basicConfig(level=DEBUG)).
    caplog.set_level(logging.DEBUG)
    manager.authorize(GW, AuthorizeRequest(Money.of("15.00", "EUR"), TOKEN, metadata={"v": VALUE}), operation_id="a")
    checkout = CheckoutRequest.single(
        "Ticket", Money.of("10", "EUR"), "https://shop.example/ok", "https://shop.example/no", customer_email=EMAIL
    )
    manager.create_checkout(GW, checkout, operation_id="c")
    revoked = make_manager(client, standin.url, api_key="sk_test_revoked")
    with pytest.raises(AuthenticationFailed):
        revoked.create_checkout(GW, checkout, operation_id="r")

    sdk = [r.getMessage() for r in caplog.records if r.name == _sdklog.SDK_LOGGER]
    assert any("message='Request to Stripe api'" in line for line in sdk), "the SDK's lines are kept"
    assert any("message='Post details' post_data=<hidden:" in line for line in sdk)
    assert any(line.startswith("body=<hidden:") for line in sdk)
    everything = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (TOKEN, EMAIL, VALUE, API_KEY, "sk_test_revoked"):
        assert secret not in everything


POSTED = "amount=1500&payment_method=pm_1Abc&metadata[v]=x"
ANSWER = '\'{"id": "pi_1", "client_secret": "pi_1_secret_Xy"}\''


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        (
            f"api_version=2026-10-28.endive message='Post details' post_data={POSTED}",
            f"api_version=2026-10-28.endive message='Post details' post_data=<hidden: {len(POSTED)} chars>",
        ),
        (
            f"body={ANSWER} message='API response body'",
            f"body=<hidden: {len(ANSWER)} chars> message='API response body'",
        ),
        (
            "error_message='Invalid API Key provided: sk_live_abcdef' message='Stripe v1 API error received'",
            "error_message='Invalid API Key provided: [redacted]' message='Stripe v1 API error received'",
        ),
        ("message='Request to Stripe api' method=post url=https://api.stripe.com/v1/refunds",) * 2,
    ],
)
def test_hide_bodies(line: str, shown: str) -> None:
    assert _sdklog.hide_bodies(line) == shown


def test_the_filter_is_installed_once_however_many_gateways(manager: GatewayManager, client: CheckedClient) -> None:
    other = make_manager(client, "http://127.0.0.1:9", name="another")
    for m, name in ((manager, GW), (other, "another")):
        gateway = m.gateway_object(name)
        assert isinstance(gateway, StripeGateway)
        assert gateway.client is not None  # built now, and the filter with it
    filters = logging.getLogger(_sdklog.SDK_LOGGER).filters
    assert sum(isinstance(f, _sdklog.HideBodies) for f in filters) == 1
