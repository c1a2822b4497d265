"""Routing: eligible gateways in order, a reason for every other one, minimums, and core-side checks."""

from __future__ import annotations

import pytest

from gateway_core import (
    AmountOutOfRange,
    AuthorizeRequest,
    Capabilities,
    CapabilityNotSupported,
    CaptureRequest,
    CheckoutRequest,
    CurrencyRule,
    Exclusion,
    Feature,
    GatewayManager,
    InvalidAmount,
    Money,
    RefundRequest,
    Router,
    UnknownGateway,
    UnsupportedCurrency,
)
from gateway_core.fake import default_capabilities, provider
from gateway_core.routing import RouteEntry

from .conftest import SOURCE, build_manager, fake, fake_table


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


NO_REFUNDS = default_capabilities(
    currencies=["EUR", "HUF"],
    features=set(Feature) - {Feature.REFUND, Feature.PARTIAL_REFUND, Feature.MULTIPLE_REFUNDS},
)


@pytest.fixture
def manager() -> GatewayManager:
    """``eu_main`` (EUR, 1.00 minimum, first), ``eu_backup`` (EUR+USD, 0.50 minimum), ``no_refund`` (EUR+HUF, last)."""
    return build_manager(
        {
            "no_refund": {"provider": "fake-norefund", "priority": 30, "settings": {"test_mode": True}},
            "eu_backup": fake_table(currencies=["EUR", "USD"], priority=20, settings={"minimums": {"EUR": "0.50"}}),
            "eu_main": fake_table(currencies=["EUR"], priority=10, settings={"minimums": {"EUR": "1.00"}}),
        },
        plugins=[provider("fake-norefund", NO_REFUNDS)],
    )


def reasons(excluded: tuple[Exclusion, ...]) -> dict[str, str]:
    return {e.gateway: e.reason for e in excluded}


def test_gateways_are_ordered_by_priority(manager: GatewayManager) -> None:
    assert manager.gateway_names() == ("eu_main", "eu_backup", "no_refund")
    decision = manager.route(eur("2.00"))
    assert decision.eligible == ("eu_main", "eu_backup", "no_refund")
    assert decision.excluded == ()
    assert decision.best == "eu_main"


def test_every_exclusion_has_a_reason(manager: GatewayManager) -> None:
    decision = manager.route(eur("0.30"))
    assert decision.eligible == ("no_refund",)
    assert reasons(decision.excluded) == {
        "eu_main": "0.30 EUR is below the 1.00 EUR minimum",
        "eu_backup": "0.30 EUR is below the 0.50 EUR minimum",
    }
    assert str(decision.excluded[1]) == "eu_backup: 0.30 EUR is below the 0.50 EUR minimum"


def test_a_currency_not_offered_is_a_reason(manager: GatewayManager) -> None:
    decision = manager.route(Money.of("1000", "HUF"))
    assert decision.eligible == ("no_refund",)
    assert reasons(decision.excluded) == {"eu_main": "HUF not offered", "eu_backup": "HUF not offered"}


def test_a_missing_feature_is_a_reason(manager: GatewayManager) -> None:
    decision = manager.route(eur("2.00"), features=[Feature.REFUND, Feature.PARTIAL_REFUND])
    assert decision.eligible == ("eu_main", "eu_backup")
    assert reasons(decision.excluded) == {"no_refund": "lacks partial_refund, refund"}
    assert decision.features == frozenset({Feature.REFUND, Feature.PARTIAL_REFUND})


def test_best_without_an_eligible_gateway_lists_every_reason(manager: GatewayManager) -> None:
    decision = manager.route(eur("0.30"), features=[Feature.REFUND])
    assert decision.eligible == ()
    with pytest.raises(AmountOutOfRange) as info:
        _ = decision.best
    message = str(info.value)
    assert "no gateway can take 0.30 EUR" in message
    assert "eu_main: 0.30 EUR is below the 1.00 EUR minimum" in message
    assert "eu_backup: 0.30 EUR is below the 0.50 EUR minimum" in message
    assert "no_refund: lacks refund" in message


def test_best_for_a_currency_nobody_offers_is_unsupported(manager: GatewayManager) -> None:
    with pytest.raises(UnsupportedCurrency, match="no gateway offers JPY"):
        _ = manager.route(Money.of("500", "JPY")).best


def test_routing_over_chosen_gateways_keeps_priority_order(manager: GatewayManager) -> None:
    decision = manager.route(eur("2.00"), gateways=["no_refund", "eu_main"])
    assert decision.eligible == ("eu_main", "no_refund")
    with pytest.raises(UnknownGateway, match="no gateway named nope"):
        manager.route(eur("2.00"), gateways=["eu_main", "nope"])


def test_minimum_price_across_gateways(manager: GatewayManager) -> None:
    assert manager.minimum_price("EUR") == eur("0.01")  # no_refund takes any positive amount
    assert manager.minimum_price("EUR", gateways=["eu_main", "eu_backup"]) == eur("0.50")
    assert manager.minimum_price("EUR", gateways=["eu_main"]) == eur("1.00")
    assert manager.minimum_price("USD") == Money.of("0.01", "USD")
    assert manager.minimum_price("JPY") is None


def test_round_up_to_the_chosen_gateway(manager: GatewayManager) -> None:
    assert manager.round_up(eur("0.30"), "eu_backup") == eur("0.50")
    assert manager.round_up(eur("0.30"), "eu_main") == eur("1.00")
    assert manager.round_up(eur("0.30"), "no_refund") == eur("0.30")
    assert manager.round_up(eur("7.25"), "eu_main") == eur("7.25")
    with pytest.raises(UnsupportedCurrency, match="HUF not offered"):
        manager.round_up(Money.of("100", "HUF"), "eu_main")
    with pytest.raises(UnknownGateway):
        manager.round_up(eur("1"), "nope")


def test_router_round_up_to_minimum_then_step_and_refused_above_the_maximum() -> None:
    stripe_like = Capabilities(
        currencies=[
            CurrencyRule.iso("EUR", minimum="0.50", maximum="999999.99"),
            CurrencyRule("ISK", 2, 100),  # whole krona
            CurrencyRule("KWD", 3, 10, minimum=Money.of("0.200", "KWD")),
        ],
        features={Feature.HOSTED_CHECKOUT},
        sources=[SOURCE],
    )
    router = Router([RouteEntry("stripe", stripe_like)])
    assert router.round_up(eur("0.30"), "stripe") == eur("0.50")
    assert router.round_up(Money.of("1501", "ISK"), "stripe") == Money.of("1501", "ISK")
    assert router.round_up(Money.of("0.201", "KWD"), "stripe") == Money.of("0.210", "KWD")
    with pytest.raises(AmountOutOfRange, match=r"above the 999999\.99 EUR maximum"):
        router.round_up(eur("1000000"), "stripe")
    decision = router.route(Money.of("1.001", "KWD"))
    assert reasons(decision.excluded) == {"stripe": "1.001 KWD is not a multiple of 0.010 KWD"}


def test_equal_priorities_keep_configuration_order() -> None:
    manager = build_manager({"b": fake_table(), "a": fake_table(), "c": fake_table(priority=1)})
    assert manager.gateway_names() == ("c", "b", "a")
    assert manager.route(eur("1")).eligible == ("c", "b", "a")


# --------------------------------------------------------------------------------------------
# The core checks currency and amount before any plugin is called
# --------------------------------------------------------------------------------------------


def test_amount_and_currency_are_checked_before_the_provider_sees_anything(manager: GatewayManager) -> None:
    main, backup = fake(manager, "eu_main"), fake(manager, "eu_backup")
    below = CheckoutRequest.single("t", eur("0.30"), "https://s.example", "https://c.example")
    with pytest.raises(AmountOutOfRange, match=r"0\.30 EUR is below the 0\.50 EUR minimum") as info:
        manager.create_checkout("eu_backup", below, idempotency_key="k1")
    assert info.value.gateway == "eu_backup"
    with pytest.raises(AmountOutOfRange):
        manager.authorize("eu_main", AuthorizeRequest(eur("0.99"), "pm"), idempotency_key="k2")
    with pytest.raises(UnsupportedCurrency, match="HUF not offered") as info2:
        manager.authorize("eu_main", AuthorizeRequest(Money.of("1000", "HUF"), "pm"), idempotency_key="k3")
    assert info2.value.gateway == "eu_main"
    with pytest.raises(UnsupportedCurrency):
        manager.refund("eu_main", RefundRequest("fake_pi_x", Money.of("1", "USD")), idempotency_key="k4")
    with pytest.raises(UnsupportedCurrency):
        manager.capture("eu_main", CaptureRequest("fake_pi_x", Money.of("1", "USD")), idempotency_key="k5")
    assert main.requests == []
    assert backup.requests == []
    assert main.payments_made() == backup.payments_made() == 0


def test_off_step_amounts_are_refused_before_the_provider_sees_anything() -> None:
    kwd = Capabilities(
        currencies=[CurrencyRule("KWD", 3, 10, minimum=Money.of("0.200", "KWD"))],
        features=set(Feature),
        sources=[SOURCE],
        live=False,
    )
    manager = build_manager(
        {"k": {"provider": "fake-kwd", "settings": {"test_mode": True}}}, plugins=[provider("fake-kwd", kwd)]
    )
    k = fake(manager, "k")
    with pytest.raises(InvalidAmount, match=r"1\.001 KWD is not a multiple of 0\.010 KWD"):
        manager.authorize("k", AuthorizeRequest(Money.of("1.001", "KWD"), "pm"), idempotency_key="a0")
    auth = manager.authorize("k", AuthorizeRequest(Money.of("1.010", "KWD"), "pm"), idempotency_key="a1")
    with pytest.raises(InvalidAmount, match=r"0\.105 KWD is not a multiple of 0\.010 KWD"):
        manager.capture("k", CaptureRequest(auth.id, Money.of("0.105", "KWD")), idempotency_key="c0")
    manager.capture("k", CaptureRequest(auth.id), idempotency_key="c1")
    with pytest.raises(InvalidAmount, match=r"0\.005 KWD is not a multiple of 0\.010 KWD"):
        manager.refund("k", RefundRequest(auth.id, Money.of("0.005", "KWD")), idempotency_key="r0")
    # a partial refund below the charge minimum is fine: minimums bound charges, not refunds
    refund = manager.refund("k", RefundRequest(auth.id, Money.of("0.010", "KWD")), idempotency_key="r1")
    assert refund.amount == Money.of("0.010", "KWD")
    assert [op for op, _ in k.requests] == ["authorize", "capture", "refund"]


def test_best_when_only_features_are_missing_is_capability_not_supported(manager: GatewayManager) -> None:
    # HUF: two gateways do not offer it, the one that does cannot refund; the amount is not at fault
    decision = manager.route(Money.of("1000", "HUF"), features=[Feature.REFUND])
    with pytest.raises(CapabilityNotSupported) as info:
        _ = decision.best
    assert "no gateway offering HUF supports refund" in str(info.value)
    assert "no_refund: lacks refund" in str(info.value)
    assert not isinstance(info.value, AmountOutOfRange)
