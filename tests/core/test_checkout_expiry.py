"""A requested checkout expiry is checked by the core against the window the gateway declares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import gateway_core.fake
from gateway_core import (
    Capabilities,
    CapabilityNotSupported,
    CheckoutExpiry,
    CheckoutRequest,
    ConfigurationError,
    DeploymentConfig,
    GatewayManager,
    InvalidRequest,
    Money,
    PluginLoadError,
)
from gateway_core.fake import ANY_EXPIRY, default_capabilities, provider
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


# --------------------------------------------------------------------------------------------
# A deployment declares its provider's window: the fake's checkout_expiry_minutes setting
# --------------------------------------------------------------------------------------------


def fake_manager(settings: dict[str, object], capabilities: Capabilities | None = None) -> GatewayManager:
    config = DeploymentConfig.from_mapping(
        {"gateways": {"g": {"provider": "fake", "settings": {"test_mode": True, **settings}}}}
    )
    return GatewayManager(config, plugins=[provider("fake", capabilities)], load_entry_points=False, clock=lambda: NOW)


def test_checkout_expiry_minutes_narrows_the_fake_to_a_stripe_like_window(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(
        '[gateways.g]\nprovider = "fake"\n[gateways.g.settings]\ntest_mode = true\n'
        "checkout_expiry_minutes = [30, 1440]\n",
        encoding="utf-8",
    )
    manager = GatewayManager.from_toml(
        path, plugins=[gateway_core.fake], load_entry_points=False, environ={}, clock=lambda: NOW
    )
    assert manager.gateway("g").capabilities.checkout_expiry == STRIPE_LIKE
    assert manager.gateway("g").declared.checkout_expiry == ANY_EXPIRY  # the provider's own figure is kept
    with pytest.raises(InvalidRequest, match="between 30 min and 24 h from now"):
        manager.create_checkout("g", checkout(NOW + timedelta(minutes=10)), idempotency_key="k")
    assert sent(manager, "g") == 0
    session = manager.create_checkout("g", checkout(NOW + timedelta(hours=2)), idempotency_key="k2")
    assert session.expires_at == NOW + timedelta(hours=2)


def test_checkout_expiry_minutes_false_makes_the_fake_take_no_expiry() -> None:
    manager = fake_manager({"checkout_expiry_minutes": False})
    assert manager.gateway("g").capabilities.checkout_expiry is None
    with pytest.raises(CapabilityNotSupported, match="takes no checkout expiry"):
        manager.create_checkout("g", checkout(NOW + timedelta(hours=1)), idempotency_key="k")
    assert sent(manager, "g") == 0


def test_without_the_setting_the_fake_keeps_its_declared_window() -> None:
    manager = fake_manager({})
    assert manager.gateway("g").capabilities.checkout_expiry == ANY_EXPIRY
    assert manager.create_checkout("g", checkout(NOW + timedelta(days=30)), idempotency_key="k").url


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("30..1440", "not str"),
        ([30], "not a list of 1"),
        ([30, 60, 90], "not a list of 3"),
        ([True, 60], "not a list of 2"),
        ([30, "60"], "not a list of 2"),
        (30, "not int"),
        (True, "not bool"),
        ([60, 30], "is not a window"),
        ([-5, 30], "is not a window"),
        ([30, 30], "is not a window"),
    ],
)
def test_a_bad_checkout_expiry_minutes_is_a_configuration_error(value: object, said: str) -> None:
    with pytest.raises(ConfigurationError, match="checkout_expiry_minutes") as info:
        fake_manager({"checkout_expiry_minutes": value})
    assert said in str(info.value)
    assert info.value.gateway == "g"
    assert not isinstance(info.value, PluginLoadError)


def test_settings_cannot_widen_the_declared_window() -> None:
    with pytest.raises(ConfigurationError, match="may only narrow") as info:
        fake_manager(
            {"checkout_expiry_minutes": [10, 1440]}, default_capabilities(["EUR"], checkout_expiry=STRIPE_LIKE)
        )
    assert "widens the checkout expiry window to 10 min..24 h (declared: 30 min..24 h)" in str(info.value)
    with pytest.raises(ConfigurationError, match=r"\(declared: none\)"):
        fake_manager({"checkout_expiry_minutes": [30, 60]}, default_capabilities(["EUR"], checkout_expiry=None))
    inside = fake_manager(
        {"checkout_expiry_minutes": [60, 120]}, default_capabilities(["EUR"], checkout_expiry=STRIPE_LIKE)
    )
    assert inside.gateway("g").capabilities.checkout_expiry == CheckoutExpiry.minutes(60, 120)


def test_two_instances_of_the_fake_have_their_own_windows() -> None:
    config = DeploymentConfig.from_mapping(
        {
            "gateways": {
                "stripe-like": {
                    "provider": "fake",
                    "settings": {"test_mode": True, "checkout_expiry_minutes": [30, 1440]},
                },
                "paypal-like": {"provider": "fake", "settings": {"test_mode": True, "checkout_expiry_minutes": False}},
            }
        }
    )
    manager = GatewayManager(config, plugins=[gateway_core.fake], load_entry_points=False, clock=lambda: NOW)
    assert manager.gateway("stripe-like").capabilities.checkout_expiry == STRIPE_LIKE
    assert manager.gateway("paypal-like").capabilities.checkout_expiry is None
