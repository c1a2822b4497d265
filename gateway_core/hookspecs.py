"""The hook contract between gateway-core and its plugins. Every hook's docstring is its contract.

There are two kinds of plugin object, both registered with the same pluggy manager:

**Plugin modules** are what an entry point in the ``gateway_core`` group names. They may
implement :func:`gateway_providers` (to offer providers), :func:`gateway_cli_commands`, and
*wrappers* around the operation hooks (audit, metrics, fees)::

    @hookimpl(wrapper=True)
    def gateway_refund(context):
        started = time.perf_counter()
        try:
            return (yield)        # the provider's result; an exception it raised is raised here
        finally:
            record(context.gateway, time.perf_counter() - started)

**Gateway objects** are built by a provider's factory, one per configured gateway (two Stripe
accounts are two gateway objects of one provider). They implement the operation hooks, and
:func:`gateway_close` if they hold something to release (an HTTP session, pooled connections):
``GatewayManager.close()`` calls it once on each.

Dispatch rule for operation hooks (``gateway_create_checkout`` ... ``gateway_parse_webhook``): a
call meant for one gateway reaches *only that gateway object's* implementation, plus every
wrapper. The manager enforces it (``PluginManager.subset_hook_caller``) and raises
:class:`~gateway_core.errors.CapabilityNotSupported` *before calling anything* when the gateway
object lacks the hook. Host code never calls ``pm.hook`` directly; it uses
:class:`~gateway_core.manager.GatewayManager`.

Before an operation hook is called, the core has already checked the currency and amount
against the gateway's declared capabilities and set ``context.idempotency_key`` for every
mutating operation. Implementations must send that key to the provider, must raise only
:mod:`gateway_core.errors` types (anything else is wrapped in ``GatewayError``), and must keep
secrets, tokens and card data out of messages and log lines.

Sync and asyncio: by default hooks are synchronous, and under the asyncio API
(:class:`~gateway_core.aio.AsyncGatewayManager`) the manager runs them on worker threads, so a
plugin's blocking I/O never blocks the event loop; a plugin must therefore be thread-safe. A
provider whose SDK has an asyncio client declares ``ProviderDefinition(asyncio_native=True)``: its
operation hooks are then called *on the event loop* with ``context.asynchronous`` true and may
return an awaitable (they must not block); with ``context.asynchronous`` false (the sync API) they
return the result itself. A wrapper therefore may receive an awaitable as the result; it should
pass the result through :func:`on_outcome` to observe the final outcome either way (an exception
raised synchronously still arrives at the ``yield``)::

    @hookimpl(wrapper=True)
    def gateway_refund(context):
        try:
            result = yield
        except Exception as error:  # a synchronous failure: a decline, a timeout ...
            audit(context, None, error)
            raise
        return on_outcome(result, lambda result, error: audit(context, result, error))

Compatibility: hook names are prefixed ``gateway_``; arguments are never reordered or removed.
pluggy lets an implementation accept any subset of a hook's arguments, so new arguments may be
added in later versions without breaking plugins.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import attrs
import pluggy

from gateway_core.capabilities import Capabilities
from gateway_core.config import GatewaySettings
from gateway_core.models import (
    Authorization,
    AuthorizeRequest,
    Capture,
    CaptureRequest,
    CheckoutRequest,
    CheckoutSession,
    CheckResult,
    OperationContext,
    PaymentStatus,
    Refund,
    RefundRequest,
    StatusRequest,
    Void,
    VoidRequest,
    WebhookEvent,
    WebhookRequest,
)
from gateway_core.money import Money

if TYPE_CHECKING:
    import click

T = TypeVar("T")

PROJECT_NAME = "gateway_core"
#: The entry-point group plugins register under.
ENTRY_POINT_GROUP = "gateway_core"

_hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Decorate hook implementations with this (``@hookimpl`` or ``@hookimpl(wrapper=True)``).
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: The operation hooks, dispatched to a single gateway (see the module docstring).
OPERATION_HOOKS: tuple[str, ...] = (
    "gateway_create_checkout",
    "gateway_authorize",
    "gateway_capture",
    "gateway_void",
    "gateway_refund",
    "gateway_payment_status",
    "gateway_parse_webhook",
    "gateway_check",
)
#: Hooks a gateway object may implement to refine its declared metadata at start-up.
METADATA_HOOKS: tuple[str, ...] = ("gateway_supported_currencies", "gateway_minimum_amount")
#: Hooks a gateway object may implement to end its life: called once, when the manager closes.
LIFECYCLE_HOOKS: tuple[str, ...] = ("gateway_close",)


@attrs.frozen
class ProviderDefinition:
    """A provider a plugin module offers.

    ``capabilities`` is static metadata: building it must not import the provider's SDK.
    ``factory`` builds the gateway object for one configured gateway; it may read
    ``settings.settings`` (secrets arrive as :class:`~gateway_core.config.Secret`) and must raise
    :class:`~gateway_core.errors.ConfigurationError` for missing or wrong settings. It is called
    once per configured gateway, when the manager starts, and should not perform network I/O.

    ``configure`` (optional) gives one configured gateway's capabilities from the declared ones
    and its settings, where a deployment knows more than the provider's general figures (an
    account whose checkouts take a narrower expiry window, features an account lacks). It is
    called before ``factory`` and may only narrow: the manager refuses a result that offers a
    currency, feature or card brand not declared, a lower minimum or higher maximum, another wire
    format, another ``live``, or a wider checkout expiry window. The configuration's
    ``currencies`` list and the gateway object's metadata hooks then narrow further.
    """

    name: str
    capabilities: Capabilities
    factory: Callable[[GatewaySettings], object]
    description: str = ""
    #: True when the gateway objects' operation hooks return awaitables if ``context.asynchronous``
    #: (the asyncio API then calls them on the event loop instead of a worker thread).
    asyncio_native: bool = False
    #: ``configure(declared, settings)``: one configured gateway's capabilities (see above).
    configure: Callable[[Capabilities, GatewaySettings], Capabilities] | None = None


def on_outcome(result: T, callback: Callable[[Any, BaseException | None], object]) -> T:
    """For wrappers: call ``callback(result, error)`` once the operation's outcome is known.

    ``result`` is what a wrapper's ``yield`` returned. For a synchronous result the callback runs
    now; for an awaitable (an asyncio-native provider under the asyncio API) it runs when the
    awaitable completes, with the value or the exception, and the awaitable is returned wrapped.
    An exception raised synchronously reaches the wrapper at its ``yield`` as usual.
    """
    if not inspect.isawaitable(result):
        callback(result, None)
        return result
    return cast(T, _Observed(result, callback))


class _Observed:
    """An awaitable that reports its inner awaitable's outcome; closing it closes the inner one."""

    def __init__(self, inner: Awaitable[Any], callback: Callable[[Any, BaseException | None], object]) -> None:
        self._inner = inner
        self._callback = callback

    def __await__(self) -> Generator[Any, None, Any]:
        return self._observe().__await__()

    async def _observe(self) -> Any:
        try:
            value = await self._inner
        except BaseException as exc:
            self._callback(None, exc)
            raise
        self._callback(value, None)
        return value

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if callable(close):
            close()


# --------------------------------------------------------------------------------------------
# Registration hooks (plugin modules)
# --------------------------------------------------------------------------------------------


@_hookspec
def gateway_providers() -> Sequence[ProviderDefinition]:  # type: ignore[empty-body]
    """Return the providers this plugin module offers.

    Called once per manager start on every plugin module; results are collected from all
    plugins. Provider names must be unique across plugins; a duplicate is refused with
    :class:`~gateway_core.errors.PluginLoadError` naming both distributions.

    Since 0.1.
    """


@_hookspec
def gateway_cli_commands(cli: click.Group) -> None:
    """Add subcommands to the ``gateway`` command-line tool (``cli.add_command(...)``).

    Called on every plugin module when the CLI starts. Import heavy dependencies inside the
    command, not at module level, so ``gateway plugins`` stays fast.

    Since 0.1.
    """


# --------------------------------------------------------------------------------------------
# Metadata hooks (gateway objects; called once at start-up)
# --------------------------------------------------------------------------------------------


@_hookspec(firstresult=True)
def gateway_supported_currencies(context: OperationContext) -> Iterable[str] | None:
    """Narrow the declared currencies for this gateway at start-up (e.g. by account country).

    Return the ISO codes this gateway object can take, or ``None`` to keep the declared set.
    Returning a code the provider's capabilities do not declare is a configuration error: the
    hook can narrow, never widen. Must not perform network I/O.

    firstresult; dispatched to one gateway. Since 0.1.
    """


@_hookspec(firstresult=True)
def gateway_minimum_amount(currency: str, context: OperationContext) -> Money | None:
    """Raise the declared minimum charge for ``currency`` on this gateway at start-up.

    Return a ``Money`` in ``currency`` at least the declared minimum, or ``None`` to keep the
    declared minimum. Called once per currency the gateway offers. Must not perform network I/O.

    firstresult; dispatched to one gateway. Since 0.1.
    """


# --------------------------------------------------------------------------------------------
# Operation hooks (gateway objects; dispatched to one gateway, wrapped by every wrapper)
# --------------------------------------------------------------------------------------------


@_hookspec(firstresult=True)
def gateway_create_checkout(request: CheckoutRequest, context: OperationContext) -> CheckoutSession:  # type: ignore[empty-body]
    """Create a hosted checkout for ``request`` and return where to send the payer.

    The currency and total are already checked against this gateway's capabilities. Send
    ``context.idempotency_key`` with the creating request. ``request.capture=False`` means
    authorize only. Return a :class:`CheckoutSession` with the provider's id, the redirect URL
    and the expiry. Completion is learned from a webhook or :func:`gateway_payment_status`,
    never from the payer's browser returning; where the provider declares
    ``Capabilities.host_completes_checkout``, the host then completes the approved checkout for
    the money to move: :func:`gateway_capture` with its id (``capture=True``), or
    :func:`gateway_authorize` with its id as ``payment_method`` (``capture=False``), whose
    authorization it captures later.

    Mutating; firstresult; dispatched to one gateway. Requires ``Feature.HOSTED_CHECKOUT``. Since 0.1.
    """


@_hookspec(firstresult=True)
def gateway_authorize(request: AuthorizeRequest, context: OperationContext) -> Authorization:  # type: ignore[empty-body]
    """Authorize (hold) ``request.amount`` on ``request.payment_method`` without capturing.

    Raise :class:`PaymentDeclined` (with ``decline_code``) on a decline and
    :class:`AuthenticationRequired` when the payer must authenticate, with the payment waiting
    for it as ``payment_id``. The same idempotency key must never produce a second authorization.

    ``request.return_url`` (optional; the core has checked it is an absolute http(s) URL) is where
    the provider should send the payer back after authenticating (3-D Secure): pass it on where
    the provider takes one, and set ``action_url`` to the provider's page the payer must visit,
    which leads back there. Where the provider offers no such page (or needs its browser SDK
    instead), ``action_url`` is ``None``. A payment method that needs no authentication is
    authorized with a ``return_url`` exactly as without (the conformance suite checks it). The URL
    the provider gives may carry a token: never put it in a log line or an exception's message.

    Mutating; firstresult; dispatched to one gateway. Requires ``Feature.AUTHORIZE_CAPTURE``. Since 0.1.
    """


@_hookspec(firstresult=True)
def gateway_capture(request: CaptureRequest, context: OperationContext) -> Capture:  # type: ignore[empty-body]
    """Capture an authorization: all of it (``request.amount is None``) or part of it.

    A partial capture on a gateway without ``Feature.PARTIAL_CAPTURE`` is refused by the core
    before this hook runs. Capturing more than was authorized raises :class:`AmountOutOfRange`.

    Mutating; firstresult; dispatched to one gateway. Requires ``Feature.AUTHORIZE_CAPTURE``. Since 0.1.
    """


@_hookspec(firstresult=True)
def gateway_void(request: VoidRequest, context: OperationContext) -> Void:  # type: ignore[empty-body]
    """Cancel an uncaptured authorization, or expire an open hosted checkout.

    Mutating; firstresult; dispatched to one gateway. Requires ``Feature.VOID``. Since 0.1.
    """


@_hookspec(firstresult=True)
def gateway_refund(request: RefundRequest, context: OperationContext) -> Refund:  # type: ignore[empty-body]
    """Refund a captured payment: all that remains (``request.amount is None``) or part of it.

    What remains is what was captured less every refund that succeeded or is still pending (the
    status's ``amount_refunded``); refunding more raises :class:`AmountOutOfRange` and refunds
    nothing. A refund the provider has yet to settle is returned ``RefundStatus.PENDING``. The
    same idempotency key must never refund twice. A partial refund is refused by the core unless
    the gateway declares ``PARTIAL_REFUND``; the core keeps no record of earlier refunds, so a
    gateway that does not declare ``MULTIPLE_REFUNDS`` must itself refuse a second refund of a
    payment.

    Mutating; firstresult; dispatched to one gateway. Requires ``Feature.REFUND``. Since 0.1.
    """


@_hookspec(firstresult=True)
def gateway_payment_status(request: StatusRequest, context: OperationContext) -> PaymentStatus:  # type: ignore[empty-body]
    """Retrieve the current state of a payment or hosted checkout by the provider's id.

    Report ``SUCCEEDED`` only when the money is captured: a checkout completed with a pending or
    declined payment is not paid. Raise :class:`NotFound` for an unknown id.

    ``FAILED`` is final for that payment: nothing more will be paid on it, so a host may let go
    of what it was for. A hosted checkout still open for another attempt after the payer's card
    was declined is ``PENDING`` (awaiting the payer), not ``FAILED``, even though the provider
    reports the declined attempt (``payment.failed``): the payer may still pay on it, as on
    Stripe, where the PaymentIntent goes back to ``requires_payment_method`` while its Checkout
    Session stays open. Such a checkout's payment ends ``SUCCEEDED`` (``AUTHORIZED`` for an
    authorize-only one) once paid, or ``CANCELED`` once the checkout expires.

    ``amount_refunded`` counts every refund that succeeded *or is still pending*, and none that
    failed or was canceled: it is the amount no longer refundable, and a refund counts from the
    moment the provider accepts it, not once it settles. ``state`` follows it
    (``PARTIALLY_REFUNDED``, ``REFUNDED`` once all that was captured is refunded or pending
    refund). So every gateway reports the same numbers while a refund waits, and a host reading
    the status after a refund whose answer was lost sees that it was made. Where the provider's
    own total leaves pending refunds out, add them.

    Read-only; firstresult; dispatched to one gateway. Requires ``Feature.PAYMENT_STATUS``. Since 0.1.
    """


@_hookspec(firstresult=True)
def gateway_parse_webhook(request: WebhookRequest, context: OperationContext) -> WebhookEvent:  # type: ignore[empty-body]
    """Verify a webhook's authenticity, then parse it into a normalized :class:`WebhookEvent`.

    Verify *before* parsing anything from the body: raise :class:`WebhookVerificationFailed`
    for a missing or wrong signature, a wrong secret, or a timestamp outside the tolerance. An
    event type the plugin does not map is returned as ``EventType.UNKNOWN`` (never dropped).
    Deduplication is the host's job, keyed on ``(event.gateway, event.id)``.

    Read-only; firstresult; dispatched to one gateway. Requires ``Feature.WEBHOOKS``. Since 0.1.
    """


@_hookspec(firstresult=True)
def gateway_check(context: OperationContext) -> Sequence[CheckResult]:  # type: ignore[empty-body]
    """Check this gateway's configuration against the provider and report each finding.

    For ``gateway check NAME``: are the credentials accepted, and does a restricted key hold every
    permission the operations need (name the missing one)? Must only make read-only or harmless
    requests, and never put a secret in a finding. Return one :class:`CheckResult` per check.

    Read-only; firstresult; dispatched to one gateway. Optional. Since 0.1.
    """


# --------------------------------------------------------------------------------------------
# Lifecycle hooks (gateway objects; called once, when the manager closes)
# --------------------------------------------------------------------------------------------


@_hookspec(firstresult=True)
def gateway_close(context: OperationContext) -> None:
    """Release what this gateway object holds: HTTP sessions, pooled connections, open files.

    Called by ``GatewayManager.close()`` (and so by ``with manager:`` and by
    ``AsyncGatewayManager.aclose()``), once per gateway object, after the manager has begun
    refusing operations: no operation starts on the object afterwards. ``aclose`` first waits
    for the operations it runs; ``GatewayManager.close()`` does not wait for one already running
    on another thread, which may still finish (and, with a pooled client, reconnect: what it
    opens is released when its thread ends or the process does), so hosts stop issuing
    operations before they close. It may run on
    another thread than the operations did (``aclose`` runs it on a worker thread), so release
    what *every* thread opened, not only the calling thread's. A gateway that holds nothing
    leaves the hook out.

    * Release only: no request to the provider, nothing to wait for. Closing sockets and sessions
      is all; a token is dropped, never revoked.
    * Idempotent: a second call does nothing, and so does a call on an object that never opened
      anything (no operation ran). Never import the provider's SDK to close a client that was
      never built; never raise because something is closed already.
    * Close only what the object built: an HTTP client or session handed to it (a test's seam) is
      its owner's to close.
    * Synchronous, even for an ``asyncio_native`` provider: return ``None``. An awaitable returned
      is closed unawaited and counted as a failure. Connections tied to an event loop should not
      outlive the ``await`` that opened them.
    * Open what needs closing lazily, on the first operation, not in the factory: when building
      the manager fails part-way, nothing is closed.

    A genuine failure to release may raise (any exception): the manager logs
    ``gateway.close.failed`` with the gateway's name and the error's class (and a
    ``GatewayError``'s message; no other message is shown), closes the other gateways all the
    same, then raises one ``GatewayError`` naming the gateways that failed. ``context.operation``
    is ``"close"``; wrappers receive the call as for any hook.

    firstresult; dispatched to one gateway. Optional. Since 0.1.
    """
