"""Stripe provider plugin for gateway-core (Checkout Sessions, PaymentIntents, refunds, webhooks).

Registered through the ``gateway_core`` entry point ``stripe``. Neither importing this module nor
building a gateway imports the ``stripe`` SDK: the capabilities come from
:mod:`stripe_gateway.metadata`, and :class:`stripe_gateway.gateway.StripeGateway` imports the SDK
and builds its ``StripeClient`` the first time an operation runs.

Settings (``[gateways.NAME.settings]``):

``api_key`` (secret, required)
    A secret (``sk_...``) or restricted (``rk_...``) key.
``webhook_secret`` (secret)
    The endpoint's signing secret (``whsec_...``); needed to parse webhooks.
``api_base``
    Base URL for a local stand-in or proxy (default: Stripe's). ``https://``, or ``http://`` to
    a loopback host only (anything else would send the key in cleartext).
``connected_account``
    A Connect account id (``acct_...``); every request is made on its behalf, and only that
    account's webhook events are believed. Only such a gateway offers an application fee
    (``Feature.APPLICATION_FEE``): Stripe takes one only on a Connect charge, so a gateway
    without a connected account does not declare the feature and a host sends it no fee.
``max_network_retries``
    The SDK's automatic retries of connection errors, 409 and 5xx (default 2).
``webhook_tolerance``
    Seconds a webhook signature stays valid (default 300).
``enable_currencies``
    Restricted currencies to offer (``["RUB"]``, ``["BGN"]``); off by default.
``timeout``
    Seconds per HTTP request (default 30).
``refuse_replayed_webhooks``
    Refuse a signed delivery this process already accepted (default true). Per process and
    bounded: across processes the host deduplicates on the event id (see docs/stripe.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from gateway_core.capabilities import Capabilities, Feature
from gateway_core.hookspecs import ProviderDefinition, hookimpl
from stripe_gateway.metadata import STRIPE_API_VERSION, capabilities

if TYPE_CHECKING:
    from gateway_core.config import GatewaySettings

__all__ = ["PROVIDER", "STRIPE_API_VERSION", "build_gateway", "configure", "definition", "gateway_providers"]

#: The provider name gateways configure (``provider = "stripe"``).
PROVIDER = "stripe"


def build_gateway(settings: GatewaySettings) -> object:
    """The provider's factory: build the gateway (its SDK client is built on first use)."""
    from stripe_gateway.gateway import StripeGateway  # noqa: PLC0415  (metadata readers skip it)

    return StripeGateway.from_settings(settings)


def configure(declared: Capabilities, settings: GatewaySettings) -> Capabilities:
    """One gateway's capabilities: no application fee without a connected account (see above)."""
    if settings.get("connected_account") or Feature.APPLICATION_FEE not in declared.features:
        return declared
    return attrs.evolve(declared, features=declared.features - {Feature.APPLICATION_FEE})


def definition() -> ProviderDefinition:
    """The ``stripe`` provider definition (what :func:`gateway_providers` returns)."""
    return ProviderDefinition(
        PROVIDER,
        capabilities(),
        build_gateway,
        "Stripe: Checkout Sessions, PaymentIntents (authorize/capture/void), refunds, signed webhooks",
        # Under the asyncio API the hooks return coroutines on the SDK's *_async methods.
        asyncio_native=True,
        configure=configure,
    )


@hookimpl
def gateway_providers() -> Sequence[ProviderDefinition]:
    return [definition()]
