"""gateway.toml: parsing real files, secrets from the environment, narrowing, plugin policy."""

from __future__ import annotations

import copy
import dataclasses
import errno
import json
import os
import pickle
import textwrap
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from gateway_core import (
    ConfigurationError,
    DeploymentConfig,
    GatewayManager,
    GatewaySettings,
    Secret,
    UnsupportedCurrency,
)
from gateway_core.config import DISABLE_ENV_VAR
from gateway_core.errors import ErrorCode

from .conftest import build_manager, fake, fake_table

SECRET_VALUE = "sk_test_51Hx_do_not_print_me"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


FULL = """
    [core]
    strict_plugins = true
    disabled_plugins = ["paypal"]

    [gateways.stripe_eu]
    provider = "stripe"
    currencies = ["EUR", "HUF"]
    priority = 10

    [gateways.stripe_eu.settings]
    api_key = { env = "STRIPE_EU_API_KEY" }
    account_country = "DE"

    [gateways.stripe_us]
    provider = "stripe"

    [gateways.stripe_us.settings]
    api_key = { env = "STRIPE_US_API_KEY" }
"""


def test_a_full_file_is_parsed(tmp_path: Path) -> None:
    config = DeploymentConfig.from_toml(
        write(tmp_path, FULL), environ={"STRIPE_EU_API_KEY": SECRET_VALUE, "STRIPE_US_API_KEY": "sk_us"}
    )
    assert config.strict_plugins is True
    assert config.disabled_plugins == frozenset({"paypal"})
    eu, us = config.gateways
    assert (eu.name, eu.provider, eu.currencies, eu.priority) == ("stripe_eu", "stripe", ("EUR", "HUF"), 10)
    assert (us.name, us.provider, us.currencies, us.priority) == ("stripe_us", "stripe", None, 100)
    assert eu.get("account_country") == "DE"
    assert eu.secret("api_key").reveal() == SECRET_VALUE
    assert eu.secret("api_key").source == "env:STRIPE_EU_API_KEY"
    assert us.secret("api_key").reveal() == "sk_us"


def test_an_empty_file_is_an_empty_deployment(tmp_path: Path) -> None:
    config = DeploymentConfig.from_toml(write(tmp_path, ""), environ={})
    assert config.gateways == ()
    assert config.strict_plugins is False
    assert config.disabled_plugins == frozenset()


def test_a_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        DeploymentConfig.from_toml(tmp_path / "nope.toml", environ={})


def test_invalid_toml_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        DeploymentConfig.from_toml(write(tmp_path, "[gateways.x\nprovider = 1"), environ={})


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda tmp: tmp, "is a directory, not a file"),
        (lambda tmp: write(tmp, "") / "gateway.toml", "cannot be read: Not a directory"),
        (lambda tmp: tmp / ("x" * 300), "cannot be read: File name too long"),
    ],
)
def test_a_path_that_cannot_be_read_is_a_configuration_error(
    tmp_path: Path, make: Callable[[Path], Path], said: str
) -> None:
    path = make(tmp_path)
    with pytest.raises(ConfigurationError, match="configuration file") as info:
        DeploymentConfig.from_toml(path, environ={})
    assert said in str(info.value)
    assert info.value.code is ErrorCode.CONFIGURATION


def test_a_file_that_is_not_utf8_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_bytes("[gateways.caf\xe9]\n".encode("latin-1"))
    with pytest.raises(ConfigurationError, match=r"is not UTF-8 text \(byte 0xe9 at offset 13\)"):
        DeploymentConfig.from_toml(path, environ={})


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_is_a_configuration_error(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    path.chmod(0)
    with pytest.raises(ConfigurationError, match="cannot be read: Permission denied"):
        DeploymentConfig.from_toml(path, environ={})


def test_a_permission_error_is_a_configuration_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same refusal for whoever runs the suite (root reads any file): the OS error as open() raises it.
    path = write(tmp_path, "")

    def denied(self: Path, *args: object, **kwargs: object) -> str:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))

    monkeypatch.setattr(Path, "read_text", denied)
    with pytest.raises(ConfigurationError, match="cannot be read: Permission denied"):
        DeploymentConfig.from_toml(path, environ={})


# --------------------------------------------------------------------------------------------
# Secrets
# --------------------------------------------------------------------------------------------


def test_secret_never_shows_its_value() -> None:
    s = Secret(SECRET_VALUE, source="env:X")
    renderings = [repr(s), str(s), f"{s}", f"{s!r}", f"{s!s}", f"{s:>40}", format(s, ""), "%s" % s, "%r" % (s,)]  # noqa: UP031
    for text in renderings:
        assert SECRET_VALUE not in text
        assert "********" in text
    assert s.reveal() == SECRET_VALUE
    assert SECRET_VALUE not in repr({"api_key": s})
    assert SECRET_VALUE not in repr(GatewaySettings("g", "p", {"api_key": s}))


def test_secret_equality_and_truthiness_use_the_value() -> None:
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret("a", source="env:A") != Secret("a", source="env:B")
    assert Secret("a") != "a"
    assert len({Secret("a"), Secret("a"), Secret("b")}) == 2
    assert not Secret("")
    assert Secret("x")


@pytest.mark.parametrize(
    "introspect",
    [
        attrs.asdict,
        attrs.astuple,
        attrs.fields,
        dataclasses.asdict,
        vars,
        lambda s: s.__dict__,
        lambda s: s._value,
    ],
)
def test_introspection_does_not_hand_out_the_value(introspect: Callable[[object], object]) -> None:
    secret = Secret(SECRET_VALUE, source="env:X")
    try:
        shown = introspect(secret)
    except (TypeError, AttributeError, attrs.exceptions.NotAnAttrsClassError):
        return
    assert SECRET_VALUE not in repr(shown)


def test_a_config_serialized_with_attrs_keeps_the_secret_masked() -> None:
    settings = GatewaySettings("g", "p", {"api_key": Secret(SECRET_VALUE, source="env:X")})
    dumped = attrs.asdict(DeploymentConfig([settings]), value_serializer=lambda _inst, _field, value: value)
    assert SECRET_VALUE not in repr(dumped)
    assert SECRET_VALUE not in json.dumps(dumped, default=str)


def test_a_secret_is_immutable_and_survives_copy_and_pickle() -> None:
    secret = Secret(SECRET_VALUE, source="env:X")
    with pytest.raises(AttributeError, match="immutable"):
        secret.source = "code"
    with pytest.raises(AttributeError, match="immutable"):
        del secret.source
    for clone in (copy.copy(secret), copy.deepcopy(secret), pickle.loads(pickle.dumps(secret))):
        assert clone == secret
        assert clone.reveal() == SECRET_VALUE
    with pytest.raises(TypeError, match="holds a str"):
        Secret(1234)  # type: ignore[arg-type]


def test_the_secret_is_not_in_the_config_repr(tmp_path: Path) -> None:
    config = DeploymentConfig.from_toml(
        write(tmp_path, FULL), environ={"STRIPE_EU_API_KEY": SECRET_VALUE, "STRIPE_US_API_KEY": SECRET_VALUE}
    )
    assert SECRET_VALUE not in repr(config)
    assert SECRET_VALUE not in str(config)


@pytest.mark.parametrize(
    "literal",
    [
        f'api_key = "{SECRET_VALUE}"',
        "api_key = 123456789",
        f'api_key = ["{SECRET_VALUE}"]',
        f'api_key = {{ value = "{SECRET_VALUE}" }}',
        f'webhook_secret = "{SECRET_VALUE}"',
        f'client_token = "{SECRET_VALUE}"',
        f'password = "{SECRET_VALUE}"',
        f'API_KEY = "{SECRET_VALUE}"',
        f'oauth = {{ client_secret = "{SECRET_VALUE}" }}',
        f'api_keys = ["{SECRET_VALUE}"]',
        f'secrets = {{ main = "{SECRET_VALUE}" }}',
        f'secret_main = "{SECRET_VALUE}"',
        f'passphrase = "{SECRET_VALUE}"',
        f'tls_passphrase = "{SECRET_VALUE}"',
        f'credentials = "{SECRET_VALUE}"',
        f'refresh_tokens = ["{SECRET_VALUE}"]',
        f'access_token = "{SECRET_VALUE}"',
        f'db_password_main = "{SECRET_VALUE}"',
        f'passwd = "{SECRET_VALUE}"',
        f'private_key_pem = "{SECRET_VALUE}"',
        f'Signing-Key = "{SECRET_VALUE}"',
    ],
)
def test_a_literal_secret_in_the_file_is_refused(tmp_path: Path, literal: str) -> None:
    path = write(tmp_path, f'[gateways.g]\nprovider = "p"\n[gateways.g.settings]\n{literal}\n')
    with pytest.raises(ConfigurationError, match="looks like a secret") as info:
        DeploymentConfig.from_toml(path, environ={})
    assert SECRET_VALUE not in str(info.value)
    assert SECRET_VALUE not in repr(info.value)
    assert info.value.gateway == "g"


def test_nested_env_secrets_are_resolved(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [gateways.g]
        provider = "p"
        [gateways.g.settings.oauth]
        client_id = "public-id"
        client_secret = { env = "OAUTH_SECRET" }
        """,
    )
    oauth = DeploymentConfig.from_toml(path, environ={"OAUTH_SECRET": SECRET_VALUE}).gateways[0].get("oauth")
    assert oauth["client_id"] == "public-id"
    assert isinstance(oauth["client_secret"], Secret)
    assert oauth["client_secret"].reveal() == SECRET_VALUE


def test_a_literal_secret_in_a_table_inside_an_array_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        [gateways.g]
        provider = "p"
        [[gateways.g.settings.accounts]]
        name = "eu"
        api_key = "{SECRET_VALUE}"
        """,
    )
    with pytest.raises(ConfigurationError, match=r"setting 'accounts\[0\]\.api_key' looks like a secret") as info:
        DeploymentConfig.from_toml(path, environ={})
    assert SECRET_VALUE not in str(info.value)


def test_env_secrets_in_a_table_inside_an_array_are_resolved(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [gateways.g]
        provider = "p"
        [gateways.g.settings]
        features = ["refund", "void"]
        [[gateways.g.settings.accounts]]
        name = "eu"
        api_key = { env = "EU_KEY" }
        """,
    )
    settings = DeploymentConfig.from_toml(path, environ={"EU_KEY": SECRET_VALUE}).gateways[0]
    [account] = settings.get("accounts")
    assert account["name"] == "eu"
    assert isinstance(account["api_key"], Secret)
    assert account["api_key"].reveal() == SECRET_VALUE
    assert settings.get("features") == ["refund", "void"]


@pytest.mark.parametrize(
    "literal",
    ['account_country = "DE"', 'client_id = "public-id"', 'credentials_file = "/etc/gw/creds.json"', "tolerance = 300"],
)
def test_settings_that_are_not_secrets_stay_literals(tmp_path: Path, literal: str) -> None:
    path = write(tmp_path, f'[gateways.g]\nprovider = "p"\n[gateways.g.settings]\n{literal}\n')
    key = literal.split(" = ", maxsplit=1)[0]
    assert DeploymentConfig.from_toml(path, environ={}).gateways[0].get(key) is not None


def test_a_boolean_flag_with_a_secret_like_name_is_not_a_secret(tmp_path: Path) -> None:
    path = write(tmp_path, '[gateways.g]\nprovider = "p"\n[gateways.g.settings]\nverify_token = true\n')
    assert DeploymentConfig.from_toml(path, environ={}).gateways[0].get("verify_token") is True


def test_a_missing_env_var_is_named_without_any_value(tmp_path: Path) -> None:
    path = write(tmp_path, '[gateways.g]\nprovider = "p"\n[gateways.g.settings]\napi_key = { env = "G_API_KEY" }\n')
    with pytest.raises(ConfigurationError) as info:
        DeploymentConfig.from_toml(path, environ={"OTHER_KEY": SECRET_VALUE})
    message = str(info.value)
    assert "G_API_KEY" in message
    assert "not set" in message
    assert "'api_key'" in message
    assert SECRET_VALUE not in message


def test_a_bad_env_var_name_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[gateways.g]\nprovider = "p"\n[gateways.g.settings]\napi_key = { env = "1 BAD" }\n')
    with pytest.raises(ConfigurationError, match="bad env var name"):
        DeploymentConfig.from_toml(path, environ={})


def test_settings_secret_refuses_a_plain_value() -> None:
    settings = GatewaySettings("g", "p", {"region": "eu"})
    with pytest.raises(ConfigurationError, match="must be a secret from the environment"):
        settings.secret("region")
    with pytest.raises(ConfigurationError, match="needs setting 'api_key'"):
        settings.require("api_key")


# --------------------------------------------------------------------------------------------
# Gateways
# --------------------------------------------------------------------------------------------


def test_two_instances_of_one_provider_under_different_names(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [gateways.shop_de]
        provider = "fake"
        [gateways.shop_de.settings]
        test_mode = true
        webhook_secret = { env = "DE_SECRET" }

        [gateways.shop_fr]
        provider = "fake"
        [gateways.shop_fr.settings]
        test_mode = true
        webhook_secret = { env = "FR_SECRET" }
        """,
    )
    import gateway_core.fake

    env = {"DE_SECRET": "whsec_de", "FR_SECRET": "whsec_fr"}
    manager = GatewayManager(
        DeploymentConfig.from_toml(path, environ=env), plugins=[gateway_core.fake], load_entry_points=False
    )
    assert manager.gateway_names() == ("shop_de", "shop_fr")
    de, fr = fake(manager, "shop_de"), fake(manager, "shop_fr")
    assert de is not fr
    assert manager.gateway("shop_de").provider == manager.gateway("shop_fr").provider == "fake"
    # each instance signs with its own secret
    assert de.sign(b"{}", 1) != fr.sign(b"{}", 1)


def test_currencies_narrow_the_provider() -> None:
    from gateway_core import Money
    from gateway_core.models import CheckoutRequest

    manager = build_manager({"eu": fake_table(currencies=["EUR", "HUF"])})
    info = manager.gateway("eu")
    assert list(info.capabilities.currencies) == ["EUR", "HUF"]
    assert "USD" in info.declared.currencies
    request = CheckoutRequest.single("t", Money.of("10", "USD"), "https://s.example", "https://c.example")
    with pytest.raises(UnsupportedCurrency, match="USD not offered"):
        manager.create_checkout("eu", request, idempotency_key="k1")
    assert fake(manager, "eu").requests == []


def test_currencies_cannot_widen_the_provider() -> None:
    from gateway_core.fake import default_capabilities, provider

    narrow = provider("fake-eur", default_capabilities(currencies=["EUR"]))
    with pytest.raises(ConfigurationError, match="configured for USD which its provider does not declare"):
        build_manager(
            {"g": {"provider": "fake-eur", "currencies": ["EUR", "USD"], "settings": {"test_mode": True}}},
            plugins=[narrow],
        )


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"provider": "p", "currencies": []}, "currencies must be a non-empty list"),
        ({"provider": "p", "currencies": "EUR"}, "currencies must be a non-empty list"),
        ({"provider": "p", "priority": "high"}, "priority must be an integer"),
        ({"provider": "p", "priority": True}, "priority must be an integer"),
        ({"provider": "p", "settings": "x"}, "must be a table"),
        ({"settings": {}}, 'needs provider = "..."'),
        ({"provider": "p", "prvider": "q"}, "unknown keys: prvider"),
        ("not a table", "must be a table"),
    ],
)
def test_bad_gateway_tables_are_refused(body: object, said: str) -> None:
    with pytest.raises(ConfigurationError, match=said):
        DeploymentConfig.from_mapping({"gateways": {"g": body}}, environ={})


def test_a_currency_listed_twice_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="EUR"):
        build_manager({"g": fake_table(currencies=["EUR", "EUR"])})


@pytest.mark.parametrize("name", ["Stripe", "1stripe", "stripe eu", "", "x" * 41, "stripé"])
def test_bad_gateway_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match="must be lowercase letters"):
        DeploymentConfig.from_mapping({"gateways": {name: {"provider": "p"}}}, environ={})


def test_a_gateway_configured_twice_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="'g' configured twice"):
        DeploymentConfig([GatewaySettings("g", "p"), GatewaySettings("g", "q")])


@pytest.mark.parametrize(
    ("data", "said"),
    [
        ({"gateway": {}}, "unknown configuration sections: gateway"),
        ({"core": {"strict": True}}, r"unknown \[core\] keys: strict"),
        ({"core": {"strict_plugins": "yes"}}, "strict_plugins must be true or false"),
        ({"core": {"disabled_plugins": "paypal"}}, "disabled_plugins must be a list"),
        ({"core": "strict"}, r"\[core\] must be a table"),
        ({"gateways": "stripe"}, r"\[gateways\] must be a table"),
        ({"gateways": ["stripe"]}, r"\[gateways\] must be a table"),
    ],
)
def test_unknown_or_mistyped_keys_are_refused(data: dict[str, object], said: str) -> None:
    with pytest.raises(ConfigurationError, match=said):
        DeploymentConfig.from_mapping(data, environ={})


def test_disabled_plugins_merge_file_and_environment() -> None:
    config = DeploymentConfig.from_mapping(
        {"core": {"disabled_plugins": ["paypal"]}}, environ={DISABLE_ENV_VAR: " stripe , ,example"}
    )
    assert config.disabled_plugins == frozenset({"paypal", "stripe", "example"})


def test_the_fake_refuses_to_run_without_test_mode() -> None:
    with pytest.raises(ConfigurationError, match="set test_mode = true"):
        build_manager({"g": {"provider": "fake"}})


def test_top_level_keys_in_a_file_that_are_not_tables_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"\[gateways\] must be a table"):
        DeploymentConfig.from_toml(write(tmp_path, 'gateways = "stripe"\n'), environ={})


@pytest.mark.parametrize("value", ["0.5", "1"])
def test_fake_minimums_as_floats_or_ints_are_refused(tmp_path: Path, value: str) -> None:
    import gateway_core.fake

    path = write(
        tmp_path,
        f'[gateways.f]\nprovider = "fake"\n[gateways.f.settings]\ntest_mode = true\nminimums = {{ EUR = {value} }}\n',
    )
    config = DeploymentConfig.from_toml(path, environ={})
    with pytest.raises(ConfigurationError, match=r'minimums\.EUR must be a decimal string such as "0\.50"'):
        GatewayManager(config, plugins=[gateway_core.fake], load_entry_points=False)


@pytest.mark.parametrize(
    ("minimums", "said"),
    [
        ({"EUR": "0.001"}, "minimums.EUR = '0.001' is not an amount: 0.001 has more decimals than EUR allows (2)"),
        ({"EUR": "1e3"}, "minimums.EUR = '1e3' is not an amount: '1e3' is not a plain decimal amount"),
        ({"eur": "1"}, "minimums.eur = '1' is not an amount: 'eur' is not an ISO 4217 code"),
    ],
)
def test_fake_minimums_that_are_not_amounts_say_what_is_wrong(minimums: dict[str, str], said: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        build_manager({"g": fake_table(settings={"minimums": minimums})})
    assert said in str(info.value)
    assert info.value.gateway == "g"


@pytest.mark.parametrize("tolerance", ["300", 1.5, True, 0, -60, None])
def test_fake_tolerance_must_be_whole_positive_seconds(tolerance: object) -> None:
    with pytest.raises(ConfigurationError, match="tolerance must be a whole number of seconds of at least 1") as info:
        build_manager({"g": fake_table(settings={"tolerance": tolerance})})
    assert info.value.gateway == "g"


def test_fake_tolerance_is_used() -> None:
    assert fake(build_manager({"g": fake_table(settings={"tolerance": 60})}), "g").tolerance == 60
    assert fake(build_manager({"g": fake_table()}), "g").tolerance == 300


def test_fake_minimums_as_strings_are_exact(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[gateways.f]\nprovider = "fake"\n[gateways.f.settings]\ntest_mode = true\nminimums = { EUR = "0.50" }\n',
    )
    import gateway_core.fake
    from gateway_core import Money

    manager = GatewayManager(
        DeploymentConfig.from_toml(path, environ={}), plugins=[gateway_core.fake], load_entry_points=False
    )
    assert manager.minimum_price("EUR") == Money.of("0.50", "EUR")


def test_manager_from_toml_reads_secrets_from_the_given_environment(tmp_path: Path) -> None:
    import gateway_core.fake

    path = write(
        tmp_path,
        """
        [core]
        disabled_plugins = ["nothing-installed-by-this-name"]

        [gateways.shop]
        provider = "fake"
        currencies = ["EUR"]
        [gateways.shop.settings]
        test_mode = true
        webhook_secret = { env = "SHOP_WEBHOOK_SECRET" }
        """,
    )
    manager = GatewayManager.from_toml(
        path, environ={"SHOP_WEBHOOK_SECRET": SECRET_VALUE}, plugins=[gateway_core.fake], load_entry_points=False
    )
    shop = fake(manager, "shop")
    assert shop.sign(b"{}", 1) == gateway_core.fake.gateway.sign(b"{}", Secret(SECRET_VALUE), 1)
    assert list(manager.gateway("shop").capabilities.currencies) == ["EUR"]
    assert manager.config.disabled_plugins == frozenset({"nothing-installed-by-this-name"})
    with pytest.raises(ConfigurationError, match="SHOP_WEBHOOK_SECRET, which is not set"):
        GatewayManager.from_toml(path, environ={}, plugins=[gateway_core.fake], load_entry_points=False)
