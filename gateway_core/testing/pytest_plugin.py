"""Opt-in pytest fixtures for host applications that test their payment code against the fake gateway.

Enable it in the host's top-level ``conftest.py`` (it is deliberately not auto-registered)::

    pytest_plugins = ["gateway_core.testing.pytest_plugin"]

Fixtures:

``gateway_config``
    The :class:`~gateway_core.config.DeploymentConfig` under test. The default configures one fake
    gateway named ``fake``; override the fixture to load the host's own test configuration
    (``DeploymentConfig.from_toml("gateway.test.toml", environ={...})``).
``gateway_plugins``
    Extra plugin objects registered in code (audit wrappers, a fake with other capabilities);
    default none.
``gateway_manager``
    A :class:`~gateway_core.manager.GatewayManager` built from the two above, plugins found
    through their entry points as in production, and closed after the test (``close()``: the
    plugins' HTTP sessions are released; a test that closed it already changes nothing).
``fake_gateway``
    The first configured fake gateway's :class:`~gateway_core.fake.FakeGateway`: script outcomes
    on it (``fake_gateway.script(Outcome.DECLINE)``), count ``payments_made()``, and so on.
``complete_checkout`` / ``decline_checkout`` / ``abandon_checkout``
    Play the payer on a hosted checkout: ``complete_checkout(session)`` pays it
    (``settle=False``: with a method that settles later, so the payment stays ``PENDING`` until
    ``fake_gateway.settle_payment`` or ``fail_payment``), ``decline_checkout(session,
    "insufficient_funds")`` declines the card (a ``payment.failed`` webhook for the attempt; the
    checkout stays open and its payment ``PENDING``, as on Stripe, so the payer may still pay
    it), ``abandon_checkout`` lets it expire. Each takes the
    :class:`~gateway_core.models.CheckoutSession` (or its id) and returns the fake's
    :class:`~gateway_core.models.PaymentStatus`; with several fake gateways an id is looked up in
    each.
``deliver_webhooks``
    ``deliver_webhooks(handler)`` takes every webhook the fake gateways have queued, signed as the
    fake signs them, and hands each to the host: ``handler`` is a callable taking
    ``(headers, body)`` (what the host's web framework would pass to its webhook view), or an
    ``http://127.0.0.1:PORT/...`` URL to POST to. ``duplicate=True`` delivers each twice and
    ``reverse=True`` out of order, as real providers do; ``hold={"payment.pending"}`` (event
    types, or a predicate on the delivery) keeps those queued for a later call, a late delivery.
    Returns what each delivery returned (the handler's return value, or the HTTP status).
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Protocol

import pytest

from gateway_core.config import DeploymentConfig, GatewaySettings, Secret
from gateway_core.errors import ConfigurationError, NotFound
from gateway_core.fake import FakeGateway, WebhookDelivery
from gateway_core.manager import GatewayManager
from gateway_core.models import CheckoutSession, PaymentStatus

__all__ = [
    "DEFAULT_WEBHOOK_SECRET",
    "CheckoutAction",
    "CompleteAction",
    "DeclineAction",
    "WebhookDeliverer",
    "WebhookHandler",
    "fake_config",
    "fake_gateways",
    "post_to",
]

#: The webhook secret of the default ``fake`` gateway (a test value; the fake takes no money).
DEFAULT_WEBHOOK_SECRET = "whsec_gateway_core_pytest_fake"  # noqa: S105 (a fixed test value, not a secret)

_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

#: A host's webhook entry point: takes the request headers and raw body.
WebhookHandler = Callable[[Mapping[str, str], bytes], object]


#: ``abandon_checkout(session)``.
CheckoutAction = Callable[[CheckoutSession | str], PaymentStatus]


class CompleteAction(Protocol):
    """``complete_checkout(session, settle=True)``."""

    def __call__(self, session: CheckoutSession | str, *, settle: bool = ...) -> PaymentStatus: ...


class DeclineAction(Protocol):
    """``decline_checkout(session, decline_code="card_declined")``."""

    def __call__(self, session: CheckoutSession | str, decline_code: str = ...) -> PaymentStatus: ...


def fake_gateways(manager: GatewayManager) -> dict[str, FakeGateway]:
    """Every configured fake gateway by name, in routing order."""
    found = {}
    for name in manager.gateway_names():
        obj = manager.gateway_object(name)
        if isinstance(obj, FakeGateway):
            found[name] = obj
    return found


def _owner(manager: GatewayManager, session: CheckoutSession | str) -> tuple[FakeGateway, str]:
    """The fake gateway holding a checkout, found by the session's gateway or by looking the id up."""
    fakes = fake_gateways(manager)
    if isinstance(session, CheckoutSession):
        if session.gateway not in fakes:
            raise ConfigurationError(f"checkout {session.id} is on {session.gateway!r}, which is not a fake gateway")
        return fakes[session.gateway], session.id
    for fake in fakes.values():
        try:
            fake.checkout(session)
        except NotFound:
            continue
        return fake, session
    raise NotFound(f"no fake gateway has a checkout {session!r}")


class WebhookDeliverer:
    """Drains the fake gateways' signed webhooks and hands each to the host (see the module docs)."""

    def __init__(self, manager: GatewayManager) -> None:
        self.manager = manager

    def __call__(
        self,
        handler: WebhookHandler | str,
        *,
        gateway: str | None = None,
        duplicate: bool = False,
        reverse: bool = False,
        hold: Iterable[str] | Callable[[WebhookDelivery], bool] | None = None,
    ) -> list[object]:
        fakes = fake_gateways(self.manager)
        if gateway is not None:
            if gateway not in fakes:
                raise ConfigurationError(f"{gateway!r} is not a configured fake gateway")
            fakes = {gateway: fakes[gateway]}
        deliver = post_to(handler) if isinstance(handler, str) else handler
        results: list[object] = []
        for fake in fakes.values():
            for delivery in fake.drain_webhooks(duplicate=duplicate, reverse=reverse, hold=hold):
                results.append(deliver(dict(delivery.headers), delivery.body))
        return results


def post_to(url: str) -> WebhookHandler:
    """A handler that POSTs each webhook to ``url`` (http on 127.0.0.1 or localhost only) and returns the status."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in _LOCAL_HOSTS:
        raise ConfigurationError(f"deliver_webhooks posts only to http://127.0.0.1 or localhost, not {url!r}")

    def post(headers: Mapping[str, str], body: bytes) -> int:
        request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (checked: local http)
                return int(response.status)
        except urllib.error.HTTPError as exc:  # the host answered 4xx/5xx: report the status
            return int(exc.code)

    return post


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


def fake_config(name: str = "fake") -> DeploymentConfig:
    """A deployment of one fake gateway called ``name`` (the default ``gateway_config``)."""
    secret = Secret(DEFAULT_WEBHOOK_SECRET, source="gateway_core.testing.pytest_plugin")
    return DeploymentConfig([GatewaySettings(name, "fake", {"test_mode": True, "webhook_secret": secret})])


@pytest.fixture
def gateway_config() -> DeploymentConfig:
    """One fake gateway named ``fake``. Override to test the host's own configuration."""
    return fake_config()


@pytest.fixture
def gateway_plugins() -> Sequence[object]:
    """Extra plugin objects registered in code before entry points. Override to add some."""
    return ()


@pytest.fixture
def gateway_manager(gateway_config: DeploymentConfig, gateway_plugins: Sequence[object]) -> Iterator[GatewayManager]:
    """A manager over ``gateway_config``; plugins come from entry points, as in production. Closed afterwards."""
    with GatewayManager(gateway_config, plugins=gateway_plugins) as manager:
        yield manager


@pytest.fixture
def fake_gateway(gateway_manager: GatewayManager) -> FakeGateway:
    """The first configured fake gateway (scriptable)."""
    fakes = fake_gateways(gateway_manager)
    if not fakes:
        pytest.fail("gateway_config configures no fake gateway (provider = 'fake')")
    return next(iter(fakes.values()))


@pytest.fixture
def complete_checkout(gateway_manager: GatewayManager) -> CompleteAction:
    """``complete_checkout(session, settle=True)``: the payer pays the hosted checkout."""

    def complete(session: CheckoutSession | str, *, settle: bool = True) -> PaymentStatus:
        fake, checkout_id = _owner(gateway_manager, session)
        return fake.complete_checkout(checkout_id, settle=settle)

    return complete


@pytest.fixture
def decline_checkout(gateway_manager: GatewayManager) -> DeclineAction:
    """``decline_checkout(session, decline_code="card_declined")``: the payer's card is declined.

    ``payment.failed`` with ``decline_code``; the checkout stays open and its payment ``PENDING``.
    """

    def decline(session: CheckoutSession | str, decline_code: str = "card_declined") -> PaymentStatus:
        fake, checkout_id = _owner(gateway_manager, session)
        return fake.decline_checkout(checkout_id, decline_code)

    return decline


@pytest.fixture
def abandon_checkout(gateway_manager: GatewayManager) -> CheckoutAction:
    """``abandon_checkout(session)``: the payer walks away and the checkout expires."""

    def abandon(session: CheckoutSession | str) -> PaymentStatus:
        fake, checkout_id = _owner(gateway_manager, session)
        return fake.abandon_checkout(checkout_id)

    return abandon


@pytest.fixture
def deliver_webhooks(gateway_manager: GatewayManager) -> WebhookDeliverer:
    """``deliver_webhooks(handler_or_local_url)``: hand the fake's signed webhooks to the host."""
    return WebhookDeliverer(gateway_manager)
