"""Stripe's capability metadata: currencies, wire formats, minimums, maximum, card brands.

This module must not import the ``stripe`` SDK: ``gateway plugins`` reads it to list what the
provider can do. Every figure below names its :class:`~gateway_core.capabilities.Source` and the
date it was checked (see ``docs/stripe.md`` for the reasoning behind each decision).

Wire formats (``CurrencyRule.exponent``/``step``) are Stripe's, not ISO 4217's:

* zero-decimal currencies (JPY, KRW, ...) are sent in whole units (exponent 0);
* ISK and UGX are sent with two decimals in multiples of 100 (``5 ISK -> 500``);
* BHD, JOD, KWD, OMR and TND are sent in thousandths in multiples of 10;
* HUF and TWD are ordinary two-decimal currencies *for charges* (only manual payouts must be
  divisible by 100, which a charge never is subject to).

Maximums are eight digits in Stripe's unit, except where Stripe documents more (IDR twelve,
COP ten, INR nine digits).

Minimums are Stripe's per-currency minimum charge table. For currencies the table does not list,
Stripe's rule is "the equivalent of USD 0.50 after conversion", which depends on the day's rate;
no static minimum is declared for them (one wire quantum), and Stripe's ``amount_too_small``
error maps to :class:`~gateway_core.errors.AmountOutOfRange`.

Restricted currencies: RUB (sanctions; a legal decision per deployment) and BGN (Bulgaria adopted
the euro on 2026-01-01; the lev stopped being legal tender on 2026-02-01 and Stripe dropped it
from its minimum table) are declared, so configuration can turn them on, but every gateway
narrows them away unless its settings list them in ``enable_currencies``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from types import MappingProxyType

from gateway_core.capabilities import Capabilities, CheckoutExpiry, CurrencyRule, Feature, Source
from gateway_core.errors import InvalidCurrency
from gateway_core.money import WireFormat, currency

__all__ = [
    "CARD_BRANDS",
    "CHECKED",
    "EXCLUDED_CURRENCIES",
    "MAXIMA_CHECKED",
    "MAX_AMOUNT_MINOR",
    "MAX_AMOUNT_MINOR_BY_CURRENCY",
    "MINIMUM_CHARGE_MINOR",
    "RESTRICTED_CURRENCIES",
    "SOURCES",
    "STRIPE_API_VERSION",
    "capabilities",
    "currency_rules",
]

#: The API version every request is pinned to (stripe-python 16.1.0's ``_ApiVersion.CURRENT``;
#: a test fails when an SDK upgrade moves it, so the pin is changed deliberately).
STRIPE_API_VERSION = "2026-10-28.endive"

#: When the figures below were last checked against their sources.
CHECKED = date(2026, 11, 25)

#: When the per-currency maxima were checked.
MAXIMA_CHECKED = date(2026, 12, 1)

#: How far ahead a Checkout Session's ``expires_at`` may be (see the source below).
CHECKOUT_MIN_TTL = timedelta(minutes=30)
CHECKOUT_MAX_TTL = timedelta(hours=24)

SOURCES: tuple[Source, ...] = (
    Source(
        "presentment currencies, zero-decimal list, special cases (ISK, UGX two-decimal in multiples of 100; "
        "HUF, TWD two-decimal for charges, payouts in multiples of 100)",
        "https://docs.stripe.com/currencies (via shared/provider-facts/provider_facts.json, confidence: documented)",
        CHECKED,
    ),
    Source(
        "three-decimal currencies BHD, JOD, KWD, OMR, TND sent in thousandths, last digit 0",
        "https://docs.stripe.com/currencies 2022-2023 copies (documented-but-conflicting; enforced conservatively)",
        CHECKED,
    ),
    Source(
        "minimum charge amounts per currency (current 31-entry table)",
        "https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts (copy corroborated by a note "
        "dated 2026-07-10)",
        CHECKED,
    ),
    Source(
        "maximum amount: eight digits (99999999 in the API exponent) for every currency not listed below",
        "stripe-python 16.1.0 PaymentIntentCreateParams.amount docstring ('supports up to eight digits'); "
        "https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts",
        MAXIMA_CHECKED,
    ),
    Source(
        "maximum amount IDR: twelve digits (999999999999)",
        "https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts (current page, via "
        "shared/provider-facts max_amount_minor_units; the same figure in a ~2023 copy of the page and in "
        "a third-party client quoting it)",
        MAXIMA_CHECKED,
    ),
    Source(
        "maximum amount COP: ten digits (9999999999); INR: nine digits (999999999)",
        "https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts (current page only, via "
        "shared/provider-facts max_amount_minor_units; older copies say eight digits)",
        MAXIMA_CHECKED,
    ),
    Source(
        "a Checkout Session's expires_at must be 30 minutes to 24 hours after the current time",
        "https://docs.stripe.com/payments/checkout/managing-limited-inventory (Set an expiration time)",
        date(2026, 12, 1),
    ),
    Source(
        "card brand values",
        "https://docs.stripe.com/api/cards/object#card_object-brand (PaymentMethod card.brand values)",
        CHECKED,
    ),
    Source(
        "BGN withdrawn: euro adopted 2026-01-01, lev legal tender until 2026-01-31",
        "Council Decision (EU) 2025/1407; Bulgarian National Bank changeover notices",
        CHECKED,
    ),
    Source(
        "RUB: listed by Stripe, excluded by default for sanctions compliance",
        "docs.stripe.com/currencies presentment list (2023) and minimum table; polarsource/polar#11078 (2026-04-20)",
        CHECKED,
    ),
)

# Stripe's presentment currencies (docs.stripe.com/currencies) with Stripe's own API exponent.
_TWO = 2
_STRIPE_EXPONENTS: Mapping[str, int] = MappingProxyType(
    {
        **{
            code: _TWO
            for code in [
                "AED",
                "AFN",
                "ALL",
                "AMD",
                "ANG",
                "AOA",
                "ARS",
                "AUD",
                "AWG",
                "AZN",
                "BAM",
                "BBD",
                "BDT",
                "BGN",
                "BMD",
                "BND",
                "BOB",
                "BRL",
                "BSD",
                "BWP",
                "BYN",
                "BZD",
                "CAD",
                "CDF",
                "CHF",
                "CNY",
                "COP",
                "CRC",
                "CVE",
                "CZK",
                "DKK",
                "DOP",
                "DZD",
                "EGP",
                "ETB",
                "EUR",
                "FJD",
                "FKP",
                "GBP",
                "GEL",
                "GIP",
                "GMD",
                "GTQ",
                "GYD",
                "HKD",
                "HNL",
                "HTG",
                "HUF",
                "IDR",
                "ILS",
                "INR",
                "ISK",
                "JMD",
                "KES",
                "KGS",
                "KHR",
                "KYD",
                "KZT",
                "LAK",
                "LBP",
                "LKR",
                "LRD",
                "LSL",
                "MAD",
                "MDL",
                "MKD",
                "MMK",
                "MNT",
                "MOP",
                "MUR",
                "MVR",
                "MWK",
                "MXN",
                "MYR",
                "MZN",
                "NAD",
                "NGN",
                "NIO",
                "NOK",
                "NPR",
                "NZD",
                "PAB",
                "PEN",
                "PGK",
                "PHP",
                "PKR",
                "PLN",
                "QAR",
                "RON",
                "RSD",
                "RUB",
                "SAR",
                "SBD",
                "SCR",
                "SEK",
                "SGD",
                "SHP",
                "SLE",
                "SOS",
                "SRD",
                "STD",
                "SZL",
                "THB",
                "TJS",
                "TOP",
                "TRY",
                "TTD",
                "TWD",
                "TZS",
                "UAH",
                "UGX",
                "USD",
                "UYU",
                "UZS",
                "WST",
                "XCD",
                "YER",
                "ZAR",
                "ZMW",
            ]
        },
        # Zero-decimal: whole units on the wire.
        **{
            code: 0
            for code in [
                "BIF",
                "CLP",
                "DJF",
                "GNF",
                "JPY",
                "KMF",
                "KRW",
                "MGA",
                "PYG",
                "RWF",
                "VND",
                "VUV",
                "XAF",
                "XOF",
                "XPF",
            ]
        },
        # Three-decimal: thousandths on the wire (step 10, below).
        **{code: 3 for code in ["BHD", "JOD", "KWD", "OMR", "TND"]},
    }
)

#: Wire steps in the API exponent where Stripe accepts only multiples.
_STEPS: Mapping[str, int] = MappingProxyType(
    {"ISK": 100, "UGX": 100, "BHD": 10, "JOD": 10, "KWD": 10, "OMR": 10, "TND": 10}
)

#: Stripe's minimum charge per currency, in Stripe's API minor units (current table, checked
#: 2026-11-25), plus BGN from the previous table (BGN is restricted; see the module docstring).
MINIMUM_CHARGE_MINOR: Mapping[str, int] = MappingProxyType(
    {
        "USD": 50,
        "AED": 200,
        "ARS": 50,
        "AUD": 50,
        "BGN": 100,
        "BRL": 50,
        "CAD": 50,
        "CHF": 50,
        "COP": 50,
        "CZK": 1500,
        "DKK": 250,
        "EUR": 50,
        "GBP": 30,
        "HKD": 400,
        "HUF": 17500,
        "IDR": 50,
        "ILS": 50,
        "INR": 50,
        "JPY": 50,
        "KRW": 50,
        "MXN": 1000,
        "MYR": 200,
        "NOK": 300,
        "NZD": 50,
        "PHP": 50,
        "PLN": 200,
        "RON": 200,
        "RUB": 50,
        "SEK": 300,
        "SGD": 50,
        "THB": 1000,
        "ZAR": 50,
    }
)

#: Eight digits in the API exponent (the PaymentIntent limit); rounded down to each wire step.
MAX_AMOUNT_MINOR = 99_999_999

#: Currencies Stripe lets go beyond eight digits (docs.stripe.com/currencies, "Minimum and maximum
#: charge amounts": the figures for every payment method; card networks may allow less, e.g.
#: American Express nine digits in most currencies, and answer with a decline).
MAX_AMOUNT_MINOR_BY_CURRENCY: Mapping[str, int] = MappingProxyType(
    {
        "IDR": 999_999_999_999,  # twelve digits
        "COP": 9_999_999_999,  # ten digits
        "INR": 999_999_999,  # nine digits
    }
)

#: Declared but off unless a gateway's ``enable_currencies`` setting lists them.
RESTRICTED_CURRENCIES: frozenset[str] = frozenset({"RUB", "BGN"})

#: Stripe lists these, but the core's ISO 4217 table has no usable entry for them (withdrawn
#: codes); they are not declared. ANG was replaced by XCG in 2025, STD by STN in 2018.
EXCLUDED_CURRENCIES: Mapping[str, str] = MappingProxyType(
    {
        "ANG": "withdrawn from ISO 4217 (replaced by XCG, 2025); Stripe's XCG support is unverified",
        "STD": "withdrawn from ISO 4217 (replaced by STN, 2018); Stripe still lists the old code",
    }
)

CARD_BRANDS: frozenset[str] = frozenset(
    {"amex", "cartes_bancaires", "diners", "discover", "eftpos_au", "jcb", "mastercard", "unionpay", "visa"}
)

FEATURES: frozenset[Feature] = frozenset(
    {
        Feature.HOSTED_CHECKOUT,
        Feature.AUTHORIZE_CAPTURE,
        Feature.PARTIAL_CAPTURE,
        Feature.VOID,
        Feature.REFUND,
        Feature.PARTIAL_REFUND,
        Feature.MULTIPLE_REFUNDS,
        Feature.PAYMENT_STATUS,
        Feature.WEBHOOKS,
        Feature.APPLICATION_FEE,
    }
)


def _rule(code: str, exponent: int) -> CurrencyRule:
    step = _STEPS.get(code, 1)
    wire = WireFormat(code, exponent, step)
    minimum_minor = MINIMUM_CHARGE_MINOR.get(code)
    limit = MAX_AMOUNT_MINOR_BY_CURRENCY.get(code, MAX_AMOUNT_MINOR)
    maximum_minor = limit - limit % step
    return CurrencyRule(
        code,
        exponent,
        step,
        wire.from_minor(minimum_minor) if minimum_minor is not None else None,
        wire.from_minor(maximum_minor),
    )


def currency_rules() -> dict[str, CurrencyRule]:
    """Every currency the plugin declares, by code (restricted ones included)."""
    rules: dict[str, CurrencyRule] = {}
    for code, exponent in sorted(_STRIPE_EXPONENTS.items()):
        if code in EXCLUDED_CURRENCIES:
            continue
        try:
            currency(code)
        except InvalidCurrency:  # pragma: no cover - a test pins the excluded list
            continue
        rules[code] = _rule(code, exponent)
    return rules


def capabilities() -> Capabilities:
    """The Stripe provider's declared capabilities (built without importing the SDK)."""
    return Capabilities(
        currencies=list(currency_rules().values()),
        features=FEATURES,
        card_brands=CARD_BRANDS,
        sources=SOURCES,
        live=True,
        checkout_expiry=CheckoutExpiry(CHECKOUT_MIN_TTL, CHECKOUT_MAX_TTL),
    )
