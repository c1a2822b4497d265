"""Webhooks: offline verification against a generated chain, the verify API on the stand-in, event mapping."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.x509.oid import ExtendedKeyUsageOID
from paypal_gateway import webhooks
from paypal_gateway.gateway import PayPalGateway
from paypal_gateway.webhooks import CertificateStore, check_cert_url, signed_message

from gateway_core.errors import ConfigurationError, WebhookVerificationFailed
from gateway_core.manager import GatewayManager
from gateway_core.models import EventType
from gateway_core.money import Money
from tests.paypal_gateway import certs
from tests.paypal_gateway.conftest import GATEWAY, WEBHOOK_ID, StandIn
from tests.paypal_gateway.standin import api_signature

CERT_URL = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77"


def capture_event(event_type: str = "PAYMENT.CAPTURE.COMPLETED", **resource: Any) -> dict[str, Any]:
    """A capture event in PayPal's documented shape (developer.paypal.com/api/rest/webhooks/event-names)."""
    return {
        "id": f"WH-{uuid.uuid4().hex[:20].upper()}",
        "event_version": "1.0",
        "create_time": "2026-11-25T09:00:00.000Z",
        "resource_type": "capture",
        "resource_version": "2.0",
        "event_type": event_type,
        "summary": "Payment completed for EUR 10.5 EUR",
        "resource": {
            "id": "42311647XV020574X",
            "amount": {"currency_code": "EUR", "value": "10.50"},
            "final_capture": True,
            "status": "COMPLETED",
            "custom_id": "order-42",
            "supplementary_data": {"related_ids": {"order_id": "5O190127TN364715T"}},
            "create_time": "2026-11-25T08:59:58Z",
            **resource,
        },
    }


def deliver(
    chain: certs.Chain,
    event: dict[str, Any],
    *,
    when: datetime | None = None,
    cert_url: str = CERT_URL,
    key: Any = None,
    webhook_id: str = WEBHOOK_ID,
) -> tuple[dict[str, str], bytes]:
    body = json.dumps(event).encode()
    transmission_id = str(uuid.uuid4())
    transmission_time = (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    message = signed_message(transmission_id, transmission_time, webhook_id, body)
    headers = {
        "PAYPAL-TRANSMISSION-ID": transmission_id,
        "PAYPAL-TRANSMISSION-TIME": transmission_time,
        "PAYPAL-TRANSMISSION-SIG": chain.sign(message, key),
        "PAYPAL-CERT-URL": cert_url,
        "PAYPAL-AUTH-ALGO": "SHA256withRSA",
        "Content-Type": "application/json",
    }
    return headers, body


@pytest.fixture(scope="module")
def chain() -> certs.Chain:
    return certs.make_chain()


class Fetcher:
    """Serves a chain for any URL and remembers what was asked (to prove refused URLs are never fetched)."""

    def __init__(self, served: bytes) -> None:
        self.served = served
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        return self.served


@pytest.fixture
def offline(make_manager: Callable[..., GatewayManager], chain: certs.Chain) -> tuple[GatewayManager, Fetcher]:
    manager = make_manager(webhook_verification="offline")
    fetcher = Fetcher(chain.served)
    gateway = manager.gateway_object(GATEWAY)
    assert isinstance(gateway, PayPalGateway)
    gateway.use_certificate_store(CertificateStore("sandbox", fetcher, certs.pem(chain.root), gateway=GATEWAY))
    return manager, fetcher


def test_offline_genuine_delivery_is_parsed(offline: tuple[GatewayManager, Fetcher], chain: certs.Chain) -> None:
    manager, fetcher = offline
    event = capture_event()
    headers, body = deliver(chain, event)
    parsed = manager.parse_webhook(GATEWAY, headers, body)
    assert parsed.id == event["id"]
    assert parsed.type is EventType.PAYMENT_SUCCEEDED
    assert parsed.provider_type == "PAYMENT.CAPTURE.COMPLETED"
    assert parsed.payment_id == "42311647XV020574X"
    assert parsed.checkout_id == "5O190127TN364715T"
    assert parsed.reference == "order-42"
    assert parsed.amount == Money.of("10.50", "EUR")
    assert parsed.occurred_at == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    # A second delivery uses the cached certificate.
    manager.parse_webhook(GATEWAY, *deliver(chain, capture_event()))
    assert fetcher.urls == [CERT_URL]


def test_offline_tampered_body_fails(offline: tuple[GatewayManager, Fetcher], chain: certs.Chain) -> None:
    manager, _ = offline
    headers, body = deliver(chain, capture_event())
    tampered = body.replace(b'"10.50"', b'"99.50"')
    with pytest.raises(WebhookVerificationFailed, match="signature"):
        manager.parse_webhook(GATEWAY, headers, tampered)


def test_offline_signature_by_another_key_fails(offline: tuple[GatewayManager, Fetcher], chain: certs.Chain) -> None:
    manager, _ = offline
    headers, body = deliver(chain, capture_event(), key=certs.other_key())
    with pytest.raises(WebhookVerificationFailed):
        manager.parse_webhook(GATEWAY, headers, body)


def test_offline_signature_for_another_webhook_id_fails(
    offline: tuple[GatewayManager, Fetcher], chain: certs.Chain
) -> None:
    manager, _ = offline
    headers, body = deliver(chain, capture_event(), webhook_id="WH-SOMEONE-ELSE")
    with pytest.raises(WebhookVerificationFailed):
        manager.parse_webhook(GATEWAY, headers, body)


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/v1/notifications/certs/CERT-1",
        "http://api.sandbox.paypal.com/v1/notifications/certs/CERT-1",
        "https://api.sandbox.paypal.com/v1/other/CERT-1",
        "https://api.sandbox.paypal.com.evil.example/v1/notifications/certs/CERT-1",
        "https://api.paypal.com/v1/notifications/certs/CERT-1",  # live host for a sandbox gateway
        "https://api.sandbox.paypal.com:8443/v1/notifications/certs/CERT-1",
        "https://user@api.sandbox.paypal.com/v1/notifications/certs/CERT-1",
        "https://api.sandbox.paypal.com/v1/notifications/certs/../../oauth2/token",
        "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1?x=1",
    ],
)
def test_offline_cert_url_off_paypal_is_refused_without_fetching(
    offline: tuple[GatewayManager, Fetcher], chain: certs.Chain, url: str
) -> None:
    manager, fetcher = offline
    headers, body = deliver(chain, capture_event(), cert_url=url)
    with pytest.raises(WebhookVerificationFailed, match="PAYPAL-CERT-URL"):
        manager.parse_webhook(GATEWAY, headers, body)
    assert fetcher.urls == []


def test_cert_url_on_paypal_hosts_is_accepted() -> None:
    for url in (
        CERT_URL,
        "https://api-m.sandbox.paypal.com/v1/notifications/certs/CERT-1",
        "https://api.sandbox.paypal.com:443/v1/notifications/certs/CERT-1",  # https's own port: the same origin
    ):
        assert check_cert_url(url, "sandbox") == url
    assert check_cert_url("https://api-m.paypal.com/v1/notifications/certs/CERT-1", "live")


@pytest.mark.parametrize("port", ["8443", "80", "0"])
def test_cert_url_with_another_port_is_refused(port: str) -> None:
    with pytest.raises(WebhookVerificationFailed, match="no port but 443"):
        check_cert_url(f"https://api.sandbox.paypal.com:{port}/v1/notifications/certs/CERT-1", "sandbox")


def test_a_configured_webhook_tolerance_is_the_one_applied(
    make_manager: Callable[..., GatewayManager], chain: certs.Chain
) -> None:
    """webhook_tolerance = 60: a delivery sent two minutes ago is refused (the default 900 s takes it)."""
    managers = {}
    for tolerance in (60, None):
        manager = make_manager(
            webhook_verification="offline", **({"webhook_tolerance": tolerance} if tolerance else {})
        )
        gateway = manager.gateway_object(GATEWAY)
        assert isinstance(gateway, PayPalGateway)
        store = CertificateStore("sandbox", Fetcher(chain.served), certs.pem(chain.root), gateway=GATEWAY)
        gateway.use_certificate_store(store)
        managers[tolerance] = manager
    now = datetime.now(UTC)
    late = deliver(chain, capture_event(), when=now - timedelta(minutes=2))
    with pytest.raises(WebhookVerificationFailed, match="outside the 60 s tolerance"):
        managers[60].parse_webhook(GATEWAY, *late)
    assert managers[None].parse_webhook(GATEWAY, *late).type is EventType.PAYMENT_SUCCEEDED
    recent = deliver(chain, capture_event(), when=now - timedelta(seconds=30))
    assert managers[60].parse_webhook(GATEWAY, *recent).type is EventType.PAYMENT_SUCCEEDED


@pytest.mark.parametrize(
    ("served", "reason"),
    [
        # Issued by another "Test Root CA": the trusted root of that name did not sign the intermediate.
        (
            "untrusted",
            "does not lead to a trusted root (validation failed: candidates exhausted: signature does not match)",
        ),
        ("wrong_subject", "subject"),
        ("expired", "not valid now"),
        ("leaf_only", "served the leaf certificate only, so webhook_ca_bundle must hold the intermediate"),
        ("garbage", "PEM"),
    ],
)
def test_offline_bad_certificate_chain_is_refused(
    make_manager: Callable[..., GatewayManager], chain: certs.Chain, served: str, reason: str
) -> None:
    if served == "untrusted":
        other = certs.make_chain()
        signer, pem = other, other.served
    elif served == "wrong_subject":
        other = certs.make_chain("www.paypal.com")
        signer, pem = other, other.served
    elif served == "expired":
        other = certs.make_chain(expired=True)
        signer, pem = other, other.served
    elif served == "leaf_only":  # the bundle holds only the root: the leaf's issuer is nowhere
        signer, pem = chain, chain.leaf_only
    else:
        signer, pem = chain, b"not a certificate"
    manager = make_manager(webhook_verification="offline")
    gateway = manager.gateway_object(GATEWAY)
    assert isinstance(gateway, PayPalGateway)
    roots = certs.pem(chain.root) if served != "wrong_subject" and served != "expired" else certs.pem(signer.root)
    gateway.use_certificate_store(CertificateStore("sandbox", Fetcher(pem), roots, gateway=GATEWAY))
    with pytest.raises(WebhookVerificationFailed, match=re.escape(reason)):
        manager.parse_webhook(GATEWAY, *deliver(signer, capture_event()))


@pytest.mark.parametrize(
    ("bundle", "served"),
    [
        ("intermediate", "leaf_only"),
        ("root_and_intermediate", "leaf_only"),  # what paypalrestsdk bundles (root + issuing intermediate)
        ("intermediate", "chain"),  # a cert_url that does serve the intermediate verifies as well
    ],
)
def test_a_leaf_only_cert_url_verifies_against_the_intermediate_in_webhook_ca_bundle(
    make_manager: Callable[..., GatewayManager],
    chain: certs.Chain,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    bundle: str,
    served: str,
) -> None:
    """PayPal's own SDKs read only the first certificate at cert_url and bundle the issuing CA.

    Configured the way docs/paypal.md says (``webhook_ca_bundle`` = other roots plus that
    intermediate), a delivery whose cert_url serves the leaf alone is verified, and still only
    with the leaf's key over the exact body.
    """
    unrelated = certs.make_chain().root  # stands in for the rest of a CA bundle such as certifi's
    anchors = [chain.intermediate] if bundle == "intermediate" else [chain.root, chain.intermediate]
    path = tmp_path / "paypal-webhook-ca.pem"
    path.write_bytes(certs.pem(unrelated, *anchors))
    manager = make_manager(webhook_verification="offline", webhook_ca_bundle=str(path))
    gateway = manager.gateway_object(GATEWAY)
    assert isinstance(gateway, PayPalGateway)
    fetcher = Fetcher(chain.leaf_only if served == "leaf_only" else chain.served)
    monkeypatch.setattr(gateway.client, "fetch", fetcher)
    parsed = manager.parse_webhook(GATEWAY, *deliver(chain, capture_event()))
    assert parsed.type is EventType.PAYMENT_SUCCEEDED
    assert fetcher.urls == [CERT_URL]
    headers, body = deliver(chain, capture_event())
    with pytest.raises(WebhookVerificationFailed, match="does not match"):
        manager.parse_webhook(GATEWAY, headers, body.replace(b"10.50", b"99.50"))
    headers, body = deliver(chain, capture_event(), key=certs.other_key())
    with pytest.raises(WebhookVerificationFailed, match="does not match"):
        manager.parse_webhook(GATEWAY, headers, body)


def test_stale_or_future_transmission_time_is_refused(
    offline: tuple[GatewayManager, Fetcher], chain: certs.Chain
) -> None:
    manager, fetcher = offline
    for shift in (timedelta(hours=-1), timedelta(hours=1)):
        headers, body = deliver(chain, capture_event(), when=datetime.now(UTC) + shift)
        with pytest.raises(WebhookVerificationFailed, match="tolerance"):
            manager.parse_webhook(GATEWAY, headers, body)
    assert fetcher.urls == []


def test_missing_headers_are_refused(offline: tuple[GatewayManager, Fetcher], chain: certs.Chain) -> None:
    manager, _ = offline
    headers, body = deliver(chain, capture_event())
    del headers["PAYPAL-TRANSMISSION-SIG"]
    with pytest.raises(WebhookVerificationFailed, match="PAYPAL-TRANSMISSION-SIG"):
        manager.parse_webhook(GATEWAY, headers, body)


@pytest.mark.parametrize(
    "name",
    ["PAYPAL-TRANSMISSION-ID", "PAYPAL-TRANSMISSION-TIME", "PAYPAL-TRANSMISSION-SIG", "PAYPAL-CERT-URL",
     "PAYPAL-AUTH-ALGO"],
)  # fmt: skip
@pytest.mark.parametrize("forged", ["\u00e9", chr(0xD800)])
def test_a_header_that_is_not_ascii_is_refused_as_unverified(
    offline: tuple[GatewayManager, Fetcher], chain: certs.Chain, name: str, forged: str
) -> None:
    # PayPal's headers are ASCII (a UUID, a time, base64, an https URL, an algorithm name). A lone
    # surrogate in the transmission id escaped as an unmapped UnicodeEncodeError (a 500, not a 400).
    manager, fetcher = offline
    headers, body = deliver(chain, capture_event())
    headers[name] = headers[name][:-1] + forged
    with pytest.raises(WebhookVerificationFailed, match=f"{name} is not ASCII"):
        manager.parse_webhook(GATEWAY, headers, body)
    assert fetcher.urls == []


def test_webhooks_need_a_webhook_id(make_manager: Callable[..., GatewayManager], chain: certs.Chain) -> None:
    manager = make_manager(webhook_id=None)
    with pytest.raises(ConfigurationError):
        manager.parse_webhook(GATEWAY, *deliver(chain, capture_event()))


def api_delivery(
    event: dict[str, Any], *, sig: str | None = None, body: bytes | None = None
) -> tuple[dict[str, str], bytes]:
    body = body if body is not None else json.dumps(event).encode()
    transmission_id = str(uuid.uuid4())
    transmission_time = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    signature = sig or api_signature(transmission_id, transmission_time, WEBHOOK_ID, body)
    return {
        "paypal-transmission-id": transmission_id,
        "paypal-transmission-time": transmission_time,
        "paypal-transmission-sig": signature,
        "paypal-cert-url": CERT_URL,
        "paypal-auth-algo": "SHA256withRSA",
    }, body


def test_api_verification_believes_only_paypal(manager: GatewayManager, standin: StandIn) -> None:
    event = capture_event("PAYMENT.CAPTURE.REFUNDED")
    headers, body = api_delivery(event)
    parsed = manager.parse_webhook(GATEWAY, headers, body)
    assert parsed.id == event["id"]
    (verify,) = [r for r in standin.requests() if r["path"] == "/v1/notifications/verify-webhook-signature"]
    assert verify["auth"] == "Bearer"
    assert verify["body"]["webhook_event"] == event
    assert verify["body"]["webhook_id"] == WEBHOOK_ID
    tampered = body.replace(b'"10.50"', b'"99.50"')
    with pytest.raises(WebhookVerificationFailed):
        manager.parse_webhook(GATEWAY, headers, tampered)
    with pytest.raises(WebhookVerificationFailed):
        manager.parse_webhook(GATEWAY, *api_delivery(event, sig="c2lnbmF0dXJl"))


def test_api_verification_sends_the_body_byte_for_byte(manager: GatewayManager, standin: StandIn) -> None:
    """PayPal signs the bytes it sent: key order and whitespace must reach verify-webhook-signature unchanged."""
    event = capture_event()
    body = json.dumps(dict(reversed(list(event.items()))), indent=3, separators=(" ,", " : ")).encode()
    assert json.dumps(json.loads(body)).encode() != body  # re-serializing would change what was signed
    headers, _ = api_delivery(event, body=body)
    assert manager.parse_webhook(GATEWAY, headers, body).id == event["id"]
    (verify,) = [r for r in standin.requests() if r["path"] == "/v1/notifications/verify-webhook-signature"]
    assert verify["body"]["webhook_event"] == event
    # The same event, re-serialized by the sender, is not what was signed.
    with pytest.raises(WebhookVerificationFailed):
        manager.parse_webhook(GATEWAY, headers, json.dumps(event).encode())


def test_api_verification_renews_a_refused_token(manager: GatewayManager, standin: StandIn) -> None:
    event = capture_event()
    manager.parse_webhook(GATEWAY, *api_delivery(event))
    standin.revoke_tokens()
    assert manager.parse_webhook(GATEWAY, *api_delivery(event)).id == event["id"]
    paths = [r["path"] for r in standin.requests()]
    assert paths.count("/v1/oauth2/token") == 2
    assert paths.count("/v1/notifications/verify-webhook-signature") == 3


def test_api_mode_refuses_a_body_that_is_not_json(manager: GatewayManager, standin: StandIn) -> None:
    headers, _ = api_delivery(capture_event())
    with pytest.raises(WebhookVerificationFailed):
        manager.parse_webhook(GATEWAY, headers, b"\xff not json")
    assert [r for r in standin.requests() if "verify" in r["path"]] == []


ORDER = {
    "id": "5O190127TN364715T",
    "intent": "CAPTURE",
    "status": "APPROVED",
    "purchase_units": [
        {"reference_id": "order-7", "custom_id": "order-7", "amount": {"currency_code": "HUF", "value": "1250"}}
    ],
}
REFUND = {
    "id": "1JU08902781691411",
    "amount": {"currency_code": "EUR", "value": "4.00"},
    "status": "COMPLETED",
    "custom_id": "order-42",
    "links": [{"href": "https://api.paypal.com/v2/payments/captures/42311647XV020574X", "rel": "up", "method": "GET"}],
}
AUTH = {"id": "0VF52814937998046", "status": "VOIDED", "amount": {"currency_code": "USD", "value": "7.00"}}
# An order created without a reference: PayPal fills reference_id with "default" (the recorded create shows it).
UNREFERENCED_ORDER = {
    **ORDER,
    "purchase_units": [{"reference_id": "default", "amount": {"currency_code": "EUR", "value": "5.00"}}],
}
# Customer Disputes v1 "dispute" (developer.paypal.com/api/customer-disputes/v1/definitions/dispute).
# Objects where lists or strings belong (and the reverse): read as absent, never an AttributeError.
MISSHAPEN_CAPTURE = {"id": "42311647XV020574X", "status": "DECLINED", "status_details": ["DECLINED"], "supplementary_data": "x"}  # fmt: skip
MISSHAPEN_ORDER = {**ORDER, "purchase_units": [{"custom_id": "order-7", "payments": ["x"]}]}
DISPUTE = {
    "dispute_id": "PP-D-27803",
    "create_time": "2026-11-25T09:00:00.000Z",
    "disputed_transactions": [
        {"seller_transaction_id": "42311647XV020574X", "buyer_transaction_id": "8KD50467HB146913U"}
    ],
    "reason": "MERCHANDISE_OR_SERVICE_NOT_RECEIVED",
    "status": "OPEN",
    "dispute_amount": {"currency_code": "EUR", "value": "10.50"},
}


@pytest.mark.parametrize(
    ("event_type", "resource_type", "resource", "expected", "fields"),
    [
        ("CHECKOUT.ORDER.APPROVED", "checkout-order", ORDER, EventType.CHECKOUT_COMPLETED, {"checkout_id": "5O190127TN364715T", "payment_id": "5O190127TN364715T", "reference": "order-7", "amount": Money.of("1250", "HUF")}),
        ("CHECKOUT.ORDER.COMPLETED", "checkout-order", ORDER, EventType.CHECKOUT_COMPLETED, {"checkout_id": "5O190127TN364715T"}),
        ("CHECKOUT.PAYMENT-APPROVAL.REVERSED", "checkout-order", ORDER, EventType.PAYMENT_FAILED, {"checkout_id": "5O190127TN364715T"}),
        ("PAYMENT.CAPTURE.COMPLETED", "capture", None, EventType.PAYMENT_SUCCEEDED, {"payment_id": "42311647XV020574X"}),
        ("PAYMENT.CAPTURE.PENDING", "capture", None, EventType.PAYMENT_PENDING, {"payment_id": "42311647XV020574X"}),
        ("PAYMENT.CAPTURE.DENIED", "capture", None, EventType.PAYMENT_FAILED, {"payment_id": "42311647XV020574X"}),
        ("PAYMENT.CAPTURE.DECLINED", "capture", None, EventType.PAYMENT_FAILED, {"payment_id": "42311647XV020574X"}),
        ("PAYMENT.CAPTURE.REFUNDED", "refund", REFUND, EventType.REFUND_SUCCEEDED, {"refund_id": "1JU08902781691411", "payment_id": "42311647XV020574X", "amount": Money.of("4.00", "EUR")}),
        ("PAYMENT.CAPTURE.REVERSED", "refund", REFUND, EventType.PAYMENT_REVERSED, {"payment_id": "42311647XV020574X"}),
        ("PAYMENT.AUTHORIZATION.VOIDED", "authorization", AUTH, EventType.PAYMENT_CANCELED, {"payment_id": "0VF52814937998046"}),
        ("CHECKOUT.ORDER.APPROVED", "checkout-order", UNREFERENCED_ORDER, EventType.CHECKOUT_COMPLETED, {"checkout_id": "5O190127TN364715T", "reference": None}),
        ("CUSTOMER.DISPUTE.CREATED", "dispute", DISPUTE, EventType.DISPUTE_OPENED, {"payment_id": "42311647XV020574X", "amount": Money.of("10.50", "EUR"), "failure_code": "MERCHANDISE_OR_SERVICE_NOT_RECEIVED"}),
        ("CUSTOMER.DISPUTE.UPDATED", "dispute", DISPUTE, EventType.UNKNOWN, {}),
        ("PAYMENT.CAPTURE.DECLINED", "capture", MISSHAPEN_CAPTURE, EventType.PAYMENT_FAILED, {"payment_id": "42311647XV020574X", "checkout_id": None, "failure_code": None}),
        ("CHECKOUT.ORDER.APPROVED", "checkout-order", MISSHAPEN_ORDER, EventType.CHECKOUT_COMPLETED, {"checkout_id": "5O190127TN364715T", "payment_id": "5O190127TN364715T", "reference": "order-7"}),
    ],
)  # fmt: skip
def test_event_types_map_onto_the_core(
    offline: tuple[GatewayManager, Fetcher],
    chain: certs.Chain,
    event_type: str,
    resource_type: str,
    resource: dict[str, Any] | None,
    expected: EventType,
    fields: dict[str, Any],
) -> None:
    manager, _ = offline
    event = capture_event(event_type)
    if resource is not None:
        event["resource"] = resource
    event["resource_type"] = resource_type
    parsed = manager.parse_webhook(GATEWAY, *deliver(chain, event))
    assert parsed.type is expected
    assert parsed.provider_type == event_type
    for name, value in fields.items():
        assert getattr(parsed, name) == value, name


#: Verified events whose ids, references and codes are not strings (PayPal's shape changed, or a
#: relay rewrote the body): each such field reads as absent, never as a number or an object.
MISTYPED = [
    ("PAYMENT.CAPTURE.DENIED", "capture", {"id": 42311647, "custom_id": {"order": 7}, "status": "DENIED"}),
    ("PAYMENT.CAPTURE.REFUNDED", "refund", {**REFUND, "id": ["1JU08902781691411"], "custom_id": 7}),
    ("CHECKOUT.ORDER.APPROVED", "checkout-order", {**ORDER, "id": 5190127}),
    (
        "CUSTOMER.DISPUTE.CREATED",
        "dispute",
        {**DISPUTE, "reason": {"code": "UNAUTHORISED"}, "disputed_transactions": [{"seller_transaction_id": 4231}]},
    ),
    ("CUSTOMER.DISPUTE.CREATED", "dispute", {**DISPUTE, "reason": "not a\ncode"}),
]


@pytest.mark.parametrize(("event_type", "resource_type", "resource"), MISTYPED)
def test_mistyped_fields_of_a_verified_event_read_as_absent(
    offline: tuple[GatewayManager, Fetcher],
    chain: certs.Chain,
    event_type: str,
    resource_type: str,
    resource: dict[str, Any],
) -> None:
    manager, _ = offline
    event = capture_event(event_type)
    event["resource"] = resource
    event["resource_type"] = resource_type
    parsed = manager.parse_webhook(GATEWAY, *deliver(chain, event))
    for name in ("payment_id", "checkout_id", "refund_id", "reference", "failure_code"):
        value = getattr(parsed, name)
        assert value is None or isinstance(value, str), name
        assert value is None or value.isprintable(), name
    assert parsed.type is not EventType.UNKNOWN  # the event itself still reads: only the bad fields drop


@pytest.mark.parametrize(
    ("chain_kwargs", "reason"),
    [
        # Each case breaks one thing and must be refused for that thing: cryptography's own words.
        ({"san": "www.paypal.com"}, "leaf certificate has no matching subjectAltName"),  # CN is PayPal's, SAN not
        ({"eku": [ExtendedKeyUsageOID.CODE_SIGNING]}, "required EKU not found"),  # not a serverAuth certificate
        ({"leaf_usage": certs.signing_usage(digital_signature=False)}, "does not include digital signatures"),
        ({"leaf_is_ca": True}, "basicConstraints.cA must not be asserted in an EE certificate"),  # a CA as the leaf
        ({"intermediate_is_ca": False}, "basicConstraints.cA must be asserted in a CA certificate"),  # issuer no CA
        ({"intermediate_expires": timedelta(hours=-1)}, "a certificate in the chain is not valid now"),
    ],
)
def test_offline_chain_is_checked_as_a_web_pki_path(
    make_manager: Callable[..., GatewayManager], chain_kwargs: dict[str, Any], reason: str
) -> None:
    bad = certs.make_chain(**chain_kwargs)
    manager = make_manager(webhook_verification="offline")
    gateway = manager.gateway_object(GATEWAY)
    assert isinstance(gateway, PayPalGateway)
    gateway.use_certificate_store(
        CertificateStore("sandbox", Fetcher(bad.served), certs.pem(bad.root), gateway=GATEWAY)
    )
    with pytest.raises(WebhookVerificationFailed, match=re.escape(reason)):
        manager.parse_webhook(GATEWAY, *deliver(bad, capture_event()))


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def cert_url(n: int) -> str:
    return f"https://api.sandbox.paypal.com/v1/notifications/certs/CERT-{n:08d}"


def test_a_cached_certificate_lapses_with_its_intermediate(chain: certs.Chain) -> None:
    short = certs.make_chain(intermediate_expires=timedelta(hours=1))
    clock, fetcher = Clock(), Fetcher(short.served)
    store = CertificateStore("sandbox", fetcher, certs.pem(short.root), clock=clock)
    assert store.public_key(cert_url(1)) is not None
    clock.now += timedelta(minutes=30)
    store.public_key(cert_url(1))
    assert fetcher.urls == [cert_url(1)]  # cached
    clock.now += timedelta(hours=1)  # the leaf is still valid for a year; the intermediate is not
    with pytest.raises(WebhookVerificationFailed, match="not valid now"):
        store.public_key(cert_url(1))
    assert fetcher.urls == [cert_url(1)] * 2


def test_a_leaf_verified_against_a_bundled_intermediate_lapses_with_it() -> None:
    """The bundled intermediate is the anchor: the cache lasts until it expires, and then it is refused."""
    short = certs.make_chain(intermediate_expires=timedelta(hours=1))
    clock, fetcher = Clock(), Fetcher(short.leaf_only)
    store = CertificateStore("sandbox", fetcher, certs.pem(short.intermediate), clock=clock)
    assert store.public_key(cert_url(1)) is not None
    clock.now += timedelta(minutes=30)
    store.public_key(cert_url(1))
    assert fetcher.urls == [cert_url(1)]  # cached
    clock.now += timedelta(hours=1)  # the leaf is valid for a year; the bundled intermediate is not
    with pytest.raises(WebhookVerificationFailed, match="not valid at validation time"):
        store.public_key(cert_url(1))
    assert fetcher.urls == [cert_url(1)] * 2


def test_a_failed_certificate_url_is_not_fetched_again_for_a_while(chain: certs.Chain) -> None:
    clock, fetcher = Clock(), Fetcher(b"not a certificate")
    store = CertificateStore("sandbox", fetcher, certs.pem(chain.root), clock=clock)
    for _ in range(3):
        with pytest.raises(WebhookVerificationFailed):
            store.public_key(cert_url(1))
    assert fetcher.urls == [cert_url(1)]
    clock.now += timedelta(minutes=1, seconds=1)
    fetcher.served = chain.served
    assert store.public_key(cert_url(1)) is not None
    assert fetcher.urls == [cert_url(1)] * 2


def test_certificate_fetches_are_rate_limited(chain: certs.Chain) -> None:
    """Forged deliveries with a fresh, well-formed cert URL each cannot make us fetch without bound."""
    clock, fetcher = Clock(), Fetcher(b"not a certificate")
    store = CertificateStore("sandbox", fetcher, certs.pem(chain.root), clock=clock, max_fetches=5)
    for n in range(20):
        with pytest.raises(WebhookVerificationFailed):
            store.public_key(cert_url(n))
    assert len(fetcher.urls) == 5
    with pytest.raises(WebhookVerificationFailed, match="too many"):
        store.public_key(cert_url(99))
    clock.now += timedelta(minutes=1)
    fetcher.served = chain.served
    assert store.public_key(cert_url(99)) is not None  # the window has passed
    assert len(fetcher.urls) == 6


def test_the_certificate_cache_is_bounded(chain: certs.Chain) -> None:
    clock, fetcher = Clock(), Fetcher(chain.served)
    store = CertificateStore("sandbox", fetcher, certs.pem(chain.root), clock=clock, max_cached=2, max_fetches=100)
    for n in (1, 2, 1, 3):  # 1 is used again, so 2 is the least recently used when 3 arrives
        store.public_key(cert_url(n))
    assert fetcher.urls == [cert_url(1), cert_url(2), cert_url(3)]
    store.public_key(cert_url(1))
    store.public_key(cert_url(2))
    assert fetcher.urls == [cert_url(1), cert_url(2), cert_url(3), cert_url(2)]


def test_certificate_fetch_follows_no_redirect_and_reads_at_most_64_kb(
    manager: GatewayManager, standin: StandIn
) -> None:
    from paypal_gateway.client import MAX_FETCH_BYTES

    from gateway_core.errors import GatewayError

    gateway = manager.gateway_object(GATEWAY)
    assert isinstance(gateway, PayPalGateway)
    client = gateway.client
    assert client.fetch(f"{standin.base_url}/_standin/blob/{MAX_FETCH_BYTES}") == b"-" * MAX_FETCH_BYTES
    with pytest.raises(GatewayError, match="larger than"):
        client.fetch(f"{standin.base_url}/_standin/blob/{MAX_FETCH_BYTES + 1}")
    with pytest.raises(GatewayError, match="HTTP 302"):
        client.fetch(f"{standin.base_url}/_standin/redirect")


# -- refund events: the refund's own status decides ---------------------------------------------

RECORDED = Path(__file__).parent / "data" / "recorded"


def recorded_refund() -> dict[str, Any]:
    """The refund PayPal's sandbox answered to ``POST /v2/payments/captures/{id}/refund``.

    saleor PR 5577's cassette (``data/recorded/test_refund_success.yaml``, 2020-08-18, see
    ``data/SOURCES.md``): a Payments v2 Refund, ``PENDING`` with ``status_details.reason`` ``ECHECK``,
    its ``up`` link naming the capture. A refund event carries this resource.
    """
    interactions = yaml.safe_load((RECORDED / "test_refund_success.yaml").read_text())["interactions"]
    (answer,) = [i["response"] for i in interactions if i["request"]["uri"].endswith("/refund")]
    refund: dict[str, Any] = json.loads(answer["body"]["string"])
    assert (refund["status"], refund["status_details"]) == ("PENDING", {"reason": "ECHECK"})
    return refund


def refund_event(event_type: str, resource: Any, resource_type: str = "refund") -> dict[str, Any]:
    """A refund event in PayPal's documented envelope (developer.paypal.com/api/rest/webhooks/event-names)."""
    return {
        **capture_event(event_type),
        "resource_type": resource_type,
        "summary": "A EUR 24.24 EUR capture payment was refunded",
        "resource": resource,
    }


def with_status(**changes: Any) -> dict[str, Any]:
    """The recorded refund as PayPal would send it in another state (``None`` removes a field)."""
    refund = {**recorded_refund(), **changes}
    return {k: v for k, v in refund.items() if v is not None}


RECORDED_IDS = {"refund_id": "9NC06711XS952841K", "payment_id": "5DH34141WG814093W", "amount": Money.of("24.24", "EUR")}


@pytest.mark.parametrize(
    ("event_type", "resource", "expected", "failure_code"),
    [
        # The recorded refund as it was answered: pending, nothing has gone back to the payer yet.
        pytest.param("PAYMENT.CAPTURE.REFUNDED", with_status(), EventType.REFUND_PENDING, "ECHECK", id="refunded-pending"),
        pytest.param("PAYMENT.CAPTURE.REFUNDED", with_status(status="COMPLETED", status_details=None), EventType.REFUND_SUCCEEDED, None, id="refunded-completed"),
        pytest.param("PAYMENT.CAPTURE.REFUNDED", with_status(status="FAILED"), EventType.REFUND_FAILED, "ECHECK", id="refunded-failed"),
        pytest.param("PAYMENT.CAPTURE.REFUNDED", with_status(status="CANCELLED", status_details=None), EventType.REFUND_FAILED, None, id="refunded-cancelled"),
        # Not on PayPal's published list; should PayPal send them, the refund's status decides.
        pytest.param("PAYMENT.REFUND.PENDING", with_status(), EventType.REFUND_PENDING, "ECHECK", id="refund-pending"),
        pytest.param("PAYMENT.REFUND.FAILED", with_status(status="FAILED"), EventType.REFUND_FAILED, "ECHECK", id="refund-failed"),
        pytest.param("PAYMENT.REFUND.COMPLETED", with_status(status="COMPLETED", status_details=None), EventType.REFUND_SUCCEEDED, None, id="refund-completed"),
    ],
)  # fmt: skip
def test_a_refund_event_is_typed_by_the_refunds_own_status(
    offline: tuple[GatewayManager, Fetcher],
    chain: certs.Chain,
    event_type: str,
    resource: dict[str, Any],
    expected: EventType,
    failure_code: str | None,
) -> None:
    manager, _ = offline
    parsed = manager.parse_webhook(GATEWAY, *deliver(chain, refund_event(event_type, resource)))
    assert parsed.type is expected
    assert parsed.provider_type == event_type
    assert (parsed.refund_id, parsed.payment_id, parsed.amount) == tuple(RECORDED_IDS.values())
    assert parsed.failure_code == failure_code  # status_details.reason: why it is PENDING or FAILED


@pytest.mark.parametrize(
    ("event_type", "resource", "resource_type"),
    [
        pytest.param("PAYMENT.CAPTURE.REFUNDED", with_status(status=None), "refund", id="no-status"),
        pytest.param("PAYMENT.CAPTURE.REFUNDED", with_status(status="PARTIALLY_COMPLETED"), "refund", id="unknown-status"),
        pytest.param("PAYMENT.CAPTURE.REFUNDED", with_status(status=["COMPLETED"]), "refund", id="status-not-a-string"),
        pytest.param("PAYMENT.REFUND.FAILED", with_status(status=None), "refund", id="failed-by-name-only"),
        # A capture's COMPLETED is not a refund's: a resource that is not a refund claims no refund.
        pytest.param("PAYMENT.CAPTURE.REFUNDED", capture_event()["resource"], "capture", id="capture-resource"),
    ],
)  # fmt: skip
def test_a_refund_event_without_a_known_refund_status_is_unknown(
    offline: tuple[GatewayManager, Fetcher],
    chain: certs.Chain,
    event_type: str,
    resource: dict[str, Any],
    resource_type: str,
) -> None:
    manager, _ = offline
    parsed = manager.parse_webhook(GATEWAY, *deliver(chain, refund_event(event_type, resource, resource_type)))
    assert parsed.type is EventType.UNKNOWN  # reported, never guessed succeeded (nor failed, from a name)
    assert parsed.provider_type == event_type
    if resource_type == "refund":  # what it names is still reported: the host may read the payment's status
        assert (parsed.refund_id, parsed.payment_id, parsed.amount) == tuple(RECORDED_IDS.values())


@pytest.mark.parametrize(
    ("resource", "fields"),
    [
        # Objects where other shapes belong read as absent (the module's rule), never an AttributeError.
        pytest.param(with_status(status_details="ECHECK"), {"failure_code": None}, id="status-details-not-an-object"),
        pytest.param(with_status(status_details={"reason": ["ECHECK"]}), {"failure_code": None}, id="reason-not-a-string"),
        pytest.param(["not", "a", "refund"], {"refund_id": None, "payment_id": None, "amount": None}, id="resource-not-an-object"),
    ],
)  # fmt: skip
def test_a_misshapen_refund_reads_as_absent(
    offline: tuple[GatewayManager, Fetcher], chain: certs.Chain, resource: Any, fields: dict[str, Any]
) -> None:
    manager, _ = offline
    parsed = manager.parse_webhook(GATEWAY, *deliver(chain, refund_event("PAYMENT.CAPTURE.REFUNDED", resource)))
    expected = EventType.REFUND_PENDING if isinstance(resource, dict) else EventType.UNKNOWN
    assert parsed.type is expected
    for name, value in fields.items():
        assert getattr(parsed, name) == value, name


def test_a_refund_with_a_malformed_amount_is_refused(
    offline: tuple[GatewayManager, Fetcher], chain: certs.Chain
) -> None:
    manager, _ = offline
    resource = with_status(amount={"currency_code": "EUR", "value": "24.245"})
    with pytest.raises(WebhookVerificationFailed, match="malformed amount"):
        manager.parse_webhook(GATEWAY, *deliver(chain, refund_event("PAYMENT.CAPTURE.REFUNDED", resource)))


def test_a_pending_refund_event_is_believed_only_once_paypal_verifies_it(
    manager: GatewayManager, standin: StandIn
) -> None:
    event = refund_event("PAYMENT.CAPTURE.REFUNDED", with_status())
    headers, body = api_delivery(event)
    parsed = manager.parse_webhook(GATEWAY, headers, body)
    assert parsed.type is EventType.REFUND_PENDING
    (verify,) = [r for r in standin.requests() if r["path"] == "/v1/notifications/verify-webhook-signature"]
    assert verify["body"]["webhook_event"] == event
    # The same body with its status changed is not what PayPal signed.
    forged = body.replace(b'"status": "PENDING"', b'"status": "COMPLETED"')
    assert forged != body
    with pytest.raises(WebhookVerificationFailed):
        manager.parse_webhook(GATEWAY, headers, forged)


def test_event_type_reads_the_refund_not_the_name() -> None:
    refund = recorded_refund()
    assert webhooks.event_type("PAYMENT.CAPTURE.REFUNDED", "refund", refund) is EventType.REFUND_PENDING
    assert webhooks.event_type("PAYMENT.REFUND.FAILED", "refund", refund) is EventType.REFUND_PENDING
    completed = {**refund, "status": "COMPLETED"}
    assert webhooks.event_type("PAYMENT.CAPTURE.REFUNDED", "refund", completed) is EventType.REFUND_SUCCEEDED
    assert webhooks.event_type("PAYMENT.CAPTURE.REFUNDED", "capture", completed) is EventType.UNKNOWN
    # PAYMENT.CAPTURE.REVERSED ("PayPal reverses a payment capture") carries a refund too: its name decides.
    assert webhooks.event_type("PAYMENT.CAPTURE.REVERSED", "refund", refund) is EventType.PAYMENT_REVERSED
    assert webhooks.status_reason(refund) == "ECHECK"
    assert webhooks.status_reason(completed | {"status_details": "ECHECK"}) is None


# -- a capture's status_details.reason: read by shape, as a refund's ---------------------------

LONGEST_REASON = "R" * 64  # Payments v2 capture_status_details.reason: maxLength 64, pattern ^[A-Z_]+$


@pytest.mark.parametrize(
    ("event_type", "status", "reason", "failure_code"),
    [
        # Shaped as PayPal documents it (capture_status_details.reason): passed on.
        pytest.param("PAYMENT.CAPTURE.DENIED", "DECLINED", "BUYER_COMPLAINT", "BUYER_COMPLAINT", id="denied"),
        pytest.param("PAYMENT.CAPTURE.PENDING", "PENDING", "PENDING_REVIEW", "PENDING_REVIEW", id="pending"),
        pytest.param("PAYMENT.CAPTURE.DECLINED", "DECLINED", LONGEST_REASON, LONGEST_REASON, id="longest"),
        # Misshapen: absent, never passed through to the host as a code.
        pytest.param("PAYMENT.CAPTURE.DECLINED", "DECLINED", 5, None, id="number"),
        pytest.param("PAYMENT.CAPTURE.DENIED", "DECLINED", ["OTHER"], None, id="list"),
        pytest.param("PAYMENT.CAPTURE.DENIED", "DECLINED", {"code": "OTHER"}, None, id="object"),
        pytest.param("PAYMENT.CAPTURE.DECLINED", "DECLINED", LONGEST_REASON + "R", None, id="oversized"),
        pytest.param("PAYMENT.CAPTURE.DECLINED", "DECLINED", "", None, id="empty"),
        pytest.param("PAYMENT.CAPTURE.DENIED", "DECLINED", "OTHER\nlevel=critical", None, id="free-text"),
    ],
)  # fmt: skip
def test_a_capture_events_reason_is_read_by_shape(
    offline: tuple[GatewayManager, Fetcher],
    chain: certs.Chain,
    event_type: str,
    status: str,
    reason: Any,
    failure_code: str | None,
) -> None:
    manager, _ = offline
    event = capture_event(event_type, status=status, status_details={"reason": reason})
    parsed = manager.parse_webhook(GATEWAY, *deliver(chain, event))
    assert parsed.type is webhooks.EVENT_TYPES[event_type]  # the event is still reported, by its name
    assert parsed.payment_id == "42311647XV020574X"
    assert parsed.failure_code == failure_code


def test_a_refund_events_oversized_or_free_text_reason_is_absent(
    offline: tuple[GatewayManager, Fetcher], chain: certs.Chain
) -> None:
    manager, _ = offline
    for reason in ("E" * 65, "ECHECK; see https://example.invalid", ""):
        resource = with_status(status_details={"reason": reason})
        parsed = manager.parse_webhook(GATEWAY, *deliver(chain, refund_event("PAYMENT.CAPTURE.REFUNDED", resource)))
        assert parsed.type is EventType.REFUND_PENDING  # the refund's status still decides
        assert parsed.failure_code is None, reason


def test_status_reason_takes_only_paypals_documented_shape() -> None:
    def capture(reason: Any) -> dict[str, Any]:
        return {"id": "42311647XV020574X", "status": "DECLINED", "status_details": {"reason": reason}}

    assert webhooks.status_reason(capture("BUYER_COMPLAINT")) == "BUYER_COMPLAINT"
    assert webhooks.status_reason(capture(LONGEST_REASON)) == LONGEST_REASON
    for misshapen in (None, 5, 1.5, True, ["OTHER"], {"reason": "OTHER"}, "", LONGEST_REASON + "R", "other", "OTHER\n"):
        assert webhooks.status_reason(capture(misshapen)) is None, misshapen
    assert webhooks.status_reason({"status_details": ["OTHER"]}) is None
    assert webhooks.status_reason({}) is None
