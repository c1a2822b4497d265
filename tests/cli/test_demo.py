"""`gateway demo` in process: it must fail loudly when the flow misbehaves, and cope with what providers may omit."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import attrs
import pytest
import structlog

from gateway_core import CheckoutSession, GatewayError, WebhookEvent, WebhookVerificationFailed, hookimpl
from gateway_core.cli import main
from gateway_core.demo import DemoFailed, Report, run_demo
from gateway_core.fake import FakeGateway
from gateway_core.models import EventType


@pytest.fixture(autouse=True)
def _keep_logging() -> Iterator[None]:
    """main() configures structlog as an application does; put the suite's configuration back."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


class BelievesEverything:
    """A wrapper that turns a refused webhook into a believed one: verification made useless."""

    @hookimpl(wrapper=True)
    def gateway_parse_webhook(self, context: Any) -> Generator[None, WebhookEvent, WebhookEvent]:
        try:
            return (yield)
        except WebhookVerificationFailed:
            return WebhookEvent(context.gateway, "evt_forged", EventType.PAYMENT_SUCCEEDED, "payment.succeeded")


class NoExpiry:
    """A wrapper that drops the checkout's expiry, as a provider that reports none would."""

    @hookimpl(wrapper=True)
    def gateway_create_checkout(self) -> Generator[None, CheckoutSession, CheckoutSession]:
        session = yield
        return attrs.evolve(session, expires_at=None)


def test_the_demo_fails_when_a_tampered_webhook_is_believed() -> None:
    report = Report()
    with pytest.raises(DemoFailed, match=r"a tampered webhook was accepted .* webhook verification is broken"):
        run_demo(report, plugins=[BelievesEverything()])
    assert not any(s["text"].startswith("Tampered webhook refused") for s in report.steps)
    assert isinstance(DemoFailed("x"), GatewayError)  # so the CLI prints one line and exits 1


def test_the_cli_demo_exits_one_when_verification_is_broken(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(FakeGateway, "verify", lambda self, header, body: None)
    with pytest.raises(SystemExit) as info:
        main(["demo"])
    assert info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: demo: a tampered webhook was accepted")


def test_the_demo_copes_with_a_checkout_without_expiry() -> None:
    report = Report()
    run_demo(report, plugins=[NoExpiry()])
    texts = [s["text"] for s in report.steps]
    assert any(t.startswith("Checkout fake_cs_") and t.endswith("no expiry set by the provider") for t in texts)
    assert texts[-1] == "Demo complete: no keys, no network, nothing live."


def test_a_plain_echo_still_prints_numbered_steps() -> None:
    lines: list[str] = []
    run_demo(lines.append)
    assert lines[0] == "[ 1] Gateways configured: cards, wallet"
    assert "      excluded wallet: HUF not offered" in lines
