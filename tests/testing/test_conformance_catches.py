"""The conformance suite fails a gateway that declares a feature and does not honour it.

Each test builds a deliberately broken variant of the fake gateway, runs one conformance test
against it, and requires that test to fail. Together with ``test_fake_conformance`` (the honest
fake passes the same tests) this shows the suite's tests can fail and fail for the right reason.
"""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest

from gateway_core import (
    Feature,
    GatewayError,
    Money,
    NotFound,
    OperationContext,
    PaymentStatus,
    Refund,
    RefundRequest,
    StatusRequest,
    hookimpl,
)
from gateway_core.capabilities import Capabilities
from gateway_core.fake import FakeGateway, default_capabilities
from gateway_core.models import Capture, CaptureRequest, CheckoutRequest, CheckoutSession
from gateway_core.testing import conformance
from tests.testing.fake_harness import NARROWED, VariantPlugin, fake_harness

Failed = pytest.fail.Exception
CAUGHT = (AssertionError, Failed)

pytest_plugins = ["pytester"]


def harness_for(
    gateway_class: type[FakeGateway], capabilities: Capabilities | None = None, **overrides: object
) -> conformance.ConformanceHarness:
    caps = capabilities or default_capabilities(["EUR", "USD", "JPY", "KWD", "HUF", "BGN"])
    return fake_harness(NARROWED, VariantPlugin(gateway_class, caps), **overrides)


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


class BelievesEveryWebhook(FakeGateway):
    """Parses webhooks without verifying them."""

    def verify(self, header: str | None, body: bytes) -> None:
        return None


class LosesCents(FakeGateway):
    """Reports a checkout's amount truncated to whole units, as a float-happy plugin might."""

    @hookimpl
    def gateway_create_checkout(self, request: CheckoutRequest, context: OperationContext) -> CheckoutSession:
        session = super().gateway_create_checkout(request, context)
        whole = session.amount.amount.quantize(Decimal(1), rounding="ROUND_DOWN")
        return attrs.evolve(session, amount=Money.of(whole, session.amount.currency))


class CapturesEverything(FakeGateway):
    """Declares partial capture but always captures the whole authorization."""

    @hookimpl
    def gateway_capture(self, request: CaptureRequest, context: OperationContext) -> Capture:
        return super().gateway_capture(CaptureRequest(request.payment_id), context)


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
    with pytest.raises(CAUGHT):
        conformance.IdempotencyConformance().test_same_key_never_refunds_twice(h)
    with pytest.raises(CAUGHT):
        conformance.IdempotencyConformance().test_concurrent_retries_with_one_key_refund_once(harness_for(RefundsTwice))


def test_a_refund_beyond_the_capture_must_be_refused() -> None:
    h = harness_for(RefundsBeyondCapture)
    with pytest.raises(CAUGHT):
        conformance.RefundConformance().test_refund_beyond_what_was_captured_is_refused(h)
    with pytest.raises(CAUGHT):
        conformance.RefundConformance().test_multiple_refunds_never_exceed_the_capture(
            harness_for(RefundsBeyondCapture)
        )


@pytest.mark.parametrize(
    "test",
    [
        conformance.WebhookConformance.test_tampered_body_is_rejected,
        conformance.WebhookConformance.test_wrong_secret_is_rejected,
        conformance.WebhookConformance.test_stale_timestamp_is_rejected,
        conformance.WebhookConformance.test_missing_signature_is_rejected,
    ],
)
def test_an_unverified_webhook_must_be_rejected(test: object) -> None:
    h = harness_for(BelievesEveryWebhook)
    with pytest.raises(CAUGHT):
        test(conformance.WebhookConformance(), h)  # type: ignore[operator]


def test_a_lenient_timestamp_tolerance_fails_only_the_stale_test() -> None:
    lenient = {**NARROWED, "settings": {**NARROWED["settings"], "tolerance": 10 * conformance.STALE_SECONDS}}
    h = fake_harness(lenient)
    suite = conformance.WebhookConformance()
    suite.test_tampered_body_is_rejected(h)
    suite.test_wrong_secret_is_rejected(h)
    with pytest.raises(CAUGHT):
        suite.test_stale_timestamp_is_rejected(h)


def test_amounts_must_survive_the_wire() -> None:
    h = harness_for(LosesCents)
    with pytest.raises(CAUGHT):
        conformance.MoneyConformance().test_amounts_round_trip_through_the_wire_format(h)


def test_a_declared_partial_capture_must_be_honoured() -> None:
    h = harness_for(CapturesEverything)
    with pytest.raises(CAUGHT):
        conformance.AuthorizeCaptureConformance().test_partial_capture_takes_only_the_part(h)


def test_a_secret_in_an_error_message_fails(caplog: pytest.LogCaptureFixture) -> None:
    h = harness_for(LeaksTheSecret)
    with pytest.raises(CAUGHT):
        conformance.SecretsConformance().test_no_secret_in_logs_errors_or_results(h, caplog)


def test_an_unmapped_exception_fails() -> None:
    h = harness_for(RaisesForeignErrors)
    with pytest.raises(CAUGHT):
        conformance.ErrorConformance().test_failures_are_mapped_to_core_errors(h)
    with pytest.raises(GatewayError) as info:
        h.manager.payment_status("fake", "missing")
    assert conformance.unmapped(info.value)


def test_a_declared_feature_without_its_harness_helper_fails_rather_than_skips() -> None:
    h = fake_harness(NARROWED, signed_webhook=None, pay=None, payment_method=None)
    with pytest.raises(Failed, match="harness gives no signed_webhook"):
        conformance.WebhookConformance().test_genuine_webhook_is_parsed(h)
    with pytest.raises(Failed, match="needs a captured payment"):
        conformance.RefundConformance().test_full_refund_returns_what_was_captured(h)


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
    assert outcomes["passed"] >= 30
    result.stdout.fnmatch_lines(["*SKIPPED*the gateway declares every feature*"])
