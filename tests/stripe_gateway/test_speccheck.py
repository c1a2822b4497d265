"""The request check itself: what it must refuse, so that "every request passed the spec" means something."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from tests.stripe_gateway.speccheck import Spec, SpecViolation

BASE = "https://api.stripe.com"

CHECKOUT = {
    "mode": "payment",
    "success_url": "https://shop.example/ok",
    "cancel_url": "https://shop.example/no",
    "line_items[0][quantity]": "1",
    "line_items[0][price_data][currency]": "eur",
    "line_items[0][price_data][unit_amount]": "2000",
    "line_items[0][price_data][product_data][name]": "Ticket",
}


def test_a_well_formed_checkout_passes(spec: Spec) -> None:
    assert spec.check("POST", f"{BASE}/v1/checkout/sessions", urlencode(CHECKOUT)) == "/v1/checkout/sessions"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"line_items[0][price_data][unit_amont]": "2000"}, "unknown parameter 'line_items[].price_data.unit_amont'"),
        ({"payment_intent_data[capture_metod]": "manual"}, "unknown parameter"),
        ({"line_items[0][price_data][unit_amount]": "20.00"}, "expected an integer"),
        ({"line_items[0][quantity]": "one"}, "expected an integer"),
        ({"mode": "donation"}, "'donation' is not one of"),
        ({"expires_at": "tomorrow"}, "expected an integer"),
    ],
)
def test_an_unknown_or_mistyped_parameter_fails(spec: Spec, change: dict[str, str], message: str) -> None:
    with pytest.raises(SpecViolation, match=re.escape(message)):
        spec.check("POST", f"{BASE}/v1/checkout/sessions", urlencode({**CHECKOUT, **change}))


def test_a_path_or_method_outside_the_spec_fails(spec: Spec) -> None:
    with pytest.raises(SpecViolation, match="not a path"):
        spec.check("POST", f"{BASE}/v1/checkout/sesions", urlencode(CHECKOUT))
    with pytest.raises(SpecViolation, match="not an operation"):
        spec.check("DELETE", f"{BASE}/v1/refunds/re_123", None)


def test_query_parameters_of_a_get_are_checked(spec: Spec) -> None:
    url = f"{BASE}/v1/payment_intents/pi_123"
    assert spec.check("GET", url + "?expand[0]=latest_charge", None) == "/v1/payment_intents/{intent}"
    with pytest.raises(SpecViolation, match="unknown parameter 'expnd'"):
        spec.check("GET", url + "?expnd[0]=latest_charge", None)


def test_a_newer_enum_value_passes_only_where_allowed(spec: Spec) -> None:
    spec.check("POST", f"{BASE}/v1/checkout/sessions", urlencode({**CHECKOUT, "locale": "hi-IN"}))
    with pytest.raises(SpecViolation):
        spec.check("POST", f"{BASE}/v1/checkout/sessions", urlencode({**CHECKOUT, "locale": "xx-XX"}))


def test_the_subset_is_the_2023_08_16_spec(spec: Spec) -> None:
    assert spec.doc["info"]["version"] == "2023-08-16"
    assert "x-subset-of" in spec.doc
