"""The request check itself: it refuses what PayPal's spec does not allow, so "every request validated" means something."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from paypal_gateway.gateway import PayPalGateway

from gateway_core.manager import GatewayManager
from gateway_core.models import CheckoutRequest, RefundRequest
from gateway_core.money import Money
from tests.paypal_gateway import spec
from tests.paypal_gateway.conftest import GATEWAY

ORDERS = "/v2/checkout/orders"


@pytest.fixture
def order_body(manager: GatewayManager) -> dict[str, Any]:
    """A body the plugin itself builds (what it would send)."""
    gateway = manager.gateway_object(GATEWAY)
    assert isinstance(gateway, PayPalGateway)
    request = CheckoutRequest.single(
        "Ticket", Money.of("12.50", "EUR"), "https://shop.example/paid", "https://shop.example/cancel", reference="r-1"
    )
    return gateway.order_body(request)


def test_the_plugins_own_bodies_pass(order_body: dict[str, Any]) -> None:
    spec.validate_request("POST", ORDERS, order_body)
    spec.validate_request(
        "POST", "/v2/payments/captures/C1/refund", {"amount": {"currency_code": "JPY", "value": "1250"}}
    )


def broken(
    body: dict[str, Any], path: tuple[str | int, ...], value: Any, *, rename: str | None = None
) -> dict[str, Any]:
    out = copy.deepcopy(body)
    node: Any = out
    for part in path[:-1]:
        node = node[part]
    if rename is not None:
        node[rename] = node.pop(path[-1])
    else:
        node[path[-1]] = value
    return out


EXPERIENCE = ("payment_source", "paypal", "experience_context")


@pytest.mark.parametrize(
    ("path", "value", "rename", "message"),
    [
        (("surprise",), "x", None, "unknown key 'surprise'"),
        ((*EXPERIENCE, "return_url"), None, "retrun_url", "unknown key 'payment_source.paypal.experience_context.retrun_url'"),
        ((*EXPERIENCE, "return_url"), "not a url", None, "is not a 'uri'"),
        (("purchase_units", 0, "amount", "value"), "12.505", None, "not written with 2 decimals"),
        (("purchase_units", 0, "amount", "currency_code"), "RUB", None, "PayPal takes no RUB"),
        (("payment_source", "card"), {"last_digits": "4242"}, None, "read-only"),
        (("intent",), "SALE", None, "is not one of"),
    ],
)  # fmt: skip
def test_a_body_the_spec_does_not_allow_is_refused(
    order_body: dict[str, Any], path: tuple[str | int, ...], value: Any, rename: str | None, message: str
) -> None:
    with pytest.raises(spec.SpecViolation, match=message):
        spec.validate_request("POST", ORDERS, broken(order_body, path, value, rename=rename))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"amuont": {"currency_code": "EUR", "value": "1.00"}}, "unknown key 'amuont'"),
        ({"amount": {"currency_code": "HUF", "value": "1250.00"}}, "not written with 0 decimals"),
        ({"amount": {"currency_code": "EUR", "value": 1.5}}, "is not of type 'string'"),
        ({"note_to_payer": "a\nb"}, "does not match"),
    ],
)
def test_a_refund_body_the_spec_does_not_allow_is_refused(body: dict[str, Any], message: str) -> None:
    with pytest.raises(spec.SpecViolation, match=message):
        spec.validate_request("POST", "/v2/payments/captures/C1/refund", body)


def test_headers_are_checked_against_the_operations_parameters() -> None:
    spec.validate_headers("POST", ORDERS, {"PayPal-Request-Id": "k" * 108, "Prefer": "return=representation"})
    with pytest.raises(spec.SpecViolation, match="PayPal-Request-Id"):
        spec.validate_headers("POST", ORDERS, {"PayPal-Request-Id": "k" * 109})
    with pytest.raises(spec.SpecViolation, match="Prefer"):
        spec.validate_headers("POST", ORDERS, {"Prefer": "return=everything, please"})
    with pytest.raises(spec.SpecViolation, match="paypal-mock-response"):
        spec.validate_headers("POST", ORDERS, {"PayPal-Mock-Response": "{}"})
    # Not in the 2024-02 spec, but in PayPal's current reference and sent by the SDK (ALLOWED_NEWER).
    spec.validate_headers("POST", "/v2/payments/authorizations/A1/void", {"PayPal-Request-Id": "k"})
    with pytest.raises(spec.SpecViolation, match="paypal-request-id"):
        spec.validate_headers("GET", "/v2/checkout/orders/O1", {"PayPal-Request-Id": "k"})


def test_an_operation_outside_the_specs_is_refused() -> None:
    with pytest.raises(spec.SpecViolation, match="not an operation"):
        spec.validate_request("POST", "/v2/checkout/orders/O1/refund", {})


def test_the_plugins_refund_body_passes(manager: GatewayManager) -> None:
    gateway = manager.gateway_object(GATEWAY)
    assert isinstance(gateway, PayPalGateway)
    body = gateway.refund_body(RefundRequest("C1", Money.of("4.00", "EUR"), "damaged in transit"))
    spec.validate_request("POST", "/v2/payments/captures/C1/refund", body)


VERIFY = "/v1/notifications/verify-webhook-signature"


def verify_body(signature: str) -> dict[str, Any]:
    return {
        "auth_algo": "SHA256withRSA",
        "cert_url": "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-1d93a270",
        "transmission_id": "f03cfb12-566d-4bca-8490-68ba1a164029",
        "transmission_sig": signature,
        "transmission_time": "2026-11-25T09:00:00Z",
        "webhook_id": "1JE4291016473214C",
        "webhook_event": {"id": "WH-1", "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource": {}},
    }


@pytest.mark.parametrize("signature", ["/osPoElg61MzLoU267Xc+xDdBn0o=", "+mI95Jx3Y9nhR5SJ==", "lmI95Jx3Y9nhR5SJ=="])
def test_a_base64_signature_passes_whatever_its_first_character(signature: str) -> None:
    # The spec's pattern for transmission_sig refuses a leading '+' or '/' (spec.SPEC_DEFECTS).
    spec.validate_request("POST", VERIFY, verify_body(signature))


def test_the_signature_is_still_checked_apart_from_its_pattern() -> None:
    with pytest.raises(spec.SpecViolation, match="too long"):
        spec.validate_request("POST", VERIFY, verify_body("A" * 501))
    with pytest.raises(spec.SpecViolation, match="not of type 'string'"):
        spec.validate_request("POST", VERIFY, verify_body(12345))  # type: ignore[arg-type]
