"""A requested checkout expiry is checked by the core against the window the gateway declares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway_core import (
    CapabilityNotSupported,
    CheckoutExpiry,
    CheckoutRequest,
    ConfigurationError,
    DeploymentConfig,
    GatewayManager,
    InvalidRequest,
    Money,
)
from gateway_core.fake import default_capabilities, provider
from gateway_core.fake.gateway import FakeGateway

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STRIPE_LIKE = CheckoutExpiry(timedelta(minutes=30), timedelta(hours=24))


@pytest.fixture
def manager() -> GatewayManager:
    plugins = [
        provider("fake-windowed", default_capabilities(["EUR"], checkout_expiry=STRIPE_LIKE)),
        provider("fake-no-expiry", default_capabilities(["EUR"], checkout_expiry=None)),
    ]
    config = DeploymentConfig.from_mapping(
        {
            "gateways": {
                "windowed": {"provider": "fake-windowed", "settings": {"test_mode": True}},
                "fixed": {"provider": "fake-no-expiry", "settings": {"test_mode": True}},
            }
        }
    )
    return GatewayManager(config, plugins=plugins, load_entry_points=False, clock=lambda: NOW)


def checkout(expires_at: datetime | None) -> CheckoutRequest:
    return CheckoutRequest.single(
        "T", Money.of("10", "EUR"), "https://h.example/a", "https://h.example/b", expires_at=expires_at
    )


def sent(manager: GatewayManager, name: str) -> int:
    fake = manager.gateway_object(name)
    assert isinstance(fake, FakeGateway)
    return len(fake.requests)


@pytest.mark.parametrize("ahead", [timedelta(minutes=30), timedelta(hours=2), timedelta(hours=24)])
def test_an_expiry_inside_the_window_reaches_the_gateway(manager: GatewayManager, ahead: timedelta) -> None:
    session = manager.create_checkout("windowed", checkout(NOW + ahead), idempotency_key=f"k-{ahead}")
    assert session.expires_at == NOW + ahead


@pytest.mark.parametrize(
    ("ahead", "shown"),
    [(timedelta(minutes=29), "29 min away"), (timedelta(hours=25), "25 h away"), (timedelta(minutes=-5), "-5 min")],
)
def test_an_expiry_outside_the_window_is_refused_before_sending(
    manager: GatewayManager, ahead: timedelta, shown: str
) -> None:
    with pytest.raises(InvalidRequest, match=r"between 30 min and 24 h from now") as info:
        manager.create_checkout("windowed", checkout(NOW + ahead), idempotency_key="k")
    assert shown in str(info.value)
    assert info.value.gateway == "windowed"
    assert sent(manager, "windowed") == 0


def test_a_gateway_without_a_window_refuses_a_requested_expiry(manager: GatewayManager) -> None:
    with pytest.raises(CapabilityNotSupported, match="takes no checkout expiry"):
        manager.create_checkout("fixed", checkout(NOW + timedelta(hours=1)), idempotency_key="k")
    assert sent(manager, "fixed") == 0
    assert manager.create_checkout("fixed", checkout(None), idempotency_key="k2").url  # no expiry asked: fine


def test_the_window_is_validated() -> None:
    with pytest.raises(ConfigurationError):
        CheckoutExpiry(timedelta(hours=2), timedelta(hours=1))
    with pytest.raises(ConfigurationError):
        CheckoutExpiry(timedelta(minutes=-1), timedelta(hours=1))


@given(st.timedeltas(min_value=timedelta(days=-2), max_value=timedelta(days=3)))
def test_fit_always_lands_inside_the_window_with_its_margin(offset: timedelta) -> None:
    fitted = STRIPE_LIKE.fit(NOW + offset, NOW)
    assert STRIPE_LIKE.refusal(fitted, NOW) is None
    assert STRIPE_LIKE.refusal(fitted, NOW + timedelta(seconds=59)) is None  # still good a little later
    if timedelta(minutes=31) <= offset <= timedelta(hours=23, minutes=59):
        assert fitted == NOW + offset  # an expiry already inside is kept as it is
