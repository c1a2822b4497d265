"""Refusals before anything is sent are logged like any operation; routing inputs are checked."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from decimal import Decimal

import pytest
import structlog.testing

from gateway_core import (
    AsyncGatewayManager,
    AuthorizeRequest,
    Capabilities,
    CapabilityNotSupported,
    CaptureRequest,
    CheckoutRequest,
    CurrencyRule,
    DeploymentConfig,
    Feature,
    GatewayManager,
    InvalidAmount,
    InvalidCurrency,
    InvalidRequest,
    Money,
    RefundRequest,
    UnsupportedCurrency,
)
from gateway_core.fake import default_capabilities, provider
from gateway_core.fake.gateway import FakeGateway


@pytest.fixture
def manager() -> GatewayManager:
    lite = provider("fake-lite", default_capabilities(["EUR"], features=[Feature.AUTHORIZE_CAPTURE]))
    config = DeploymentConfig.from_mapping(
        {
            "gateways": {
                "fake": {"provider": "fake", "currencies": ["EUR"], "settings": {"test_mode": True}},
                "lite": {"provider": "fake-lite", "settings": {"test_mode": True}},
            }
        }
    )
    return GatewayManager(config, plugins=[lite])


def checkout(currency: str = "EUR") -> CheckoutRequest:
    return CheckoutRequest.single("T", Money.of("10", currency), "https://h.example/a", "https://h.example/b")


def test_a_refused_operation_logs_one_refused_line_and_sends_nothing(manager: GatewayManager) -> None:
    fake = manager.gateway_object("fake")
    assert isinstance(fake, FakeGateway)
    with structlog.testing.capture_logs() as logs:
        with pytest.raises(UnsupportedCurrency):
            manager.create_checkout("fake", checkout("USD"), idempotency_key="k1")
        with pytest.raises(InvalidRequest, match="pass idempotency_key= or operation_id="):
            manager.refund("fake", RefundRequest("fake_pi_1"))
    assert [(e["event"], e["gateway"], e["code"]) for e in logs] == [
        ("gateway.checkout.refused", "fake", "unsupported_currency"),
        ("gateway.refund.refused", "fake", "invalid_request"),
    ]
    assert fake.requests == []


def test_a_capability_refusal_is_logged_too(manager: GatewayManager) -> None:
    with structlog.testing.capture_logs() as logs, pytest.raises(CapabilityNotSupported):
        manager.create_checkout("lite", checkout(), idempotency_key="k2")
    assert logs[0]["event"] == "gateway.checkout.refused"
    assert logs[0]["error"] == "CapabilityNotSupported"


def test_route_refuses_a_single_string_for_gateways(manager: GatewayManager) -> None:
    with pytest.raises(InvalidRequest, match="not one str"):
        manager.route(Money.of("10", "EUR"), gateways="fake")
    assert manager.route(Money.of("10", "EUR"), gateways=["fake"]).eligible == ("fake",)


@pytest.mark.parametrize("features", ["refund", Feature.REFUND])
def test_route_refuses_a_single_string_for_features(manager: GatewayManager, features: str) -> None:
    with pytest.raises(InvalidRequest, match="not one str"):
        manager.route(Money.of("10", "EUR"), features)  # type: ignore[arg-type]


def test_route_refuses_an_unknown_feature_and_takes_known_names(manager: GatewayManager) -> None:
    with pytest.raises(InvalidRequest, match=r"unknown feature in \['refnd'\]; known: hosted_checkout"):
        manager.route(Money.of("10", "EUR"), ["refnd"])  # type: ignore[list-item]
    by_name = manager.route(Money.of("10", "EUR"), ["refund"])  # type: ignore[list-item]
    assert by_name.features == frozenset({Feature.REFUND})
    assert by_name.eligible == ("fake",)


def test_minimum_price_of_a_malformed_code_is_an_error_not_none(manager: GatewayManager) -> None:
    with pytest.raises(InvalidCurrency, match="did you mean 'EUR'"):
        manager.minimum_price("eur")
    assert manager.minimum_price("JPY") is None  # a real currency nobody offers
    assert manager.minimum_price("EUR") == Money.of("0.01", "EUR")


@pytest.mark.parametrize(
    ("call", "said"),
    [
        (lambda m: m.route(1.5), "amount must be Money, not float"),
        (lambda m: m.route(Decimal("10")), "amount must be Money, not Decimal"),
        (lambda m: m.round_up(1.5, "fake"), "amount must be Money, not float"),
        (
            lambda m: m.route(Money.of("10", "EUR"), None),
            "features must be a collection of Feature values, not NoneType",
        ),
        (
            lambda m: m.route(Money.of("10", "EUR"), gateways=5),
            "gateways must be a collection of names or None, not int",
        ),
        (lambda m: m.route(Money.of("10", "EUR"), gateways=[1]), "gateway names must be str, not int"),
        (lambda m: m.round_up(Money.of("10", "EUR"), ["fake"]), "a gateway name must be a str, not list"),
        (lambda m: m.payment_status(["fake"], "fake_pi_1"), "a gateway name must be a str, not list"),
    ],
    ids=[
        "float",
        "decimal",
        "round_up",
        "features-none",
        "gateways-int",
        "gateway-name-int",
        "round_up-list",
        "status-list",
    ],
)
def test_routing_refuses_what_is_not_money_or_names_with_invalid_request(
    manager: GatewayManager, call: Callable[[GatewayManager], object], said: str
) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(said)):
        call(manager)


def test_an_operation_id_that_is_not_text_is_a_logged_refusal(manager: GatewayManager) -> None:
    fake = manager.gateway_object("fake")
    assert isinstance(fake, FakeGateway)
    with structlog.testing.capture_logs() as logs, pytest.raises(InvalidRequest) as info:
        manager.refund("fake", RefundRequest("fake_pi_1"), operation_id="order-1-\ud800")
    assert "operation_id must be valid Unicode text" in str(info.value)
    assert "order-1" not in str(info.value)
    assert [(e["event"], e["code"]) for e in logs] == [("gateway.refund.refused", "invalid_request")]
    assert fake.requests == []


def _wrong_requests() -> list[tuple[str, object]]:
    pi = "fake_pi_1"
    eur = Money.of("4", "EUR")
    return [
        ("create_checkout", None),
        ("create_checkout", "fake_cs_1"),
        ("authorize", checkout()),
        ("capture", RefundRequest(pi, eur)),  # has payment_id and amount: it would capture 4 EUR
        ("refund", CaptureRequest(pi, eur)),  # it would refund, then fail reading .reason
        ("refund", pi),  # the payment id instead of a RefundRequest
        ("void", RefundRequest(pi)),
    ]


@pytest.mark.parametrize(
    ("operation", "request_"), _wrong_requests(), ids=[f"{op}-{type(r).__name__}" for op, r in _wrong_requests()]
)
def test_a_request_of_the_wrong_type_is_a_logged_refusal_that_sends_nothing(
    manager: GatewayManager, operation: str, request_: object
) -> None:
    fake = manager.gateway_object("fake")
    assert isinstance(fake, FakeGateway)
    expected = {
        "create_checkout": "CheckoutRequest",
        "authorize": "AuthorizeRequest",
        "capture": "CaptureRequest",
        "refund": "RefundRequest",
        "void": "VoidRequest",
    }[operation]
    said = f"{operation} takes a {expected}, not {type(request_).__name__}"
    event = f"gateway.{operation.removeprefix('create_')}.refused"
    with structlog.testing.capture_logs() as logs, pytest.raises(InvalidRequest, match=re.escape(said)):
        getattr(manager, operation)("fake", request_, operation_id="op-1")

    async def run() -> None:
        async with AsyncGatewayManager(manager) as aio:
            await getattr(aio, operation)("fake", request_, operation_id="op-1")

    with structlog.testing.capture_logs() as async_logs, pytest.raises(InvalidRequest, match=re.escape(said)):
        asyncio.run(run())
    for lines in (logs, async_logs):
        assert [(e["event"], e["code"]) for e in lines] == [(event, "invalid_request")]
    assert fake.requests == []


def test_an_application_fee_off_the_wire_step_is_a_logged_refusal() -> None:
    # Stripe takes KWD in multiples of 10 fils: a 0.005 KWD fee cannot be sent, whatever the total
    kwd = Capabilities(
        currencies=[CurrencyRule("KWD", 3, 10)],
        features=[Feature.HOSTED_CHECKOUT, Feature.AUTHORIZE_CAPTURE, Feature.APPLICATION_FEE],
        sources=default_capabilities().sources,
        live=False,
    )
    config = DeploymentConfig.from_mapping(
        {"gateways": {"kwd": {"provider": "fake-kwd", "settings": {"test_mode": True}}}}
    )
    manager = GatewayManager(config, plugins=[provider("fake-kwd", kwd)], load_entry_points=False)
    fake = manager.gateway_object("kwd")
    assert isinstance(fake, FakeGateway)
    total, fee = Money.of("5.000", "KWD"), Money.of("0.005", "KWD")
    said = "application_fee 0.005 KWD is not a multiple of 0.010 KWD"
    with structlog.testing.capture_logs() as logs:
        with pytest.raises(InvalidAmount, match=re.escape(said)):
            manager.create_checkout(
                "kwd",
                CheckoutRequest.single("T", total, "https://h.example/a", "https://h.example/b", application_fee=fee),
                operation_id="c",
            )
        with pytest.raises(InvalidAmount, match=re.escape(said)):
            manager.authorize("kwd", AuthorizeRequest(total, "pm_1", application_fee=fee), operation_id="a")
    assert [e["event"] for e in logs] == ["gateway.checkout.refused", "gateway.authorize.refused"]
    assert fake.requests == []
    on_step = AuthorizeRequest(total, "pm_1", application_fee=Money.of("0.010", "KWD"))
    assert manager.authorize("kwd", on_step, operation_id="a2").amount == total
