"""Idempotency: mutating calls need a key, operation ids derive stable keys, retries never act twice.

The fake gateway plays the provider: it stores results per key exactly as Stripe does.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import structlog.testing

from gateway_core import (
    AmountOutOfRange,
    AuthenticationRequired,
    AuthorizeRequest,
    CaptureRequest,
    CheckoutRequest,
    GatewayManager,
    GatewayUnavailable,
    IdempotencyConflict,
    InvalidRequest,
    Money,
    OutcomeUnknown,
    PaymentDeclined,
    PaymentState,
    RateLimited,
    RefundRequest,
    RefundStatus,
    VoidRequest,
)
from gateway_core.errors import ErrorCode
from gateway_core.fake import Outcome, Scripted

from .conftest import build_manager, fake, fake_table


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def checkout(amount: str = "10.00", reference: str | None = None) -> CheckoutRequest:
    return CheckoutRequest.single(
        "Ticket", eur(amount), "https://shop.example/ok", "https://shop.example/no", reference=reference
    )


def authorize(amount: str = "25.00") -> AuthorizeRequest:
    return AuthorizeRequest(eur(amount), "pm_card_visa", reference="order-1")


def paid(manager: GatewayManager, amount: str = "25.00") -> str:
    """A captured payment on ``fake``; returns its id."""
    auth = manager.authorize("fake", authorize(amount), idempotency_key=f"auth-{amount}")
    manager.capture("fake", CaptureRequest(auth.id), idempotency_key=f"cap-{amount}")
    return auth.id


# --------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------


def test_every_mutating_operation_without_a_key_is_refused_before_anything_is_sent(one_fake: GatewayManager) -> None:
    f = fake(one_fake, "fake")
    calls: list[tuple[str, Callable[[], object]]] = [
        ("checkout", lambda: one_fake.create_checkout("fake", checkout())),
        ("authorize", lambda: one_fake.authorize("fake", authorize())),
        ("capture", lambda: one_fake.capture("fake", CaptureRequest("fake_pi_1"))),
        ("void", lambda: one_fake.void("fake", VoidRequest("fake_pi_1"))),
        ("refund", lambda: one_fake.refund("fake", RefundRequest("fake_pi_1"))),
    ]
    for operation, call in calls:
        with pytest.raises(InvalidRequest) as info:
            call()
        assert f"{operation} changes money: pass idempotency_key= or operation_id=" in str(info.value)
        assert info.value.code is ErrorCode.INVALID_REQUEST
    assert f.requests == []
    assert f.payments_made() == 0


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve", "tab\there", "new\nline"])
def test_a_malformed_key_is_refused(one_fake: GatewayManager, key: str) -> None:
    with pytest.raises(InvalidRequest, match="idempotency_key must be"):
        one_fake.create_checkout("fake", checkout(), idempotency_key=key)
    assert fake(one_fake, "fake").requests == []


def test_an_empty_operation_id_is_refused(one_fake: GatewayManager) -> None:
    with pytest.raises(InvalidRequest, match="operation_id must be a non-empty str"):
        one_fake.create_checkout("fake", checkout(), operation_id="")


@pytest.mark.parametrize("blank", [" ", "   ", "\t", "\n", " \u3000 "])
def test_a_blank_operation_id_is_refused_like_an_empty_one(one_fake: GatewayManager, blank: str) -> None:
    # an empty form field: every order would share one key, and the second order would get the first's result
    with structlog.testing.capture_logs() as logs:
        with pytest.raises(InvalidRequest, match="operation_id must be a non-empty str, not blank"):
            one_fake.create_checkout("fake", checkout(), operation_id=blank)
        with pytest.raises(InvalidRequest, match="operation_id must be a non-empty str, not blank"):
            one_fake.refund("fake", RefundRequest("fake_pi_1"), operation_id=blank)
    assert fake(one_fake, "fake").requests == []
    assert [e["event"] for e in logs] == ["gateway.checkout.refused", "gateway.refund.refused"]


@pytest.mark.parametrize("blank", [" ", "   ", " " * 255])
def test_a_blank_idempotency_key_is_refused(one_fake: GatewayManager, blank: str) -> None:
    # an HTTP header value is trimmed: the provider would see an empty key, i.e. none at all
    with pytest.raises(InvalidRequest, match="idempotency_key must not be blank"):
        one_fake.authorize("fake", authorize(), idempotency_key=blank)
    assert fake(one_fake, "fake").requests == []


def test_the_key_given_is_the_key_sent(one_fake: GatewayManager) -> None:
    one_fake.create_checkout("fake", checkout(), idempotency_key="order-42-checkout")
    assert fake(one_fake, "fake").requests == [("checkout", "order-42-checkout")]


def test_operation_id_derives_a_stable_key() -> None:
    def key_for(operation_id: str, gateway: str = "fake") -> str | None:
        manager = build_manager({gateway: fake_table()})  # a fresh manager each time: nothing remembered
        manager.create_checkout(gateway, checkout(), operation_id=operation_id)
        [(_, key)] = fake(manager, gateway).requests
        return key

    first = key_for("order-42")
    assert first is not None
    assert first == key_for("order-42")
    assert first.startswith("gc-checkout-")
    assert "order-42" not in first
    assert key_for("order-43") != first
    assert key_for("order-42", gateway="other") != first


def test_operation_id_keys_differ_per_operation(one_fake: GatewayManager) -> None:
    auth = one_fake.authorize("fake", authorize(), operation_id="order-7")
    one_fake.capture("fake", CaptureRequest(auth.id), operation_id="order-7")
    keys = [key for _, key in fake(one_fake, "fake").requests]
    assert len(set(keys)) == 2
    assert keys[0] is not None
    assert keys[0].startswith("gc-authorize-")


def test_reads_carry_no_key(one_fake: GatewayManager) -> None:
    payment = paid(one_fake)
    status = one_fake.payment_status("fake", payment)
    assert status.state is PaymentState.SUCCEEDED


# --------------------------------------------------------------------------------------------
# The fake honours keys
# --------------------------------------------------------------------------------------------


def test_same_key_same_parameters_returns_the_same_result_and_one_payment(one_fake: GatewayManager) -> None:
    f = fake(one_fake, "fake")
    first = one_fake.create_checkout("fake", checkout(reference="r1"), idempotency_key="k")
    again = one_fake.create_checkout("fake", checkout(reference="r1"), idempotency_key="k")
    assert again == first
    assert f.payments_made() == 1
    auth1 = one_fake.authorize("fake", authorize(), idempotency_key="a")
    auth2 = one_fake.authorize("fake", authorize(), idempotency_key="a")
    assert auth1.id == auth2.id
    assert f.payments_made() == 2


def test_same_key_other_parameters_is_a_conflict(one_fake: GatewayManager) -> None:
    f = fake(one_fake, "fake")
    one_fake.create_checkout("fake", checkout("10.00"), idempotency_key="k")
    with pytest.raises(IdempotencyConflict) as info:
        one_fake.create_checkout("fake", checkout("11.00"), idempotency_key="k")
    assert info.value.gateway == "fake"
    assert info.value.provider_code == "idempotency_key_in_use"
    assert f.payments_made() == 1
    with pytest.raises(IdempotencyConflict):  # the same key for another operation is a conflict too
        one_fake.authorize("fake", authorize("10.00"), idempotency_key="k")
    assert f.payments_made() == 1


def test_a_timeout_after_success_is_outcome_unknown_and_the_retry_returns_the_original(
    one_fake: GatewayManager,
) -> None:
    f = fake(one_fake, "fake")
    f.script(Outcome.TIMEOUT_AFTER_SUCCESS)
    with pytest.raises(OutcomeUnknown) as info:
        one_fake.authorize("fake", authorize(), idempotency_key="order-9")
    assert info.value.retryable is True
    assert info.value.code is ErrorCode.OUTCOME_UNKNOWN
    assert isinstance(info.value, GatewayUnavailable)
    assert f.payments_made() == 1  # it did happen

    retried = one_fake.authorize("fake", authorize(), idempotency_key="order-9")
    assert f.payments_made() == 1
    assert one_fake.payment_status("fake", retried.id).state is PaymentState.AUTHORIZED
    assert [op for op, _ in f.requests] == ["authorize", "authorize"]


def test_a_checkout_timeout_is_retried_into_the_same_session(one_fake: GatewayManager) -> None:
    f = fake(one_fake, "fake")
    f.script(Scripted(Outcome.TIMEOUT_AFTER_SUCCESS, operation="checkout"))
    with pytest.raises(OutcomeUnknown):
        one_fake.create_checkout("fake", checkout(), operation_id="cart-1")
    session = one_fake.create_checkout("fake", checkout(), operation_id="cart-1")
    assert f.payments_made() == 1
    assert f.checkout(session.id) == session


def test_a_refund_timeout_never_refunds_twice(one_fake: GatewayManager) -> None:
    f = fake(one_fake, "fake")
    payment = paid(one_fake, "25.00")
    f.script(Scripted(Outcome.TIMEOUT_AFTER_SUCCESS, operation="refund"))
    with pytest.raises(OutcomeUnknown):
        one_fake.refund("fake", RefundRequest(payment, eur("5.00")), idempotency_key="rf")
    refund = one_fake.refund("fake", RefundRequest(payment, eur("5.00")), idempotency_key="rf")
    assert f.refunds_made() == 1
    assert refund.amount == eur("5.00")
    assert one_fake.payment_status("fake", payment).amount_refunded == eur("5.00")


def test_rate_limited_is_retryable_and_the_retry_acts_once(one_fake: GatewayManager) -> None:
    f = fake(one_fake, "fake")
    f.script(Outcome.RATE_LIMITED)
    with pytest.raises(RateLimited) as info:
        one_fake.authorize("fake", authorize(), idempotency_key="rl")
    assert info.value.retryable is True
    assert info.value.retry_after == 1.0
    assert info.value.http_status == 429
    assert f.payments_made() == 0
    one_fake.authorize("fake", authorize(), idempotency_key="rl")
    assert f.payments_made() == 1


def test_unavailable_is_retryable_and_nothing_happened(one_fake: GatewayManager) -> None:
    f = fake(one_fake, "fake")
    f.script(Outcome.UNAVAILABLE)
    with pytest.raises(GatewayUnavailable) as info:
        one_fake.create_checkout("fake", checkout(), idempotency_key="u")
    assert info.value.retryable is True
    assert f.payments_made() == 0


def test_a_scripted_decline_carries_its_decline_code_and_is_remembered_by_key(one_fake: GatewayManager) -> None:
    f = fake(one_fake, "fake")
    f.script(Scripted(Outcome.DECLINE, decline_code="insufficient_funds"))
    with pytest.raises(PaymentDeclined) as info:
        one_fake.authorize("fake", authorize(), idempotency_key="d")
    assert info.value.decline_code == "insufficient_funds"
    assert info.value.code is ErrorCode.DECLINED
    assert info.value.retryable is False
    assert info.value.gateway == "fake"
    # the same key replays the decline, like Stripe; a new attempt needs a new key
    with pytest.raises(PaymentDeclined):
        one_fake.authorize("fake", authorize(), idempotency_key="d")
    assert f.payments_made() == 0
    one_fake.authorize("fake", authorize(), idempotency_key="d2")
    assert f.payments_made() == 1


def test_three_d_secure_required(one_fake: GatewayManager) -> None:
    f = fake(one_fake, "fake")
    f.script(Outcome.REQUIRES_3DS)
    with pytest.raises(AuthenticationRequired) as info:
        one_fake.authorize("fake", authorize(), idempotency_key="3ds")
    assert info.value.action_url is not None
    assert info.value.action_url.startswith("https://checkout.fake-gateway.invalid/3ds/")
    assert info.value.code is ErrorCode.AUTHENTICATION_REQUIRED
    # as at Stripe, the payment exists and waits for the payer; the same key replays the same answer
    assert info.value.payment_id is not None
    assert info.value.action_url.endswith(info.value.payment_id)
    assert f.payments_made() == 1
    with pytest.raises(AuthenticationRequired) as again:
        one_fake.authorize("fake", authorize(), idempotency_key="3ds")
    assert again.value.payment_id == info.value.payment_id
    assert f.payments_made() == 1


def test_a_script_for_one_operation_waits_for_it(one_fake: GatewayManager) -> None:
    f = fake(one_fake, "fake")
    f.script(Scripted(Outcome.DECLINE, operation="refund"))
    payment = paid(one_fake)  # authorize and capture are not affected
    with pytest.raises(PaymentDeclined):
        one_fake.refund("fake", RefundRequest(payment), idempotency_key="r")
    assert f.refunds_made() == 0


# --------------------------------------------------------------------------------------------
# Refunds, captures, voids
# --------------------------------------------------------------------------------------------


def test_repeated_partial_refunds_then_refused_beyond_what_was_captured(one_fake: GatewayManager) -> None:
    f = fake(one_fake, "fake")
    payment = paid(one_fake, "25.00")
    r1 = one_fake.refund("fake", RefundRequest(payment, eur("10.00"), reason="damaged"), idempotency_key="r1")
    assert (r1.amount, r1.status, r1.reason, r1.payment_id) == (
        eur("10.00"),
        RefundStatus.SUCCEEDED,
        "damaged",
        payment,
    )
    assert one_fake.payment_status("fake", payment).state is PaymentState.PARTIALLY_REFUNDED
    one_fake.refund("fake", RefundRequest(payment, eur("10.00")), idempotency_key="r2")

    with pytest.raises(AmountOutOfRange) as info:
        one_fake.refund("fake", RefundRequest(payment, eur("5.01")), idempotency_key="r3")
    assert "5.00 EUR of 25.00 EUR remains" in str(info.value)
    assert info.value.provider_code == "charge_exceeds_refundable"
    status = one_fake.payment_status("fake", payment)
    assert status.amount_refunded == eur("20.00")
    assert f.refunds_made() == 2

    rest = one_fake.refund("fake", RefundRequest(payment), idempotency_key="r4")  # all that remains
    assert rest.amount == eur("5.00")
    status = one_fake.payment_status("fake", payment)
    assert status.state is PaymentState.REFUNDED
    assert status.amount_refunded == status.amount_captured == eur("25.00")
    assert not status.is_paid
    with pytest.raises(InvalidRequest):
        one_fake.refund("fake", RefundRequest(payment, eur("0.01")), idempotency_key="r5")
    assert f.refunds_made() == 3


def test_a_refund_beyond_a_partial_capture_is_refused(one_fake: GatewayManager) -> None:
    auth = one_fake.authorize("fake", authorize("25.00"), idempotency_key="a")
    one_fake.capture("fake", CaptureRequest(auth.id, eur("15.00")), idempotency_key="c")
    with pytest.raises(AmountOutOfRange):
        one_fake.refund("fake", RefundRequest(auth.id, eur("15.01")), idempotency_key="r")
    assert fake(one_fake, "fake").refunds_made() == 0


def test_capturing_more_than_authorized_is_refused(one_fake: GatewayManager) -> None:
    auth = one_fake.authorize("fake", authorize("25.00"), idempotency_key="a")
    with pytest.raises(AmountOutOfRange, match=r"only 25\.00 EUR is authorized"):
        one_fake.capture("fake", CaptureRequest(auth.id, eur("25.01")), idempotency_key="c")
    assert one_fake.payment_status("fake", auth.id).state is PaymentState.AUTHORIZED


def test_void_cancels_an_authorization_once(one_fake: GatewayManager) -> None:
    auth = one_fake.authorize("fake", authorize(), idempotency_key="a")
    void = one_fake.void("fake", VoidRequest(auth.id), idempotency_key="v")
    assert void.state is PaymentState.CANCELED
    assert one_fake.void("fake", VoidRequest(auth.id), idempotency_key="v") == void  # replay
    with pytest.raises(InvalidRequest, match="cannot void"):
        one_fake.void("fake", VoidRequest(auth.id), idempotency_key="v2")
    with pytest.raises(InvalidRequest, match="not authorized"):
        one_fake.capture("fake", CaptureRequest(auth.id), idempotency_key="c")


def test_results_from_the_fake_are_never_live(one_fake: GatewayManager) -> None:
    auth = one_fake.authorize("fake", authorize(), idempotency_key="a")
    assert auth.live is False
    assert auth.id.startswith("fake_")
    assert one_fake.gateway("fake").capabilities.live is False


@pytest.mark.parametrize("payment_id", ["", "   "])
def test_an_empty_payment_id_is_refused_before_anything_is_sent(one_fake: GatewayManager, payment_id: str) -> None:
    f = fake(one_fake, "fake")
    for call in (
        lambda: one_fake.capture("fake", CaptureRequest(payment_id), idempotency_key="c"),
        lambda: one_fake.void("fake", VoidRequest(payment_id), idempotency_key="v"),
        lambda: one_fake.refund("fake", RefundRequest(payment_id), idempotency_key="r"),
        lambda: one_fake.payment_status("fake", payment_id),
    ):
        with pytest.raises(InvalidRequest, match="payment_id must be a non-empty str"):
            call()
    assert f.requests == []


@pytest.mark.parametrize(
    ("payment_method", "said"),
    [(None, "None"), ("", "a blank str"), ("  ", "a blank str"), (4242424242424242, "int")],
)
def test_authorize_without_a_payment_method_is_refused_before_anything_is_sent(
    one_fake: GatewayManager, payment_method: object, said: str
) -> None:
    f = fake(one_fake, "fake")
    request = AuthorizeRequest(eur("1.00"), payment_method)  # type: ignore[arg-type]
    with structlog.testing.capture_logs() as logs, pytest.raises(InvalidRequest) as info:
        one_fake.authorize("fake", request, operation_id="pm-missing")
    assert f"payment_method must be a non-empty str (the payment method token), not {said}" in str(info.value)
    assert info.value.gateway == "fake"
    assert "4242" not in str(info.value)
    assert [(e["event"], e["code"]) for e in logs] == [("gateway.authorize.refused", "invalid_request")]
    assert f.requests == []
    assert f.payments_made() == 0
