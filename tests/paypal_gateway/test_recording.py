"""Recording with the shared vcr config never writes a credential or token (checked by recording the stand-in)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import vcr  # type: ignore[import-untyped]

from gateway_core.manager import GatewayManager
from gateway_core.money import Money
from gateway_core.testing.recording import vcr_config
from tests.paypal_gateway.conftest import CLIENT_ID, CLIENT_SECRET, StandIn
from tests.paypal_gateway.test_checkout import checkout

CASSETTES = Path(__file__).parent / "cassettes"
#: What must never be in a cassette: the stand-in's credentials, as they are and as Basic auth,
#: and anything shaped like a PayPal access token.
LEAKS = (CLIENT_ID, CLIENT_SECRET, base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode(), "A21AA")


def test_a_recorded_cassette_holds_no_secret_or_token(
    manager: GatewayManager, standin: StandIn, tmp_path: Path
) -> None:
    path = tmp_path / "recorded.yaml"
    with vcr.VCR(record_mode="all", **vcr_config(secrets=[CLIENT_ID, CLIENT_SECRET])).use_cassette(str(path)):
        checkout(manager, Money.of("10.00", "EUR"))
    text = path.read_text()
    assert "/v1/oauth2/token" in text
    assert "REDACTED" in text
    assert [leak for leak in LEAKS if leak in text] == []


@pytest.mark.parametrize("cassette", sorted(CASSETTES.rglob("*.yaml")), ids=lambda p: p.name)
def test_committed_cassettes_hold_no_secret_or_token(cassette: Path) -> None:
    text = cassette.read_text()
    assert [leak for leak in LEAKS if leak in text] == []
    assert "Bearer " not in text
    assert "Basic " not in text
