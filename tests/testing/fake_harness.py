"""A conformance harness for the fake gateway (and for deliberately broken variants of it).

The fake is a plugin and its own provider in one object, so "the provider's side" is the
:class:`FakeGateway`'s state: what it stored for a checkout or a payment (``recorded_amount``),
how many payments and refunds it holds (``provider_objects``), what reached it (``requests_sent``).
A second worker is another manager whose factory hands out the same fake: the same provider, and
nothing else shared.

Catch tests that need a misbehaving *plugin* in front of an honest provider give ``client=``: a
:class:`FakeClient` subclass, built fresh over the shared fake for every manager, as a plugin's
gateway object is built fresh in every worker.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import attrs

import gateway_core.fake
from gateway_core import (
    Authorization,
    AuthorizeRequest,
    Capabilities,
    Capture,
    CaptureRequest,
    CheckoutRequest,
    CheckoutSession,
    DeploymentConfig,
    GatewayManager,
    GatewaySettings,
    GatewayUnavailable,
    Money,
    NotFound,
    OperationContext,
    PaymentStatus,
    ProviderDefinition,
    RateLimited,
    Refund,
    RefundRequest,
    Secret,
    StatusRequest,
    Void,
    VoidRequest,
    WebhookEvent,
    WebhookRequest,
    hookimpl,
)
from gateway_core.fake import FakeGateway, Outcome, Scripted, WebhookDelivery, default_capabilities
from gateway_core.fake.gateway import SIGNATURE_HEADER, sign
from gateway_core.testing.conformance import ConformanceHarness, RecordedAmount, SignedWebhook

WEBHOOK_SECRET = "whsec_fake_conformance_0123456789"

#: A fake configured with a few currencies and minimums, so refusals have something to refuse.
NARROWED: Mapping[str, Any] = {
    "provider": "fake",
    "currencies": ["EUR", "USD", "JPY", "KWD", "HUF", "BGN"],
    "settings": {
        "test_mode": True,
        "webhook_secret": {"env": "FAKE_WEBHOOK_SECRET"},
        "minimums": {"EUR": "0.50", "USD": "0.50", "JPY": "50", "KWD": "0.100"},
    },
}

#: What each transport fault is on the fake: its scripted outcomes for an operation that changes
#: money. The fake has no transport, so a refused connection and a 5xx are both "unavailable".
_SCRIPTED_FAULTS = {
    "timeout": Outcome.TIMEOUT_AFTER_SUCCESS,
    "refused": Outcome.UNAVAILABLE,
    "5xx": Outcome.UNAVAILABLE,
    "429": Outcome.RATE_LIMITED,
}

#: The same for a status lookup (``Scripted(..., operation="status")``). A read takes only the
#: outcomes that mean nothing happened: a lost answer to a read changed nothing, so a timeout is
#: "unavailable" there, as the suite expects a plugin to report it (``READ_FAULT_ERRORS``).
_SCRIPTED_READ_FAULTS = {
    "timeout": Outcome.UNAVAILABLE,
    "refused": Outcome.UNAVAILABLE,
    "5xx": Outcome.UNAVAILABLE,
    "429": Outcome.RATE_LIMITED,
}

#: How many status lookups in a row a read fault fails. The suite asks for a fault on *every*
#: attempt, a plugin's own retries included (a client in front of the fake may retry a read);
#: this is more than any plugin here makes. Failures no attempt used are taken back afterwards.
_READ_FAULT_ATTEMPTS = 5

#: An id the fake never issues (its ids are random hex): a lookup of it only spends a scripted fault.
_NO_SUCH_PAYMENT = "fake_pi_" + "0" * 24


class VariantPlugin:
    """Declares the ``fake`` provider built by ``gateway_class`` (a FakeGateway subclass)."""

    def __init__(self, gateway_class: type[FakeGateway], capabilities: Capabilities | None = None) -> None:
        self.definition = ProviderDefinition(
            "fake",
            capabilities or default_capabilities(),
            gateway_class.from_settings,
            "fake variant",
            configure=FakeGateway.configure,
        )

    @hookimpl
    def gateway_providers(self) -> Sequence[ProviderDefinition]:
        return [self.definition]


class FakeClient:
    """A plugin's gateway object in front of the fake provider: forwards every hook to it, unchanged."""

    def __init__(self, provider: FakeGateway) -> None:
        self.provider = provider
        self.name = provider.name

    @hookimpl
    def gateway_minimum_amount(self, currency: str) -> Money | None:
        return self.provider.gateway_minimum_amount(currency)

    @hookimpl
    def gateway_create_checkout(self, request: CheckoutRequest, context: OperationContext) -> CheckoutSession:
        return self.provider.gateway_create_checkout(request, context)

    @hookimpl
    def gateway_authorize(self, request: AuthorizeRequest, context: OperationContext) -> Authorization:
        return self.provider.gateway_authorize(request, context)

    @hookimpl
    def gateway_capture(self, request: CaptureRequest, context: OperationContext) -> Capture:
        return self.provider.gateway_capture(request, context)

    @hookimpl
    def gateway_void(self, request: VoidRequest, context: OperationContext) -> Void:
        return self.provider.gateway_void(request, context)

    @hookimpl
    def gateway_refund(self, request: RefundRequest, context: OperationContext) -> Refund:
        return self.provider.gateway_refund(request, context)

    @hookimpl
    def gateway_payment_status(self, request: StatusRequest) -> PaymentStatus:
        return self.provider.gateway_payment_status(request)

    @hookimpl
    def gateway_parse_webhook(self, request: WebhookRequest) -> WebhookEvent:
        return self.provider.gateway_parse_webhook(request)


class _SameProvider:
    """Declares ``definition`` with a factory handing out ``gateway`` (one provider for every manager)."""

    def __init__(self, definition: ProviderDefinition, build: Any) -> None:
        self.definition = attrs.evolve(definition, factory=build)

    @hookimpl
    def gateway_providers(self) -> Sequence[ProviderDefinition]:
        return [self.definition]


def _about(delivery: WebhookDelivery) -> object:
    """The payment a fake webhook is about, read from its body (the harness is not the plugin)."""
    return json.loads(delivery.body)["data"].get("payment_id")


def _definition(plugin: object) -> ProviderDefinition:
    (definition,) = plugin.gateway_providers()  # type: ignore[attr-defined]
    assert isinstance(definition, ProviderDefinition)
    return definition


def fake_harness(
    gateway: Mapping[str, Any] = NARROWED,
    plugin: object = gateway_core.fake,
    *,
    client: type[FakeClient] | None = None,
    **overrides: Any,
) -> ConformanceHarness:
    environ = {"FAKE_WEBHOOK_SECRET": WEBHOOK_SECRET}
    config = DeploymentConfig.from_mapping({"gateways": {"fake": dict(gateway)}}, environ)
    definition = _definition(plugin)
    shared: list[FakeGateway] = []

    def build(settings: GatewaySettings) -> object:
        if not shared:
            provider = definition.factory(settings)
            assert isinstance(provider, FakeGateway)
            shared.append(provider)
        return client(shared[0]) if client is not None else shared[0]

    def new_manager(plugins: Sequence[object]) -> GatewayManager:
        return GatewayManager(config, plugins=plugins, load_entry_points=False, environ=environ)

    # The first manager registers the plugin itself (its own factory) unless a client stands in front.
    manager = new_manager([_SameProvider(definition, build)] if client is not None else [plugin])
    if not shared:
        built = manager.gateway_object("fake")
        assert isinstance(built, FakeGateway)
        shared.append(built)
    fake = shared[0]

    def pay(session: CheckoutSession) -> str:
        return fake.complete_checkout(session.id).payment_id

    #: Every webhook the fake has sent so far (a drain takes them all; the harness keeps them).
    sent: list[WebhookDelivery] = []

    def succeeded(payment_id: str) -> WebhookDelivery | None:
        sent.extend(fake.drain_webhooks())
        about = [d for d in sent if d.type == "payment.succeeded" and _about(d) == payment_id]
        return about[-1] if about else None

    def signed_webhook(
        *, secret: str | None = None, timestamp: int | None = None, payment_id: str | None = None
    ) -> SignedWebhook:
        if payment_id is None:  # any real event: a checkout of its own, paid by the payer
            session = manager.create_checkout(
                "fake",
                CheckoutRequest.single(
                    "Webhook item", Money.of("7.00", "EUR"), "https://h.example/ok", "https://h.example/no"
                ),
                operation_id=f"webhook-{len(fake.requests)}",
            )
            payment_id = fake.complete_checkout(session.id).payment_id
        # The fake's own payment.succeeded about that payment, delivered as the fake signs it.
        delivery = succeeded(payment_id)
        assert delivery is not None, f"the fake sent no payment.succeeded webhook about {payment_id}"
        if secret is None and timestamp is None:
            return SignedWebhook(delivery.headers, delivery.body)
        header = sign(
            delivery.body, Secret(secret or WEBHOOK_SECRET), int(fake.clock()) if timestamp is None else timestamp
        )
        return SignedWebhook({**delivery.headers, SIGNATURE_HEADER: header}, delivery.body)

    def recorded_amount(operation: str, object_id: str) -> RecordedAmount:
        # What the fake stored, in the minor units of the table it declares (it has no other wire).
        stored = fake.checkout(object_id).amount if operation == "checkout" else fake._payments[object_id].amount
        rule = definition.capabilities.currencies[stored.currency]
        return RecordedAmount(rule.wire.to_minor(stored), stored.currency)

    @contextmanager
    def read_fault(kind: str) -> Iterator[GatewayManager]:
        fake.script(*[Scripted(_SCRIPTED_READ_FAULTS[kind], "status")] * _READ_FAULT_ATTEMPTS)
        try:
            yield manager
        finally:  # spend the failures no attempt used, so lookups after the block are answered
            for _ in range(_READ_FAULT_ATTEMPTS):
                try:
                    fake.gateway_payment_status(StatusRequest(_NO_SUCH_PAYMENT))
                except (RateLimited, GatewayUnavailable):
                    continue
                except NotFound:
                    break

    def transport_fault(kind: str, operation: str) -> AbstractContextManager[GatewayManager] | None:
        if operation == "payment_status":
            return read_fault(kind)

        @contextmanager
        def scripted() -> Iterator[GatewayManager]:
            fake.script(Scripted(_SCRIPTED_FAULTS[kind], operation))
            yield manager

        return scripted()

    def decline() -> str:
        fake.script(Scripted(Outcome.DECLINE, "authorize", "insufficient_funds"))
        return "pm_fake_visa"

    fields: dict[str, Any] = {
        "manager": manager,
        "gateway": "fake",
        "requests_sent": lambda: len(fake.requests),
        "secrets": [WEBHOOK_SECRET],
        "recorded_amount": recorded_amount,
        "provider_objects": lambda: fake.payments_made() + fake.refunds_made(),
        "second_worker": lambda: new_manager([_SameProvider(definition, build)]),
        "pay": pay,
        "payment_method": "pm_fake_visa",
        "signed_webhook": signed_webhook,
        "currency": "EUR",
        "transport_fault": transport_fault,
        "decline": decline,
        # The fake takes no credentials, so there is nothing wrong to configure: that test skips.
    }
    fields.update(overrides)
    return ConformanceHarness(**fields)
