"""The PayPal provider plugin for gateway-core (entry point ``paypal`` in the ``gateway_core`` group).

Reading this module, its metadata and its settings never imports ``paypalserversdk``; the SDK is
imported the first time a PayPal operation runs (:mod:`paypal_gateway.client`). See
``docs/paypal.md`` for settings, currencies, webhooks and how checkout completion maps onto hooks.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway_core.capabilities import Capabilities
from gateway_core.config import GatewaySettings
from gateway_core.hookspecs import ProviderDefinition, hookimpl
from paypal_gateway.metadata import CAPABILITIES, for_account
from paypal_gateway.settings import PayPalSettings

__all__ = ["CAPABILITIES", "PROVIDER", "configure", "factory", "gateway_providers"]

PROVIDER = "paypal"


def factory(settings: GatewaySettings) -> object:
    """Build the gateway object for one configured PayPal gateway (no SDK import, no network)."""
    from paypal_gateway.gateway import PayPalGateway  # noqa: PLC0415  (keeps `gateway plugins` fast)

    return PayPalGateway.from_settings(settings)


def configure(declared: Capabilities, settings: GatewaySettings) -> Capabilities:
    """One gateway's capabilities: BRL, MYR and CNY only when ``account_country`` is their country."""
    return for_account(PayPalSettings.from_gateway(settings).account_country, declared)


@hookimpl
def gateway_providers() -> Sequence[ProviderDefinition]:
    return [
        ProviderDefinition(
            PROVIDER,
            CAPABILITIES,
            factory,
            "PayPal Orders v2 checkout, authorizations, captures, refunds and verified webhooks "
            "(BRL, MYR, CNY only with account_country BR, MY, CN)",
            configure=configure,
        )
    ]
