"""The PayPal provider plugin for gateway-core (entry point ``paypal`` in the ``gateway_core`` group).

Reading this module, its metadata and its settings never imports ``paypalserversdk``; the SDK is
imported the first time a PayPal operation runs (:mod:`paypal_gateway.client`). See
``docs/paypal.md`` for settings, currencies, webhooks and how checkout completion maps onto hooks.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway_core.config import GatewaySettings
from gateway_core.hookspecs import ProviderDefinition, hookimpl
from paypal_gateway.metadata import CAPABILITIES

__all__ = ["CAPABILITIES", "PROVIDER", "factory", "gateway_providers"]

PROVIDER = "paypal"


def factory(settings: GatewaySettings) -> object:
    """Build the gateway object for one configured PayPal gateway (no SDK import, no network)."""
    from paypal_gateway.gateway import PayPalGateway  # noqa: PLC0415  (keeps `gateway plugins` fast)

    return PayPalGateway.from_settings(settings)


@hookimpl
def gateway_providers() -> Sequence[ProviderDefinition]:
    return [
        ProviderDefinition(
            PROVIDER,
            CAPABILITIES,
            factory,
            "PayPal Orders v2 checkout, authorizations, captures, refunds and verified webhooks",
        )
    ]
