"""Representative PayPal flows, recorded as cassettes and replayed with the network blocked.

By default every test here replays its cassette from ``cassettes/standin/`` with no stand-in and
no server running: every connection is refused, loopback included (``block_network`` with
:data:`~tests.paypal_gateway.conftest.NO_HOST`), so a test passes only if the cassette answers
every request the plugin makes. Each request the plugin sends is still checked against PayPal's
spec (headers and closed body), whoever answers it.

Re-record (see ``docs/paypal.md``, "Recorded flows"), then read the cassettes' diff:

* against the local stand-in (started by the tests on a free loopback port)::

      uv run pytest tests/paypal_gateway/test_cassettes.py --record-mode=rewrite

* against PayPal's sandbox, with a sandbox app's keys (never live keys), approving each order in
  a browser as a sandbox buyer when the test prints its link (hence ``-s``)::

      PAYPAL_CASSETTES=sandbox PAYPAL_CLIENT_ID=... PAYPAL_CLIENT_SECRET=... \\
          uv run pytest tests/paypal_gateway/test_cassettes.py --record-mode=rewrite -s

  Those land in ``cassettes/sandbox/`` and replay with ``PAYPAL_CASSETTES=sandbox``. Every
  idempotency key sent while recording there carries a per-run suffix (:class:`Keys`): PayPal
  keeps a ``PayPal-Request-Id`` for up to 45 days and would answer a second run with the first's.

Secrets are scrubbed before anything is written by the shared
:func:`gateway_core.testing.recording.vcr_config` (credentials, tokens, ``User-Agent``); the
stand-in's control calls (the payer's approval) are not PayPal's API and are never recorded.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import pytest

from gateway_core.config import DeploymentConfig, GatewaySettings, Secret
from gateway_core.errors import AmountOutOfRange, AuthenticationRequired, NotFound, WebhookVerificationFailed
from gateway_core.manager import GatewayManager
from gateway_core.models import (
    AuthorizeRequest,
    CaptureRequest,
    CheckoutRequest,
    CheckoutSession,
    CheckoutStatus,
    EventType,
    LineItem,
    PaymentState,
    RefundRequest,
    VoidRequest,
    WebhookRequest,
)
from gateway_core.money import Money
from gateway_core.testing.recording import vcr_config as recording_config
from tests.paypal_gateway.conftest import CLIENT_ID, CLIENT_SECRET, GATEWAY, NO_HOST, WEBHOOK_ID, check_sent, observe
from tests.paypal_gateway.standin import api_signature

pytestmark = [pytest.mark.vcr, pytest.mark.block_network(allowed_hosts=NO_HOST)]

#: Which recordings: ``standin`` (the default, what CI replays) or ``sandbox``.
TARGET = os.environ.get("PAYPAL_CASSETTES", "standin")
CASSETTES = Path(__file__).parent / "cassettes" / TARGET
#: Where a replayed stand-in "is": nothing listens there, and nothing may connect anyway.
REPLAY_STANDIN = "http://127.0.0.1:9"
OK_URL, CANCEL_URL = "https://shop.example/paid", "https://shop.example/cancel"


@pytest.fixture
def vcr_cassette_dir() -> str:
    return str(CASSETTES)


@pytest.fixture
def vcr_config() -> dict[str, Any]:
    config = recording_config(
        secrets=[CLIENT_ID, CLIENT_SECRET, os.environ.get("PAYPAL_CLIENT_ID"), os.environ.get("PAYPAL_CLIENT_SECRET")]
    )
    scrub = config["before_record_request"]

    def before_record_request(request: Any) -> Any:
        if urlsplit(request.uri).path.startswith("/_standin/"):
            return None  # the payer approving at the stand-in: not part of PayPal's API
        return scrub(request)

    config["before_record_request"] = before_record_request
    # The stand-in listens on a new free port every run: a replay must not depend on it.
    config["match_on"] = [m for m in config["match_on"] if m != "port"]
    return config


@attrs.frozen
class Keys:
    """The idempotency keys the recorded flows send, from the names the tests give them.

    PayPal keeps a ``PayPal-Request-Id`` for 6 hours (Orders) or 45 days (Payments) and answers a
    repeat with the stored first answer, so a second recording run against the sandbox with the
    same keys would record the first run's answers (about the first run's orders) again. When
    recording against the sandbox every key therefore gets this run's suffix. Replaying and the
    stand-in (reset for every test) need none, and replay does not match headers, so a cassette
    recorded with suffixed keys replays with the plain ones.
    """

    suffix: str = ""

    @classmethod
    def for_run(cls, target: str, *, recording: bool) -> Keys:
        return cls(uuid.uuid4().hex[:12]) if target == "sandbox" and recording else cls()

    def __call__(self, name: str) -> str:
        return f"{name}-run-{self.suffix}" if self.suffix else name


@pytest.fixture(scope="session")
def run_keys(record_mode: str) -> Keys:
    """One suffix for the whole run (see :class:`Keys`)."""
    return Keys.for_run(TARGET, recording=record_mode != "none")


@attrs.frozen
class Backend:
    """The gateway under test, how the payer approves an order and which keys to send, for the target."""

    manager: GatewayManager
    approve: Callable[[CheckoutSession], None]
    target: str
    #: ``backend.key("cassette-refund-1")``: the idempotency key to send for that name.
    key: Keys = Keys()


def _ask_the_payer(session: CheckoutSession) -> None:
    print(f"\nApprove this order as a sandbox buyer, then press Enter:\n  {session.url}")
    input()


def _no_payer(_session: CheckoutSession) -> None:
    """Replaying: the approval happened when the cassette was recorded."""


@pytest.fixture
def backend(request: pytest.FixtureRequest, record_mode: str, run_keys: Keys) -> Iterator[Backend]:
    recording = record_mode != "none"
    settings: dict[str, Any] = {"webhook_id": WEBHOOK_ID, "timeout": 30, "max_retries": 0}
    approve: Callable[[CheckoutSession], None] = _no_payer
    if TARGET == "standin":
        settings |= {"client_id": Secret(CLIENT_ID), "client_secret": Secret(CLIENT_SECRET), "environment": "sandbox"}
        if recording:
            standin = request.getfixturevalue("standin")  # reset, and its request log checked afterwards
            settings["base_url"] = standin.base_url
            approve = lambda session: standin.approve(session.id)  # noqa: E731
        else:
            settings["base_url"] = REPLAY_STANDIN
    elif TARGET == "sandbox":
        client_id, client_secret = os.environ.get("PAYPAL_CLIENT_ID"), os.environ.get("PAYPAL_CLIENT_SECRET")
        if recording and not (client_id and client_secret):
            pytest.fail("recording against the sandbox needs PAYPAL_CLIENT_ID and PAYPAL_CLIENT_SECRET (sandbox keys)")
        settings |= {
            "client_id": Secret(client_id or "replayed-client-id"),
            "client_secret": Secret(client_secret or "replayed-client-secret"),
            "environment": "sandbox",
        }
        if recording:
            approve = _ask_the_payer
    else:
        pytest.fail(f"PAYPAL_CASSETTES must be 'standin' or 'sandbox', not {TARGET!r}")
    manager = GatewayManager(DeploymentConfig([GatewaySettings(GATEWAY, "paypal", settings)]))
    cassette = request.getfixturevalue("vcr")
    sent = observe(manager)
    yield Backend(manager, approve, TARGET, run_keys)
    assert sent, "the test sent nothing"
    check_sent(sent)
    if not recording:
        assert cassette.all_played, "the flow skipped requests its cassette recorded"


def checkout(backend: Backend, amount: Money, key: str, *, capture: bool = True, **kwargs: Any) -> CheckoutSession:
    request = CheckoutRequest.single("Ticket", amount, OK_URL, CANCEL_URL, capture=capture, **kwargs)
    return backend.manager.create_checkout(GATEWAY, request, idempotency_key=backend.key(key))


def paid(backend: Backend, amount: Money, key: str) -> tuple[CheckoutSession, str]:
    session = checkout(backend, amount, f"{key}-checkout")
    backend.approve(session)
    return session, backend.manager.capture(
        GATEWAY, CaptureRequest(session.id), idempotency_key=backend.key(f"{key}-capture")
    ).id


def authorized(backend: Backend, amount: Money, key: str) -> tuple[CheckoutSession, str]:
    session = checkout(backend, amount, f"{key}-checkout", capture=False)
    backend.approve(session)
    auth = backend.manager.authorize(
        GATEWAY, AuthorizeRequest(amount, session.id), idempotency_key=backend.key(f"{key}-authorize")
    )
    assert (auth.state, auth.amount) == (PaymentState.AUTHORIZED, amount)
    return session, auth.id


def test_checkout_is_created_and_completed(backend: Backend) -> None:
    m = backend.manager
    request = CheckoutRequest(
        line_items=(LineItem("Ticket", Money.of("12.50", "EUR"), 2), LineItem("Fee", Money.of("1.00", "EUR"))),
        success_url=OK_URL,
        cancel_url=CANCEL_URL,
        reference="cassette-order-1",
        locale="de-DE",
    )
    session = m.create_checkout(GATEWAY, request, idempotency_key=backend.key("cassette-checkout-1"))
    assert session.status is CheckoutStatus.OPEN
    assert session.amount == Money.of("26.00", "EUR")
    assert session.url.startswith("https://www.sandbox.paypal.com/checkoutnow?token=")
    assert session.payment_id == session.id
    created = datetime.fromisoformat(session.raw["create_time"].replace("Z", "+00:00"))
    assert session.expires_at == created + timedelta(hours=3)
    pending = m.payment_status(GATEWAY, session.id)
    assert (pending.state, pending.reference) == (PaymentState.PENDING, "cassette-order-1")
    backend.approve(session)
    capture = m.capture(GATEWAY, CaptureRequest(session.id), idempotency_key=backend.key("cassette-capture-1"))
    assert (capture.state, capture.amount, capture.payment_id) == (
        PaymentState.SUCCEEDED,
        Money.of("26.00", "EUR"),
        session.id,
    )
    status = m.payment_status(GATEWAY, session.id)
    assert status.is_paid
    assert (status.payment_id, status.checkout_id, status.reference) == (capture.id, session.id, "cassette-order-1")
    assert status.amount_captured == Money.of("26.00", "EUR")
    by_capture = m.payment_status(GATEWAY, capture.id)
    assert (by_capture.state, by_capture.checkout_id) == (PaymentState.SUCCEEDED, session.id)


def test_a_checkout_without_a_reference_reports_none(backend: Backend) -> None:
    session = checkout(backend, Money.of("5.00", "EUR"), "cassette-unreferenced")
    assert session.reference is None
    assert backend.manager.payment_status(GATEWAY, session.id).reference is None


def test_capture_before_approval_needs_the_payer(backend: Backend) -> None:
    session = checkout(backend, Money.of("5.00", "EUR"), "cassette-unapproved")
    with pytest.raises(AuthenticationRequired) as info:
        backend.manager.capture(
            GATEWAY, CaptureRequest(session.id), idempotency_key=backend.key("cassette-unapproved-capture")
        )
    assert info.value.provider_code == "ORDER_NOT_APPROVED"
    assert info.value.request_id


def test_authorize_and_capture_in_full(backend: Backend) -> None:
    amount = Money.of("30.00", "USD")
    session, auth_id = authorized(backend, amount, "cassette-full")
    capture = backend.manager.capture(
        GATEWAY, CaptureRequest(auth_id), idempotency_key=backend.key("cassette-full-capture")
    )
    assert (capture.state, capture.amount, capture.payment_id) == (PaymentState.SUCCEEDED, amount, auth_id)
    status = backend.manager.payment_status(GATEWAY, auth_id)
    assert (status.state, status.amount_captured, status.checkout_id) == (PaymentState.SUCCEEDED, amount, session.id)


def test_authorize_capture_in_part_then_void_the_rest(backend: Backend) -> None:
    m = backend.manager
    session, auth_id = authorized(backend, Money.of("30.00", "USD"), "cassette-part")
    with pytest.raises(AmountOutOfRange):
        m.capture(
            GATEWAY,
            CaptureRequest(auth_id, Money.of("30.01", "USD")),
            idempotency_key=backend.key("cassette-part-over"),
        )
    part = m.capture(
        GATEWAY, CaptureRequest(auth_id, Money.of("10.00", "USD")), idempotency_key=backend.key("cassette-part-10")
    )
    assert (part.state, part.amount) == (PaymentState.SUCCEEDED, Money.of("10.00", "USD"))
    void = m.void(GATEWAY, VoidRequest(auth_id), idempotency_key=backend.key("cassette-part-void"))
    assert void.state is PaymentState.SUCCEEDED  # the rest is voided; the 10.00 captured stays
    assert m.payment_status(GATEWAY, session.id).amount_captured == Money.of("10.00", "USD")
    status = m.payment_status(GATEWAY, auth_id)
    assert (status.state, status.amount_captured) == (PaymentState.SUCCEEDED, Money.of("10.00", "USD"))


def test_void_an_authorization(backend: Backend) -> None:
    _, auth_id = authorized(backend, Money.of("8.00", "GBP"), "cassette-void")
    void = backend.manager.void(GATEWAY, VoidRequest(auth_id), idempotency_key=backend.key("cassette-void-void"))
    assert (void.state, void.payment_id) == (PaymentState.CANCELED, auth_id)
    status = backend.manager.payment_status(GATEWAY, auth_id)
    assert (status.state, status.amount_captured) == (PaymentState.CANCELED, Money.zero("GBP"))


def test_refunds_partial_repeated_and_full(backend: Backend) -> None:
    m = backend.manager
    _, capture_id = paid(backend, Money.of("50.00", "EUR"), "cassette-refunds")
    first = m.refund(
        GATEWAY,
        RefundRequest(capture_id, Money.of("20.00", "EUR"), "damaged"),
        idempotency_key=backend.key("cassette-refund-1"),
    )
    assert (first.amount, first.payment_id, first.reason) == (Money.of("20.00", "EUR"), capture_id, "damaged")
    second = m.refund(
        GATEWAY, RefundRequest(capture_id, Money.of("10.00", "EUR")), idempotency_key=backend.key("cassette-refund-2")
    )
    assert second.id != first.id
    status = m.payment_status(GATEWAY, capture_id)
    assert (status.state, status.amount_refunded) == (PaymentState.PARTIALLY_REFUNDED, Money.of("30.00", "EUR"))
    with pytest.raises(AmountOutOfRange):
        m.refund(
            GATEWAY,
            RefundRequest(capture_id, Money.of("20.01", "EUR")),
            idempotency_key=backend.key("cassette-refund-over"),
        )
    rest = m.refund(GATEWAY, RefundRequest(capture_id), idempotency_key=backend.key("cassette-refund-rest"))
    assert rest.amount == Money.of("20.00", "EUR")
    status = m.payment_status(GATEWAY, capture_id)
    assert (status.state, status.amount_refunded) == (PaymentState.REFUNDED, Money.of("50.00", "EUR"))


def test_refund_by_the_checkouts_payment_id(backend: Backend) -> None:
    session, capture_id = paid(backend, Money.of("12.00", "EUR"), "cassette-by-order")
    refund = backend.manager.refund(
        GATEWAY,
        RefundRequest(session.payment_id or session.id, Money.of("2.00", "EUR")),
        idempotency_key=backend.key("cassette-by-order-refund"),
    )
    assert (refund.payment_id, refund.amount) == (capture_id, Money.of("2.00", "EUR"))


def test_unknown_ids_are_not_found(backend: Backend) -> None:
    m = backend.manager
    with pytest.raises(NotFound):
        m.payment_status(GATEWAY, "NOSUCHID000000000")
    with pytest.raises(NotFound):
        m.refund(GATEWAY, RefundRequest("NOSUCHID000000000"), idempotency_key=backend.key("cassette-missing-refund"))
    with pytest.raises(NotFound):
        m.void(GATEWAY, VoidRequest("NOSUCHID000000000"), idempotency_key=backend.key("cassette-missing-void"))


#: A delivery with fixed transmission id and time, so the verify request is the same every run.
DELIVERED_AT = datetime(2026, 11, 25, 9, 0, 0, tzinfo=UTC)
EVENT = {
    "id": "WH-58D329510W468432D-8HN650336L201105X",
    "event_version": "1.0",
    "create_time": "2026-11-25T08:59:58.000Z",
    "resource_type": "capture",
    "event_type": "PAYMENT.CAPTURE.COMPLETED",
    "summary": "Payment completed for EUR 10.5 EUR",
    "resource": {
        "id": "42311647XV020574X",
        "status": "COMPLETED",
        "amount": {"currency_code": "EUR", "value": "10.50"},
    },
}


def webhook_request(body: bytes) -> WebhookRequest:
    transmission_id, transmission_time = "69cd13f0-d67a-11e5-baa3-778b53f4ae55", "2026-11-25T09:00:00Z"
    return WebhookRequest(
        {
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-TIME": transmission_time,
            "PAYPAL-TRANSMISSION-SIG": api_signature(transmission_id, transmission_time, WEBHOOK_ID, body),
            "PAYPAL-CERT-URL": "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77",
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
        },
        body,
    )


def test_webhook_is_verified_by_the_api(backend: Backend) -> None:
    if backend.target != "standin":
        pytest.skip("PayPal's verify API verifies only deliveries PayPal signed: record one by hand")
    gateway = backend.manager.gateway_object(GATEWAY)
    body = json.dumps(EVENT, indent=2).encode()
    request = webhook_request(body)
    gateway.verify_webhook(request, now=DELIVERED_AT + timedelta(seconds=30))  # type: ignore[attr-defined]
    event = gateway.event(json.loads(body))  # type: ignore[attr-defined]
    assert (event.type, event.payment_id, event.amount) == (
        EventType.PAYMENT_SUCCEEDED,
        "42311647XV020574X",
        Money.of("10.50", "EUR"),
    )
    tampered = WebhookRequest(request.headers, body.replace(b'"10.50"', b'"99.50"'))
    with pytest.raises(WebhookVerificationFailed):
        gateway.verify_webhook(tampered, now=DELIVERED_AT + timedelta(seconds=30))  # type: ignore[attr-defined]
