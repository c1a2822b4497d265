"""The conformance suite's short-answer test fails a plugin that reads an answer carelessly.

The example plugin passes it (test_conformance.py); here its refund is put back as it was before
``reading_answer``, and the same test must fail for the right reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from example_gateway.gateway import ExampleGateway, _from_wire
from example_gateway.stand_in import ExamplePaymentsAPI

from gateway_core import GatewayManager, OperationContext, Refund, RefundRequest, RefundStatus, hookimpl
from gateway_core.testing.conformance import ConformanceHarness, ErrorConformance
from tests.example_gateway.conftest import example_manager


def test_the_suite_fails_a_refund_read_outside_reading_answer(
    example_api: ExamplePaymentsAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The suite's short-answer test can fail: here for the example's refund as it was before reading_answer."""

    @hookimpl
    def careless_refund(self: ExampleGateway, request: RefundRequest, context: OperationContext) -> Refund:
        path = f"/v1/payments/{request.payment_id}/refunds"
        obj = self._send("POST", path, {"reason": request.reason}, key=context.idempotency_key)
        return Refund(self.name, obj["id"], obj["payment_id"], _from_wire(obj), RefundStatus(obj["status"]))

    monkeypatch.setattr(ExampleGateway, "gateway_refund", careless_refund)
    manager = example_manager(example_api.base_url)

    @contextmanager
    def cut() -> Iterator[GatewayManager]:
        example_api.cut_next("id")
        yield manager

    harness = ConformanceHarness(
        manager=manager,
        gateway="example",
        requests_sent=lambda: len(example_api.requests),
        provider_objects=example_api.object_count,
        pay=lambda session: example_api.pay_checkout(session.id),
        short_answer=lambda operation: cut(),
    )
    with pytest.raises(AssertionError, match="the plugin let KeyError escape unmapped"):
        ErrorConformance().test_a_refund_answered_without_its_id_is_outcome_unknown(harness)
