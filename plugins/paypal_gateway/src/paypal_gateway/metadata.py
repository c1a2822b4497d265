"""PayPal's capability metadata: currencies, wire formats, features, and where each figure comes from.

Nothing here imports ``paypalserversdk``: the core reads this to route and to list plugins.

Figures (checked 2026-11-25 against the sources in :data:`SOURCES`; the gathered facts are in
``shared/provider-facts/provider_facts.json``):

* 24 currencies; PayPal sends ``value`` as a decimal string with 2 decimals, except HUF, JPY and
  TWD, which PayPal takes in whole units only (a fractional amount is refused by the core before
  anything is sent, so routing can pick another gateway). ISO 4217 gives HUF and TWD 2 decimals;
  PayPal's wire exponent is 0.
* BRL, MYR and CNY are in-country only. :data:`CAPABILITIES` is what *some* PayPal account can
  take (the union the core lists and routes on before any gateway is configured); what one
  configured gateway offers is :func:`for_account` of its ``account_country`` setting, which the
  provider's ``configure`` applies: without it, or for another country, none of the three.
* No checkout expiry can be requested (``checkout_expiry`` is ``None``): Orders v2 has no field
  that bounds an order's approval window (an account manager sets it per account).
* No BGN, RON or RUB. No per-currency minimum beyond a positive amount and no documented maximum.
"""

from __future__ import annotations

from datetime import date
from types import MappingProxyType

from gateway_core.capabilities import Capabilities, CurrencyRule, Feature, Source

__all__ = [
    "CAPABILITIES",
    "CHECKED",
    "IN_COUNTRY",
    "SOURCES",
    "WHOLE_UNIT_CURRENCIES",
    "capabilities",
    "for_account",
]

#: The date every figure below was last checked against its source.
CHECKED = date(2026, 11, 25)

_CURRENCY_CODES = "https://developer.paypal.com/docs/reports/reference/paypal-supported-currencies/"
_REST_CODES = "https://developer.paypal.com/docs/api/reference/currency-codes/"

SOURCES: tuple[Source, ...] = (
    Source(
        "supported currencies (24; RUB absent; BGN and RON in no PayPal list)",
        _CURRENCY_CODES,
        CHECKED,
    ),
    Source(
        "HUF, JPY and TWD do not support decimals: 'If you pass a decimal amount, an error occurs' "
        "(the Expanded Checkout table marks only JPY and TWD; HUF sent as whole units to be safe)",
        _REST_CODES,
        CHECKED,
    ),
    Source(
        "BRL, MYR and CNY in-country only (BRL: non-Brazil receivers are converted): declared for the "
        "provider, offered by a gateway only when account_country is BR, MY or CN; INR excluded "
        "(domestic India service ended 2021-04-01)",
        _REST_CODES,
        CHECKED,
    ),
    Source(
        "no per-order checkout expiry: the Orders v2 request has no expiry field; the approval window is "
        "3 h by default ('can be changed by your account manager to 24/48/72 hours')",
        "https://developer.paypal.com/docs/api/orders/v2/ (order links description, Orders 2.13 spec)",
        CHECKED,
    ),
    Source(
        "no per-currency minimum: AmountWithBreakdown 'The amount must be a positive number'; "
        "no per-transaction maximum documented (account limits apply)",
        "https://developer.paypal.com/docs/api/orders/v2/ (schema amount_with_breakdown)",
        CHECKED,
    ),
    Source(
        "intents CAPTURE and AUTHORIZE, partial and final captures, void, partial and repeated refunds",
        "https://developer.paypal.com/docs/api/payments/v2/ and paypal-server-sdk 2.4.0 controllers",
        CHECKED,
    ),
    Source(
        "card brands: Mastercard, Visa and American Express in every country's Expanded Checkout table "
        "(others, such as JCB or eftpos, only in some countries and currencies)",
        "https://developer.paypal.com/docs/checkout/advanced/eligibility/",
        CHECKED,
    ),
    Source(
        "webhook verification: verify-webhook-signature API, or offline CRC32 + SHA256withRSA with the "
        "certificate at PAYPAL-CERT-URL",
        "https://developer.paypal.com/api/rest/webhooks/rest/",
        CHECKED,
    ),
)

#: Currencies PayPal takes in whole units only (wire exponent 0).
WHOLE_UNIT_CURRENCIES: frozenset[str] = frozenset({"HUF", "JPY", "TWD"})

#: In-country-only currencies and the account country (ISO 3166-1 alpha-2) that enables each.
IN_COUNTRY: MappingProxyType[str, str] = MappingProxyType({"BRL": "BR", "MYR": "MY", "CNY": "CN"})

_TWO_DECIMALS = (
    "AUD",
    "BRL",
    "CAD",
    "CHF",
    "CNY",
    "CZK",
    "DKK",
    "EUR",
    "GBP",
    "HKD",
    "ILS",
    "MXN",
    "MYR",
    "NOK",
    "NZD",
    "PHP",
    "PLN",
    "SEK",
    "SGD",
    "THB",
    "USD",
)


def _rules() -> list[CurrencyRule]:
    rules = [CurrencyRule(code, 2) for code in _TWO_DECIMALS]
    rules += [CurrencyRule(code, 0) for code in sorted(WHOLE_UNIT_CURRENCIES)]
    return rules


def capabilities() -> Capabilities:
    """The PayPal provider's declared capabilities: every currency some account can take.

    A configured gateway offers :func:`for_account` of its ``account_country``.
    """
    return Capabilities(
        currencies=_rules(),
        features=frozenset(
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
            }
        ),
        card_brands=frozenset({"visa", "mastercard", "amex"}),
        sources=SOURCES,
        live=True,
        # The payer's approval of an order moves no money: "To successfully capture payment for an
        # order, the buyer must first approve the order" and the merchant's server then calls
        # POST /v2/checkout/orders/{id}/capture (PayPal, Orders v2 "Capture payment for order",
        # developer.paypal.com/docs/api/orders/v2/#orders_capture; "an approved order that you can
        # finalize with Orders v2 API calls from your server", "Process the approved order").
        # This plugin's capture(CaptureRequest(order_id)) makes that call (docs/paypal.md).
        host_completes_checkout=True,
    )


CAPABILITIES = capabilities()


def for_account(account_country: str | None, declared: Capabilities = CAPABILITIES) -> Capabilities:
    """What a gateway whose PayPal account is in ``account_country`` offers: ``declared`` without the
    in-country-only currencies of other countries (without a country, none of BRL, MYR and CNY)."""
    offered = [code for code in declared.currencies if IN_COUNTRY.get(code, account_country) == account_country]
    return declared.narrowed(offered, gateway=f"paypal account in {account_country or 'an unnamed country'}")
