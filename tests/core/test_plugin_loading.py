"""Plugin loading through real entry points, and the checks the manager makes at start.

Distributions are written into ``tmp_path`` (a ``*.dist-info`` with METADATA and
entry_points.txt, plus the module) and put on ``sys.path``, so ``importlib.metadata`` finds them
exactly as it finds an installed wheel. Every other installed ``gateway_core`` entry point is
disabled through ``GATEWAY_CORE_DISABLE_PLUGINS`` so the workspace's plugins cannot interfere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import click
import pytest
from click.testing import CliRunner
from structlog.testing import capture_logs

import gateway_core.fake
from gateway_core import (
    Capabilities,
    CheckoutRequest,
    CheckoutSession,
    CheckoutStatus,
    ConfigurationError,
    CurrencyRule,
    DeploymentConfig,
    Feature,
    GatewayManager,
    GatewaySettings,
    GatewayUnavailable,
    Money,
    OperationContext,
    PluginLoadError,
    ProviderDefinition,
    hookimpl,
)
from gateway_core.fake import FakeGateway
from gateway_core.models import RefundRequest

from .conftest import DistFactory, ProviderPlugin, build_manager, caps, fake_table, provider_plugin

GOOD = """
    from datetime import date
    from gateway_core import (
        Capabilities, CheckoutSession, CheckoutStatus, CurrencyRule, Feature, ProviderDefinition, Source, hookimpl,
    )

    class Gateway:
        def __init__(self, settings):
            self.name = settings.name
            self.requests = []

        @hookimpl
        def gateway_create_checkout(self, request, context):
            self.requests.append(context.idempotency_key)
            return CheckoutSession(self.name, "cs_1", "https://pay.example/cs_1", request.amount, CheckoutStatus.OPEN, None)

    @hookimpl
    def gateway_providers():
        caps = Capabilities(
            currencies=[CurrencyRule.iso("EUR")],
            features={Feature.HOSTED_CHECKOUT},
            sources=[Source("test", "test", date(2026, 11, 25))],
        )
        return [ProviderDefinition(%(provider)r, caps, Gateway, "good test provider")]
"""

BROKEN = """
    import gc_no_such_sdk_for_tests  # the plugin's SDK is not installed
"""

MODULE_LEVEL_OPERATION = """
    from gateway_core import hookimpl

    @hookimpl
    def gateway_refund(request, context):
        raise AssertionError("a module-level operation hook must never be called")
"""

MODULE_LEVEL_MISSPELLED = """
    from gateway_core import hookimpl

    @hookimpl
    def gateway_providerz():
        return []
"""


def good(provider: str = "goodprov") -> str:
    return GOOD % {"provider": provider}


def checkout(amount: str = "10") -> CheckoutRequest:
    return CheckoutRequest.single("t", Money.of(amount, "EUR"), "https://s.example", "https://c.example")


def manager_for(dists: DistFactory, gateways: dict[str, dict[str, object]], **core: object) -> GatewayManager:
    environ = dists.environ()
    config = DeploymentConfig.from_mapping({"core": core, "gateways": gateways}, environ)
    return GatewayManager(config, environ=environ)


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def test_a_broken_plugin_is_reported_and_the_others_still_load(dists: DistFactory) -> None:
    dists.make("gc-good-plugin", "1.0.0", "goodplug", good())
    dists.make("gc-broken-plugin", "2.3.4", "brokenplug", BROKEN)
    with capture_logs() as logs:
        manager = manager_for(dists, {"shop": {"provider": "goodprov"}})

    [failure] = manager.failures
    assert failure.entry_point == "brokenplug"
    assert failure.distribution == "gc-broken-plugin"
    assert failure.version == "2.3.4"
    assert failure.error.startswith("ModuleNotFoundError")
    assert "gc_no_such_sdk_for_tests" in failure.error

    assert manager.plugins["goodplug"].distribution == "gc-good-plugin"
    assert manager.plugins["goodplug"].version == "1.0.0"
    assert "brokenplug" not in manager.plugins
    assert set(manager.providers()) == {"goodprov"}
    session = manager.create_checkout("shop", checkout(), idempotency_key="k")
    assert session.id == "cs_1"

    [line] = [e for e in logs if e["event"] == "gateway.plugin.load_failed"]
    assert (line["entry_point"], line["distribution"], line["version"]) == ("brokenplug", "gc-broken-plugin", "2.3.4")
    assert line["error"] == "ModuleNotFoundError"


def test_strict_mode_raises_plugin_load_error_naming_entry_point_distribution_and_version(
    dists: DistFactory,
) -> None:
    dists.make("gc-good-plugin", "1.0.0", "goodplug", good())
    dists.make("gc-broken-plugin", "2.3.4", "brokenplug", BROKEN)
    with pytest.raises(PluginLoadError) as info:
        manager_for(dists, {}, strict_plugins=True)
    message = str(info.value)
    for part in ("brokenplug", "gc-broken-plugin", "2.3.4", "ModuleNotFoundError"):
        assert part in message
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_a_gateway_whose_plugin_failed_says_so(dists: DistFactory) -> None:
    dists.make("gc-broken-plugin", "2.3.4", "brokenplug", BROKEN)
    with pytest.raises(ConfigurationError) as info:
        manager_for(dists, {"shop": {"provider": "brokenplug"}})
    message = str(info.value)
    assert "no installed plugin provides" in message
    assert "plugin 'brokenplug' failed to load: ModuleNotFoundError" in message
    assert info.value.gateway == "shop"


def test_an_unknown_provider_lists_the_installed_ones(dists: DistFactory) -> None:
    dists.make("gc-good-plugin", "1.0.0", "goodplug", good())
    with pytest.raises(ConfigurationError, match=r"provider 'stirpe'.*installed: goodprov"):
        manager_for(dists, {"shop": {"provider": "stirpe"}})


def test_duplicate_provider_names_are_refused_naming_both_distributions(dists: DistFactory) -> None:
    dists.make("gc-twin-a", "1.0", "twina", good("twin"))
    dists.make("gc-twin-b", "2.0", "twinb", good("twin"))
    with pytest.raises(PluginLoadError) as info:
        manager_for(dists, {})
    message = str(info.value)
    assert "provider 'twin' is declared by both" in message
    assert "gc-twin-a 1.0" in message
    assert "gc-twin-b 2.0" in message


def test_a_plugin_disabled_in_the_file_is_skipped(dists: DistFactory) -> None:
    dists.make("gc-good-plugin", "1.0.0", "goodplug", good())
    dists.make("gc-broken-plugin", "2.3.4", "brokenplug", BROKEN)
    with capture_logs() as logs:
        manager = manager_for(dists, {}, strict_plugins=True, disabled_plugins=["brokenplug"])
    assert manager.failures == []
    assert "brokenplug" not in manager.plugins
    assert "goodplug" in manager.plugins
    assert {"event": "gateway.plugin.disabled", "entry_point": "brokenplug", "distribution": "gc-broken-plugin"} in [
        {k: e[k] for k in ("event", "entry_point", "distribution") if k in e} for e in logs
    ]


def test_a_plugin_disabled_by_the_environment_is_skipped(dists: DistFactory) -> None:
    dists.make("gc-good-plugin", "1.0.0", "goodplug", good())
    dists.make("gc-broken-plugin", "2.3.4", "brokenplug", BROKEN)
    environ = dists.environ()
    environ["GATEWAY_CORE_DISABLE_PLUGINS"] += ",brokenplug"
    # the config is read without the variable: the manager applies it again from its own environ
    config = DeploymentConfig.from_mapping({"core": {"strict_plugins": True}}, environ={})
    manager = GatewayManager(config, environ=environ)
    assert manager.failures == []
    assert set(manager.plugins) == {"goodplug"}


def test_a_module_level_operation_hook_is_refused(dists: DistFactory) -> None:
    dists.make("gc-rogue", "0.1", "rogue", MODULE_LEVEL_OPERATION)
    manager = manager_for(dists, {})
    [failure] = manager.failures
    assert failure.entry_point == "rogue"
    assert "implements gateway_refund at module level" in failure.error
    assert "rogue" not in manager.plugins
    with pytest.raises(PluginLoadError, match="implements gateway_refund at module level"):
        manager_for(dists, {}, strict_plugins=True)


def test_a_misspelled_module_hook_fails_at_start(dists: DistFactory) -> None:
    dists.make("gc-typo", "0.1", "typo", MODULE_LEVEL_MISSPELLED)
    with pytest.raises(PluginLoadError, match="gateway_providerz"):
        manager_for(dists, {})


def test_the_fake_is_loaded_through_its_own_entry_point(dists: DistFactory) -> None:
    environ = dists.environ()
    environ["GATEWAY_CORE_DISABLE_PLUGINS"] = ",".join(
        n for n in environ["GATEWAY_CORE_DISABLE_PLUGINS"].split(",") if n != "fake"
    )
    config = DeploymentConfig.from_mapping({"gateways": {"f": fake_table()}}, environ)
    manager = GatewayManager(config, environ=environ)
    assert manager.plugins["fake"].distribution == "gateway-core"
    assert manager.gateway("f").plugin.name == "fake"


# --------------------------------------------------------------------------------------------
# Gateway objects and providers registered in code
# --------------------------------------------------------------------------------------------


class Misspelled:
    def __init__(self, settings: GatewaySettings) -> None:
        self.name = settings.name

    @hookimpl
    def gateway_create_checkout(self, request: CheckoutRequest, context: OperationContext) -> CheckoutSession:
        return CheckoutSession(context.gateway, "cs", "https://x.example", request.amount, CheckoutStatus.OPEN, None)

    @hookimpl
    def gateway_refnud(self, request: RefundRequest, context: OperationContext) -> None:
        raise AssertionError("never called")


def test_a_misspelled_hook_on_a_gateway_object_fails_at_start() -> None:
    plugin = provider_plugin("typo", Misspelled)
    with pytest.raises(PluginLoadError, match=r"unknown hook implementation.*gateway_refnud"):
        build_manager({"g": {"provider": "typo"}}, plugins=[plugin])


class NoRefund:
    def __init__(self, settings: GatewaySettings) -> None:
        pass

    @hookimpl
    def gateway_create_checkout(self, request: CheckoutRequest, context: OperationContext) -> CheckoutSession:
        raise AssertionError("never called")


def test_a_feature_declared_without_its_hook_is_refused() -> None:
    plugin = provider_plugin("liar", NoRefund, caps(features={Feature.HOSTED_CHECKOUT, Feature.REFUND}))
    with pytest.raises(PluginLoadError, match="declares refund but its gateway object lacks gateway_refund"):
        build_manager({"g": {"provider": "liar"}}, plugins=[plugin])


class WrongArgument:
    def __init__(self, settings: GatewaySettings) -> None:
        pass

    @hookimpl
    def gateway_create_checkout(self, req: CheckoutRequest) -> CheckoutSession:
        raise AssertionError("never called")


def test_a_hook_with_arguments_the_spec_lacks_is_refused() -> None:
    plugin = provider_plugin("wrongarg", WrongArgument)
    with pytest.raises(PluginLoadError, match="object is invalid"):
        build_manager({"g": {"provider": "wrongarg"}}, plugins=[plugin])


class ModuleLevelRefund:
    @hookimpl
    def gateway_refund(self, request: RefundRequest, context: OperationContext) -> None:
        raise AssertionError("never called")


def test_a_plugin_object_implementing_an_operation_hook_is_refused() -> None:
    with pytest.raises(PluginLoadError, match="implements gateway_refund at module level"):
        GatewayManager(DeploymentConfig(), plugins=[ModuleLevelRefund()], load_entry_points=False)


def test_a_factory_error_names_the_gateway_not_the_message() -> None:
    def factory(settings: GatewaySettings) -> object:
        raise RuntimeError("cannot connect with sk_live_leaked")

    with pytest.raises(PluginLoadError) as info:
        build_manager({"g": {"provider": "boom"}}, plugins=[provider_plugin("boom", factory)])
    assert "failed to build gateway 'g': RuntimeError" in str(info.value)
    assert "sk_live_leaked" not in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_a_factory_configuration_error_passes_through() -> None:
    def factory(settings: GatewaySettings) -> object:
        return settings.require("account")

    with pytest.raises(ConfigurationError, match="needs setting 'account'"):
        build_manager({"g": {"provider": "needy"}}, plugins=[provider_plugin("needy", factory)])


class BadProviders:
    def __init__(self, returned: object) -> None:
        self.returned = returned

    @hookimpl
    def gateway_providers(self) -> Sequence[ProviderDefinition]:
        return self.returned  # type: ignore[return-value]


def test_gateway_providers_must_return_provider_definitions() -> None:
    with pytest.raises(PluginLoadError, match="returned str, not ProviderDefinition"):
        GatewayManager(DeploymentConfig(), plugins=[BadProviders(["stripe"])], load_entry_points=False)


def test_inconsistent_provider_metadata_is_refused() -> None:
    bad = caps(features={Feature.REFUND})  # nothing can be paid
    with pytest.raises(PluginLoadError, match="inconsistent metadata: neither hosted_checkout nor authorize_capture"):
        GatewayManager(DeploymentConfig(), plugins=[provider_plugin("odd", NoRefund, bad)], load_entry_points=False)


def test_duplicate_providers_in_code_name_both_plugins() -> None:
    with pytest.raises(PluginLoadError, match=r"'fake' is declared by both .*registered in code"):
        build_manager({}, plugins=[gateway_core.fake.provider("fake")])


# --------------------------------------------------------------------------------------------
# Metadata hooks refine the declared capabilities at start
# --------------------------------------------------------------------------------------------


class Narrowing:
    def __init__(self, settings: GatewaySettings) -> None:
        self.offered: list[str] = list(settings.get("offered", []))

    @hookimpl
    def gateway_supported_currencies(self, context: OperationContext) -> object:
        return (code for code in self.offered)  # a one-shot iterator

    @hookimpl
    def gateway_create_checkout(self, request: CheckoutRequest, context: OperationContext) -> CheckoutSession:
        raise AssertionError("never called")


THREE = caps([CurrencyRule.iso("EUR"), CurrencyRule.iso("GBP"), CurrencyRule.iso("USD")])


def test_supported_currencies_narrows_even_when_it_returns_an_iterator() -> None:
    plugin = provider_plugin("narrow", Narrowing, THREE)
    manager = build_manager({"g": {"provider": "narrow", "settings": {"offered": ["USD", "EUR"]}}}, plugins=[plugin])
    assert list(manager.gateway("g").capabilities.currencies) == ["EUR", "USD"]
    assert list(manager.gateway("g").declared.currencies) == ["EUR", "GBP", "USD"]


def test_supported_currencies_cannot_widen() -> None:
    plugin = provider_plugin("narrow", Narrowing, THREE)
    with pytest.raises(ConfigurationError, match=r"offers undeclared currencies \['JPY'\]"):
        build_manager({"g": {"provider": "narrow", "settings": {"offered": ["EUR", "JPY"]}}}, plugins=[plugin])


def test_minimum_amount_raises_the_minimum() -> None:
    manager = build_manager({"g": fake_table(settings={"minimums": {"EUR": "0.50"}})})
    assert manager.gateway("g").capabilities.currencies["EUR"].minimum == Money.of("0.50", "EUR")
    assert manager.gateway("g").declared.currencies["EUR"].minimum is None


def test_minimum_amount_cannot_lower_the_minimum() -> None:
    from gateway_core.fake import default_capabilities, provider

    strict_eur = default_capabilities(currencies=["EUR"])
    strict_eur = type(strict_eur)(
        currencies=[CurrencyRule.iso("EUR", minimum="1.00")],
        features=strict_eur.features,
        sources=strict_eur.sources,
        live=False,
    )
    with pytest.raises(ConfigurationError, match="may only raise the declared minimum"):
        build_manager(
            {"g": {"provider": "fake-min", "settings": {"test_mode": True, "minimums": {"EUR": "0.50"}}}},
            plugins=[provider("fake-min", strict_eur)],
        )


def test_minimum_amount_cannot_exceed_the_maximum() -> None:
    from gateway_core.fake import default_capabilities, provider

    base = default_capabilities(currencies=["EUR"])
    capped = type(base)(
        currencies=[CurrencyRule.iso("EUR", maximum="10.00")], features=base.features, sources=base.sources, live=False
    )
    with pytest.raises(ConfigurationError, match=r"EUR minimum 20\.00 EUR exceeds maximum 10\.00 EUR"):
        build_manager(
            {"g": {"provider": "fake-cap", "settings": {"test_mode": True, "minimums": {"EUR": "20.00"}}}},
            plugins=[provider("fake-cap", capped)],
        )


FAILS_TO_REGISTER = """
    from gateway_core import hookimpl

    @hookimpl
    def gateway_providers():
        import gc_no_such_sdk_for_tests  # imported lazily, as a plugin should, and missing
"""


def test_a_plugin_failing_in_gateway_providers_is_reported_and_the_others_still_load(dists: DistFactory) -> None:
    dists.make("gc-good-plugin", "1.0.0", "goodplug", good())
    dists.make("gc-lazy-plugin", "0.9", "lazyplug", FAILS_TO_REGISTER)
    with capture_logs() as logs:
        manager = manager_for(dists, {"shop": {"provider": "goodprov"}})
    [failure] = manager.failures
    assert (failure.entry_point, failure.distribution, failure.version) == ("lazyplug", "gc-lazy-plugin", "0.9")
    assert failure.value.startswith("gc_test_lazyplug_")
    assert failure.error.startswith("ModuleNotFoundError")
    assert set(manager.plugins) == {"goodplug"}
    assert set(manager.providers()) == {"goodprov"}
    assert manager.create_checkout("shop", checkout(), idempotency_key="k").id == "cs_1"
    assert [e["entry_point"] for e in logs if e["event"] == "gateway.plugin.load_failed"] == ["lazyplug"]


def test_a_plugin_failing_in_gateway_providers_is_fatal_in_strict_mode(dists: DistFactory) -> None:
    dists.make("gc-lazy-plugin", "0.9", "lazyplug", FAILS_TO_REGISTER)
    with pytest.raises(
        PluginLoadError, match=r"'lazyplug' .* from gc-lazy-plugin 0\.9 failed to load: ModuleNotFoundError"
    ):
        manager_for(dists, {}, strict_plugins=True)


def test_a_plugin_in_code_failing_in_gateway_providers_is_always_fatal() -> None:
    class Broken:
        @hookimpl
        def gateway_providers(self) -> Sequence[ProviderDefinition]:
            raise RuntimeError("bug")

    with pytest.raises(PluginLoadError, match="failed in gateway_providers: RuntimeError"):
        GatewayManager(DeploymentConfig(), plugins=[Broken()], load_entry_points=False)


# --------------------------------------------------------------------------------------------
# ProviderDefinition.configure: one gateway's capabilities from its settings
# --------------------------------------------------------------------------------------------


def configuring_plugin(configure: Callable[[Capabilities, GatewaySettings], Any]) -> ProviderPlugin:
    return ProviderPlugin(ProviderDefinition("conf", caps(), FakeGateway.from_settings, "t", configure=configure))


def test_configure_narrows_one_gateway_and_leaves_the_declared_capabilities() -> None:
    def configure(declared: Capabilities, settings: GatewaySettings) -> Capabilities:
        return attrs.evolve(declared, card_brands=frozenset()) if settings.get("no_brands") else declared

    manager = build_manager(
        {
            "plain": {"provider": "conf", "settings": {"test_mode": True}},
            "narrow": {"provider": "conf", "settings": {"test_mode": True, "no_brands": True}},
        },
        plugins=[configuring_plugin(configure)],
    )
    assert manager.gateway("plain").capabilities == manager.gateway("plain").declared
    assert manager.gateway("narrow").declared == caps()
    assert manager.gateway("narrow").capabilities == attrs.evolve(caps(), card_brands=frozenset())


def test_configure_failing_is_reported_without_its_message() -> None:
    def configure(declared: Capabilities, settings: GatewaySettings) -> Capabilities:
        raise RuntimeError("account lookup failed for sk_live_leaked")

    with pytest.raises(PluginLoadError) as info:
        build_manager(
            {"g": {"provider": "conf", "settings": {"test_mode": True}}}, plugins=[configuring_plugin(configure)]
        )
    assert "failed to configure gateway 'g': RuntimeError" in str(info.value)
    assert "sk_live_leaked" not in str(info.value)
    assert info.value.gateway == "g"
    assert isinstance(info.value.__cause__, RuntimeError)


def test_configure_must_return_capabilities() -> None:
    with pytest.raises(PluginLoadError, match="configure\\(\\) returned dict for gateway 'g', not Capabilities"):
        build_manager(
            {"g": {"provider": "conf", "settings": {"test_mode": True}}},
            plugins=[configuring_plugin(lambda declared, settings: {})],
        )


def test_configure_cannot_widen_and_the_configured_currencies_narrow_after_it() -> None:
    def widen(declared: Capabilities, settings: GatewaySettings) -> Capabilities:
        return attrs.evolve(declared, features=declared.features | {Feature.VOID})

    with pytest.raises(ConfigurationError, match="may only narrow what provider 'conf' declares, but adds undeclared"):
        build_manager({"g": {"provider": "conf", "settings": {"test_mode": True}}}, plugins=[configuring_plugin(widen)])

    two = caps([CurrencyRule.iso("EUR"), CurrencyRule.iso("USD")])

    def drop_usd(declared: Capabilities, settings: GatewaySettings) -> Capabilities:
        return attrs.evolve(declared, currencies=[declared.currencies["EUR"]])

    plugin = ProviderPlugin(ProviderDefinition("conf", two, FakeGateway.from_settings, "t", configure=drop_usd))
    with pytest.raises(ConfigurationError, match="configured for USD which its provider does not declare"):
        build_manager(
            {"g": {"provider": "conf", "currencies": ["USD"], "settings": {"test_mode": True}}}, plugins=[plugin]
        )


def test_configure_that_leaves_nothing_payable_is_refused() -> None:
    def strip(declared: Capabilities, settings: GatewaySettings) -> Capabilities:
        return attrs.evolve(declared, features=frozenset())

    with pytest.raises(ConfigurationError, match="inconsistent capabilities: neither hosted_checkout"):
        build_manager({"g": {"provider": "conf", "settings": {"test_mode": True}}}, plugins=[configuring_plugin(strip)])


# --------------------------------------------------------------------------------------------
# gateway_cli_commands through the manager's typed method
# --------------------------------------------------------------------------------------------


class AddsCommand:
    @hookimpl
    def gateway_cli_commands(self, cli: click.Group) -> None:
        @cli.command("hello")
        def hello() -> None:
            click.echo("hello from a plugin")


class BreaksCli:
    @hookimpl
    def gateway_cli_commands(self, cli: click.Group) -> None:
        raise RuntimeError("token tok_live_leaked")


def test_add_cli_commands_lets_each_plugin_module_add_its_commands() -> None:
    manager = GatewayManager(DeploymentConfig(), plugins=[AddsCommand()], load_entry_points=False)
    group = click.Group("gateway")
    manager.add_cli_commands(group)
    assert set(group.commands) == {"hello"}
    assert CliRunner().invoke(group, ["hello"]).output == "hello from a plugin\n"


def test_a_plugin_failing_in_cli_commands_is_named_without_its_message() -> None:
    manager = GatewayManager(DeploymentConfig(), plugins=[BreaksCli()], load_entry_points=False)
    with pytest.raises(
        PluginLoadError, match=r"plugin 'BreaksCli-0' .* failed in gateway_cli_commands: RuntimeError"
    ) as info:
        manager.add_cli_commands(click.Group("gateway"))
    assert "tok_live_leaked" not in str(info.value)


def test_a_plugin_failing_in_cli_commands_does_not_keep_the_others_out() -> None:
    manager = GatewayManager(DeploymentConfig(), plugins=[BreaksCli(), AddsCommand()], load_entry_points=False)
    group = click.Group("gateway")
    with pytest.raises(PluginLoadError, match="BreaksCli-0"):
        manager.add_cli_commands(group)
    assert set(group.commands) == {"hello"}


# --------------------------------------------------------------------------------------------
# A plugin's start-up code failing: wrapped, named, and secret-free
# --------------------------------------------------------------------------------------------


class FailingMetadata:
    """A gateway object whose metadata hook fails the way the settings say."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.error: Exception = settings.get("error")

    @hookimpl
    def gateway_minimum_amount(self, currency: str) -> Money | None:
        raise self.error

    @hookimpl
    def gateway_create_checkout(self, request: CheckoutRequest, context: OperationContext) -> CheckoutSession:
        raise AssertionError("never called")


class FailingCurrencies(FailingMetadata):
    @hookimpl
    def gateway_supported_currencies(self) -> list[str]:
        raise self.error


@pytest.mark.parametrize(
    ("factory", "step"),
    [(FailingMetadata, "gateway_minimum_amount(EUR)"), (FailingCurrencies, "gateway_supported_currencies")],
)
def test_a_metadata_hook_failing_at_start_is_wrapped_without_its_message(
    factory: Callable[[GatewaySettings], object], step: str
) -> None:
    settings = {"error": RuntimeError("account lookup failed for sk_live_123")}
    with pytest.raises(PluginLoadError) as info:
        build_manager({"g": {"provider": "meta", "settings": settings}}, plugins=[provider_plugin("meta", factory)])
    assert str(info.value).startswith(f"{step} failed for gateway 'g': RuntimeError")
    assert "sk_live_123" not in str(info.value)
    assert info.value.gateway == "g"
    assert isinstance(info.value.__cause__, RuntimeError)


def test_a_metadata_hook_raising_a_gateway_error_keeps_its_message() -> None:
    settings = {"error": GatewayUnavailable("meta: the account service did not answer", http_status=503)}
    with pytest.raises(PluginLoadError) as info:
        build_manager(
            {"g": {"provider": "meta", "settings": settings}}, plugins=[provider_plugin("meta", FailingMetadata)]
        )
    assert "GatewayUnavailable: meta: the account service did not answer (http_status=503)" in str(info.value)


def test_a_metadata_hook_raising_a_configuration_error_passes_through() -> None:
    settings = {"error": ConfigurationError("meta: account_country 'XX' is unknown")}
    with pytest.raises(ConfigurationError, match="account_country 'XX' is unknown") as info:
        build_manager(
            {"g": {"provider": "meta", "settings": settings}}, plugins=[provider_plugin("meta", FailingMetadata)]
        )
    assert type(info.value) is ConfigurationError


def test_a_factory_gateway_error_keeps_its_message() -> None:
    def factory(settings: GatewaySettings) -> object:
        return Money.of(settings.get("fee"), "EUR")  # a provider parsing a setting with the core's own types

    with pytest.raises(PluginLoadError) as info:
        build_manager(
            {"g": {"provider": "parses", "settings": {"fee": "0.001"}}}, plugins=[provider_plugin("parses", factory)]
        )
    assert "failed to build gateway 'g': InvalidAmount: 0.001 has more decimals than EUR allows (2)" in str(info.value)


RAISES_AT_IMPORT = """
    raise RuntimeError("could not reach https://api.example/?key=sk_live_at_import")
"""


def test_an_import_failure_shows_only_the_class_of_an_arbitrary_exception(dists: DistFactory) -> None:
    dists.make("gc-loud-plugin", "1.0", "loudplug", RAISES_AT_IMPORT)
    manager = manager_for(dists, {})
    [failure] = manager.failures
    assert failure.error == "RuntimeError"
    with pytest.raises(PluginLoadError) as info:
        manager_for(dists, {}, strict_plugins=True)
    assert "sk_live_at_import" not in str(info.value)


# --------------------------------------------------------------------------------------------
# PluginLoadError says where the plugin came from, as attributes
# --------------------------------------------------------------------------------------------

FACTORY_FAILS = """
    from datetime import date
    from gateway_core import Capabilities, CurrencyRule, Feature, ProviderDefinition, Source, hookimpl

    def factory(settings):
        raise RuntimeError("cannot reach the provider with sk_live_in_factory")

    @hookimpl
    def gateway_providers():
        caps = Capabilities(
            currencies=[CurrencyRule.iso("EUR")],
            features={Feature.HOSTED_CHECKOUT},
            sources=[Source("test", "test", date(2026, 11, 25))],
        )
        return [ProviderDefinition("failprov", caps, factory, "fails to build")]
"""


def origin(error: PluginLoadError) -> tuple[str | None, str | None, str | None]:
    return error.entry_point, error.distribution, error.version


def test_a_strict_load_failure_carries_entry_point_distribution_and_version(dists: DistFactory) -> None:
    dists.make("gc-broken-plugin", "2.3.4", "brokenplug", BROKEN)
    with pytest.raises(PluginLoadError) as info:
        manager_for(dists, {}, strict_plugins=True)
    assert origin(info.value) == ("brokenplug", "gc-broken-plugin", "2.3.4")


def test_a_factory_failure_names_the_providers_plugin(dists: DistFactory) -> None:
    dists.make("gc-failing-factory", "0.7.1", "failplug", FACTORY_FAILS)
    with pytest.raises(PluginLoadError) as info:
        manager_for(dists, {"shop": {"provider": "failprov"}})
    assert origin(info.value) == ("failplug", "gc-failing-factory", "0.7.1")
    assert info.value.gateway == "shop"
    assert "sk_live_in_factory" not in str(info.value)


def test_a_misspelled_module_hook_names_its_plugin(dists: DistFactory) -> None:
    dists.make("gc-typo", "0.1", "typo", MODULE_LEVEL_MISSPELLED)
    with pytest.raises(PluginLoadError) as info:
        manager_for(dists, {})
    assert origin(info.value) == ("typo", "gc-typo", "0.1")


MISSPELLED_ON_GATEWAY = GOOD.replace(
    "        @hookimpl\n        def gateway_create_checkout(",
    "        @hookimpl\n        def gateway_refnud(self, request, context):\n            pass\n\n"
    "        @hookimpl\n        def gateway_create_checkout(",
)


def test_a_misspelled_gateway_object_hook_names_the_providers_plugin(dists: DistFactory) -> None:
    dists.make("gc-typo-gateway", "3.0", "typogw", MISSPELLED_ON_GATEWAY % {"provider": "typoprov"})
    assert "gateway_refnud" in MISSPELLED_ON_GATEWAY
    with pytest.raises(PluginLoadError, match="gateway_refnud") as info:
        manager_for(dists, {"shop": {"provider": "typoprov"}})
    assert origin(info.value) == ("typogw", "gc-typo-gateway", "3.0")
    with pytest.raises(PluginLoadError) as in_code:
        build_manager({"g": {"provider": "typo"}}, plugins=[provider_plugin("typo", Misspelled)])
    assert origin(in_code.value) == (None, None, None)  # registered in code: no entry point, no distribution


def test_a_plugin_registered_in_code_has_no_entry_point() -> None:
    class Broken:
        @hookimpl
        def gateway_providers(self) -> Sequence[ProviderDefinition]:
            raise RuntimeError("bug")

    with pytest.raises(PluginLoadError) as info:
        GatewayManager(DeploymentConfig(), plugins=[Broken()], load_entry_points=False)
    assert origin(info.value) == (None, None, None)
    assert PluginLoadError("x").entry_point is None
