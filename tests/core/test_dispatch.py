"""Dispatch: a call for one gateway reaches only that gateway (plus every wrapper), or nothing at all."""

from __future__ import annotations

from collections.abc import Callable, Generator

import pytest

from gateway_core import (
    AuthorizeRequest,
    CapabilityNotSupported,
    CaptureRequest,
    CheckoutRequest,
    CheckoutSession,
    CheckoutStatus,
    CheckResult,
    Feature,
    GatewayError,
    GatewayManager,
    GatewaySettings,
    Money,
    NotFound,
    OperationContext,
    PaymentDeclined,
    RefundRequest,
    UnknownGateway,
    VoidRequest,
    hookimpl,
)
from gateway_core.errors import ErrorCode
from gateway_core.fake import Outcome, default_capabilities, provider
from gateway_core.hookspecs import OPERATION_HOOKS

from .conftest import build_manager, caps, fake, fake_table, provider_plugin


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def checkout(amount: str = "10.00", **kwargs: object) -> CheckoutRequest:
    return CheckoutRequest.single("Ticket", eur(amount), "https://shop.example/ok", "https://shop.example/no", **kwargs)


class CheckoutOnly:
    """A provider's gateway object that implements only hosted checkout, and records every call."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.name = settings.name
        self.calls: list[OperationContext] = []
        self.error: BaseException | None = None
        self.returns: object = None

    @hookimpl
    def gateway_create_checkout(self, request: CheckoutRequest, context: OperationContext) -> object:
        self.calls.append(context)
        if self.error is not None:
            raise self.error
        if self.returns is not None:
            return self.returns
        return CheckoutSession(
            self.name, "cs_custom", "https://pay.example/cs", request.amount, CheckoutStatus.OPEN, None
        )


class Audit:
    """A cross-cutting plugin wrapping every operation hook, as an audit log or metrics plugin would."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def _record(self, context: OperationContext) -> Generator[None, object, object]:
        try:
            result = yield
        except Exception as exc:  # wrappers see the exception as the gateway object raised it
            self.seen.append((context.gateway, context.operation, type(exc).__name__))
            raise
        self.seen.append((context.gateway, context.operation, "ok"))
        return result

    @hookimpl(wrapper=True)
    def gateway_create_checkout(self, context: OperationContext) -> Generator[None, object, object]:
        return (yield from self._record(context))

    @hookimpl(wrapper=True)
    def gateway_authorize(self, context: OperationContext) -> Generator[None, object, object]:
        return (yield from self._record(context))

    @hookimpl(wrapper=True)
    def gateway_capture(self, context: OperationContext) -> Generator[None, object, object]:
        return (yield from self._record(context))

    @hookimpl(wrapper=True)
    def gateway_void(self, context: OperationContext) -> Generator[None, object, object]:
        return (yield from self._record(context))

    @hookimpl(wrapper=True)
    def gateway_refund(self, context: OperationContext) -> Generator[None, object, object]:
        return (yield from self._record(context))

    @hookimpl(wrapper=True)
    def gateway_payment_status(self, context: OperationContext) -> Generator[None, object, object]:
        return (yield from self._record(context))

    @hookimpl(wrapper=True)
    def gateway_parse_webhook(self, context: OperationContext) -> Generator[None, object, object]:
        return (yield from self._record(context))

    @hookimpl(wrapper=True)
    def gateway_check(self, context: OperationContext) -> Generator[None, object, object]:
        return (yield from self._record(context))


def test_audit_wraps_every_operation_hook() -> None:
    wrapped = {name for name in dir(Audit) if name.startswith("gateway_")}
    assert wrapped == set(OPERATION_HOOKS)


@pytest.fixture
def audit() -> Audit:
    return Audit()


@pytest.fixture
def mixed(audit: Audit) -> GatewayManager:
    """Two fakes and a checkout-only provider registered in code, all wrapped by ``audit``."""
    return build_manager(
        {"alpha": fake_table(), "beta": fake_table(), "custom": {"provider": "custom"}},
        plugins=[audit, provider_plugin("custom", CheckoutOnly)],
    )


def custom(manager: GatewayManager) -> CheckoutOnly:
    obj = manager.gateway_object("custom")
    assert isinstance(obj, CheckoutOnly)
    return obj


def test_each_call_reaches_only_its_gateway(mixed: GatewayManager) -> None:
    alpha, beta = fake(mixed, "alpha"), fake(mixed, "beta")

    session = mixed.create_checkout("alpha", checkout(), idempotency_key="a1")
    assert session.gateway == "alpha"
    assert [op for op, _ in alpha.requests] == ["checkout"]
    assert beta.requests == []
    assert custom(mixed).calls == []

    auth = mixed.authorize("beta", AuthorizeRequest(eur("5"), "pm_card_visa"), idempotency_key="b1")
    assert auth.gateway == "beta"
    mixed.capture("beta", CaptureRequest(auth.id), idempotency_key="b2")
    mixed.refund("beta", RefundRequest(auth.id), idempotency_key="b3")
    assert mixed.payment_status("beta", auth.id).gateway == "beta"
    assert [op for op, _ in beta.requests] == ["authorize", "capture", "refund"]
    assert [op for op, _ in alpha.requests] == ["checkout"]

    # alpha does not know beta's payment: the call really went to alpha alone
    with pytest.raises(NotFound) as info:
        mixed.payment_status("alpha", auth.id)
    assert info.value.gateway == "alpha"

    custom_session = mixed.create_checkout("custom", checkout(), idempotency_key="c1")
    assert custom_session.id == "cs_custom"
    assert [c.gateway for c in custom(mixed).calls] == ["custom"]
    assert [op for op, _ in alpha.requests] == ["checkout"]


def test_the_wrapper_sees_every_operation_of_every_gateway_including_failures(
    mixed: GatewayManager, audit: Audit
) -> None:
    alpha, beta = fake(mixed, "alpha"), fake(mixed, "beta")
    session = mixed.create_checkout("alpha", checkout(), idempotency_key="k1")
    alpha.complete_checkout(session.id)
    [paid, *_] = [d for d in alpha.drain_webhooks() if d.type == "payment.succeeded"]
    mixed.parse_webhook("alpha", paid.headers, paid.body)
    auth = mixed.authorize("beta", AuthorizeRequest(eur("5"), "pm_card_visa"), idempotency_key="k2")
    mixed.void("beta", VoidRequest(auth.id), idempotency_key="k3")
    beta.script(Outcome.DECLINE)
    with pytest.raises(PaymentDeclined):
        mixed.authorize("beta", AuthorizeRequest(eur("5"), "pm_card_visa"), idempotency_key="k4")
    with pytest.raises(NotFound):
        mixed.refund("alpha", RefundRequest("fake_pi_missing"), idempotency_key="k5")
    mixed.payment_status("alpha", session.id)
    mixed.create_checkout("custom", checkout(), idempotency_key="k6")
    custom(mixed).error = RuntimeError("boom")
    with pytest.raises(GatewayError):
        mixed.create_checkout("custom", checkout(), idempotency_key="k7")

    assert audit.seen == [
        ("alpha", "checkout", "ok"),
        ("alpha", "webhook", "ok"),
        ("beta", "authorize", "ok"),
        ("beta", "void", "ok"),
        ("beta", "authorize", "PaymentDeclined"),
        ("alpha", "refund", "NotFound"),
        ("alpha", "status", "ok"),
        ("custom", "checkout", "ok"),
        ("custom", "checkout", "RuntimeError"),  # wrapped into GatewayError only after the wrappers
    ]


def test_the_wrapper_sees_a_plugin_crash_as_it_happened() -> None:
    seen: list[BaseException] = []

    class CrashAudit:
        @hookimpl(wrapper=True)
        def gateway_create_checkout(self) -> Generator[None, object, object]:
            try:
                return (yield)
            except Exception as exc:
                seen.append(exc)
                raise

    manager = build_manager(
        {"custom": {"provider": "custom"}}, plugins=[CrashAudit(), provider_plugin("custom", CheckoutOnly)]
    )
    custom(manager).error = RuntimeError("boom")
    with pytest.raises(GatewayError):
        manager.create_checkout("custom", checkout(), idempotency_key="k")
    assert [type(e) for e in seen] == [RuntimeError]


def test_a_missing_hook_is_refused_before_anything_is_called(mixed: GatewayManager, audit: Audit) -> None:
    for call in (
        lambda: mixed.authorize("custom", AuthorizeRequest(eur("5"), "pm"), idempotency_key="k"),
        lambda: mixed.capture("custom", CaptureRequest("p"), idempotency_key="k"),
        lambda: mixed.void("custom", VoidRequest("p"), idempotency_key="k"),
        lambda: mixed.refund("custom", RefundRequest("p"), idempotency_key="k"),
        lambda: mixed.payment_status("custom", "p"),
        lambda: mixed.parse_webhook("custom", {}, b"{}"),
        lambda: mixed.check("custom"),
    ):
        with pytest.raises(CapabilityNotSupported) as info:
            call()
        assert info.value.gateway == "custom"
        assert info.value.code is ErrorCode.NOT_SUPPORTED
    assert custom(mixed).calls == []
    assert audit.seen == []


def test_the_message_names_the_missing_hook(mixed: GatewayManager) -> None:
    with pytest.raises(CapabilityNotSupported, match=r"gateway 'custom' \(custom\) does not implement gateway_refund"):
        mixed.refund("custom", RefundRequest("p"), idempotency_key="k")


def test_a_gateway_without_a_configuration_check_says_so(mixed: GatewayManager) -> None:
    with pytest.raises(CapabilityNotSupported, match="has no configuration check"):
        mixed.check("custom")
    assert custom(mixed).calls == []


def test_the_fakes_configuration_check_reaches_only_that_fake(mixed: GatewayManager) -> None:
    results = mixed.check("alpha")
    assert [(r.name, r.ok) for r in results] == [("test mode", True), ("webhook secret", True)]
    assert "'alpha'" in results[0].detail
    assert mixed.check("beta")[0].detail == "fake gateway 'beta' takes no real money"


LITE = default_capabilities(
    features={Feature.HOSTED_CHECKOUT, Feature.REFUND, Feature.PAYMENT_STATUS, Feature.WEBHOOKS}
)


@pytest.fixture
def lite() -> GatewayManager:
    """A fake whose provider declares only hosted checkout, whole refunds, status and webhooks."""
    return build_manager(
        {"lite": {"provider": "fake-lite", "settings": {"test_mode": True}}}, plugins=[provider("fake-lite", LITE)]
    )


def test_an_undeclared_feature_is_refused_even_when_the_object_has_the_hook(lite: GatewayManager) -> None:
    f = fake(lite, "lite")
    refusals: list[tuple[Callable[[], object], str]] = [
        (lambda: lite.authorize("lite", AuthorizeRequest(eur("5"), "pm"), idempotency_key="k"), "authorize_capture"),
        (lambda: lite.capture("lite", CaptureRequest("p"), idempotency_key="k"), "authorize_capture"),
        (lambda: lite.void("lite", VoidRequest("p"), idempotency_key="k"), "void"),
        (lambda: lite.refund("lite", RefundRequest("p", eur("1")), idempotency_key="k"), "partial_refund"),
        (lambda: lite.create_checkout("lite", checkout(capture=False), idempotency_key="k"), "authorize_capture"),
        (
            lambda: lite.create_checkout("lite", checkout(application_fee=eur("1")), idempotency_key="k"),
            "application_fee",
        ),
    ]
    for call, feature in refusals:
        with pytest.raises(CapabilityNotSupported, match=f"does not declare {feature}"):
            call()
    assert f.requests == []
    assert f.payments_made() == 0


def test_partial_capture_needs_the_feature() -> None:
    no_partial = default_capabilities(features=set(Feature) - {Feature.PARTIAL_CAPTURE})
    manager = build_manager(
        {"g": {"provider": "np", "settings": {"test_mode": True}}}, plugins=[provider("np", no_partial)]
    )
    auth = manager.authorize("g", AuthorizeRequest(eur("5"), "pm"), idempotency_key="a")
    with pytest.raises(CapabilityNotSupported, match="does not declare partial_capture"):
        manager.capture("g", CaptureRequest(auth.id, eur("2")), idempotency_key="c")
    assert [op for op, _ in fake(manager, "g").requests] == ["authorize"]
    assert manager.capture("g", CaptureRequest(auth.id), idempotency_key="c").amount == eur("5")


def test_an_unknown_gateway_is_named(mixed: GatewayManager) -> None:
    with pytest.raises(UnknownGateway, match=r"no gateway named 'gamma' \(configured: alpha, beta, custom\)"):
        mixed.create_checkout("gamma", checkout(), idempotency_key="k")
    assert issubclass(UnknownGateway, LookupError)


# --------------------------------------------------------------------------------------------
# What a plugin raises reaches the host as a GatewayError
# --------------------------------------------------------------------------------------------


def test_a_non_gateway_error_is_wrapped_with_the_gateway_named_and_the_original_as_cause(
    mixed: GatewayManager,
) -> None:
    original = RuntimeError("connection string postgres://admin:hunter2@db")
    custom(mixed).error = original
    with pytest.raises(GatewayError) as info:
        mixed.create_checkout("custom", checkout(), idempotency_key="k")
    exc = info.value
    assert type(exc) is GatewayError
    assert exc.gateway == "custom"
    assert exc.code is ErrorCode.PROVIDER_ERROR
    assert exc.retryable is False
    assert exc.__cause__ is original
    assert exc.unmapped is True
    assert "RuntimeError" in str(exc)
    for text in (str(exc), repr(exc), exc.message):
        assert "hunter2" not in text
        assert "postgres" not in text


@pytest.mark.parametrize(
    "error", [KeyError("k"), ValueError("v"), TypeError("t"), AttributeError("a"), ZeroDivisionError()]
)
def test_every_kind_of_plugin_bug_is_wrapped(mixed: GatewayManager, error: Exception) -> None:
    custom(mixed).error = error
    with pytest.raises(GatewayError) as info:
        mixed.create_checkout("custom", checkout(), idempotency_key="k")
    assert type(info.value) is GatewayError
    assert info.value.__cause__ is error


def test_a_gateway_error_without_a_gateway_gets_one(mixed: GatewayManager) -> None:
    custom(mixed).error = PaymentDeclined("declined", decline_code="do_not_honor")
    with pytest.raises(PaymentDeclined) as info:
        mixed.create_checkout("custom", checkout(), idempotency_key="k")
    assert info.value.gateway == "custom"
    assert info.value.decline_code == "do_not_honor"
    assert info.value.unmapped is False


def test_a_wrong_result_type_is_a_gateway_error(mixed: GatewayManager) -> None:
    custom(mixed).returns = "https://pay.example/cs"
    with pytest.raises(GatewayError, match="gateway_create_checkout returned str, expected CheckoutSession"):
        mixed.create_checkout("custom", checkout(), idempotency_key="k")


def test_the_context_tells_the_gateway_who_and_what(mixed: GatewayManager) -> None:
    mixed.create_checkout("custom", checkout(), idempotency_key="key-1")
    [ctx] = custom(mixed).calls
    assert ctx == OperationContext("custom", "custom", "checkout", "key-1")


def test_gateway_info_records_the_plugin_and_implemented_hooks(mixed: GatewayManager) -> None:
    info = mixed.gateway("custom")
    assert info.provider == "custom"
    assert info.plugin.distribution is None
    assert info.implemented == frozenset({"gateway_create_checkout"})
    assert info.capabilities == caps()
    assert mixed.gateway("alpha").plugin.name == "gateway_core.fake"


class Checked:
    def __init__(self, settings: GatewaySettings) -> None:
        self.findings: object = [CheckResult("credentials", ok=True), CheckResult("permission: refunds", ok=False)]

    @hookimpl
    def gateway_create_checkout(self, request: CheckoutRequest, context: OperationContext) -> CheckoutSession:
        raise AssertionError("never called")

    @hookimpl
    def gateway_check(self, context: OperationContext) -> object:
        return self.findings


def test_check_returns_the_gateways_findings() -> None:
    audit = Audit()
    manager = build_manager({"c": {"provider": "checked"}}, plugins=[audit, provider_plugin("checked", Checked)])
    results = manager.check("c")
    assert results == (CheckResult("credentials", ok=True), CheckResult("permission: refunds", ok=False))
    assert audit.seen == [("c", "check", "ok")]

    obj = manager.gateway_object("c")
    assert isinstance(obj, Checked)
    for bad in ([], "ok", [CheckResult("x", ok=True), "y"]):
        obj.findings = bad
        with pytest.raises(GatewayError, match="returned something other than CheckResult values"):
            manager.check("c")
