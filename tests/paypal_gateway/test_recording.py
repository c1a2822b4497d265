"""Recording with the shared vcr config never writes a credential or token (checked by recording the stand-in)."""

from __future__ import annotations

from pathlib import Path

import vcr  # type: ignore[import-untyped]

from gateway_core.manager import GatewayManager
from gateway_core.money import Money
from tests.paypal_gateway import recording
from tests.paypal_gateway.conftest import CLIENT_ID, CLIENT_SECRET, StandIn
from tests.paypal_gateway.test_checkout import checkout


def test_a_recorded_cassette_holds_no_secret_or_token(
    manager: GatewayManager, standin: StandIn, tmp_path: Path
) -> None:
    path = tmp_path / "recorded.yaml"
    with vcr.VCR(record_mode="all", **recording.vcr_config()).use_cassette(str(path)):
        checkout(manager, Money.of("10.00", "EUR"))
    text = path.read_text()
    assert "/v1/oauth2/token" in text
    assert "REDACTED" in text
    for secret in (CLIENT_ID, CLIENT_SECRET, "A21AA"):
        assert secret not in text
    import base64

    assert base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode() not in text
