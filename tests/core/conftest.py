"""Shared fixtures for the core suite: managers over real fakes, in-code providers, throwaway distributions.

Every manager here is built the way a host builds one. The fake gateway module is registered as a
plugin object in code (``load_entry_points=False``) so the workspace's other plugins, which are
being written at the same time, cannot change what these tests see; the entry-point path itself
is exercised in ``test_plugin_loading.py`` with distributions made in ``tmp_path``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import attrs
import pytest

import gateway_core.fake
from gateway_core import (
    Capabilities,
    CheckoutRequest,
    CheckoutSession,
    CurrencyRule,
    DeploymentConfig,
    Feature,
    GatewayManager,
    GatewaySettings,
    Money,
    ProviderDefinition,
    Source,
    hookimpl,
)
from gateway_core.fake import FakeGateway
from gateway_core.hookspecs import ENTRY_POINT_GROUP

SOURCE = Source("test figures", "tests/core", date(2026, 11, 25))

#: The webhook secret the ``two_fakes`` gateways read from their environment.
ALPHA_SECRET = "whsec_alpha_test_0123456789"
BETA_SECRET = "whsec_beta_test_9876543210"


def build_manager(
    gateways: Mapping[str, Mapping[str, Any]],
    *,
    plugins: Sequence[object] = (),
    environ: Mapping[str, str] | None = None,
    core: Mapping[str, Any] | None = None,
) -> GatewayManager:
    """A manager over ``gateways`` (the ``[gateways]`` table of gateway.toml) with the fake plus ``plugins``."""
    data: dict[str, Any] = {"gateways": {name: dict(body) for name, body in gateways.items()}}
    if core is not None:
        data["core"] = dict(core)
    env = dict(environ or {})
    config = DeploymentConfig.from_mapping(data, env)
    return GatewayManager(config, plugins=[gateway_core.fake, *plugins], load_entry_points=False, environ=env)


def fake_table(**extra: Any) -> dict[str, Any]:
    """A ``[gateways.NAME]`` table for the fake provider."""
    settings = {"test_mode": True, **extra.pop("settings", {})}
    return {"provider": "fake", "settings": settings, **extra}


def fake(manager: GatewayManager, name: str) -> FakeGateway:
    obj = manager.gateway_object(name)
    assert isinstance(obj, FakeGateway)
    return obj


def ticket_checkout(manager: GatewayManager, *, capture: bool = True) -> CheckoutSession:
    """A 10.00 EUR checkout on the gateway named ``fake`` (``capture=False``: authorize-only), key ``co``."""
    request = CheckoutRequest.single(
        "Ticket", Money.of("10.00", "EUR"), "https://shop.example/ok", "https://shop.example/no", capture=capture
    )
    return manager.create_checkout("fake", request, idempotency_key="co")


@pytest.fixture
def two_fakes() -> GatewayManager:
    """Two fake gateways, ``alpha`` (priority 10) and ``beta`` (priority 20), each with its own secret."""
    return build_manager(
        {
            "alpha": fake_table(priority=10, settings={"webhook_secret": {"env": "ALPHA_WEBHOOK_SECRET"}}),
            "beta": fake_table(priority=20, settings={"webhook_secret": {"env": "BETA_WEBHOOK_SECRET"}}),
        },
        environ={"ALPHA_WEBHOOK_SECRET": ALPHA_SECRET, "BETA_WEBHOOK_SECRET": BETA_SECRET},
    )


@pytest.fixture
def one_fake() -> GatewayManager:
    """One fake gateway called ``fake`` with every currency and feature."""
    return build_manager({"fake": fake_table()})


# --------------------------------------------------------------------------------------------
# Providers registered in code
# --------------------------------------------------------------------------------------------


def caps(
    rules: Iterable[CurrencyRule] = (),
    features: Iterable[Feature] = (Feature.HOSTED_CHECKOUT,),
) -> Capabilities:
    rules = list(rules) or [CurrencyRule.iso("EUR")]
    return Capabilities(currencies=rules, features=frozenset(features), sources=[SOURCE], live=False)


@attrs.define
class ProviderPlugin:
    """A plugin object offering one provider whose factory is ``factory`` (as a plugin module would)."""

    definition: ProviderDefinition

    @hookimpl
    def gateway_providers(self) -> Sequence[ProviderDefinition]:
        return [self.definition]


def provider_plugin(
    name: str,
    factory: Callable[[GatewaySettings], object],
    capabilities: Capabilities | None = None,
) -> ProviderPlugin:
    return ProviderPlugin(ProviderDefinition(name, capabilities or caps(), factory, f"{name} (tests)"))


# --------------------------------------------------------------------------------------------
# Throwaway distributions with real entry points
# --------------------------------------------------------------------------------------------


@attrs.frozen
class Dist:
    name: str
    version: str
    module: str


class DistFactory:
    """Writes installed-looking distributions (``*.dist-info`` + modules) into one sys.path entry."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.monkeypatch = monkeypatch
        self.made: list[Dist] = []
        root.mkdir()
        monkeypatch.syspath_prepend(str(root))

    def make(self, dist_name: str, version: str, entry_point: str, source: str) -> Dist:
        """A distribution whose ``gateway_core`` entry point ``entry_point`` names a module with ``source``."""
        module = f"gc_test_{entry_point}_{uuid.uuid4().hex[:8]}"
        (self.root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        info = self.root / f"{dist_name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n", encoding="utf-8"
        )
        (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_point} = {module}\n", encoding="utf-8")
        importlib.invalidate_caches()
        dist = Dist(dist_name, version, module)
        self.made.append(dist)
        return dist

    def environ(self, **extra: str) -> dict[str, str]:
        """An environment that disables every entry point installed outside ``tmp_path``."""
        ours = {d.module for d in self.made}
        others = {ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.value not in ours}
        return {"GATEWAY_CORE_DISABLE_PLUGINS": ",".join(sorted(others)), **extra}


@pytest.fixture
def dists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DistFactory:
    return DistFactory(tmp_path / "site", monkeypatch)


@pytest.fixture(autouse=True)
def _forget_test_modules() -> Iterable[None]:
    """Unload modules made by :class:`DistFactory` so a later test cannot import a stale one."""
    yield
    for name in [m for m in sys.modules if m.startswith("gc_test_")]:
        del sys.modules[name]
