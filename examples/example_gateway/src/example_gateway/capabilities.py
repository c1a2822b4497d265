"""What Example Payments can do: static metadata, read without importing any HTTP code.

Every figure names its source. For a real provider the source is its documentation page (with the
date someone checked it); for Example Payments it is the stand-in that plays the provider.
"""

from __future__ import annotations

from datetime import date, timedelta

from gateway_core import Capabilities, CheckoutExpiry, CurrencyRule, Feature, Source

_SOURCE = Source(
    what="currencies, minimums and maximums of Example Payments",
    reference="examples/example_gateway/src/example_gateway/stand_in.py (LIMITS)",
    checked=date(2026, 11, 25),
)
_EXPIRY_SOURCE = Source(
    what="how far ahead an Example Payments checkout may expire",
    reference="examples/example_gateway/src/example_gateway/stand_in.py (CHECKOUT_EXPIRY)",
    checked=date(2026, 12, 1),
)

CAPABILITIES = Capabilities(
    currencies=[
        # The wire format is integer minor units at the ISO 4217 exponent for all three.
        CurrencyRule.iso("EUR", minimum="0.50", maximum="10000.00"),
        CurrencyRule.iso("USD", minimum="0.50", maximum="10000.00"),
        CurrencyRule.iso("JPY", minimum="50", maximum="1000000"),
    ],
    features={
        Feature.HOSTED_CHECKOUT,
        Feature.AUTHORIZE_CAPTURE,
        Feature.VOID,
        Feature.REFUND,
        Feature.PARTIAL_REFUND,
        Feature.MULTIPLE_REFUNDS,
        Feature.PAYMENT_STATUS,
        Feature.WEBHOOKS,
    },
    card_brands={"visa", "mastercard"},
    sources=[_SOURCE, _EXPIRY_SOURCE],
    live=True,
    # A checkout's expires_at may be 15 minutes to 7 days ahead; the core refuses anything else.
    checkout_expiry=CheckoutExpiry(timedelta(minutes=15), timedelta(days=7)),
)
