"""Faults injected through the SDK's HTTP-client seam: retries reuse the key, one object results.

The stand-in honours idempotency keys as Stripe does, and counts the objects it holds, so "exactly
one object exists afterwards" is observed on the server side, not inferred.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from gateway_core.errors import GatewayUnavailable, IdempotencyConflict, OutcomeUnknown, RateLimited
from gateway_core.manager import GatewayManager
from gateway_core.models import AuthorizeRequest, CheckoutRequest, RefundRequest
from gateway_core.money import Money
from tests.stripe_gateway.conftest import StandIn, make_manager
from tests.stripe_gateway.transport import CheckedClient

GW = "stripe_test"


def checkout() -> CheckoutRequest:
    return CheckoutRequest.single(
        "Faulty item", Money.of("12.34", "EUR"), "https://h.example/ok", "https://h.example/no"
    )


def checkout_posts(client: CheckedClient) -> list[str | None]:
    return [s.idempotency_key for s in client.posts() if s.template == "/v1/checkout/sessions"]


# "500" here is a 500 without Stripe-Should-Retry (a proxy's, say): the SDK retries it.
@pytest.mark.parametrize("fault", ["timeout", "500", "drop_after_send", "refuse_connection"])
def test_sdk_retry_after_fault_reuses_the_key_and_makes_one_session(
    fault: str, client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    before = standin.stats()["sessions"]
    client.faults.append(fault)
    session = manager.create_checkout(GW, checkout(), idempotency_key=f"fault-{fault}")
    assert session.amount == Money.of("12.34", "EUR")
    assert checkout_posts(client) == [f"fault-{fault}", f"fault-{fault}"]  # the SDK retried once, same key
    assert standin.stats()["sessions"] == before + 1


def test_429_is_rate_limited_and_the_host_retry_makes_one_session(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    before = standin.stats()["sessions"]
    client.faults.append("429")
    with pytest.raises(RateLimited) as info:
        manager.create_checkout(GW, checkout(), idempotency_key="fault-429")
    assert info.value.retryable is True
    assert info.value.retry_after == 1.0
    assert standin.stats()["sessions"] == before  # the SDK does not retry 429 by itself
    session = manager.create_checkout(GW, checkout(), idempotency_key="fault-429")
    again = manager.create_checkout(GW, checkout(), idempotency_key="fault-429")
    assert again.id == session.id
    assert standin.stats()["sessions"] == before + 1


def test_faults_beyond_the_retry_budget_surface_as_outcome_unknown_then_recover(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    before = standin.stats()["sessions"]
    client.faults.extend(["drop_after_send"] * 3)  # first attempt + 2 SDK retries, all lost
    with pytest.raises(OutcomeUnknown) as info:
        manager.create_checkout(GW, checkout(), idempotency_key="fault-budget")
    assert info.value.retryable is True
    assert standin.stats()["sessions"] == before + 1  # Stripe made it on the first attempt
    session = manager.create_checkout(GW, checkout(), idempotency_key="fault-budget")
    assert session.id.startswith("cs_")
    assert standin.stats()["sessions"] == before + 1
    assert set(checkout_posts(client)) == {"fault-budget"}


def test_persistent_500_on_a_read_is_unavailable(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    session = manager.create_checkout(GW, checkout(), idempotency_key="fault-read")
    client.faults.extend(["500"] * 3)
    with pytest.raises(GatewayUnavailable) as info:
        manager.payment_status(GW, session.id)
    assert not isinstance(info.value, OutcomeUnknown)
    assert info.value.http_status == 500
    assert info.value.retryable is True


def test_refund_retried_after_a_dropped_connection_refunds_once(client: CheckedClient, standin: StandIn) -> None:
    manager = make_manager(client, standin.url)
    session = manager.create_checkout(GW, checkout(), idempotency_key="fault-refund-checkout")
    payment_id = standin.pay(session.id)
    before = standin.stats()["refunds"]
    client.targeted.append(("/v1/refunds", "drop_after_send"))
    refund = manager.refund(GW, RefundRequest(payment_id, Money.of("2.00", "EUR")), idempotency_key="fault-refund")
    assert refund.amount == Money.of("2.00", "EUR")
    assert standin.stats()["refunds"] == before + 1
    status = manager.payment_status(GW, payment_id)
    assert status.amount_refunded == Money.of("2.00", "EUR")
    keys = [s.idempotency_key for s in client.posts() if s.template == "/v1/refunds"]
    assert keys == ["fault-refund", "fault-refund"]


def test_a_lost_refund_answer_retried_later_with_the_key_gets_that_refund(
    client: CheckedClient, standin: StandIn
) -> None:
    """The refund went through but every answer was lost; a later retry with its key must not be refused.

    10.00 of 12.34 EUR: once the first attempt has refunded, only 2.34 remains, so a check of
    "more than remains" before sending would refuse the retry of a refund that happened.
    """
    manager = make_manager(client, standin.url)
    session = manager.create_checkout(GW, checkout(), idempotency_key="lost-refund-checkout")
    payment_id = standin.pay(session.id)
    before = standin.stats()["refunds"]
    client.targeted.extend([("/v1/refunds", "drop_after_send")] * 3)  # beyond the SDK's two retries
    request = RefundRequest(payment_id, Money.of("10.00", "EUR"))
    with pytest.raises(OutcomeUnknown) as lost:
        manager.refund(GW, request, idempotency_key="lost-refund")
    assert lost.value.retryable is True
    refund = manager.refund(GW, request, idempotency_key="lost-refund")
    assert refund.amount == Money.of("10.00", "EUR")
    assert standin.stats()["refunds"] == before + 1
    assert manager.payment_status(GW, payment_id).amount_refunded == Money.of("10.00", "EUR")


def test_zero_retries_setting_surfaces_the_first_fault(client: CheckedClient, standin: StandIn) -> None:
    manager = make_manager(client, standin.url, max_network_retries=0)
    client.faults.append("timeout")
    with pytest.raises(OutcomeUnknown):
        manager.create_checkout(GW, checkout(), idempotency_key="fault-no-retry")
    assert checkout_posts(client) == ["fault-no-retry"]


# -- Stripe's retry semantics, modelled by the stand-in ---------------------------------------------


def captured_payment(manager: GatewayManager, standin: StandIn, key: str) -> str:
    session = manager.create_checkout(GW, checkout(), idempotency_key=key)
    return standin.pay(session.id)


def test_a_saved_500_is_replayed_to_the_same_key_so_the_host_is_told_to_check_the_status(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    payment_id = captured_payment(manager, standin, "saved-500-checkout")
    before = standin.stats()["refunds"]
    standin.fail("/v1/refunds", 500, should_retry=False)
    request = RefundRequest(payment_id, Money.of("2.00", "EUR"))
    with pytest.raises(OutcomeUnknown) as info:
        manager.refund(GW, request, idempotency_key="saved-500")
    assert info.value.retryable is False
    assert info.value.http_status == 500
    assert "check the payment's status" in info.value.message
    refund_posts = [s for s in client.posts() if s.template == "/v1/refunds"]
    assert len(refund_posts) == 1  # Stripe-Should-Retry: false, so the SDK did not retry either
    # What "retry with the same key" would have done: Stripe replays the saved 500.
    with pytest.raises(OutcomeUnknown):
        manager.refund(GW, request, idempotency_key="saved-500")
    # What the host is told to do instead: look, then act with a new key.
    assert manager.payment_status(GW, payment_id).amount_refunded == Money.zero("EUR")
    refund = manager.refund(GW, request, idempotency_key="saved-500-after-checking")
    assert refund.amount == Money.of("2.00", "EUR")
    assert standin.stats()["refunds"] == before + 1


@pytest.mark.parametrize(
    ("path", "create", "told"),
    [
        (
            "/v1/checkout/sessions",
            lambda m, key: m.create_checkout(GW, checkout(), idempotency_key=key),
            "client_reference_id is the request's reference",
        ),
        (
            "/v1/payment_intents",
            lambda m, key: m.authorize(
                GW, AuthorizeRequest(Money.of("8.00", "EUR"), "pm_card_visa"), idempotency_key=key
            ),
            "metadata reference is the request's reference",
        ),
    ],
    ids=["checkout", "authorize"],
)
def test_a_saved_500_on_a_new_payment_says_how_to_find_it_without_an_id(
    path: str, create: Callable[[GatewayManager, str], object], told: str, manager: GatewayManager, standin: StandIn
) -> None:
    """No payment id came back, so "check the payment's status" would name nothing to check."""
    standin.fail(path, 500, should_retry=False)
    with pytest.raises(OutcomeUnknown) as info:
        create(manager, f"saved-500-new-{uuid.uuid4().hex}")
    assert info.value.retryable is False
    assert told in info.value.message
    assert "check the payment's status" not in info.value.message


def test_a_5xx_without_stripe_should_retry_is_retryable_and_the_same_key_gets_the_first_result(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    """A proxy's 502 after Stripe refunded, beyond the SDK's retries: not Stripe's saved answer, so the
    host is told to retry with the same key, and that retry returns the refund Stripe made."""
    payment_id = captured_payment(manager, standin, "proxy-502-checkout")
    before = standin.stats()["refunds"]
    client.targeted.extend([("/v1/refunds", "502_after_send")] * 3)  # first attempt + 2 SDK retries
    request = RefundRequest(payment_id, Money.of("2.00", "EUR"))
    with pytest.raises(OutcomeUnknown) as info:
        manager.refund(GW, request, idempotency_key="proxy-502")
    assert info.value.retryable is True
    assert info.value.http_status == 502
    assert "retry with the same idempotency key" in info.value.message
    assert standin.stats()["refunds"] == before + 1  # Stripe refunded on the first attempt
    refund = manager.refund(GW, request, idempotency_key="proxy-502")
    assert refund.amount == Money.of("2.00", "EUR")
    assert standin.stats()["refunds"] == before + 1
    keys = [s.idempotency_key for s in client.posts() if s.template == "/v1/refunds"]
    assert keys == ["proxy-502"] * 4


def test_a_500_that_never_reached_stripe_is_retryable_and_the_retry_makes_one_session(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    before = standin.stats()["sessions"]
    client.faults.extend(["500"] * 3)  # no Stripe-Should-Retry; the SDK retried twice
    with pytest.raises(OutcomeUnknown) as info:
        manager.create_checkout(GW, checkout(), idempotency_key="unsaved-500")
    assert info.value.retryable is True
    assert standin.stats()["sessions"] == before
    session = manager.create_checkout(GW, checkout(), idempotency_key="unsaved-500")
    assert session.id.startswith("cs_")
    assert standin.stats()["sessions"] == before + 1
    assert checkout_posts(client) == ["unsaved-500"] * 4


def test_a_500_stripe_says_to_retry_is_retried_with_the_same_key_and_refunds_once(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    payment_id = captured_payment(manager, standin, "retry-500-checkout")
    before = standin.stats()["refunds"]
    standin.fail("/v1/refunds", 503, should_retry=True)
    refund = manager.refund(GW, RefundRequest(payment_id, Money.of("2.00", "EUR")), idempotency_key="retry-500")
    assert refund.amount == Money.of("2.00", "EUR")
    keys = [s.idempotency_key for s in client.posts() if s.template == "/v1/refunds"]
    assert keys == ["retry-500", "retry-500"]
    assert standin.stats()["refunds"] == before + 1


def test_a_request_in_flight_answers_409_and_the_retry_gets_the_first_result(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    payment_id = captured_payment(manager, standin, "in-flight-checkout")
    before = standin.stats()["refunds"]
    request = RefundRequest(payment_id, Money.of("3.00", "EUR"))
    standin.delay("/v1/refunds", 1.5)
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(manager.refund, GW, request, idempotency_key="in-flight")
        deadline = time.monotonic() + 10
        while standin.stats()["in_flight"] == 0:
            assert time.monotonic() < deadline, "the first request never reached the stand-in"
            time.sleep(0.01)
        with pytest.raises(OutcomeUnknown) as info:  # a second worker, same key, while the first runs
            manager.refund(GW, request, idempotency_key="in-flight")
        refund = first.result(timeout=10)
    assert info.value.retryable is True
    assert (info.value.http_status, info.value.provider_code) == (409, "idempotency_key_in_use")
    assert not isinstance(info.value, IdempotencyConflict)
    again = manager.refund(GW, request, idempotency_key="in-flight")
    assert again.id == refund.id
    assert standin.stats()["refunds"] == before + 1


def _without(*fields: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda body: {k: v for k, v in body.items() if k not in fields}


#: A refund's 2xx answer, rewritten on its way to the plugin: Stripe refunded, the answer is not whole.
SHORT_REFUND_ANSWERS = {
    "no_amount": _without("amount"),
    "no_id": _without("id"),
    "undeclared_currency": lambda body: {**body, "currency": "xxx"},
    "amount_as_text": lambda body: {**body, "amount": "200"},
}


@pytest.mark.parametrize("change", SHORT_REFUND_ANSWERS.values(), ids=SHORT_REFUND_ANSWERS.keys())
def test_an_unreadable_refund_answer_is_outcome_unknown_and_the_status_tells_what_happened(
    change: Callable[[dict[str, Any]], dict[str, Any]], client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    """Not a plain GatewayError, an UnsupportedCurrency or a bare KeyError: any of them says "failed"."""
    payment_id = captured_payment(manager, standin, f"short-refund-checkout-{uuid.uuid4().hex}")
    before = standin.stats()["refunds"]
    client.rewrite["/v1/refunds"] = change
    with pytest.raises(OutcomeUnknown) as info:
        manager.refund(GW, RefundRequest(payment_id, Money.of("2.00", "EUR")), idempotency_key=uuid.uuid4().hex)
    assert not info.value.unmapped
    assert info.value.retryable is False  # Stripe would replay this answer to the same key
    assert "check the payment's status" in info.value.message
    assert info.value.gateway == GW
    assert standin.stats()["refunds"] == before + 1  # Stripe did refund
    assert manager.payment_status(GW, payment_id).amount_refunded == Money.of("2.00", "EUR")


def test_an_unreadable_checkout_answer_is_outcome_unknown(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    before = standin.stats()["sessions"]
    client.rewrite["/v1/checkout/sessions"] = _without("url")  # a session no payer can be sent to
    with pytest.raises(OutcomeUnknown) as info:
        manager.create_checkout(GW, checkout(), idempotency_key="short-checkout")
    assert "has no url" in info.value.message
    assert "client_reference_id" in info.value.message  # no session id came back: how to find it
    assert standin.stats()["sessions"] == before + 1


def test_an_unreadable_answer_to_a_read_is_unavailable(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    payment_id = captured_payment(manager, standin, "short-read-checkout")
    client.rewrite["/v1/payment_intents/{intent}"] = _without("currency")
    with pytest.raises(GatewayUnavailable) as info:
        manager.payment_status(GW, payment_id)
    assert not isinstance(info.value, OutcomeUnknown)
    assert not info.value.unmapped
    assert "'currency'" in info.value.message
    assert manager.payment_status(GW, payment_id).is_paid  # the next read is whole


def test_an_answer_cut_off_after_stripe_acted_is_outcome_unknown_and_the_same_key_gets_it(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    """A 200 whose body is not whole JSON: the SDK raises APIError with http_status 200, once.

    Stripe acted; the plugin called it an unmapped-looking provider error that said nothing of
    the refund made, and quoted the cut body. A retry with the same key gets the whole answer.
    """
    payment_id = captured_payment(manager, standin, f"cut-refund-checkout-{uuid.uuid4().hex}")
    before = standin.stats()["refunds"]
    client.targeted.append(("/v1/refunds", "cut_after_send"))
    request = RefundRequest(payment_id, Money.of("2.00", "EUR"))
    with pytest.raises(OutcomeUnknown) as info:
        manager.refund(GW, request, idempotency_key="cut-refund")
    assert info.value.retryable is True
    assert info.value.gateway == GW
    assert "re_" not in info.value.message  # the cut body is not echoed
    assert standin.stats()["refunds"] == before + 1  # Stripe did refund
    refund = manager.refund(GW, request, idempotency_key="cut-refund")
    assert refund.amount == Money.of("2.00", "EUR")
    assert standin.stats()["refunds"] == before + 1


def test_an_answer_cut_off_on_a_read_is_unavailable(
    client: CheckedClient, manager: GatewayManager, standin: StandIn
) -> None:
    payment_id = captured_payment(manager, standin, f"cut-read-checkout-{uuid.uuid4().hex}")
    client.targeted.append(("/v1/payment_intents/{intent}", "cut_after_send"))
    with pytest.raises(GatewayUnavailable) as info:
        manager.payment_status(GW, payment_id)
    assert not isinstance(info.value, OutcomeUnknown)
    assert info.value.retryable is True
    assert manager.payment_status(GW, payment_id).is_paid
