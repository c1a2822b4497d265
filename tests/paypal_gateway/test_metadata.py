"""Metadata and settings: read without the SDK, sourced, currencies as PayPal takes them."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from paypal_gateway import CAPABILITIES
from paypal_gateway.metadata import IN_COUNTRY, WHOLE_UNIT_CURRENCIES

from gateway_core.capabilities import Feature
from gateway_core.config import DeploymentConfig, GatewaySettings, Secret
from gateway_core.errors import ConfigurationError, InvalidAmount
from gateway_core.fake import default_capabilities, provider
from gateway_core.manager import GatewayManager
from gateway_core.money import Money

CREDENTIALS = {"client_id": Secret("id-123"), "client_secret": Secret("secret-456")}


def manager(**settings: Any) -> GatewayManager:
    return GatewayManager(DeploymentConfig([GatewaySettings("pp", "paypal", {**CREDENTIALS, **settings})]))


def test_reading_metadata_and_building_gateways_does_not_import_the_sdk() -> None:
    code = (
        "import sys\n"
        "from gateway_core.config import DeploymentConfig, GatewaySettings, Secret\n"
        "from gateway_core.manager import GatewayManager\n"
        "s = {'client_id': Secret('a'), 'client_secret': Secret('b')}\n"
        "m = GatewayManager(DeploymentConfig([GatewaySettings('pp', 'paypal', s)]))\n"
        "assert m.gateway('pp').capabilities.currencies, 'no currencies'\n"
        "loaded = sorted(n for n in sys.modules if n.split('.')[0] in ('paypalserversdk', 'apimatic_core', 'requests'))\n"
        "print(loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_provider_is_registered_through_its_entry_point() -> None:
    m = manager()
    info = m.gateway("pp")
    assert info.provider == "paypal"
    assert info.plugin.distribution == "gateway-core-paypal"
    assert m.failures == []


def test_currencies_are_paypals() -> None:
    assert len(CAPABILITIES.currencies) == 24
    for code in ("BGN", "RON", "RUB", "INR"):
        assert code not in CAPABILITIES.currencies
    for code in WHOLE_UNIT_CURRENCIES:
        rule = CAPABILITIES.currencies[code]
        assert (rule.exponent, rule.minimum, rule.maximum) == (0, None, None)
    assert CAPABILITIES.currencies["EUR"].exponent == 2
    assert CAPABILITIES.currencies["EUR"].effective_minimum == Money.of("0.01", "EUR")
    assert all(rule.maximum is None for rule in CAPABILITIES.currencies.values())


def test_every_source_is_dated() -> None:
    assert CAPABILITIES.sources
    assert all(s.what and s.reference and s.checked.isoformat() == "2026-11-25" for s in CAPABILITIES.sources)
    assert CAPABILITIES.problems() == []


def test_in_country_currencies_are_off_unless_the_account_country_names_them() -> None:
    offered = set(manager().gateway("pp").capabilities.currencies)
    assert not offered & set(IN_COUNTRY)
    assert len(offered) == 21
    brazil = set(manager(account_country="BR").gateway("pp").capabilities.currencies)
    assert brazil - offered == {"BRL"}
    malaysia = set(manager(account_country="MY").gateway("pp").capabilities.currencies)
    assert malaysia - offered == {"MYR"}
    assert set(manager(account_country="DE").gateway("pp").capabilities.currencies) == offered


def test_declared_and_effective_currencies_say_what_they_are() -> None:
    """The provider declares what some PayPal account takes; a gateway offers what its account takes."""
    from paypal_gateway.metadata import for_account

    assert set(IN_COUNTRY) <= set(CAPABILITIES.currencies)  # the provider's union, what routing sees unconfigured
    assert any("in-country" in source.what and "account_country" in source.what for source in CAPABILITIES.sources)
    for country in (None, "BR", "CN", "US"):
        settings = {"account_country": country} if country else {}
        assert manager(**settings).gateway("pp").capabilities == for_account(country)
    assert set(for_account("CN").currencies) - set(for_account(None).currencies) == {"CNY"}
    info = manager().providers()["paypal"][0]
    assert "BRL, MYR, CNY only with account_country" in info.description


def test_a_requested_checkout_expiry_is_refused_before_sending() -> None:
    """PayPal takes no expiry per order (nothing in Orders v2 bounds the approval window)."""
    from datetime import UTC, datetime, timedelta

    from gateway_core.errors import CapabilityNotSupported
    from gateway_core.models import CheckoutRequest

    assert CAPABILITIES.checkout_expiry is None
    assert any("checkout expiry" in source.what for source in CAPABILITIES.sources)
    request = CheckoutRequest.single(
        "T",
        Money.of("5.00", "EUR"),
        "https://a.example/ok",
        "https://a.example/no",
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    with pytest.raises(CapabilityNotSupported):
        manager().create_checkout("pp", request, idempotency_key="expiry")  # no network: refused first


class _TokenServer:
    """A ``requests`` transport adapter (the SDK's HTTP-client seam) that issues a token and records URLs."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def adapter(self) -> Any:
        import json

        import requests

        server = self

        class Adapter(requests.adapters.BaseAdapter):
            def send(self, request: Any, *args: Any, **kwargs: Any) -> requests.Response:
                server.urls.append(str(request.url))
                response = requests.Response()
                response.status_code = 200
                response._content = json.dumps(
                    {"access_token": "t", "token_type": "Bearer", "expires_in": 32400}
                ).encode()
                response.headers["Content-Type"] = "application/json"
                response.url, response.request = str(request.url), request
                return response

            def close(self) -> None:
                pass

        return Adapter()


@pytest.mark.parametrize(
    ("environment", "host"), [("live", "https://api-m.paypal.com"), ("sandbox", "https://api-m.sandbox.paypal.com")]
)
def test_each_environment_talks_to_its_paypal_host(environment: str, host: str) -> None:
    import requests
    from paypal_gateway.client import PayPalClient
    from paypal_gateway.settings import PayPalSettings

    server = _TokenServer()
    session = requests.Session()
    session.mount("https://", server.adapter())
    session.mount("http://", server.adapter())
    settings = PayPalSettings.from_gateway(GatewaySettings("pp", "paypal", {**CREDENTIALS, "environment": environment}))
    PayPalClient(settings, session=session).access_token()
    assert server.urls == [f"{host}/v1/oauth2/token"]


def test_fractional_huf_is_routed_to_another_gateway() -> None:
    config = DeploymentConfig(
        [
            GatewaySettings("pp", "paypal", CREDENTIALS, priority=1),
            GatewaySettings("other", "fake-huf", {"test_mode": True}, priority=2),
        ]
    )
    m = GatewayManager(config, plugins=[provider("fake-huf", default_capabilities(["HUF"]))])
    assert m.route(Money.of("1250", "HUF")).best == "pp"
    decision = m.route(Money.of("1250.50", "HUF"))
    assert decision.eligible == ("other",)
    assert [e.gateway for e in decision.excluded] == ["pp"]
    with pytest.raises(InvalidAmount):
        m.gateway("pp").capabilities.currencies["HUF"].check(Money.of("1250.50", "HUF"))


def test_features() -> None:
    assert Feature.APPLICATION_FEE not in CAPABILITIES.features
    assert {Feature.HOSTED_CHECKOUT, Feature.PARTIAL_CAPTURE, Feature.MULTIPLE_REFUNDS, Feature.WEBHOOKS} <= (
        CAPABILITIES.features
    )


def test_the_host_must_capture_an_approved_checkout() -> None:
    # Orders v2: the payer's approval moves no money; the merchant's capture does.
    assert CAPABILITIES.host_completes_checkout is True
    for country in (None, "CN"):
        assert manager(account_country=country).gateway("pp").capabilities.host_completes_checkout is True


def test_gateway_plugins_says_paypal_needs_the_host_to_capture() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "gateway_core.cli", "plugins", "--json"], capture_output=True, text=True, check=True
    )
    providers = {p["provider"]: p for p in json.loads(listed.stdout)["providers"]}
    assert providers["paypal"]["host_completes_checkout"] is True
    assert providers["fake"]["host_completes_checkout"] is False
    table = subprocess.run(
        [sys.executable, "-m", "gateway_core.cli", "plugins"], capture_output=True, text=True, check=True
    ).stdout
    rows: dict[str, str] = {}  # provider -> its row with the wrapped lines that follow it
    for line in table.splitlines()[3:]:
        if line[:1].strip():
            name = line.split()[0]
            rows[name] = line
        else:
            rows[name] += " " + line.strip()
    assert "(host completes checkout)" in rows["paypal"]
    assert "(host completes checkout)" not in rows["fake"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"client_secret": "literal"}, "must be a secret"),
        ({"environment": "production"}, "environment"),
        ({"base_url": "http://api.example.com"}, "loopback"),
        ({"base_url": "ftp://127.0.0.1"}, "http"),
        ({"webhook_verification": "trust-me"}, "webhook_verification"),
        ({"webhook_id": "WH-1 2"}, "webhook_id"),
        ({"account_country": "brazil"}, "account_country"),
        ({"timeout": 0}, "timeout"),
        ({"max_retries": 11}, "max_retries"),
        ({"api_key": "x"}, "unknown settings"),
    ],
)
def test_bad_settings_are_configuration_errors(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        manager(**settings)
    assert "secret-456" not in str(info.value)


def test_missing_credentials_name_the_setting() -> None:
    config = DeploymentConfig([GatewaySettings("pp", "paypal", {"client_id": Secret("a")})])
    with pytest.raises(ConfigurationError, match="client_secret"):
        GatewayManager(config)


def test_gateway_toml_with_secrets_from_the_environment(tmp_path: Any) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(
        "[gateways.paypal_eu]\n"
        'provider = "paypal"\n'
        "[gateways.paypal_eu.settings]\n"
        'client_id = { env = "PP_ID" }\n'
        'client_secret = { env = "PP_SECRET" }\n'
        'environment = "live"\n'
        'webhook_id = "8PT597110X687430LKGECATA"\n'
        'account_country = "CN"\n'
    )
    m = GatewayManager.from_toml(path, environ={"PP_ID": "id", "PP_SECRET": "shh"})
    info = m.gateway("paypal_eu")
    assert "CNY" in info.capabilities.currencies
    assert "shh" not in repr(info)
