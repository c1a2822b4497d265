"""The gateway manager: loads plugins, builds gateways, routes, and calls one gateway at a time.

Host code talks to :class:`GatewayManager` (or :class:`~gateway_core.aio.AsyncGatewayManager`)
and never to ``pm.hook``. Start-up, in order:

1. register plugin objects given in code, then every entry point in the ``gateway_core`` group
   (each loaded on its own; a failure is recorded with entry point, distribution and version,
   or raised in strict mode; names in ``GATEWAY_CORE_DISABLE_PLUGINS`` are skipped);
2. collect :class:`~gateway_core.hookspecs.ProviderDefinition` s, refusing duplicate names;
3. build one gateway object per configured gateway, register it, and check that every declared
   feature has its hook;
4. ``check_pending()``, so a misspelled hook implementation is an error, not silence;
5. compute each gateway's effective capabilities and one hook caller per (gateway, hook) that
   reaches only that gateway's implementation plus the wrappers.

Shut-down: :meth:`GatewayManager.close` (or ``with GatewayManager(...) as manager:``) calls
:func:`~gateway_core.hookspecs.gateway_close` once on every gateway object implementing it, so
what provider plugins hold (HTTP sessions, pooled connections) is released; from then on the
manager refuses operations (``InvalidRequest``, logged ``gateway.<operation>.refused``, nothing
sent), while routing, capabilities and the gateway listing, which do no I/O, keep working.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import importlib.metadata
import inspect
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, NoReturn, ParamSpec, TypedDict, TypeVar

import attrs
import pluggy
import structlog

from gateway_core import hookspecs
from gateway_core.capabilities import FEATURE_HOOKS, Capabilities, CurrencyRule, Feature
from gateway_core.config import DeploymentConfig, GatewaySettings, disabled_from_env
from gateway_core.errors import (
    CapabilityNotSupported,
    ConfigurationError,
    GatewayError,
    InvalidAmount,
    InvalidRequest,
    PluginLoadError,
    UnknownGateway,
)
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
    WebhookHeaders,
    WebhookRequest,
    _check_url,
)
from gateway_core.money import Money
from gateway_core.routing import Exclusion, RouteDecision, RouteEntry, Router

if TYPE_CHECKING:
    from types import TracebackType

    import click

__all__ = ["Exclusion", "GatewayInfo", "GatewayManager", "PluginFailure", "PluginInfo", "RouteDecision"]

log = structlog.get_logger("gateway_core")

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")

_MAX_KEY_LEN = 255

#: The hooks a gateway object implements (a plugin module may only wrap them).
_GATEWAY_HOOKS: tuple[str, ...] = hookspecs.OPERATION_HOOKS + hookspecs.METADATA_HOOKS + hookspecs.LIFECYCLE_HOOKS


@attrs.frozen
class PluginInfo:
    """A registered plugin module and where it came from."""

    name: str
    distribution: str | None
    version: str | None


@attrs.frozen
class PluginFailure:
    """A plugin that failed to load, and why: the exception type, and its message where that is safe to show.

    An import error's message is shown (it names the missing module); for an arbitrary exception
    only its type, since its message may hold whatever the plugin had at hand.
    """

    entry_point: str
    value: str
    distribution: str | None
    version: str | None
    error: str


@attrs.frozen
class GatewayInfo:
    """One configured gateway as the manager runs it."""

    name: str
    provider: str
    plugin: PluginInfo
    capabilities: Capabilities
    declared: Capabilities
    implemented: frozenset[str]
    priority: int
    description: str = ""
    #: The provider's hooks return awaitables under asyncio (see ProviderDefinition.asyncio_native).
    asyncio_native: bool = False


def _logs_refusal(operation: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Log ``gateway.<operation>.refused`` when the core refuses an operation before any plugin runs.

    Refusals (no idempotency key, unsupported currency, amount out of range, missing capability)
    are operations too: an operator should see them in the same one-line-per-operation stream.
    """

    def decorate(prepare: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(prepare)
        def logged(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return prepare(*args, **kwargs)
            except GatewayError as exc:
                gateway = args[1] if len(args) > 1 else kwargs.get("gateway")
                log.warning(
                    f"gateway.{operation}.refused",
                    gateway=str(gateway)[:64],
                    operation=operation,
                    error=type(exc).__name__,
                    code=exc.code.value,
                    reason=exc.message,
                )
                raise

        return logged

    return decorate


@attrs.frozen
class _Gateway:
    info: GatewayInfo
    obj: object
    callers: Mapping[str, pluggy.HookCaller]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _operation_key(gateway: str, operation: str, idempotency_key: str | None, operation_id: str | None) -> str:
    if idempotency_key is not None:
        if not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= _MAX_KEY_LEN:
            raise InvalidRequest(f"idempotency_key must be a str of 1 to {_MAX_KEY_LEN} characters")
        if not idempotency_key.isascii() or not idempotency_key.isprintable():
            raise InvalidRequest("idempotency_key must be printable ASCII")
        if idempotency_key.isspace():
            # a provider gets it in an HTTP header, whose value is trimmed: it would see no key at all
            raise InvalidRequest("idempotency_key must not be blank (only spaces)")
        return idempotency_key
    if operation_id is not None:
        if not isinstance(operation_id, str) or not operation_id:
            raise InvalidRequest("operation_id must be a non-empty str")
        if operation_id.isspace():
            # an empty form field, most likely: every such operation would share one key
            raise InvalidRequest("operation_id must be a non-empty str, not blank (only whitespace)")
        try:
            seed = f"{gateway}\0{operation}\0{operation_id}".encode()
        except UnicodeEncodeError:  # a lone surrogate ("\ud800"): not text, so no stable key
            raise InvalidRequest("operation_id must be valid Unicode text (it holds a lone surrogate)") from None
        digest = hashlib.sha256(seed).hexdigest()
        return f"gc-{operation}-{digest[:40]}"
    raise InvalidRequest(
        f"{operation} changes money: pass idempotency_key= or operation_id= so a retry cannot act twice"
    )


_SUCCESS_EVENT = {
    "checkout": "gateway.checkout.created",
    "authorize": "gateway.authorize.succeeded",
    "capture": "gateway.capture.succeeded",
    "void": "gateway.void.succeeded",
    "refund": "gateway.refund.created",
    "status": "gateway.status.retrieved",
    "webhook": "gateway.webhook.verified",
    "check": "gateway.check.completed",
}


class GatewayManager:
    """Loads plugins and gateways from a :class:`DeploymentConfig` and runs operations on them.

    ``plugins`` are extra plugin objects (audit wrappers, in-code providers) registered before
    entry points. Set ``load_entry_points=False`` to use only those.

    Close it when done (:meth:`close`, or ``with``): a provider plugin may hold HTTP sessions
    and pooled connections until then.
    """

    def __init__(
        self,
        config: DeploymentConfig,
        *,
        plugins: Iterable[object] = (),
        load_entry_points: bool = True,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        # Set once by close(), read (a single attribute test) before every operation.
        self._closed = False
        self._close_lock = threading.Lock()
        #: The current UTC time, against which a requested checkout expiry is checked (tests that
        #: freeze time pass their clock).
        self.clock: Callable[[], datetime] = clock or _utcnow
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.failures: list[PluginFailure] = []
        self._entry_values: dict[str, str] = {}  # entry-point name -> value, for loaded entry points
        for i, obj in enumerate(plugins):
            name = getattr(obj, "__name__", None) or f"{type(obj).__name__}-{i}"
            self._register_module(obj, PluginInfo(name, None, None))
        if load_entry_points:
            self._load_entry_points(os.environ if environ is None else environ)
        self._providers = self._collect_providers()
        self._gateways: dict[str, _Gateway] = {}
        for settings in config.gateways:
            self._add_gateway(settings)
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginLoadError(f"unknown hook implementation: {exc}", **self._origin_of(exc.plugin)) from exc
        self._finish()

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str], **kwargs: Any) -> GatewayManager:
        """Build from a ``gateway.toml`` file (see :mod:`gateway_core.config`)."""
        return cls(DeploymentConfig.from_toml(path, kwargs.get("environ")), **kwargs)

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> GatewayManager:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.close()
        except GatewayError:
            if exc is None:
                raise
            # The block's own exception goes on (an OutcomeUnknown must not turn into a close
            # failure); the failed closes were logged, one line each.

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (operations are then refused)."""
        return self._closed

    def close(self) -> None:
        """Release what the gateways hold; see :func:`~gateway_core.hookspecs.gateway_close`.

        From the first call on, operations are refused (:class:`InvalidRequest`, logged
        ``gateway.<operation>.refused``, no plugin called); then ``gateway_close`` is called once
        on every gateway object implementing it, in configuration order. Routing, capabilities,
        the gateway listing and ``gateway_object`` keep working: they do no I/O.

        A gateway whose close fails is logged (``gateway.close.failed``, warning: the gateway, its
        provider, the error's class) and the others are closed all the same; then one
        :class:`GatewayError` names every gateway that failed (``from`` the first failure). A
        second call, or one while another thread is closing (it waits for that one), does nothing
        and raises nothing: each gateway is closed once, failed or not. Leaving a ``with`` block
        on an exception raises that exception, never a close failure.

        Operations already running on other threads are not waited for (``AsyncGatewayManager``
        waits for its own): stop issuing operations first.
        """
        with self._close_lock:
            if self._closed:
                return
            self._closed = True  # refuse new operations before any gateway starts closing
            failed = [(gw.info.name, exc) for gw in self._gateways.values() if (exc := _close(gw)) is not None]
        if failed:
            names = ", ".join(repr(name) for name, _ in failed)
            reasons = "; ".join(_reason(exc) for _, exc in failed)
            error = GatewayError(
                f"{'gateway' if len(failed) == 1 else 'gateways'} {names} failed to close ({reasons}); "
                "every other gateway was closed",
                gateway=failed[0][0] if len(failed) == 1 else None,
            )
            raise error from failed[0][1]

    # -- loading --------------------------------------------------------------------------
    def _register_module(self, obj: object, info: PluginInfo) -> None:
        if info.name in self.plugins:
            raise PluginLoadError(f"plugin {info.name!r} registered twice", **_origin(info))
        try:
            self._pm.register(obj, name=f"plugin:{info.name}")
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PluginLoadError(
                f"plugin {info.name!r} ({_dist_label(info)}) is invalid: {exc}", **_origin(info)
            ) from exc
        for hook in _GATEWAY_HOOKS:
            for impl in getattr(self._pm.hook, hook).get_hookimpls():
                if impl.plugin is obj and not (impl.wrapper or impl.hookwrapper):
                    self._pm.unregister(obj)
                    raise PluginLoadError(
                        f"plugin {info.name!r} implements {hook} at module level; operation, metadata and "
                        "lifecycle hooks belong on the gateway objects a provider's factory builds (or use "
                        "wrapper=True)",
                        **_origin(info),
                    )
        self.plugins[info.name] = info

    def _load_entry_points(self, environ: Mapping[str, str]) -> None:
        disabled = self.config.disabled_plugins | disabled_from_env(environ)
        for ep in importlib.metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            dist_name = dist.name if dist is not None else None
            version = dist.version if dist is not None else None
            if ep.name in disabled:
                log.info("gateway.plugin.disabled", entry_point=ep.name, distribution=dist_name)
                continue
            info = PluginInfo(ep.name, dist_name, version)
            try:
                obj = ep.load()
                self._register_module(obj, info)
            except Exception as exc:
                self._plugin_failed(info, ep.value, exc)
                continue
            self._entry_values[ep.name] = ep.value

    def _plugin_failed(self, info: PluginInfo, value: str, exc: Exception) -> None:
        """Record an entry-point plugin that failed to load or register; raise in strict mode."""
        failure = PluginFailure(info.name, value, info.distribution, info.version, _reason(exc))
        log.error(
            "gateway.plugin.load_failed",
            entry_point=info.name,
            distribution=info.distribution,
            version=info.version,
            error=type(exc).__name__,
        )
        if self.config.strict_plugins:
            raise PluginLoadError(
                f"plugin {info.name!r} ({value}) from {info.distribution} {info.version} failed to load: {failure.error}",
                **_origin(info),
            ) from exc
        self.failures.append(failure)

    def _collect_providers(self) -> dict[str, tuple[hookspecs.ProviderDefinition, PluginInfo]]:
        found: dict[str, tuple[hookspecs.ProviderDefinition, PluginInfo]] = {}
        for impl in self._pm.hook.gateway_providers.get_hookimpls():
            info = self.plugins[impl.plugin_name.removeprefix("plugin:")]
            try:
                returned = impl.function()
                definitions: list[object] = list(returned) if isinstance(returned, Iterable) else [returned]
            except Exception as exc:
                if info.name in self._entry_values:
                    # an installed plugin that fails to register is reported like one that fails to
                    # import: in non-strict mode the others still load
                    self._pm.unregister(impl.plugin)
                    del self.plugins[info.name]
                    self._plugin_failed(info, self._entry_values[info.name], exc)
                    continue
                raise PluginLoadError(
                    f"plugin {info.name!r} ({_dist_label(info)}) failed in gateway_providers: {_reason(exc)}",
                    **_origin(info),
                ) from exc
            for definition in definitions:
                if not isinstance(definition, hookspecs.ProviderDefinition):
                    raise PluginLoadError(
                        f"plugin {info.name!r} returned {type(definition).__name__}, not ProviderDefinition",
                        **_origin(info),
                    )
                problems = definition.capabilities.problems()
                if problems:
                    raise PluginLoadError(
                        f"provider {definition.name!r} from {info.name!r} has inconsistent metadata: {'; '.join(problems)}",
                        **_origin(info),
                    )
                if definition.name in found:
                    other = found[definition.name][1]
                    raise PluginLoadError(
                        f"provider {definition.name!r} is declared by both {other.name!r} ({_dist_label(other)}) "
                        f"and {info.name!r} ({_dist_label(info)})",
                        **_origin(info),
                    )
                found[definition.name] = (definition, info)
        return found

    def _add_gateway(self, settings: GatewaySettings) -> None:
        entry = self._providers.get(settings.provider)
        if entry is None:
            failed = [f for f in self.failures if f.entry_point == settings.provider]
            hint = f"; plugin {failed[0].entry_point!r} failed to load: {failed[0].error}" if failed else ""
            raise ConfigurationError(
                f"gateway {settings.name!r} uses provider {settings.provider!r}, which no installed plugin "
                f"provides (installed: {', '.join(sorted(self._providers)) or 'none'}){hint}",
                gateway=settings.name,
            )
        definition, plugin = entry
        declared = definition.capabilities
        caps = self._configured(definition, settings, plugin)
        if settings.currencies is not None:
            caps = caps.narrowed(settings.currencies, gateway=settings.name)
        with _plugin_code(f"provider {settings.provider!r} failed to build gateway", settings.name, plugin):
            obj = definition.factory(settings)
        try:
            self._pm.register(obj, name=f"gateway:{settings.name}")
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PluginLoadError(
                f"gateway {settings.name!r} object is invalid: {exc}", gateway=settings.name, **_origin(plugin)
            ) from exc
        implemented = frozenset(
            hook
            for hook in _GATEWAY_HOOKS
            if any(
                i.plugin is obj and not (i.wrapper or i.hookwrapper)
                for i in getattr(self._pm.hook, hook).get_hookimpls()
            )
        )
        for feature in declared.features:
            for hook in FEATURE_HOOKS.get(feature, ()):
                if hook not in implemented:
                    raise PluginLoadError(
                        f"provider {settings.provider!r} declares {feature} but its gateway object lacks {hook}",
                        gateway=settings.name,
                        **_origin(plugin),
                    )
        info = GatewayInfo(
            settings.name,
            settings.provider,
            plugin,
            caps,
            declared,
            implemented,
            settings.priority,
            definition.description,
            definition.asyncio_native,
        )
        self._gateways[settings.name] = _Gateway(info, obj, {})

    @staticmethod
    def _configured(
        definition: hookspecs.ProviderDefinition, settings: GatewaySettings, plugin: PluginInfo
    ) -> Capabilities:
        """The provider's capabilities for this gateway's settings (``ProviderDefinition.configure``)."""
        declared = definition.capabilities
        if definition.configure is None:
            return declared
        with _plugin_code(f"provider {settings.provider!r} failed to configure gateway", settings.name, plugin):
            caps = definition.configure(declared, settings)
        if not isinstance(caps, Capabilities):
            raise PluginLoadError(
                f"provider {settings.provider!r} configure() returned {type(caps).__name__} for gateway "
                f"{settings.name!r}, not Capabilities",
                gateway=settings.name,
                **_origin(plugin),
            )
        wider = caps.widening(declared)
        if wider:
            raise ConfigurationError(
                f"gateway {settings.name!r}: its settings may only narrow what provider {settings.provider!r} "
                f"declares, but {'; '.join(wider)}",
                gateway=settings.name,
            )
        problems = caps.problems()
        if problems:
            raise ConfigurationError(
                f"gateway {settings.name!r}: its settings leave inconsistent capabilities: {'; '.join(problems)}",
                gateway=settings.name,
            )
        return caps

    def _finish(self) -> None:
        objects = [g.obj for g in self._gateways.values()]
        for name, built in list(self._gateways.items()):
            others = [o for o in objects if o is not built.obj]
            callers = {
                hook: self._pm.subset_hook_caller(hook, others)
                for hook in _GATEWAY_HOOKS
                if hook in built.info.implemented
            }
            caps = self._refine(_Gateway(built.info, built.obj, callers))
            self._gateways[name] = _Gateway(attrs.evolve(built.info, capabilities=caps), built.obj, callers)
        self._router = Router(
            [RouteEntry(g.info.name, g.info.capabilities, g.info.priority) for g in self._gateways.values()]
        )
        self._order = self._router.names

    def _refine(self, gw: _Gateway) -> Capabilities:
        """Apply the gateway's metadata hooks (narrow currencies, raise minimums)."""
        caps = gw.info.capabilities
        ctx = OperationContext(gw.info.name, gw.info.provider, "metadata")
        if "gateway_supported_currencies" in gw.callers:
            with _plugin_code("gateway_supported_currencies failed for gateway", gw.info.name, gw.info.plugin):
                codes = gw.callers["gateway_supported_currencies"](context=ctx)
                offered = None if codes is None else set(codes)  # once: the hook may return a one-shot iterator
            if offered is not None:
                caps = caps.narrowed([c for c in caps.currencies if c in offered], gateway=gw.info.name)
                extra = offered - set(gw.info.declared.currencies)
                if extra:
                    raise ConfigurationError(
                        f"gateway {gw.info.name!r} offers undeclared currencies {sorted(extra)}", gateway=gw.info.name
                    )
        if "gateway_minimum_amount" in gw.callers:
            rules: list[CurrencyRule] = []
            for declared in caps.currencies.values():
                with _plugin_code(
                    f"gateway_minimum_amount({declared.code}) failed for gateway", gw.info.name, gw.info.plugin
                ):
                    raised = gw.callers["gateway_minimum_amount"](currency=declared.code, context=ctx)
                if raised is None:
                    rules.append(declared)
                    continue
                if (
                    not isinstance(raised, Money)
                    or raised.currency != declared.code
                    or raised < declared.effective_minimum
                ):
                    raise ConfigurationError(
                        f"gateway {gw.info.name!r} gateway_minimum_amount({declared.code}) returned {raised!r}; "
                        "it may only raise the declared minimum",
                        gateway=gw.info.name,
                    )
                rules.append(attrs.evolve(declared, minimum=raised))
            caps = attrs.evolve(caps, currencies=rules)
        return caps

    # -- introspection --------------------------------------------------------------------
    @property
    def plugin_manager(self) -> pluggy.PluginManager:
        """The underlying pluggy manager (for plugin tests; hosts should not need it)."""
        return self._pm

    def add_cli_commands(self, cli: click.Group) -> None:
        """Let every plugin module add its subcommands to ``cli`` (the ``gateway_cli_commands`` hook).

        The typed way for a host (the ``gateway`` command) to call the hook, so no host code
        touches ``pm.hook``. A plugin's error here is wrapped in :class:`PluginLoadError` naming
        the plugin, without its message; the other plugins still add theirs, and the first such
        error is raised once they have.
        """
        failed: PluginLoadError | None = None
        for impl in self._pm.hook.gateway_cli_commands.get_hookimpls():
            name = impl.plugin_name.removeprefix("plugin:")
            try:
                impl.function(cli=cli)
            except Exception as exc:
                info = self.plugins.get(name, PluginInfo(name, None, None))
                error = PluginLoadError(
                    f"plugin {name!r} ({_dist_label(info)}) failed in gateway_cli_commands: {_reason(exc)}",
                    **_origin(info),
                )
                error.__cause__ = exc
                failed = failed or error
        if failed is not None:
            raise failed

    def _origin_of(self, obj: object) -> _Origin:
        """The structured origin of a registered plugin module or gateway object (for errors)."""
        name = self._pm.get_name(obj) or ""
        if name.startswith("gateway:") and name.removeprefix("gateway:") in self._gateways:
            return _origin(self._gateways[name.removeprefix("gateway:")].info.plugin)
        info = self.plugins.get(name.removeprefix("plugin:"))
        return _origin(info) if info is not None else {"entry_point": None, "distribution": None, "version": None}

    def gateway_names(self) -> tuple[str, ...]:
        """Configured gateways in routing order."""
        return self._order

    def gateway(self, name: str) -> GatewayInfo:
        return self._get(name).info

    def gateway_object(self, name: str) -> object:
        """The provider's object behind ``name`` (e.g. the fake gateway, to script it in tests)."""
        return self._get(name).obj

    def providers(self) -> Mapping[str, tuple[hookspecs.ProviderDefinition, PluginInfo]]:
        """Every installed provider with the plugin that declared it."""
        return dict(self._providers)

    def _get(self, name: str) -> _Gateway:
        try:
            return self._gateways[name]
        except KeyError:
            raise UnknownGateway(
                f"no gateway named {name!r} (configured: {', '.join(self._order) or 'none'})"
            ) from None
        except TypeError:  # unhashable: not a name at all
            raise InvalidRequest(f"a gateway name must be a str, not {type(name).__name__}") from None

    def _operable(self, name: str) -> _Gateway:
        """The gateway an operation is sent to: refused once the manager is closed, then :meth:`_get`."""
        if self._closed:  # a single attribute test on the hot path
            _refuse_closed(name)
        return self._get(name)

    # -- routing --------------------------------------------------------------------------
    @property
    def router(self) -> Router:
        """A :class:`Router` over the configured gateways' effective capabilities."""
        return self._router

    def route(
        self, amount: Money, features: Iterable[Feature] = (), gateways: Iterable[str] | None = None
    ) -> RouteDecision:
        """Eligible gateways for ``amount`` with ``features``, in order; a reason for every other one."""
        return self._router.route(amount, features, gateways)

    def minimum_price(self, currency: str, gateways: Iterable[str] | None = None) -> Money | None:
        """The lowest amount any (of the given) gateways accepts in ``currency``; ``None`` if none offers it."""
        return self._router.minimum_price(currency, gateways)

    def round_up(self, amount: Money, gateway: str) -> Money:
        """``amount`` raised to ``gateway``'s minimum and step (ceiling); refused above its maximum."""
        self._get(gateway)
        return self._router.round_up(amount, gateway)

    # -- operations -----------------------------------------------------------------------
    # Each operation is prepared (every check, the idempotency key, the context: no I/O) and then
    # run; the sync API runs it here, AsyncGatewayManager on a worker thread or, for a gateway whose
    # provider is asyncio-native, on the event loop. Both share every check and log line.

    def create_checkout(
        self,
        gateway: str,
        request: CheckoutRequest,
        *,
        idempotency_key: str | None = None,
        operation_id: str | None = None,
    ) -> CheckoutSession:
        """Create a hosted checkout on ``gateway``; see :func:`~gateway_core.hookspecs.gateway_create_checkout`."""
        return self._run(self._prepare_checkout(gateway, request, idempotency_key, operation_id))

    def authorize(
        self,
        gateway: str,
        request: AuthorizeRequest,
        *,
        idempotency_key: str | None = None,
        operation_id: str | None = None,
    ) -> Authorization:
        """Authorize ``request.amount``; see :func:`~gateway_core.hookspecs.gateway_authorize`."""
        return self._run(self._prepare_authorize(gateway, request, idempotency_key, operation_id))

    def capture(
        self,
        gateway: str,
        request: CaptureRequest,
        *,
        idempotency_key: str | None = None,
        operation_id: str | None = None,
    ) -> Capture:
        """Capture an authorization; see :func:`~gateway_core.hookspecs.gateway_capture`."""
        return self._run(self._prepare_capture(gateway, request, idempotency_key, operation_id))

    def void(
        self,
        gateway: str,
        request: VoidRequest,
        *,
        idempotency_key: str | None = None,
        operation_id: str | None = None,
    ) -> Void:
        """Void an authorization or expire a checkout; see :func:`~gateway_core.hookspecs.gateway_void`."""
        return self._run(self._prepare_void(gateway, request, idempotency_key, operation_id))

    def refund(
        self,
        gateway: str,
        request: RefundRequest,
        *,
        idempotency_key: str | None = None,
        operation_id: str | None = None,
    ) -> Refund:
        """Refund a payment; see :func:`~gateway_core.hookspecs.gateway_refund`."""
        return self._run(self._prepare_refund(gateway, request, idempotency_key, operation_id))

    def payment_status(self, gateway: str, payment_id: str) -> PaymentStatus:
        """The payment's (or checkout's) current state; see :func:`~gateway_core.hookspecs.gateway_payment_status`."""
        return self._run(self._prepare_status(gateway, payment_id))

    def parse_webhook(self, gateway: str, headers: WebhookHeaders, body: bytes) -> WebhookEvent:
        """Verify and normalize a webhook; see :func:`~gateway_core.hookspecs.gateway_parse_webhook`."""
        return self._run(self._prepare_webhook(gateway, headers, body))

    def check(self, gateway: str) -> tuple[CheckResult, ...]:
        """Run the gateway's configuration check; see :func:`~gateway_core.hookspecs.gateway_check`."""
        return _check_results(gateway, self._run(self._prepare_check(gateway)))

    # -- preparation: every check happens here, before any plugin is called -----------------
    @_logs_refusal("checkout")
    def _prepare_checkout(
        self, gateway: str, request: CheckoutRequest, idempotency_key: str | None, operation_id: str | None
    ) -> _Prepared[CheckoutSession]:
        gw = self._operable(gateway)
        _require_request("create_checkout", request, CheckoutRequest, gateway)
        self._require(gw, "gateway_create_checkout", Feature.HOSTED_CHECKOUT)
        if not request.capture:
            self._require_feature(gw, Feature.AUTHORIZE_CAPTURE, "an authorize-only checkout")
        if request.application_fee is not None:
            self._require_feature(gw, Feature.APPLICATION_FEE, "an application fee")
            self._check_wire(gw, request.application_fee, "application_fee ")
        if request.expires_at is not None:
            self._check_expiry(gw, request.expires_at)
        self._check_amount(gw, request.amount)
        key = _operation_key(gateway, "checkout", idempotency_key, operation_id)
        ctx = OperationContext(gateway, gw.info.provider, "checkout", key)
        return _Prepared(gw, "gateway_create_checkout", ctx, CheckoutSession, request.amount, {"request": request})

    @_logs_refusal("authorize")
    def _prepare_authorize(
        self, gateway: str, request: AuthorizeRequest, idempotency_key: str | None, operation_id: str | None
    ) -> _Prepared[Authorization]:
        gw = self._operable(gateway)
        _require_request("authorize", request, AuthorizeRequest, gateway)
        self._require(gw, "gateway_authorize", Feature.AUTHORIZE_CAPTURE)
        method: object = request.payment_method  # untyped callers pass anything: check what arrived
        if not isinstance(method, str) or not method.strip():
            # never echoed (an int could be a card number): only that it is blank, or its type
            got = "None" if method is None else "a blank str" if isinstance(method, str) else type(method).__name__
            raise InvalidRequest(
                f"payment_method must be a non-empty str (the payment method token), not {got}", gateway=gateway
            )
        if request.return_url is not None:
            try:  # the check CheckoutRequest makes of success_url; the URL itself is never echoed
                _check_url("return_url", request.return_url)
            except InvalidRequest as exc:
                raise InvalidRequest(exc.message, gateway=gateway) from None
        if request.application_fee is not None:
            self._require_feature(gw, Feature.APPLICATION_FEE, "an application fee")
            self._check_wire(gw, request.application_fee, "application_fee ")
        self._check_amount(gw, request.amount)
        key = _operation_key(gateway, "authorize", idempotency_key, operation_id)
        ctx = OperationContext(gateway, gw.info.provider, "authorize", key)
        return _Prepared(gw, "gateway_authorize", ctx, Authorization, request.amount, {"request": request})

    @_logs_refusal("capture")
    def _prepare_capture(
        self, gateway: str, request: CaptureRequest, idempotency_key: str | None, operation_id: str | None
    ) -> _Prepared[Capture]:
        gw = self._operable(gateway)
        _require_request("capture", request, CaptureRequest, gateway)
        self._require(gw, "gateway_capture", Feature.AUTHORIZE_CAPTURE)
        _require_id(request.payment_id, gateway)
        if request.amount is not None:
            self._require_feature(gw, Feature.PARTIAL_CAPTURE, "a capture of a chosen amount")
            self._check_wire(gw, request.amount)
        key = _operation_key(gateway, "capture", idempotency_key, operation_id)
        ctx = OperationContext(gateway, gw.info.provider, "capture", key)
        return _Prepared(gw, "gateway_capture", ctx, Capture, request.amount, {"request": request})

    @_logs_refusal("void")
    def _prepare_void(
        self, gateway: str, request: VoidRequest, idempotency_key: str | None, operation_id: str | None
    ) -> _Prepared[Void]:
        gw = self._operable(gateway)
        _require_request("void", request, VoidRequest, gateway)
        self._require(gw, "gateway_void", Feature.VOID)
        _require_id(request.payment_id, gateway)
        key = _operation_key(gateway, "void", idempotency_key, operation_id)
        ctx = OperationContext(gateway, gw.info.provider, "void", key)
        return _Prepared(gw, "gateway_void", ctx, Void, None, {"request": request})

    @_logs_refusal("refund")
    def _prepare_refund(
        self, gateway: str, request: RefundRequest, idempotency_key: str | None, operation_id: str | None
    ) -> _Prepared[Refund]:
        gw = self._operable(gateway)
        _require_request("refund", request, RefundRequest, gateway)
        self._require(gw, "gateway_refund", Feature.REFUND)
        _require_id(request.payment_id, gateway)
        if request.amount is not None:
            self._require_feature(gw, Feature.PARTIAL_REFUND, "a refund of a chosen amount")
            self._check_wire(gw, request.amount)
        key = _operation_key(gateway, "refund", idempotency_key, operation_id)
        ctx = OperationContext(gateway, gw.info.provider, "refund", key)
        return _Prepared(gw, "gateway_refund", ctx, Refund, request.amount, {"request": request})

    @_logs_refusal("status")
    def _prepare_status(self, gateway: str, payment_id: str) -> _Prepared[PaymentStatus]:
        gw = self._operable(gateway)
        self._require(gw, "gateway_payment_status", Feature.PAYMENT_STATUS)
        _require_id(payment_id, gateway)
        ctx = OperationContext(gateway, gw.info.provider, "status")
        return _Prepared(gw, "gateway_payment_status", ctx, PaymentStatus, None, {"request": StatusRequest(payment_id)})

    @_logs_refusal("webhook")
    def _prepare_webhook(self, gateway: str, headers: WebhookHeaders, body: bytes) -> _Prepared[WebhookEvent]:
        gw = self._operable(gateway)
        self._require(gw, "gateway_parse_webhook", Feature.WEBHOOKS)
        if not isinstance(body, bytes):
            raise InvalidRequest("webhook body must be the raw bytes as received", gateway=gateway)
        try:
            request = WebhookRequest(headers, body)
        except InvalidRequest as exc:
            raise InvalidRequest(exc.message, gateway=gateway) from None
        ctx = OperationContext(gateway, gw.info.provider, "webhook")
        return _Prepared(gw, "gateway_parse_webhook", ctx, WebhookEvent, None, {"request": request})

    @_logs_refusal("check")
    def _prepare_check(self, gateway: str) -> _Prepared[object]:
        gw = self._operable(gateway)
        if "gateway_check" not in gw.callers:
            raise CapabilityNotSupported(
                f"gateway {gateway!r} ({gw.info.provider}) has no configuration check", gateway=gateway
            )
        return _Prepared(gw, "gateway_check", OperationContext(gateway, gw.info.provider, "check"), object, None, {})

    # -- internals ------------------------------------------------------------------------
    def _require(self, gw: _Gateway, hook: str, feature: Feature) -> None:
        if hook not in gw.callers:
            raise CapabilityNotSupported(
                f"gateway {gw.info.name!r} ({gw.info.provider}) does not implement {hook}", gateway=gw.info.name
            )
        self._require_feature(gw, feature, hook)

    @staticmethod
    def _require_feature(gw: _Gateway, feature: Feature, what: str) -> None:
        if feature not in gw.info.capabilities.features:
            raise CapabilityNotSupported(
                f"gateway {gw.info.name!r} ({gw.info.provider}) does not declare {feature}, needed for {what}",
                gateway=gw.info.name,
            )

    def _check_expiry(self, gw: _Gateway, expires_at: datetime) -> None:
        window = gw.info.capabilities.checkout_expiry
        if window is None:
            raise CapabilityNotSupported(
                f"gateway {gw.info.name!r} ({gw.info.provider}) takes no checkout expiry; leave expires_at unset "
                "and expire the checkout with void() when it should lapse",
                gateway=gw.info.name,
            )
        reason = window.refusal(expires_at, self.clock())
        if reason is not None:
            raise InvalidRequest(reason, gateway=gw.info.name)

    @staticmethod
    def _check_amount(gw: _Gateway, amount: Money) -> None:
        gw.info.capabilities.require_rule(amount.currency, gateway=gw.info.name).check(amount, gateway=gw.info.name)

    @staticmethod
    def _check_wire(gw: _Gateway, amount: Money, what: str = "") -> None:
        # A capture, refund or fee is bounded by the payment, not by the charge minimum: only the step applies.
        rule = gw.info.capabilities.require_rule(amount.currency, gateway=gw.info.name)
        if not rule.wire.accepts(amount):
            raise InvalidAmount(
                f"{what}{amount} is not a multiple of {rule.wire.quantum} {rule.code}", gateway=gw.info.name
            )

    def _run(self, p: _Prepared[T]) -> T:
        """Run a prepared operation on this thread (the sync API, and async for thread-run gateways)."""
        fields, started = _log_fields(p), time.perf_counter()
        try:
            result = p.gw.callers[p.hook](context=p.ctx, **p.kwargs)
        except Exception as exc:
            error = _failed(p, fields, started, exc)
            if error is exc:
                raise
            raise error from exc
        if type(result) is not p.expected and inspect.isawaitable(result):  # the expected result type: no awaitable
            _discard(result)
            error = GatewayError(f"{p.hook} returned an awaitable to a synchronous call", gateway=p.ctx.gateway)
            raise _failed(p, fields, started, error)
        return _succeeded(p, fields, started, result)

    async def _arun(self, p: _Prepared[T]) -> T:
        """Run a prepared operation on the event loop (gateways whose provider is asyncio-native)."""
        p = attrs.evolve(p, ctx=attrs.evolve(p.ctx, asynchronous=True))
        fields, started = _log_fields(p), time.perf_counter()
        try:
            result = p.gw.callers[p.hook](context=p.ctx, **p.kwargs)
            if inspect.isawaitable(result):
                result = await result
        except asyncio.CancelledError:
            # The awaiting task was cancelled (a timeout, a TaskGroup, a client gone): the request
            # may have reached the provider, so the operation gets its line; cancellation goes on.
            log.warning(
                f"gateway.{p.ctx.operation}.cancelled",
                **fields,
                error="CancelledError",
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
            )
            raise
        except Exception as exc:
            error = _failed(p, fields, started, exc)
            if error is exc:
                raise
            raise error from exc
        return _succeeded(p, fields, started, result)


def _refuse_closed(gateway: str) -> NoReturn:
    raise InvalidRequest(
        "this GatewayManager is closed (close() was called): nothing was sent; build a new one to run more operations",
        gateway=gateway if isinstance(gateway, str) else None,
    )


def _discard(awaitable: object) -> None:
    """Close an awaitable a hook returned where none belongs: never to be awaited, so close it
    (and what it wraps) so that nothing leaks."""
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()


def _close(gw: _Gateway) -> Exception | None:
    """Call the gateway's ``gateway_close``, if it has one; what it raised (logged), else ``None``."""
    caller = gw.callers.get("gateway_close")
    if caller is None:
        return None
    info = gw.info
    try:
        result = caller(context=OperationContext(info.name, info.provider, "close"))
        if inspect.isawaitable(result):
            _discard(result)
            raise GatewayError("gateway_close returned an awaitable; it must release synchronously", gateway=info.name)
    except Exception as exc:
        reason = {"reason": exc.message} if isinstance(exc, GatewayError) else {}
        log.warning(
            "gateway.close.failed",
            gateway=info.name,
            provider=info.provider,
            operation="close",
            error=type(exc).__name__,
            **reason,
        )
        return exc
    return None


def _require_request(operation: str, request: object, expected: type, gateway: str) -> None:
    """``request`` is an ``expected``: another request type could be half-read (a RefundRequest has a
    CaptureRequest's fields, so it would capture) and anything else would fail inside the plugin."""
    if not isinstance(request, expected):
        raise InvalidRequest(f"{operation} takes a {expected.__name__}, not {type(request).__name__}", gateway=gateway)


def _require_id(payment_id: object, gateway: str) -> None:
    if not isinstance(payment_id, str) or not payment_id.strip():
        raise InvalidRequest("payment_id must be a non-empty str", gateway=gateway)


@attrs.frozen
class _Prepared(Generic[T]):
    """One operation, checked and ready to send: the gateway, hook, context and arguments."""

    gw: _Gateway
    hook: str
    ctx: OperationContext
    expected: type[T]
    amount: Money | None
    kwargs: Mapping[str, Any]

    @property
    def asyncio_native(self) -> bool:
        return self.gw.info.asyncio_native


def _log_fields(p: _Prepared[Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {"gateway": p.ctx.gateway, "provider": p.ctx.provider, "operation": p.ctx.operation}
    if p.ctx.idempotency_key is not None:
        fields["idempotency_key"] = p.ctx.idempotency_key
    if p.amount is not None:
        fields["amount"] = str(p.amount.amount)
        fields["currency"] = p.amount.currency
    return fields


def _failed(p: _Prepared[Any], fields: dict[str, Any], started: float, exc: Exception) -> GatewayError:
    """The error the host sees: the plugin's GatewayError (gateway named), or a wrapped foreign one."""
    if isinstance(exc, GatewayError):
        if exc.gateway is None:
            exc.gateway = p.ctx.gateway
        error = exc
    else:
        error = GatewayError(
            f"gateway plugin raised {type(exc).__name__} during {p.ctx.operation}", gateway=p.ctx.gateway
        )
        error.unmapped = True
    _log_failure(p.ctx, fields, started, error)
    return error


def _succeeded(p: _Prepared[T], fields: dict[str, Any], started: float, result: object) -> T:
    if not isinstance(result, p.expected):
        error = GatewayError(
            f"{p.hook} returned {type(result).__name__}, expected {p.expected.__name__}", gateway=p.ctx.gateway
        )
        _log_failure(p.ctx, fields, started, error)
        raise error
    # What the result adds to the line (``fields`` is this call's own): the amount where the
    # request named none (a full refund or capture), a webhook's event type, the result's id.
    if "amount" not in fields:
        amount = getattr(result, "amount", None)
        if isinstance(amount, Money):
            fields["amount"] = str(amount.amount)
            fields["currency"] = amount.currency
    if isinstance(result, WebhookEvent):
        fields["event_type"] = result.type.value
    fields["result_id"] = _result_id(result)
    fields["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
    log.info(_SUCCESS_EVENT[p.ctx.operation], **fields)
    return result


def _check_results(gateway: str, returned: object) -> tuple[CheckResult, ...]:
    results = tuple(returned) if isinstance(returned, list | tuple) else ()
    if not results or not all(isinstance(r, CheckResult) for r in results):
        raise GatewayError("gateway_check returned something other than CheckResult values", gateway=gateway)
    return results


def _result_id(result: object) -> str | None:
    value = getattr(result, "id", None) or getattr(result, "payment_id", None)
    return value if isinstance(value, str) else None


def _log_failure(ctx: OperationContext, fields: dict[str, Any], started: float, exc: GatewayError) -> None:
    event = "gateway.webhook.rejected" if ctx.operation == "webhook" else f"gateway.{ctx.operation}.failed"
    log.warning(
        event,
        **fields,
        error=type(exc).__name__,
        code=exc.code.value,
        retryable=exc.retryable,
        provider_code=exc.provider_code,
        http_status=exc.http_status,
        request_id=exc.request_id,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
    )


def _reason(exc: BaseException) -> str:
    """An exception as a message may show it.

    A GatewayError's message is secret-free by contract, and an ImportError or SyntaxError names
    modules and files: class and message. Anything else may carry whatever the plugin had at
    hand (a key in a URL, a token): its class only; the original stays the ``__cause__``.
    """
    if isinstance(exc, GatewayError | ImportError | SyntaxError):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__


class _Origin(TypedDict):
    entry_point: str | None
    distribution: str | None
    version: str | None


def _origin(info: PluginInfo) -> _Origin:
    """PluginLoadError's structured fields for a plugin (entry point only if it came from one)."""
    from_entry_point = info.distribution is not None
    return {
        "entry_point": info.name if from_entry_point else None,
        "distribution": info.distribution,
        "version": info.version,
    }


@contextlib.contextmanager
def _plugin_code(what: str, gateway: str, plugin: PluginInfo) -> Iterator[None]:
    """Run a plugin's start-up code for ``gateway`` (factory, configure, metadata hooks).

    A ConfigurationError passes as it is; anything else becomes a PluginLoadError naming the
    gateway and the step, with :func:`_reason` of the original, ``from`` it.
    """
    try:
        yield
    except ConfigurationError:
        raise
    except Exception as exc:
        raise PluginLoadError(f"{what} {gateway!r}: {_reason(exc)}", gateway=gateway, **_origin(plugin)) from exc


def _dist_label(info: PluginInfo) -> str:
    if info.distribution is None:
        return "registered in code"
    return f"{info.distribution} {info.version}"
