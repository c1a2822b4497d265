"""The idempotency keys the recorded flows send: suffixed per run only when recording against the sandbox."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.paypal_gateway.test_cassettes import Keys

NAMES = ["cassette-checkout-1", "cassette-refunds-capture", "cassette-by-order-refund"]


@pytest.mark.parametrize(("target", "recording"), [("standin", True), ("standin", False), ("sandbox", False)])
def test_keys_are_the_names_unless_recording_against_the_sandbox(target: str, recording: bool) -> None:
    keys = Keys.for_run(target, recording=recording)
    assert [keys(name) for name in NAMES] == NAMES


def test_recording_against_the_sandbox_suffixes_every_key_once_per_run() -> None:
    """A second run must not send the first run's PayPal-Request-Ids (PayPal keeps them 6 h to 45 days)."""
    first, second = Keys.for_run("sandbox", recording=True), Keys.for_run("sandbox", recording=True)
    assert first.suffix
    assert second.suffix != first.suffix
    assert len({first(n) for n in NAMES}) == len(NAMES)  # distinct names stay distinct
    for name in NAMES:
        key = first(name)
        assert key.startswith(f"{name}-run-")
        assert key == first(name)  # stable within a run: a retry sends the same id
        assert key != second(name)
        assert len(key) <= 108  # sent to PayPal as it is, not hashed (paypal_request_id)


def test_every_key_the_recorded_flows_send_goes_through_backend_key() -> None:
    """No flow sends a fixed key that would bypass the per-run suffix."""
    tree = ast.parse((Path(__file__).parent / "test_cassettes.py").read_text())
    keyed = [
        k.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for k in node.keywords
        if k.arg == "idempotency_key"
    ]
    assert len(keyed) >= 10
    fixed = [ast.unparse(v) for v in keyed if not (isinstance(v, ast.Call) and ast.unparse(v.func) == "backend.key")]
    assert fixed == []
