"""The example plugin passes the conformance suite, with the harness docs/plugin-authors.md shows."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest
from example_gateway.stand_in import ExamplePaymentsAPI

from gateway_core import CheckoutRequest, CheckoutSession, GatewayManager, Money
from gateway_core.testing.conformance import (
    ConformanceHarness,
    GatewayConformance,
    RecordedAmount,
    SignedWebhook,
    new_key,
)
from tests.example_gateway.conftest import API_KEY, ENVIRON, WEBHOOK_SECRET, example_manager


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


class TestExampleConformance(GatewayConformance):
    @pytest.fixture
    def conformance_harness(self, example_api: ExamplePaymentsAPI, manager: GatewayManager) -> ConformanceHarness:
        def pay(session: CheckoutSession) -> str:
            return example_api.pay_checkout(session.id)

        def signed_webhook(
            *, secret: str | None = None, timestamp: int | None = None, payment_id: str | None = None
        ) -> SignedWebhook:
            if payment_id is None:  # any genuine event: pay a checkout of our own
                checkout = CheckoutRequest.single(
                    "Hook", Money.of("5.00", "EUR"), "https://h.example/a", "https://h.example/b"
                )
                session = manager.create_checkout("example", checkout, idempotency_key=new_key())
                payment_id = example_api.pay_checkout(session.id)
            # The provider's own event saying the payment succeeded, signed as the provider signs it.
            body = example_api.webhook_about(payment_id, "payment.succeeded")
            return SignedWebhook(example_api.webhook_headers(body, secret=secret, timestamp=timestamp), body)

        def recorded_amount(operation: str, object_id: str) -> RecordedAmount:
            # The stand-in's own record: integer minor units, as Example Payments keeps them.
            return RecordedAmount(*example_api.recorded_amount(object_id))

        @contextmanager
        def fault(kind: str) -> Iterator[GatewayManager]:
            if kind == "refused":
                yield example_manager(f"http://127.0.0.1:{closed_port()}")
            elif kind == "timeout":  # the stand-in acts, then answers after the client gave up
                example_api.delay_next(1.0)
                yield example_manager(example_api.base_url, timeout=0.3)
            else:
                example_api.fail_next(*{"5xx": (503, "unavailable"), "429": (429, "rate_limited")}[kind])
                yield manager

        def transport_fault(kind: str, operation: str) -> AbstractContextManager[GatewayManager]:
            return fault(kind)

        @contextmanager
        def short_answer_to_the_next_request() -> Iterator[GatewayManager]:
            example_api.cut_next("id")  # the stand-in acts, then answers without the object's id
            yield manager

        def short_answer(operation: str) -> AbstractContextManager[GatewayManager]:
            return short_answer_to_the_next_request()

        return ConformanceHarness(
            manager=manager,
            gateway="example",
            requests_sent=lambda: len(example_api.requests),
            secrets=[API_KEY, WEBHOOK_SECRET],
            recorded_amount=recorded_amount,
            provider_objects=example_api.object_count,
            second_worker=lambda: example_manager(example_api.base_url),
            pay=pay,
            payment_method="pm_card_ok",
            signed_webhook=signed_webhook,
            transport_fault=transport_fault,
            decline=lambda: "pm_decline",
            wrong_credentials=lambda: example_manager(
                example_api.base_url, {**ENVIRON, "EXAMPLE_API_KEY": "sk_example_wrong_5e7d"}
            ),
            short_answer=short_answer,
        )
