"""gateway-core: one contract for many payment providers, with exact money.

The public API is re-exported here; see ``hookspecs`` for the plugin contract.
"""

from typing import TYPE_CHECKING

from gateway_core.capabilities import Capabilities, CheckoutExpiry, CurrencyRule, Feature, Source
from gateway_core.config import DeploymentConfig, GatewaySettings, Secret
from gateway_core.errors import (
    AmountOutOfRange,
    AuthenticationFailed,
    AuthenticationRequired,
    CapabilityNotSupported,
    ConfigurationError,
    CurrencyMismatch,
    ErrorCode,
    GatewayError,
    GatewayUnavailable,
    IdempotencyConflict,
    InvalidAmount,
    InvalidCurrency,
    InvalidMoney,
    InvalidRequest,
    NotFound,
    OutcomeUnknown,
    PaymentDeclined,
    PermissionDenied,
    PluginLoadError,
    RateLimited,
    UnknownGateway,
    UnsupportedCurrency,
    WebhookVerificationFailed,
)
from gateway_core.hookspecs import ProviderDefinition, hookimpl, on_outcome
from gateway_core.manager import GatewayInfo, GatewayManager, PluginFailure, PluginInfo
from gateway_core.models import (
    Authorization,
    AuthorizeRequest,
    Capture,
    CaptureRequest,
    CheckoutRequest,
    CheckoutSession,
    CheckoutStatus,
    CheckResult,
    EventType,
    LineItem,
    OperationContext,
    PaymentState,
    PaymentStatus,
    Refund,
    RefundRequest,
    RefundStatus,
    StatusRequest,
    Void,
    VoidRequest,
    WebhookEvent,
    WebhookRequest,
)
from gateway_core.money import Currency, Money, Rounding, WireFormat
from gateway_core.routing import Exclusion, RouteDecision, Router

if TYPE_CHECKING:
    from gateway_core.aio import AsyncGatewayManager

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # The asyncio façade imports asyncio and a thread pool; load it only when asked for, so
    # sync hosts and the CLI start faster.
    if name == "AsyncGatewayManager":
        from gateway_core.aio import AsyncGatewayManager  # noqa: PLC0415

        return AsyncGatewayManager
    raise AttributeError(f"module 'gateway_core' has no attribute {name!r}")


__all__ = [
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
