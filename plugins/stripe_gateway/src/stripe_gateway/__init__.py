"""Stripe provider plugin for gateway-core (Checkout Sessions, PaymentIntents, refunds, webhooks).

Registered through the ``gateway_core`` entry point ``stripe``. Importing this module does not
import the ``stripe`` SDK: the capabilities come from :mod:`stripe_gateway.metadata`, and the SDK
is imported by :mod:`stripe_gateway.gateway` only when the factory builds a gateway.

Settings (``[gateways.NAME.settings]``):

``api_key`` (secret, required)
    A secret (``sk_...``) or restricted (``rk_...``) key.
``webhook_secret`` (secret)
    The endpoint's signing secret (``whsec_...``); needed to parse webhooks.
``api_base``
    Base URL for a local stand-in or proxy (default: Stripe's).
``connected_account``
    A Connect account id (``acct_...``); every request is made on its behalf.
``max_network_retries``
    The SDK's automatic retries of connection errors, 409 and 5xx (default 2).
``webhook_tolerance``
    Seconds a webhook signature stays valid (default 300).
``enable_currencies``
    Restricted currencies to offer (``["RUB"]``, ``["BGN"]``); off by default.
``timeout``
    Seconds per HTTP request (default 30).
``refuse_replayed_webhooks``
    Also refuse a byte-identical signed delivery seen before (default false: deduplication is
    the host's job under the core's contract).
``localstripe_compatible``
    Leave out ``automatic_payment_methods`` when authorizing, which localstripe (a local
    stand-in used to record test cassettes) rejects. Never set it against Stripe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from gateway_core.hookspecs import ProviderDefinition, hookimpl
from stripe_gateway.metadata import STRIPE_API_VERSION, capabilities

if TYPE_CHECKING:
    from gateway_core.config import GatewaySettings

__all__ = ["PROVIDER", "STRIPE_API_VERSION", "build_gateway", "definition", "gateway_providers"]

#: The provider name gateways configure (``provider = "stripe"``).
PROVIDER = "stripe"


def build_gateway(settings: GatewaySettings) -> object:
    """The provider's factory: import the SDK-backed gateway lazily and build it."""
    from stripe_gateway.gateway import StripeGateway  # noqa: PLC0415  (the SDK loads only here)

    return StripeGateway.from_settings(settings)


def definition() -> ProviderDefinition:
    """The ``stripe`` provider definition (what :func:`gateway_providers` returns)."""
    return ProviderDefinition(
        PROVIDER,
        capabilities(),
        build_gateway,
        "Stripe: Checkout Sessions, PaymentIntents (authorize/capture/void), refunds, signed webhooks",
        # Under the asyncio API the hooks return coroutines on the SDK's *_async methods.
        asyncio_native=True,
    )


@hookimpl
def gateway_providers() -> Sequence[ProviderDefinition]:
    return [definition()]
