# mypy: disable-error-code="no-untyped-call"
# (stripe-python leaves the constructors of its error classes unannotated; these tests build real ones.)
"""Every SDK error class maps to the core tree; ``gateway check`` names a restricted key's gaps."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
import structlog.testing
from stripe_gateway.errors import error_intent, map_stripe_errors, redact, translate

from gateway_core.errors import (
    AmountOutOfRange,
    AuthenticationFailed,
    AuthenticationRequired,
    GatewayError,
    GatewayUnavailable,
    IdempotencyConflict,
    InvalidRequest,
    NotFound,
    OutcomeUnknown,
    PaymentDeclined,
    PermissionDenied,
    RateLimited,
    WebhookVerificationFailed,
)
from gateway_core.models import CheckoutRequest
from gateway_core.money import Money
from tests.stripe_gateway.conftest import StandIn, make_manager
from tests.stripe_gateway.transport import CheckedClient

GW = "stripe_test"
RAK_MESSAGE = (
    "The provided key 'rk_test_51Abc*********xyz' does not have the required permissions for this endpoint on "
    "account 'acct_1'. Having the 'rak_checkout_session_write' permission would allow this request to continue."
)


def body(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, **extra}}


CASES: list[tuple[stripe.StripeError, type[GatewayError], bool]] = [
    (stripe.CardError("Your card was declined.", None, "card_declined", http_status=402,
                      json_body=body("card_error", "d", code="card_declined", decline_code="insufficient_funds")),
     PaymentDeclined, False),
    (stripe.CardError("Authenticate", None, "authentication_required", http_status=402), AuthenticationRequired, False),
    (stripe.IdempotencyError("Keys for idempotent requests...", http_status=400), IdempotencyConflict, False),
    (stripe.InvalidRequestError("No such payment_intent", "id", "resource_missing", http_status=404), NotFound, False),
    (stripe.InvalidRequestError("Amount must be at least", "amount", "amount_too_small", http_status=400),
     AmountOutOfRange, False),
    (stripe.InvalidRequestError("Refund too big", "amount", "charge_already_refunded", http_status=400),
     AmountOutOfRange, False),
    (stripe.InvalidRequestError("Bad", "x", "parameter_unknown", http_status=400), InvalidRequest, False),
    (stripe.InvalidRequestError("already been captured", None, "payment_intent_unexpected_state", http_status=400),
     OutcomeUnknown, False),
    (stripe.InvalidRequestError("Slow down", None, "rate_limit", http_status=400), RateLimited, True),
    (stripe.AuthenticationError("Invalid API Key provided: sk_test_****abcd", http_status=401),
     AuthenticationFailed, False),
    (stripe.PermissionError(RAK_MESSAGE, http_status=403), PermissionDenied, False),
    (stripe.RateLimitError("Too many requests", http_status=429), RateLimited, True),
    (stripe.APIConnectionError("timed out", should_retry=True), GatewayUnavailable, True),
    (stripe.APIError("Internal error", http_status=500), GatewayUnavailable, True),
    (stripe.APIError("Weird", http_status=418), GatewayError, False),
    (stripe.SignatureVerificationError("No signatures found", "t=1,v1=abc"), WebhookVerificationFailed, False),
    (stripe.StripeError("Something else"), GatewayError, False),
]  # fmt: skip


@pytest.mark.parametrize(("err", "expected", "retryable"), CASES, ids=lambda v: type(v).__name__)
def test_every_sdk_error_maps_to_the_most_specific_core_error(
    err: stripe.StripeError, expected: type[GatewayError], retryable: bool
) -> None:
    mapped = translate(err, GW, mutating=False)
    assert type(mapped) is expected
    assert mapped.retryable is retryable
    assert mapped.gateway == GW
    assert mapped.http_status == err.http_status


def test_mapping_chains_from_the_sdk_error_and_names_the_decline() -> None:
    err = CASES[0][0]
    with pytest.raises(PaymentDeclined) as info, map_stripe_errors(GW, mutating=True):
        raise err
    assert info.value.__cause__ is err
    assert info.value.decline_code == "insufficient_funds"
    assert info.value.provider_code == "card_declined"


def test_an_unexpected_state_is_done_before_not_an_invalid_request() -> None:
    """Captured or canceled already, perhaps by this operation's lost attempt: read the status, never "nothing charged"."""
    intent = {"id": "pi_1", "object": "payment_intent", "status": "succeeded", "amount_received": 500}
    envelope = body("invalid_request_error", "This PaymentIntent could not be captured because it has a status of "
                    "succeeded.", code="payment_intent_unexpected_state", payment_intent=intent)  # fmt: skip
    err = stripe.InvalidRequestError(
        envelope["error"]["message"], None, "payment_intent_unexpected_state", http_status=400, json_body=envelope
    )
    for operation in ("capture", "void"):
        mapped = translate(err, GW, mutating=True, operation=operation)
        assert type(mapped) is OutcomeUnknown
        assert (mapped.retryable, mapped.provider_code, mapped.http_status) == (
            False,
            "payment_intent_unexpected_state",
            400,
        )
        assert "its status is now succeeded" in mapped.message
        assert "payment_status" in mapped.message
        mapped.__cause__ = err
        assert error_intent(mapped) == intent
    assert error_intent(translate(CASES[0][0], GW, mutating=True)) is None


def test_a_charge_already_refunded_is_out_of_range_saying_an_earlier_attempt_may_have_refunded_it() -> None:
    err = stripe.InvalidRequestError("Charge ch_1 has already been refunded.", None, "charge_already_refunded",
                                     http_status=400)  # fmt: skip
    mapped = translate(err, GW, mutating=True, operation="refund")
    assert type(mapped) is AmountOutOfRange
    assert mapped.provider_code == "charge_already_refunded"
    assert mapped.message.startswith("stripe: Charge ch_1 has already been refunded.")
    assert "earlier attempt of this refund" in mapped.message
    assert "payment_status" in mapped.message


def test_a_refund_beyond_what_remains_is_out_of_range_saying_an_earlier_attempt_may_have_refunded_it() -> None:
    """Stripe's answer to a refund of more than remains: perhaps this refund's lost first attempt shrank it."""
    text = "Refund amount (€20.00) is greater than unrefunded amount on charge (€10.00)"
    for code in ("amount_too_large", "refund_exceeds_charge"):
        err = stripe.InvalidRequestError(text, "amount", code, http_status=400)
        mapped = translate(err, GW, mutating=True, operation="refund")
        assert type(mapped) is AmountOutOfRange  # the conformance suite's over-refund type, kept
        assert (mapped.provider_code, mapped.http_status, mapped.retryable) == (code, 400, False)
        assert mapped.message.startswith(f"stripe: {text} (")
        assert "earlier attempt of this refund" in mapped.message
        assert "payment_status" in mapped.message
    # The same code on anything but a refund implies no earlier attempt: the plain message.
    too_large = stripe.InvalidRequestError("Amount must be no more than €999,999.99", "amount", "amount_too_large",
                                           http_status=400)  # fmt: skip
    for operation in ("checkout", "authorize", "capture", None):
        mapped = translate(too_large, GW, mutating=True, operation=operation)
        assert type(mapped) is AmountOutOfRange
        assert mapped.message == "stripe: Amount must be no more than €999,999.99"


def test_connection_errors_and_5xx_on_a_mutation_are_outcome_unknown() -> None:
    dropped = translate(stripe.APIConnectionError("reset"), GW, mutating=True)
    assert type(dropped) is OutcomeUnknown
    assert dropped.retryable is True  # nothing was answered: the same key tells the outcome
    bad_gateway = translate(stripe.APIError("boom", http_status=502), GW, mutating=True)
    assert (type(bad_gateway), bad_gateway.retryable) == (OutcomeUnknown, True)


def in_progress(status: int = 409) -> stripe.APIError:
    envelope = body("invalid_request_error", "There is currently another in-progress request using this Idempotent Key",
                    code="idempotency_key_in_use")  # fmt: skip
    return stripe.APIError("in progress", json_body=envelope, http_status=status, code="idempotency_key_in_use")


def test_a_409_is_a_request_still_in_flight_not_an_idempotency_conflict() -> None:
    mapped = translate(in_progress(), GW, mutating=True)
    assert type(mapped) is OutcomeUnknown
    assert mapped.retryable is True
    assert "same key" in mapped.message
    read = translate(stripe.APIError("conflict", http_status=409), GW, mutating=False)
    assert (type(read), read.retryable) == (GatewayUnavailable, True)


def test_a_lock_timeout_is_retryable_and_nothing_was_done() -> None:
    locked = stripe.RateLimitError("locked", http_status=429, code="lock_timeout")
    for mutating in (True, False):
        mapped = translate(locked, GW, mutating=mutating)
        assert (type(mapped), mapped.retryable) == (GatewayUnavailable, True)


@pytest.mark.parametrize(("header", "retryable"), [(None, True), ("false", False), ("true", True)])
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_on_a_post_is_retryable_unless_stripe_says_it_saved_the_answer(
    header: str | None, retryable: bool, status: int
) -> None:
    """``Stripe-Should-Retry: false`` is Stripe's saved answer, replayed to the same key; without the
    header the answer is not Stripe's (a proxy's or load balancer's), so the same key may succeed."""
    headers = {"Stripe-Should-Retry": header} if header else {}
    mapped = translate(stripe.APIError("boom", http_status=status, headers=headers), GW, mutating=True)
    assert type(mapped) is OutcomeUnknown
    assert mapped.retryable is retryable
    assert mapped.http_status == status
    if retryable:
        assert "retry with the same idempotency key" in mapped.message
    else:
        assert "check the payment's status" in mapped.message


@pytest.mark.parametrize(
    ("operation", "told"),
    [
        ("checkout", "client_reference_id is the request's reference"),
        ("authorize", "metadata reference is the request's reference"),
        ("capture", "check the payment's status"),
        ("refund", "check the payment's status"),
        ("void", "check the payment's status"),
    ],
)
def test_a_saved_5xx_says_how_to_find_out_even_without_a_payment_id(operation: str, told: str) -> None:
    """A new checkout or authorization has no id the host could ask the status of: its reference finds it."""
    saved = stripe.APIError("boom", http_status=500, headers={"Stripe-Should-Retry": "false"})
    mapped = translate(saved, GW, mutating=True, operation=operation)
    assert mapped.retryable is False
    assert told in mapped.message
    if operation in ("checkout", "authorize"):
        assert "check the payment's status" not in mapped.message


def test_stripe_should_retry_decides_retryable_whatever_the_error() -> None:
    no = {"Stripe-Should-Retry": "false"}
    yes = {"stripe-should-retry": "true"}
    assert translate(stripe.RateLimitError("slow", http_status=429, headers=no), GW, mutating=True).retryable is False
    assert translate(stripe.APIError("boom", http_status=503, headers=no), GW, mutating=False).retryable is False
    assert translate(stripe.APIError("boom", http_status=503), GW, mutating=False).retryable is True
    assert translate(stripe.APIError("x", http_status=409, headers=no), GW, mutating=True).retryable is False
    wobbly = stripe.InvalidRequestError("try again", None, "x", http_status=400, headers=yes)
    assert translate(wobbly, GW, mutating=True).retryable is True


def test_a_restricted_keys_403_names_the_permission() -> None:
    mapped = translate(stripe.PermissionError(RAK_MESSAGE, http_status=403), GW, mutating=True)
    assert isinstance(mapped, PermissionDenied)
    assert mapped.permission == "Checkout Sessions write"
    assert "rk_test_51Abc" not in str(mapped)


def test_redaction_removes_keys_secrets_client_secrets_and_card_numbers() -> None:
    text = redact(
        "key sk_test_51HxYzAbC and rk_live_9Q secret whsec_abcDEF client pi_123_secret_XYZ card 4242 4242 4242 4242"
    )
    for leaked in ("sk_test_51HxYzAbC", "rk_live_9Q", "whsec_abcDEF", "pi_123_secret_XYZ", "4242 4242 4242 4242"):
        assert leaked not in text
    assert text.count("[redacted]") == 5


def test_authentication_error_message_keeps_no_key(client: CheckedClient, standin: StandIn) -> None:
    manager = make_manager(client, standin.url, api_key="sk_test_revoked")
    request = CheckoutRequest.single("X", Money.of("5.00", "EUR"), "https://a.example/", "https://b.example/")
    with structlog.testing.capture_logs() as logs, pytest.raises(AuthenticationFailed) as info:
        manager.create_checkout(GW, request, idempotency_key="auth")
    assert "sk_test_revoked" not in f"{info.value} {info.value!r}"
    assert "sk_test_revoked" not in repr(logs)
    assert info.value.http_status == 401


# -- gateway check ---------------------------------------------------------------------------------


def check(client: CheckedClient, standin: StandIn, api_key: str) -> dict[str, tuple[bool, str]]:
    manager = make_manager(client, standin.url, api_key=api_key)
    return {r.name: (r.ok, r.detail) for r in manager.check(GW)}


def test_check_with_a_full_key_reports_everything_granted(client: CheckedClient, standin: StandIn) -> None:
    before = standin.stats()
    results = check(client, standin, "sk_test_full_access")
    assert results == {
        "credentials": (True, "the API key is accepted"),
        "permission: Checkout Sessions write": (True, "granted"),
        "permission: Products write": (True, "granted"),
        "permission: Prices write": (True, "granted"),
        "permission: PaymentIntents write": (True, "granted"),
        "permission: Refunds write": (True, "granted"),
    }
    after = standin.stats()
    assert (after["sessions"], after["intents"], after["refunds"]) == (
        before["sessions"],
        before["intents"],
        before["refunds"],
    )


@pytest.mark.parametrize(
    ("key", "missing"),
    [
        ("rk_test_no_checkout", "Checkout Sessions write"),
        ("rk_test_no_payment_intents", "PaymentIntents write"),
        ("rk_test_no_refunds", "Refunds write"),
    ],
)
def test_check_names_the_permission_a_restricted_key_lacks(
    key: str, missing: str, client: CheckedClient, standin: StandIn
) -> None:
    results = check(client, standin, key)
    assert results["credentials"][0] is True
    failed = {name: detail for name, (ok, detail) in results.items() if not ok}
    assert failed == {f"permission: {missing}": f"missing: the key lacks {missing}"}


@pytest.mark.parametrize(("key", "missing"), [("rk_test_no_products", "Products write"),
                                              ("rk_test_no_prices", "Prices write")])  # fmt: skip
def test_check_reports_missing_products_or_prices_write_without_failing(
    key: str, missing: str, client: CheckedClient, standin: StandIn
) -> None:
    """The plugin sends only inline price_data; that it needs these permissions is not known."""
    results = check(client, standin, key)
    assert all(ok for ok, _ in results.values())
    detail = results[f"permission: {missing}"][1]
    assert detail.startswith(f"advisory, not a failure: missing: the key lacks {missing}; ")
    assert "inline price_data" in detail
    assert key not in detail
    others = {name: detail for name, (_, detail) in results.items() if name != f"permission: {missing}"}
    assert set(others.values()) <= {"granted", "the API key is accepted"}


def test_check_with_a_revoked_key_reports_the_credentials(client: CheckedClient, standin: StandIn) -> None:
    results = check(client, standin, "sk_test_revoked")
    assert list(results) == ["credentials"]
    ok, detail = results["credentials"]
    assert ok is False
    assert "sk_test_revoked" not in detail
