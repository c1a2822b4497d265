"""Metadata and settings: read without the SDK, sourced, currencies as PayPal takes them."""

from __future__ import annotations

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
