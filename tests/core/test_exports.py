"""The public API, pinned (after stripe-python's tests/test_exports.py).

Adding a name is a deliberate change to this list; removing or renaming one breaks hosts and
plugins and needs a deprecation first.
"""

from __future__ import annotations

import subprocess
import sys

import gateway_core
from gateway_core import errors

PUBLIC_API = [
    "AmountOutOfRange",
    "AsyncGatewayManager",
    "AuthenticationFailed",
    "AuthenticationRequired",
    "Authorization",
    "AuthorizeRequest",
    "Capabilities",
    "CapabilityNotSupported",
    "Capture",
    "CaptureRequest",
    "CheckResult",
    "CheckoutExpiry",
    "CheckoutRequest",
    "CheckoutSession",
    "CheckoutStatus",
    "ConfigurationError",
    "Currency",
    "CurrencyMismatch",
    "CurrencyRule",
    "DeploymentConfig",
    "ErrorCode",
    "EventType",
    "Exclusion",
    "Feature",
    "GatewayError",
    "GatewayInfo",
    "GatewayManager",
    "GatewaySettings",
    "GatewayUnavailable",
    "IdempotencyConflict",
    "InvalidAmount",
    "InvalidCurrency",
    "InvalidMoney",
    "InvalidRequest",
    "LineItem",
    "Money",
    "NotFound",
    "OperationContext",
    "OutcomeUnknown",
    "PaymentDeclined",
    "PaymentState",
    "PaymentStatus",
    "PermissionDenied",
    "PluginFailure",
    "PluginInfo",
    "PluginLoadError",
    "ProviderDefinition",
    "RateLimited",
    "Refund",
    "RefundRequest",
    "RefundStatus",
    "Rounding",
    "RouteDecision",
    "Router",
    "Secret",
    "Source",
    "StatusRequest",
    "UnknownGateway",
    "UnsupportedCurrency",
    "Void",
    "VoidRequest",
    "WebhookEvent",
    "WebhookRequest",
    "WebhookVerificationFailed",
    "WireFormat",
    "__version__",
    "hookimpl",
    "on_outcome",
]


def test_all_is_exactly_the_public_api() -> None:
    assert gateway_core.__all__ == PUBLIC_API


def test_every_exported_name_resolves() -> None:
    for name in gateway_core.__all__:
        assert getattr(gateway_core, name) is not None, name


def test_star_import_gives_exactly_the_public_api() -> None:
    namespace: dict[str, object] = {}
    exec("from gateway_core import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(PUBLIC_API)


def test_every_error_in_the_tree_is_exported_from_the_package() -> None:
    error_classes = {name for name in errors.__all__ if name != "ErrorFields"}
    assert error_classes <= set(PUBLIC_API)
    for name in error_classes - {"ErrorCode"}:
        assert issubclass(getattr(errors, name), errors.GatewayError), name


def test_the_error_tree_in_the_module_docstring_names_every_error() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        if name in ("ErrorCode", "ErrorFields"):
            continue
        assert name in doc, name


def test_the_version_is_a_string() -> None:
    assert isinstance(gateway_core.__version__, str)
    assert gateway_core.__version__.count(".") == 2


def test_importing_the_package_does_not_import_asyncio_machinery_or_provider_sdks() -> None:
    code = (
        "import sys, gateway_core; "
        "print(','.join(m for m in ('gateway_core.aio', 'stripe', 'paypalserversdk') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
