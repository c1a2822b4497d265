"""The fake gateway passes the conformance suite: it is the suite's first user.

Two configurations: a narrowed one with minimums (so the "below the minimum" and "undeclared
currency" tests have something to refuse), and the default one offering every ISO 4217 currency
(so every currency round-trips through the wire format).
"""

from __future__ import annotations

import pytest

from gateway_core import Capabilities, CurrencyRule, Feature, Money
from gateway_core.fake import FakeGateway, default_capabilities
from gateway_core.testing.conformance import (
    ConformanceHarness,
    GatewayConformance,
    MetadataConformance,
    MoneyConformance,
)
from tests.testing.fake_harness import NARROWED, VariantPlugin, fake_harness


class TestFakeConformance(GatewayConformance):
    @pytest.fixture
    def conformance_harness(self) -> ConformanceHarness:
        return fake_harness(NARROWED)


class TestFakeEveryCurrencyConformance(MetadataConformance, MoneyConformance):
    """The default fake offers every currency; each must round-trip exactly."""

    @pytest.fixture
    def conformance_harness(self) -> ConformanceHarness:
        return fake_harness({"provider": "fake", "settings": {"test_mode": True}})


class TestFakeWithStepsAndMaximumsConformance(MoneyConformance):
    """Provider-style wire formats: ISK carried with two decimals in steps of 100, and maximums."""

    @pytest.fixture
    def conformance_harness(self) -> ConformanceHarness:
        base = default_capabilities(["EUR"], features=frozenset(Feature))
        capabilities = Capabilities(
            currencies=[
                CurrencyRule.iso("EUR", minimum="0.50", maximum="999999.99"),
                CurrencyRule("ISK", 2, 100, Money.of("100", "ISK"), Money.of("99999999", "ISK")),
                CurrencyRule("HUF", 0, 1, Money.of("175", "HUF")),
            ],
            features=base.features,
            sources=base.sources,
            live=False,
        )
        gateway = {**NARROWED, "currencies": ["EUR", "ISK", "HUF"], "settings": {"test_mode": True}}
        return fake_harness(gateway, VariantPlugin(FakeGateway, capabilities))
