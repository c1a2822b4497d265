"""The conformance suite fails a gateway that declares a feature and does not honour it.

Each test builds a deliberately broken variant of the fake gateway (or a broken plugin in front of
an honest fake provider), runs one conformance test against it, and requires that test to fail
with the suite's own message for that fault. Together with ``test_fake_conformance`` (the honest
fake passes the same tests) this shows the suite's tests can fail, and fail for the right reason.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import attrs
import pytest
import structlog

from gateway_core import (
    AuthenticationFailed,
    Authorization,
    AuthorizeRequest,
    EventType,
    Feature,
    GatewayError,
    InvalidRequest,
    Money,
    NotFound,
    OperationContext,
    OutcomeUnknown,
    PaymentDeclined,
    PaymentState,
    PaymentStatus,
    Refund,
    RefundRequest,
    StatusRequest,
    WebhookEvent,
    WebhookRequest,
    WebhookVerificationFailed,
    hookimpl,
)
from gateway_core.capabilities import Capabilities
from gateway_core.fake import FakeGateway, default_capabilities
from gateway_core.models import Capture, CaptureRequest, CheckoutRequest, CheckoutSession, LineItem
from gateway_core.money import currency
from gateway_core.testing import conformance
from tests.testing.fake_harness import NARROWED, WEBHOOK_SECRET, FakeClient, VariantPlugin, fake_harness

Failed = pytest.fail.Exception
CAUGHT = (AssertionError, Failed)

pytest_plugins = ["pytester"]


def harness_for(
    gateway_class: type[FakeGateway], capabilities: Capabilities | None = None, **overrides: Any
) -> conformance.ConformanceHarness:
    caps = capabilities or default_capabilities(["EUR", "USD", "JPY", "KWD", "HUF", "BGN"])
    return fake_harness(NARROWED, VariantPlugin(gateway_class, caps), **overrides)


def client_harness(client: type[FakeClient], **overrides: Any) -> conformance.ConformanceHarness:
    return fake_harness(NARROWED, client=client, **overrides)


class RefundsTwice(FakeGateway):
    """Drops the idempotency key on refunds: a retry refunds again."""

    @hookimpl
    def gateway_refund(self, request: RefundRequest, context: OperationContext) -> Refund:
        return super().gateway_refund(request, attrs.evolve(context, idempotency_key=None))


class RefundsBeyondCapture(FakeGateway):
    """Quietly refunds what remains when asked for more, instead of refusing."""

    @hookimpl
    def gateway_refund(self, request: RefundRequest, context: OperationContext) -> Refund:
        status = self.gateway_payment_status(StatusRequest(request.payment_id))
        if request.amount is not None and request.amount > status.amount_captured - status.amount_refunded:
            request = RefundRequest(request.payment_id)
        return super().gateway_refund(request, context)


class RefundsWhatWasAuthorized(FakeGateway):
    """Forgets a partial capture: refunds are checked against the authorized amount."""

    @hookimpl
    def gateway_refund(self, request: RefundRequest, context: OperationContext) -> Refund:
        payment = self._payments.get(request.payment_id)
        if payment is not None:
            payment.captured = payment.amount
        return super().gateway_refund(request, context)


class BelievesEveryWebhook(FakeGateway):
    """Parses webhooks without verifying them."""

    def verify(self, header: str | None, body: bytes) -> None:
        return None


class ShowsTheExpectedSignature(FakeGateway):
    """Verifies webhooks, but says in the rejection which signature would have passed."""

    def verify(self, header: str | None, body: bytes) -> None:
        try:
            super().verify(header, body)
        except WebhookVerificationFailed:
            expected = self.sign(body).partition("v1=")[2]
            raise WebhookVerificationFailed(f"bad signature; expected v1={expected}", gateway=self.name) from None


class RejectsWithItsSecret(FakeGateway):
    """Verifies webhooks, but puts its webhook secret into the rejection."""

    def verify(self, header: str | None, body: bytes) -> None:
        try:
            super().verify(header, body)
        except WebhookVerificationFailed:
            raise WebhookVerificationFailed(f"not signed with {self._secret.reveal()}", gateway=self.name) from None


class ComparesSignaturesAsText(FakeGateway):
    """Verifies webhooks, but compares signatures as ``str``: ``hmac`` raises TypeError on non-ASCII text."""

    def verify(self, header: str | None, body: bytes) -> None:
        given = (header or "").rpartition("v1=")[2]
        if not hmac.compare_digest(given, "0" * 64):
            super().verify(header, body)


class LosesCents(FakeGateway):
    """Reports a checkout's amount truncated to whole units, as a float-happy plugin might."""

    @hookimpl
    def gateway_create_checkout(self, request: CheckoutRequest, context: OperationContext) -> CheckoutSession:
        session = super().gateway_create_checkout(request, context)
        whole = session.amount.amount.quantize(Decimal(1), rounding="ROUND_DOWN")
        return attrs.evolve(session, amount=Money.of(whole, session.amount.currency))


def _scaled(money: Money, factor: Decimal) -> Money:
    return Money.of(money.amount * factor, money.currency)


class HundredfoldZeroDecimal(FakeClient):
    """Treats every currency as having cents: sends JPY times 100 and divides the answer back.

    Its own round trip is exact (it reports the 500 JPY it was asked for); the provider holds 50000 JPY.
    """

    @staticmethod
    def _factor(money: Money) -> Decimal:
        return Decimal(100) if currency(money.currency).exponent == 0 else Decimal(1)

    @hookimpl
    def gateway_create_checkout(self, request: CheckoutRequest, context: OperationContext) -> CheckoutSession:
        factor = self._factor(request.amount)
        items = tuple(LineItem(i.name, _scaled(i.unit_amount, factor), i.quantity) for i in request.line_items)
        session = self.provider.gateway_create_checkout(attrs.evolve(request, line_items=items), context)
        return attrs.evolve(session, amount=_scaled(session.amount, 1 / factor))


class KeylessCheckouts(FakeClient):
    """Never sends the idempotency key on checkouts; remembers results in one dict for the whole process."""

    remembered: ClassVar[dict[str, CheckoutSession]] = {}

    @hookimpl
    def gateway_create_checkout(self, request: CheckoutRequest, context: OperationContext) -> CheckoutSession:
        key = context.idempotency_key or ""
        if key not in self.remembered:
            keyless = attrs.evolve(context, idempotency_key=None)
            self.remembered[key] = self.provider.gateway_create_checkout(request, keyless)
        return self.remembered[key]


class KeylessAuthorizations(FakeClient):
    """Never sends the idempotency key on authorizations; remembers results in a dict of its own."""

    def __init__(self, provider: FakeGateway) -> None:
        super().__init__(provider)
        self.remembered: dict[str, Authorization] = {}

    @hookimpl
    def gateway_authorize(self, request: AuthorizeRequest, context: OperationContext) -> Authorization:
        key = context.idempotency_key or ""
        if key not in self.remembered:
            keyless = attrs.evolve(context, idempotency_key=None)
            self.remembered[key] = self.provider.gateway_authorize(request, keyless)
        return self.remembered[key]


class DropsTheExpiry(FakeClient):
    """Declares the fake's expiry window but never passes the requested expiry on."""

    @hookimpl
    def gateway_create_checkout(self, request: CheckoutRequest, context: OperationContext) -> CheckoutSession:
        return self.provider.gateway_create_checkout(attrs.evolve(request, expires_at=None), context)


class TimesOutRaw(FakeClient):
    """Lets the transport's TimeoutError escape instead of mapping it to OutcomeUnknown."""

    @hookimpl
    def gateway_create_checkout(self, request: CheckoutRequest, context: OperationContext) -> CheckoutSession:
        try:
            return self.provider.gateway_create_checkout(request, context)
        except OutcomeUnknown as exc:
            raise TimeoutError("read timed out") from exc


class DeclinesVaguely(FakeClient):
    """Turns a decline into a plain InvalidRequest: the host cannot tell a decline from its own mistake."""

    @hookimpl
    def gateway_authorize(self, request: AuthorizeRequest, context: OperationContext) -> Authorization:
        try:
            return self.provider.gateway_authorize(request, context)
        except PaymentDeclined as exc:
            raise InvalidRequest("the request was refused", gateway=self.name) from exc


LEAKED_KEY = "sk_test_echoedback0123456789"


class EchoesTheKey(FakeClient):
    """Refuses every request as a provider refuses a wrong key, and puts the key in the message."""

    @hookimpl
    def gateway_create_checkout(self, request: CheckoutRequest, context: OperationContext) -> CheckoutSession:
        raise AuthenticationFailed(f"the API key {LEAKED_KEY} was refused", gateway=self.name)

    @hookimpl
    def gateway_payment_status(self, request: StatusRequest) -> PaymentStatus:
        raise AuthenticationFailed(f"the API key {LEAKED_KEY} was refused", gateway=self.name)


class LogsItsAccessToken(FakeClient):
    """Mints an access token when built (as an OAuth client does) and logs it."""

    def __init__(self, provider: FakeGateway) -> None:
        super().__init__(provider)
        self.access_token = f"opaque-token-{uuid.uuid4().hex}"

    @hookimpl
    def gateway_create_checkout(self, request: CheckoutRequest, context: OperationContext) -> CheckoutSession:
        structlog.get_logger("tests.leaky").info("leaky.token", token=self.access_token)
        return self.provider.gateway_create_checkout(request, context)


class LogsAStrangersKey(FakeClient):
    """Logs a Stripe-shaped key no harness configured."""

    @hookimpl
    def gateway_create_checkout(self, request: CheckoutRequest, context: OperationContext) -> CheckoutSession:
        structlog.get_logger("tests.leaky").info("leaky.key", key="sk_live_0123456789abcdefABCDEF")
        return self.provider.gateway_create_checkout(request, context)


class MisreadsWebhooks(FakeClient):
    """Verifies webhooks properly, then reads them wrong in the one way ``misread`` says."""

    misread: ClassVar[dict[str, Any]] = {}

    @hookimpl
    def gateway_parse_webhook(self, request: WebhookRequest) -> WebhookEvent:
        return attrs.evolve(self.provider.gateway_parse_webhook(request), **self.misread)


def misreading(**fields: Any) -> type[MisreadsWebhooks]:
    return type("Misreads", (MisreadsWebhooks,), {"misread": fields})


class PutsTheSecretInTheCheckoutUrl(FakeClient):
    """Appends its webhook secret to the checkout URL: no error, no log line, only the result shows it."""

    @hookimpl
    def gateway_create_checkout(self, request: CheckoutRequest, context: OperationContext) -> CheckoutSession:
        session = self.provider.gateway_create_checkout(request, context)
        return attrs.evolve(session, url=f"{session.url}?k={WEBHOOK_SECRET}")


class OneRefundOnly(FakeGateway):
    """Takes one refund per payment, as a provider without multiple refunds does (the honest variant)."""

    @hookimpl
    def gateway_refund(self, request: RefundRequest, context: OperationContext) -> Refund:
        status = self.gateway_payment_status(StatusRequest(request.payment_id))
        if status.amount_refunded.is_positive:
            raise InvalidRequest(f"payment {request.payment_id} was refunded already", gateway=self.name)
        return super().gateway_refund(request, context)


#: The fake's capabilities with partial refunds but without multiple refunds.
ONE_REFUND = default_capabilities(
    ["EUR", "USD", "JPY", "KWD", "HUF", "BGN"], features=frozenset(Feature) - {Feature.MULTIPLE_REFUNDS}
)


class CapturesEverything(FakeGateway):
    """Declares partial capture but always captures the whole authorization."""

    @hookimpl
    def gateway_capture(self, request: CaptureRequest, context: OperationContext) -> Capture:
        return super().gateway_capture(CaptureRequest(request.payment_id), context)


class HoldsWhatHasAReturnUrl(FakeGateway):
    """Sends every payer who has a return_url to authenticate, and reports the hold as an authorization."""

    @hookimpl
    def gateway_authorize(self, request: AuthorizeRequest, context: OperationContext) -> Authorization:
        auth = super().gateway_authorize(request, context)
        if request.return_url is None:
            return auth
        self._payments[auth.id].state = PaymentState.REQUIRES_ACTION
        return attrs.evolve(auth, state=PaymentState.REQUIRES_ACTION)


class LeaksTheSecret(FakeGateway):
    """Puts its webhook secret into an error message."""

    @hookimpl
    def gateway_payment_status(self, request: StatusRequest) -> PaymentStatus:
        raise NotFound(f"no payment {request.payment_id} (signed with {self._secret.reveal()})", gateway=self.name)


class RaisesForeignErrors(FakeGateway):
    """Lets a KeyError escape instead of mapping it to NotFound."""

    @hookimpl
    def gateway_payment_status(self, request: StatusRequest) -> PaymentStatus:
        known: dict[str, PaymentStatus] = {}
        return known[request.payment_id]


def test_a_refund_retried_with_the_same_key_must_not_refund_twice() -> None:
    h = harness_for(RefundsTwice)
    with pytest.raises(CAUGHT, match="the same idempotency key returned another refund"):
        conformance.IdempotencyConformance().test_same_key_never_refunds_twice(h)
    with pytest.raises(CAUGHT, match=r"one key made [2-4] refunds|a racing retry with the same key failed"):
        conformance.IdempotencyConformance().test_concurrent_retries_with_one_key_refund_once(harness_for(RefundsTwice))


def test_a_checkout_without_its_key_fails_the_second_worker_retry() -> None:
    h = client_harness(KeylessCheckouts)
    # Retried in the same process, the plugin's own dictionary hides the missing key ...
    conformance.IdempotencyConformance().test_same_key_returns_the_same_checkout(h)
    # ... a second worker's retry shows it: nothing reached the provider.
    with pytest.raises(CAUGHT, match="checkout retry never reached the provider"):
        conformance.IdempotencyConformance().test_a_second_worker_retrying_a_checkout_gets_the_same_one(h)


def test_an_authorization_without_its_key_fails_the_second_worker_retry() -> None:
    h = client_harness(KeylessAuthorizations)
    conformance.IdempotencyConformance().test_same_key_returns_the_same_authorization(h)
    with pytest.raises(CAUGHT, match="retrying the authorization with the same idempotency key got another one"):
        conformance.IdempotencyConformance().test_a_second_worker_retrying_an_authorization_gets_the_same_one(h)


def test_a_refund_beyond_the_capture_must_be_refused() -> None:
    h = harness_for(RefundsBeyondCapture)
    with pytest.raises(CAUGHT, match=r"DID NOT RAISE .*AmountOutOfRange"):
        conformance.RefundConformance().test_refund_beyond_what_was_captured_is_refused(h)
    with pytest.raises(CAUGHT, match=r"DID NOT RAISE .*AmountOutOfRange"):
        conformance.RefundConformance().test_multiple_refunds_never_exceed_the_capture(
            harness_for(RefundsBeyondCapture)
        )


def test_a_refund_beyond_a_partial_capture_must_be_refused() -> None:
    h = harness_for(RefundsWhatWasAuthorized)
    # A full capture hides the bug: what was authorized is what was captured.
    conformance.RefundConformance().test_refund_beyond_what_was_captured_is_refused(h)
    with pytest.raises(CAUGHT, match=r"DID NOT RAISE .*AmountOutOfRange"):
        conformance.RefundConformance().test_refund_beyond_a_partial_capture_is_refused(h)


@pytest.mark.parametrize(
    "test",
    [
        conformance.WebhookConformance.test_tampered_body_is_rejected,
        conformance.WebhookConformance.test_wrong_secret_is_rejected,
        conformance.WebhookConformance.test_stale_timestamp_is_rejected,
        conformance.WebhookConformance.test_missing_signature_is_rejected,
    ],
)
def test_an_unverified_webhook_must_be_rejected(test: Callable[..., None]) -> None:
    h = harness_for(BelievesEveryWebhook)
    with pytest.raises(CAUGHT, match=r"DID NOT RAISE .*WebhookVerificationFailed"):
        test(conformance.WebhookConformance(), h)


def test_a_garbled_header_must_be_refused_not_escape_unmapped() -> None:
    h = harness_for(ComparesSignaturesAsText)
    with pytest.raises(CAUGHT, match="the plugin let TypeError escape unmapped"):
        conformance.WebhookConformance().test_garbled_headers_are_rejected_as_unverified(h)


WEBHOOK_REJECTIONS = [
    conformance.WebhookConformance.test_tampered_body_is_rejected,
    conformance.WebhookConformance.test_wrong_secret_is_rejected,
    conformance.WebhookConformance.test_stale_timestamp_is_rejected,
    conformance.WebhookConformance.test_missing_signature_is_rejected,
]


@pytest.mark.parametrize("test", WEBHOOK_REJECTIONS, ids=lambda t: t.__name__)
def test_a_rejection_must_not_show_the_signature_that_would_pass(test: Callable[..., None]) -> None:
    h = harness_for(ShowsTheExpectedSignature)
    with pytest.raises(CAUGHT, match=r"a digest the delivery did not contain \(an expected signature\?\)"):
        test(conformance.WebhookConformance(), h)


@pytest.mark.parametrize("test", WEBHOOK_REJECTIONS, ids=lambda t: t.__name__)
def test_a_rejection_must_not_show_the_secret(test: Callable[..., None]) -> None:
    h = harness_for(RejectsWithItsSecret)
    with pytest.raises(CAUGHT, match="secret #0 in"):
        test(conformance.WebhookConformance(), h)


@pytest.mark.parametrize(
    ("misread", "message"),
    [
        ({"type": EventType.UNKNOWN}, r"was read as unknown, expected payment\.succeeded"),
        ({"payment_id": None}, "was read with payment_id None"),
        ({"amount": Money.of("999", "EUR")}, r"was read with amount 999\.00 EUR, the payment is 2\.02 EUR"),
        ({"occurred_at": None}, "was read with occurred_at None, not an aware datetime"),
        ({"occurred_at": datetime(1970, 1, 21, tzinfo=UTC)}, "outside the test's run"),  # ms read as seconds
    ],
    ids=["type", "payment_id", "amount", "occurred_at", "occurred_at-ms"],
)
def test_a_verified_webhook_must_be_read_right(misread: dict[str, Any], message: str) -> None:
    h = client_harness(misreading(**misread))
    suite = conformance.WebhookConformance()
    suite.test_tampered_body_is_rejected(h)  # verification is fine: only parsing catches it
    with pytest.raises(CAUGHT, match=message):
        suite.test_genuine_webhook_is_parsed(h)


def test_every_field_misread_at_once_is_each_named() -> None:
    """The Toy Pay breakage: every event UNKNOWN, no payment id, a wrong amount -- all three reported."""
    h = client_harness(misreading(type=EventType.UNKNOWN, payment_id=None, amount=Money.of("999", "EUR")))
    with pytest.raises(CAUGHT) as info:
        conformance.WebhookConformance().test_genuine_webhook_is_parsed(h)
    for fragment in ("read as unknown", "payment_id None", "amount 999.00 EUR"):
        assert fragment in str(info.value)


def test_a_harness_without_payment_id_is_told_what_to_add() -> None:
    honest = fake_harness(NARROWED)
    assert honest.signed_webhook is not None
    sign = honest.signed_webhook

    def old_style(*, secret: str | None = None, timestamp: int | None = None) -> conformance.SignedWebhook:
        return sign(secret=secret, timestamp=timestamp)

    h = fake_harness(NARROWED, signed_webhook=old_style)
    suite = conformance.WebhookConformance()
    suite.test_wrong_secret_is_rejected(h)  # the verification tests still run on an old harness
    suite.test_stale_timestamp_is_rejected(h)
    with pytest.raises(Failed, match="signed_webhook takes no payment_id="):
        suite.test_genuine_webhook_is_parsed(h)


def test_a_lenient_timestamp_tolerance_fails_only_the_stale_test() -> None:
    lenient = {**NARROWED, "settings": {**NARROWED["settings"], "tolerance": 10 * conformance.STALE_SECONDS}}
    h = fake_harness(lenient)
    suite = conformance.WebhookConformance()
    suite.test_tampered_body_is_rejected(h)
    suite.test_wrong_secret_is_rejected(h)
    with pytest.raises(CAUGHT, match=r"DID NOT RAISE .*WebhookVerificationFailed"):
        suite.test_stale_timestamp_is_rejected(h)


def test_amounts_must_survive_the_wire() -> None:
    h = harness_for(LosesCents)
    with pytest.raises(CAUGHT, match=r"sent 2\.02 EUR, the plugin reported 2\.00 EUR"):
        conformance.MoneyConformance().test_amounts_round_trip_through_the_wire_format(h)


def test_a_consistent_exponent_bug_is_caught_on_the_provider_side() -> None:
    h = client_harness(HundredfoldZeroDecimal)
    with pytest.raises(
        CAUGHT, match="sent 50 JPY: the provider recorded 5000 JPY, but the metadata's wire format says 50 JPY"
    ):
        conformance.MoneyConformance().test_amounts_round_trip_through_the_wire_format(h)


def test_the_round_trip_needs_the_providers_view() -> None:
    h = fake_harness(NARROWED, recorded_amount=None)
    with pytest.raises(Failed, match="harness gives no recorded_amount"):
        conformance.MoneyConformance().test_amounts_round_trip_through_the_wire_format(h)


def test_a_declared_expiry_window_must_be_honoured() -> None:
    h = client_harness(DropsTheExpiry)
    with pytest.raises(CAUGHT, match="asked for a checkout expiring at"):
        conformance.CheckoutConformance().test_requested_expiry_is_honoured_or_refused_before_sending(h)


def test_a_declared_partial_capture_must_be_honoured() -> None:
    h = harness_for(CapturesEverything)
    with pytest.raises(CAUGHT, match="the plugin captured"):
        conformance.AuthorizeCaptureConformance().test_partial_capture_takes_only_the_part(h)


def test_a_return_url_must_not_change_an_authorization_that_needs_no_authentication() -> None:
    h = harness_for(HoldsWhatHasAReturnUrl)
    with pytest.raises(CAUGHT, match="with a return_url the authorization is"):
        conformance.AuthorizeCaptureConformance().test_a_return_url_changes_nothing_when_no_authentication_is_needed(h)
    # the same gateway passes the suite's ordinary authorization: only the return_url check catches it
    conformance.AuthorizeCaptureConformance().test_authorize_then_capture_in_full(h)


def test_a_secret_in_an_error_message_fails(caplog: pytest.LogCaptureFixture) -> None:
    h = harness_for(LeaksTheSecret)
    with pytest.raises(CAUGHT, match="secret #0 in"):
        conformance.SecretsConformance().test_no_secret_in_logs_errors_or_results(h, caplog)


def test_a_secret_in_a_result_fails(caplog: pytest.LogCaptureFixture) -> None:
    h = client_harness(PutsTheSecretInTheCheckoutUrl)
    with pytest.raises(CAUGHT, match=r"secret #0 in: CheckoutSession\("):
        conformance.SecretsConformance().test_no_secret_in_logs_errors_or_results(h, caplog)


def test_a_second_refund_must_be_refused_without_multiple_refunds() -> None:
    suite = conformance.RefundConformance()
    suite.test_a_second_refund_is_refused_without_multiple_refunds(harness_for(OneRefundOnly, ONE_REFUND))
    h = harness_for(FakeGateway, ONE_REFUND)  # the fake takes many refunds whatever it declares
    with pytest.raises(CAUGHT, match=r"a second refund of 0\.01 EUR after a partial refund of 1\.01 EUR was accepted"):
        suite.test_a_second_refund_is_refused_without_multiple_refunds(h)


def test_a_second_refund_that_refunds_something_is_caught_by_the_status() -> None:
    class RefusesButRefunds(OneRefundOnly):
        """Refunds what remains, then says it refused: the host is told nothing more was refunded."""

        @hookimpl
        def gateway_refund(self, request: RefundRequest, context: OperationContext) -> Refund:
            status = self.gateway_payment_status(StatusRequest(request.payment_id))
            if status.amount_refunded.is_positive:
                FakeGateway.gateway_refund(self, RefundRequest(request.payment_id), context)
            return super().gateway_refund(request, context)

    h = harness_for(RefusesButRefunds, ONE_REFUND)
    with pytest.raises(CAUGHT, match=r"a partial refund of 1\.01 EUR and two refused ones refunded 2\.02 EUR"):
        conformance.RefundConformance().test_a_second_refund_is_refused_without_multiple_refunds(h)


def test_a_secret_minted_at_runtime_is_looked_for_after_the_scenario(caplog: pytest.LogCaptureFixture) -> None:
    holder: list[conformance.ConformanceHarness] = []

    def minted() -> list[str]:
        client = holder[0].manager.gateway_object("fake")
        assert isinstance(client, LogsItsAccessToken)
        return [client.access_token]

    h = client_harness(LogsItsAccessToken, secrets=[WEBHOOK_SECRET, minted])
    holder.append(h)
    with pytest.raises(CAUGHT, match="secret #1 in"):
        conformance.SecretsConformance().test_no_secret_in_logs_errors_or_results(h, caplog)


def test_a_secret_shaped_value_fails_even_when_no_harness_named_it(caplog: pytest.LogCaptureFixture) -> None:
    h = client_harness(LogsAStrangersKey)
    with pytest.raises(CAUGHT, match="a value shaped like"):
        conformance.SecretsConformance().test_no_secret_in_logs_errors_or_results(h, caplog)


def test_an_unmapped_exception_fails() -> None:
    h = harness_for(RaisesForeignErrors)
    with pytest.raises(CAUGHT, match="the plugin let KeyError escape unmapped"):
        conformance.ErrorConformance().test_failures_are_mapped_to_core_errors(h)
    with pytest.raises(GatewayError) as info:
        h.manager.payment_status("fake", "missing")
    assert conformance.unmapped(info.value)


def test_an_unmapped_timeout_fails_the_fault_test() -> None:
    h = client_harness(TimesOutRaw)
    suite = conformance.ErrorConformance()
    suite.test_transport_fault_on_a_charge_is_retryable_and_the_retry_charges_once(h, "429")  # mapped: passes
    with pytest.raises(CAUGHT, match=r"checkout under timeout .*: the plugin let TimeoutError escape unmapped"):
        suite.test_transport_fault_on_a_charge_is_retryable_and_the_retry_charges_once(h, "timeout")


def test_a_decline_must_be_payment_declined() -> None:
    h = client_harness(DeclinesVaguely)
    with pytest.raises(CAUGHT, match="a declined authorization: raised InvalidRequest, expected PaymentDeclined"):
        conformance.ErrorConformance().test_a_declined_payment_is_payment_declined(h)


def test_wrong_credentials_must_not_show_the_key() -> None:
    h = fake_harness(NARROWED, wrong_credentials=lambda: client_harness(EchoesTheKey).manager)
    with pytest.raises(CAUGHT, match="a payment with wrong credentials: a value shaped like"):
        conformance.ErrorConformance().test_wrong_credentials_are_authentication_failed(h)


def test_optional_seams_skip_with_the_reason() -> None:
    h = fake_harness(NARROWED, transport_fault=None, decline=None)
    suite = conformance.ErrorConformance()
    with pytest.raises(pytest.skip.Exception, match="harness gives no transport_fault"):
        suite.test_transport_fault_on_a_charge_is_retryable_and_the_retry_charges_once(h, "5xx")
    with pytest.raises(pytest.skip.Exception, match="harness gives no decline"):
        suite.test_a_declined_payment_is_payment_declined(h)
    with pytest.raises(pytest.skip.Exception, match="harness gives no wrong_credentials"):
        suite.test_wrong_credentials_are_authentication_failed(h)


def test_a_declared_feature_without_its_harness_helper_fails_rather_than_skips() -> None:
    h = fake_harness(NARROWED, signed_webhook=None, pay=None, payment_method=None)
    with pytest.raises(Failed, match="harness gives no signed_webhook"):
        conformance.WebhookConformance().test_genuine_webhook_is_parsed(h)
    with pytest.raises(Failed, match="needs a captured payment"):
        conformance.RefundConformance().test_full_refund_returns_what_was_captured(h)
    with pytest.raises(Failed, match="harness gives no second_worker"):
        conformance.IdempotencyConformance().test_a_second_worker_retrying_a_checkout_gets_the_same_one(
            fake_harness(NARROWED, second_worker=None)
        )


def test_an_undeclared_feature_skips_with_the_reason() -> None:
    caps = default_capabilities(["EUR"], features=[Feature.HOSTED_CHECKOUT, Feature.PAYMENT_STATUS])
    h = fake_harness({**NARROWED, "currencies": ["EUR"]}, VariantPlugin(FakeGateway, caps))
    with pytest.raises(pytest.skip.Exception, match="does not declare refund"):
        conformance.RefundConformance().test_full_refund_returns_what_was_captured(h)
    # ... while the refusal of what it does not declare is still checked, and passes.
    conformance.CapabilityConformance().test_undeclared_operations_are_refused_before_sending(h)


def test_the_suite_runs_from_a_plugin_test_module_with_a_conftest_harness(pytester: pytest.Pytester) -> None:
    """What a third party writes: a conftest fixture and a one-line subclass."""
    pytester.makeconftest(
        """
import pytest
from tests.testing.fake_harness import fake_harness

@pytest.fixture
def conformance_harness():
    return fake_harness()
"""
    )
    pytester.makepyfile(
        test_plugin_conformance="""
from gateway_core.testing.conformance import GatewayConformance

class TestMyGatewayConformance(GatewayConformance):
    pass
"""
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rs")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0
    assert outcomes.get("errors", 0) == 0
    assert outcomes["passed"] >= 40
    result.stdout.fnmatch_lines(["*SKIPPED*the gateway declares every feature*"])
