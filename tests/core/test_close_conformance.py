"""The conformance suite's lifecycle tests fail a plugin whose gateway_close breaks the contract.

Each variant is a plugin's gateway object in front of the honest fake provider (as in
``tests/testing/test_conformance_catches.py``), with a ``gateway_close`` that is not idempotent,
talks to the provider, or fails; the same tests pass an honest one.
"""

from __future__ import annotations

import contextlib

import pytest

from gateway_core import GatewayError, OperationContext, VoidRequest, hookimpl
from gateway_core.fake import FakeGateway
from gateway_core.testing import conformance
from tests.testing.fake_harness import NARROWED, FakeClient, fake_harness

Failed = pytest.fail.Exception
CAUGHT = (AssertionError, Failed)


class ClosesCleanly(FakeClient):
    """Releases what it holds; a second close does nothing."""

    closes = 0

    @hookimpl
    def gateway_close(self) -> None:
        type(self).closes += 1


class ClosesOnlyOnce(FakeClient):
    """Raises "already closed" when closed again."""

    def __init__(self, provider: FakeGateway) -> None:
        super().__init__(provider)
        self.open = True

    @hookimpl
    def gateway_close(self) -> None:
        if not self.open:
            raise RuntimeError("session already closed")
        self.open = False


class SaysGoodbye(FakeClient):
    """Tells the provider it is going (a logout, a token revocation): closing must send nothing."""

    @hookimpl
    def gateway_close(self) -> None:
        with contextlib.suppress(GatewayError):  # what the provider answers does not matter: it was asked
            self.provider.gateway_void(VoidRequest("goodbye"), OperationContext(self.name, "fake", "void", "bye"))


class FailsToClose(FakeClient):
    @hookimpl
    def gateway_close(self) -> None:
        raise OSError("could not close the pool")


def harness(client: type[FakeClient]) -> conformance.ConformanceHarness:
    return fake_harness(NARROWED, client=client)


def test_an_honest_close_passes_both_lifecycle_tests() -> None:
    suite = conformance.LifecycleConformance()
    ClosesCleanly.closes = 0
    suite.test_closing_after_an_operation_sends_nothing_and_can_be_repeated(harness(ClosesCleanly))
    suite.test_closing_a_gateway_that_never_ran_an_operation_sends_nothing(harness(ClosesCleanly))
    assert ClosesCleanly.closes == 4  # the manager's close and the suite's second call, in each test


@pytest.mark.parametrize(
    "test",
    [
        conformance.LifecycleConformance.test_closing_after_an_operation_sends_nothing_and_can_be_repeated,
        conformance.LifecycleConformance.test_closing_a_gateway_that_never_ran_an_operation_sends_nothing,
    ],
)
@pytest.mark.parametrize(
    ("client", "message"),
    [
        (ClosesOnlyOnce, "a second gateway_close raised RuntimeError"),
        (SaysGoodbye, "sent a request to the provider"),
        (FailsToClose, "closing the manager failed"),
    ],
)
def test_a_close_that_breaks_the_contract_is_caught(test: object, client: type[FakeClient], message: str) -> None:
    with pytest.raises(CAUGHT, match=message):
        test(conformance.LifecycleConformance(), harness(client))  # type: ignore[operator]
