"""The fake gateway plugin module, registered through the ``gateway_core`` entry point ``fake``.

It declares the ``fake`` provider: every ISO 4217 currency at its ISO exponent with no minimum
beyond one minor unit (a configuration's ``minimums`` raises it), every feature, any checkout
expiry up to a year ahead (a configuration's ``checkout_expiry_minutes`` narrows it, e.g. to
Stripe's ``[30, 1440]``, or ``false`` for none; its ``features`` narrows the features, e.g. to
PayPal's, without ``application_fee``), ``live=False``. A test that needs other capabilities
registers :func:`provider` with its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from gateway_core.capabilities import Capabilities, CheckoutExpiry, CurrencyRule, Feature, Source
from gateway_core.fake.gateway import FakeGateway, Outcome, Scripted, WebhookDelivery
from gateway_core.hookspecs import ProviderDefinition, hookimpl
from gateway_core.money import all_currencies

__all__ = ["FakeGateway", "Outcome", "Scripted", "WebhookDelivery", "default_capabilities", "provider"]

_SOURCE = Source(
    "fake gateway: ISO 4217 exponents from the iso4217 package; minimums from configuration",
    "gateway_core.fake",
    date(2026, 11, 25),
)


#: The fake takes any checkout expiry from now to a year ahead; a test that needs a provider's
#: narrower window (Stripe's 30 minutes to 24 hours) passes its own to :func:`default_capabilities`.
ANY_EXPIRY = CheckoutExpiry(timedelta(0), timedelta(days=365))


def default_capabilities(
    currencies: Iterable[str] | None = None,
    features: Iterable[Feature] | None = None,
    checkout_expiry: CheckoutExpiry | None = ANY_EXPIRY,
) -> Capabilities:
    """The fake's capabilities: the given (default: all) currencies and features, ``live=False``."""
    codes = list(currencies) if currencies is not None else [c.code for c in all_currencies()]
    return Capabilities(
        currencies=[CurrencyRule.iso(code) for code in codes],
        features=frozenset(Feature) if features is None else frozenset(features),
        card_brands=frozenset({"visa", "mastercard", "amex"}),
        sources=(_SOURCE,),
        live=False,
        checkout_expiry=checkout_expiry,
    )


class _FakePlugin:
    def __init__(self, definition: ProviderDefinition) -> None:
        self.definition = definition

    @hookimpl
    def gateway_providers(self) -> Sequence[ProviderDefinition]:
        return [self.definition]


def provider(name: str = "fake", capabilities: Capabilities | None = None) -> object:
    """A plugin object declaring a fake provider called ``name`` with ``capabilities``.

    Register it in code (``GatewayManager(config, plugins=[provider("fake-eur", caps)])``) when a
    test needs capabilities other than the default.
    """
    return _FakePlugin(
        ProviderDefinition(
            name,
            capabilities or default_capabilities(),
            FakeGateway.from_settings,
            "in-memory fake",
            configure=FakeGateway.configure,
        )
    )


@hookimpl
def gateway_providers() -> Sequence[ProviderDefinition]:
    return [
        ProviderDefinition(
            "fake",
            default_capabilities(),
            FakeGateway.from_settings,
            "In-memory fake gateway for tests and demos; takes no money",
            configure=FakeGateway.configure,
        )
    ]
