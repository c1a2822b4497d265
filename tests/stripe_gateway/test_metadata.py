"""The Stripe plugin's declared metadata: sourced, checked against the gathered facts, SDK-free."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import stripe
from stripe_gateway import PROVIDER, definition
from stripe_gateway.metadata import (
    EXCLUDED_CURRENCIES,
    MINIMUM_CHARGE_MINOR,
    RESTRICTED_CURRENCIES,
    STRIPE_API_VERSION,
    capabilities,
)

from gateway_core.capabilities import Feature
from gateway_core.config import DeploymentConfig, GatewaySettings, Secret
from gateway_core.errors import ConfigurationError
from gateway_core.manager import GatewayManager
from gateway_core.money import Money

FACTS = Path(__file__).resolve().parent / "data" / "provider_facts.json"


@pytest.fixture(scope="module")
def facts() -> dict[str, object]:
    data: dict[str, object] = json.loads(FACTS.read_text())["providers"]["stripe"]
    return data


def test_importing_the_plugin_does_not_import_the_sdk() -> None:
    code = "import sys, stripe_gateway; stripe_gateway.definition(); print('stripe' in sys.modules)"
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    print(f"import stripe_gateway + metadata in a fresh interpreter: {time.perf_counter() - started:.3f} s")
    assert out.stdout.strip() == "False"


def test_the_api_version_pin_is_the_sdks() -> None:
    # Bumping stripe-python moves its pinned version; this makes the bump a deliberate change here.
    assert stripe._api_version._ApiVersion.CURRENT == STRIPE_API_VERSION


def test_currencies_match_the_gathered_facts(facts: dict[str, object]) -> None:
    caps = capabilities()
    listed = set(facts["supported_presentment_currencies"]) | set(facts["three_decimal"])  # type: ignore[call-overload]
    assert set(caps.currencies) == listed - set(EXCLUDED_CURRENCIES)
    places: dict[str, int] = facts["decimal_places"]  # type: ignore[assignment]
    for code, rule in caps.currencies.items():
        assert rule.exponent == places[code], code


@pytest.mark.parametrize(
    ("code", "exponent", "step", "quantum"),
    [
        ("ISK", 2, 100, "1"),
        ("UGX", 2, 100, "1"),
        ("BHD", 3, 10, "0.01"),
        ("JOD", 3, 10, "0.01"),
        ("KWD", 3, 10, "0.01"),
        ("OMR", 3, 10, "0.01"),
        ("TND", 3, 10, "0.01"),
        ("HUF", 2, 1, "0.01"),
        ("TWD", 2, 1, "0.01"),
        ("JPY", 0, 1, "1"),
        ("EUR", 2, 1, "0.01"),
    ],
)
def test_special_wire_formats(code: str, exponent: int, step: int, quantum: str) -> None:
    rule = capabilities().currencies[code]
    assert (rule.exponent, rule.step) == (exponent, step)
    assert rule.wire.quantum == Decimal(quantum)


def test_minimums_are_stripes_table(facts: dict[str, object]) -> None:
    caps = capabilities()
    table: dict[str, int] = facts["min_charge_minor_units"]  # type: ignore[assignment]
    for code, minor in table.items():
        assert caps.currencies[code].minimum == caps.currencies[code].wire.from_minor(minor), code
    assert caps.currencies["EUR"].minimum == Money.of("0.50", "EUR")
    assert caps.currencies["HUF"].minimum == Money.of("175.00", "HUF")
    assert caps.currencies["JPY"].minimum == Money.of("50", "JPY")
    assert set(MINIMUM_CHARGE_MINOR) - set(table) == {"BGN"}  # BGN from the previous table, restricted


def test_maximum_is_eight_digits_on_the_wire_step() -> None:
    caps = capabilities()
    assert caps.currencies["EUR"].maximum == Money.of("999999.99", "EUR")
    assert caps.currencies["ISK"].maximum == Money.of("999999", "ISK")
    assert caps.currencies["KWD"].maximum == Money.of("99999.990", "KWD")


def test_features_brands_and_sources() -> None:
    caps = capabilities()
    assert caps.problems() == []
    assert Feature.APPLICATION_FEE in caps.features
    assert {"visa", "mastercard", "amex"} <= caps.card_brands
    assert all(date(2026, 11, 25) <= s.checked <= date.today() for s in caps.sources)  # noqa: DTZ011


def manager_for(settings: dict[str, object]) -> GatewayManager:
    config = DeploymentConfig([GatewaySettings("s1", PROVIDER, settings)])
    return GatewayManager(config)  # through the real entry point


def test_the_entry_point_builds_a_gateway_and_narrows_restricted_currencies() -> None:
    manager = manager_for({"api_key": Secret("sk_test_entrypoint")})
    info = manager.gateway("s1")
    assert info.plugin.distribution == "gateway-core-stripe"
    assert set(info.declared.currencies) >= RESTRICTED_CURRENCIES
    assert not RESTRICTED_CURRENCIES & set(info.capabilities.currencies)
    enabled = manager_for({"api_key": Secret("sk_test_entrypoint"), "enable_currencies": ["BGN"]})
    assert "BGN" in enabled.gateway("s1").capabilities.currencies
    assert "RUB" not in enabled.gateway("s1").capabilities.currencies


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"api_key": "sk_test_literal"},
        {"api_key": Secret("pk_test_publishable")},
        {"api_key": Secret("sk_test_x"), "api_base": "ftp://x"},
        {"api_key": Secret("sk_test_x"), "connected_account": "cus_1"},
        {"api_key": Secret("sk_test_x"), "max_network_retries": -1},
        {"api_key": Secret("sk_test_x"), "webhook_tolerance": "300"},
        {"api_key": Secret("sk_test_x"), "enable_currencies": ["USD"]},
        {"api_key": Secret("sk_test_x"), "webhook_secret": "whsec_literal"},
        {"api_key": Secret("sk_test_x"), "apikey": "typo"},
    ],
)
def test_bad_settings_are_configuration_errors(settings: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError) as info:
        manager_for(settings)
    assert "sk_test_x" not in str(info.value)


def test_definition_is_the_stripe_provider() -> None:
    assert definition().name == "stripe"
