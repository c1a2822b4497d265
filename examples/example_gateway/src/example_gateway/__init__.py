"""A minimal example provider plugin for gateway-core, built exactly as docs/plugin-authors.md says.

This module is what the entry point names (``example = "example_gateway"`` in the
``gateway_core`` group). It only declares the provider: the capability metadata is static and the
gateway class is imported when a gateway is actually configured, so ``gateway plugins`` stays
fast and a plugin module never does I/O at import time.

The provider it talks to is "Example Payments", a tiny HTTP API whose stand-in lives in
:mod:`example_gateway.stand_in` (run on 127.0.0.1 by the tests).
"""

from __future__ import annotations

from collections.abc import Sequence

from example_gateway.capabilities import CAPABILITIES
from gateway_core import GatewaySettings, ProviderDefinition, hookimpl

__all__ = ["CAPABILITIES", "build_gateway", "gateway_providers"]


def build_gateway(settings: GatewaySettings) -> object:
    """The provider's factory: one :class:`~example_gateway.gateway.ExampleGateway` per configured gateway."""
    from example_gateway.gateway import ExampleGateway  # noqa: PLC0415 (only when a gateway is configured)

    return ExampleGateway.from_settings(settings)


@hookimpl
def gateway_providers() -> Sequence[ProviderDefinition]:
    return [
        ProviderDefinition(
            name="example",
            capabilities=CAPABILITIES,
            factory=build_gateway,
            description="Example Payments: the minimal provider from docs/plugin-authors.md",
        )
    ]
