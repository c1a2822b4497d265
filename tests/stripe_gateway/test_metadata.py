"""The Stripe plugin's declared metadata: sourced, checked against the gathered facts, SDK-free."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import stripe
from stripe_gateway import PROVIDER, definition
from stripe_gateway.metadata import (
    EXCLUDED_CURRENCIES,
    MAX_AMOUNT_MINOR,
    MAX_AMOUNT_MINOR_BY_CURRENCY,
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


_CONFIGURED = """
import sys
from gateway_core.config import DeploymentConfig, GatewaySettings, Secret
from gateway_core.manager import GatewayManager
config = DeploymentConfig([GatewaySettings("s1", "stripe", {"api_key": Secret("sk_test_lazy"),
                                                             "webhook_secret": Secret("whsec_lazy0")})])
manager = GatewayManager(config)  # through the real entry point: the gateway is built here
manager.route(__import__("gateway_core").Money.of("10.00", "EUR"))
print("after building and routing:", "stripe" in sys.modules)
manager.gateway_object("s1").client  # what the first operation does
print("after the first operation needs the client:", "stripe" in sys.modules)
"""


def test_a_configured_gateway_imports_the_sdk_only_when_an_operation_needs_it() -> None:
    out = subprocess.run([sys.executable, "-c", _CONFIGURED], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [
        "after building and routing: False",
        "after the first operation needs the client: True",
    ]


def test_gateway_route_with_a_stripe_gateway_configured_never_imports_the_sdk(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[gateways.stripe_eu]\nprovider = "stripe"\n[gateways.stripe_eu.settings]\n'
        'api_key = { env = "STRIPE_EU_API_KEY" }\n'
    )
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('SDK_LOADED', 'stripe' in sys.modules, file=sys.stderr))\n"
        "from gateway_core.cli import main\n"
        f"main(['--config', {str(config)!r}, 'route', '--amount', '12.00', '--currency', 'EUR'])\n"
    )
    env = {**os.environ, "STRIPE_EU_API_KEY": "sk_test_route_only"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    print(f"gateway route with a stripe gateway, fresh interpreter: {time.perf_counter() - started:.3f} s")
    assert done.returncode == 0, done.stderr
    assert "stripe_eu" in done.stdout
    assert "SDK_LOADED False" in done.stderr


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


def test_maxima_beyond_eight_digits_are_the_gathered_facts(facts: dict[str, object]) -> None:
    table: dict[str, Any] = facts["max_amount_minor_units"]  # type: ignore[assignment]
    documented: dict[str, int] = dict(table["currencies_page_current"]["non_card"])
    default = documented.pop("*")
    assert default == table["default_safe"] == MAX_AMOUNT_MINOR
    assert dict(MAX_AMOUNT_MINOR_BY_CURRENCY) == documented
    caps = capabilities()
    assert caps.currencies["IDR"].maximum == Money.of("9999999999.99", "IDR")
    assert caps.currencies["COP"].maximum == Money.of("99999999.99", "COP")
    assert caps.currencies["INR"].maximum == Money.of("9999999.99", "INR")
    for code, rule in caps.currencies.items():
        limit = MAX_AMOUNT_MINOR_BY_CURRENCY.get(code, MAX_AMOUNT_MINOR)
        assert rule.maximum is not None
        assert rule.wire.to_minor(rule.maximum) == limit - limit % rule.step, code
    named = " ".join(source.what for source in caps.sources)
    assert all(code in named for code in MAX_AMOUNT_MINOR_BY_CURRENCY)


def test_features_brands_and_sources() -> None:
    caps = capabilities()
    assert caps.problems() == []
    assert Feature.APPLICATION_FEE in caps.features
    assert {"visa", "mastercard", "amex"} <= caps.card_brands
    assert all(s.checked >= date(2026, 11, 25) for s in caps.sources)


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
        {"api_key": Secret("sk_test_x"), "api_base": "http://proxy.example:8080"},  # the key in cleartext
        {"api_key": Secret("sk_test_x"), "api_base": "http://10.0.0.5"},
        {"api_key": Secret("sk_test_x"), "api_base": "https://"},
        {"api_key": Secret("sk_test_x"), "localstripe_compatible": True},  # a test switch, not a setting
        {"api_key": Secret("sk_test_x"), "connected_account": "cus_1"},
        {"api_key": Secret("sk_test_x"), "max_network_retries": -1},
        {"api_key": Secret("sk_test_x"), "webhook_tolerance": "300"},
        {"api_key": Secret("sk_test_x"), "enable_currencies": ["USD"]},
        {"api_key": Secret("sk_test_x"), "webhook_secret": "whsec_literal"},
        {"api_key": Secret("sk_test_x"), "apikey": "typo"},
        {"api_key": Secret("sk_test_x\n")},  # read from a file with its newline
        {"api_key": Secret(" sk_test_x")},
        {"api_key": Secret("sk_test_x"), "webhook_secret": Secret("whsec_x\n")},
    ],
)
def test_bad_settings_are_configuration_errors(settings: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError) as info:
        manager_for(settings)
    assert "sk_test_x" not in str(info.value)


@pytest.mark.parametrize(
    "base",
    ["https://api.stripe.com", "https://proxy.example:8443/", "http://127.0.0.1:12111", "http://localhost:8420",
     "http://[::1]:9000"],
)  # fmt: skip
def test_https_and_loopback_http_api_bases_are_accepted(base: str) -> None:
    gateway = manager_for({"api_key": Secret("sk_test_x"), "api_base": base}).gateway_object("s1")
    assert gateway._api_base == base.rstrip("/")  # type: ignore[attr-defined]


def test_definition_is_the_stripe_provider() -> None:
    assert definition().name == "stripe"


def test_the_client_is_built_once_however_many_threads_ask_first(monkeypatch: pytest.MonkeyPatch) -> None:
    from stripe_gateway.gateway import StripeGateway

    built = []
    real_build = StripeGateway._build_client

    def slow_build(self: StripeGateway) -> object:
        built.append(self)
        time.sleep(0.05)  # widen the window in which a second thread could build another
        return real_build(self)

    monkeypatch.setattr(StripeGateway, "_build_client", slow_build)
    gateway = StripeGateway("s1", api_key=Secret("sk_test_threads"))
    start = threading.Barrier(8, timeout=10)

    def first_use(_: int) -> int:
        start.wait()
        return id(gateway.client)

    with ThreadPoolExecutor(max_workers=8) as pool:
        clients = set(pool.map(first_use, range(8)))
    assert len(built) == 1
    assert len(clients) == 1


@pytest.mark.parametrize("key", ["sk_test_x\n", "sk_test_x\r\n", "sk_test x", "sk_test_x\u00a0", "sk_test_\u00e9"])
def test_a_key_that_cannot_go_in_a_header_is_refused_before_any_request(key: str) -> None:
    """Sent, it made requests raise InvalidHeader quoting 'Bearer <the whole key>': the SDK put that
    text in the APIConnectionError the plugin raised from (an OutcomeUnknown saying the request may
    have been processed, though nothing was sent), so the key reached every logged traceback."""
    from stripe_gateway.gateway import StripeGateway

    with pytest.raises(ConfigurationError) as info:
        StripeGateway("s1", api_key=Secret(key))
    assert "sk_test" not in str(info.value)
    with pytest.raises(ConfigurationError):
        StripeGateway("s1", api_key=Secret("sk_test_x"), webhook_secret=Secret(key.replace("sk_test", "whsec", 1)))
