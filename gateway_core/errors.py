"""The one exception tree of gateway-core.

Every error the core raises, and every error a provider plugin lets escape, is a
:class:`GatewayError`. Plugins map their SDK's errors to the most specific class below (raising
it ``from`` the original); anything else a plugin raises reaches the host wrapped in a plain
``GatewayError`` with ``code=ErrorCode.PROVIDER_ERROR`` and the gateway named::

    GatewayError                      gateway, code, retryable, provider_code, http_status, request_id
    ├── InvalidMoney (ValueError)      a Money value could not be built
    │   ├── InvalidAmount             float, NaN, "1e3", too many decimals, not on the wire step
    │   ├── InvalidCurrency           "", "€", "eur", "XXX"
    │   └── CurrencyMismatch          EUR + USD
    ├── InvalidRequest (ValueError)    the request is wrong; nothing was (or will be) charged
    │   ├── UnsupportedCurrency       the gateway does not offer the currency
    │   └── AmountOutOfRange          below the minimum, above the maximum, beyond what was captured
    ├── CapabilityNotSupported        the gateway does not implement the operation or feature
    ├── PaymentDeclined               the issuer or provider declined; carries decline_code
    ├── AuthenticationRequired        the payer must authenticate (3-D Secure); carries action_url
    ├── AuthenticationFailed          the gateway refused our credentials
    ├── PermissionDenied              the credentials lack a permission (names it)
    ├── RateLimited                   retryable; carries retry_after
    ├── GatewayUnavailable            retryable: connection error, timeout, 5xx
    │   └── OutcomeUnknown            the request may have taken effect: same key, or read the status
    ├── IdempotencyConflict           same idempotency key, different parameters
    ├── WebhookVerificationFailed     signature, secret or timestamp did not check out
    ├── ConfigurationError            gateway.toml, settings or environment are wrong
    │   ├── PluginLoadError           a plugin failed to import or register
    │   └── UnknownGateway (LookupError) no gateway of that name is configured
    └── NotFound (LookupError)        the provider has no object with that id

Messages never contain secrets, tokens or card numbers: plugins build them from allow-listed
fields, and :class:`GatewayError` refuses nothing but keeps what it is given, so the mapping code
is where that discipline lives.
"""

from __future__ import annotations

import enum
from typing import TypedDict, Unpack

__all__ = [
    "AmountOutOfRange",
    "AuthenticationFailed",
    "AuthenticationRequired",
    "CapabilityNotSupported",
    "ConfigurationError",
    "CurrencyMismatch",
    "ErrorCode",
    "ErrorFields",
    "GatewayError",
    "GatewayUnavailable",
    "IdempotencyConflict",
    "InvalidAmount",
    "InvalidCurrency",
    "InvalidMoney",
    "InvalidRequest",
    "NotFound",
    "OutcomeUnknown",
    "PaymentDeclined",
    "PermissionDenied",
    "PluginLoadError",
    "ProviderFields",
    "RateLimited",
    "UnknownGateway",
    "UnsupportedCurrency",
    "WebhookVerificationFailed",
]


class ErrorCode(enum.StrEnum):
    """Normalized error codes, stable across providers."""

    INVALID_MONEY = "invalid_money"
    INVALID_REQUEST = "invalid_request"
    UNSUPPORTED_CURRENCY = "unsupported_currency"
    AMOUNT_OUT_OF_RANGE = "amount_out_of_range"
    NOT_SUPPORTED = "not_supported"
    DECLINED = "declined"
    AUTHENTICATION_REQUIRED = "authentication_required"
    AUTHENTICATION_FAILED = "authentication_failed"
    PERMISSION_DENIED = "permission_denied"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    OUTCOME_UNKNOWN = "outcome_unknown"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    WEBHOOK_VERIFICATION_FAILED = "webhook_verification_failed"
    CONFIGURATION = "configuration"
    PLUGIN_LOAD = "plugin_load"
    UNKNOWN_GATEWAY = "unknown_gateway"
    NOT_FOUND = "not_found"
    PROVIDER_ERROR = "provider_error"


class ProviderFields(TypedDict, total=False):
    """What a provider said about a failure (see :meth:`GatewayError.provider_fields`)."""

    provider_code: str | None
    http_status: int | None
    request_id: str | None


class ErrorFields(ProviderFields, total=False):
    """The keyword fields every :class:`GatewayError` accepts."""

    gateway: str | None
    code: ErrorCode | None
    retryable: bool | None


class GatewayError(Exception):
    """Base of every gateway-core error.

    Attributes:
        message: human-readable, free of secrets.
        gateway: the configured gateway name, when one is involved.
        code: the normalized :class:`ErrorCode`.
        retryable: whether retrying *with the same idempotency key* may succeed.
        provider_code: the provider's own error code (``card_declined``, ``INSTRUMENT_DECLINED``).
        http_status: the HTTP status the provider answered with.
        request_id: the provider's request id (Stripe ``Request-Id``, PayPal ``debug_id``).
    """

    default_code: ErrorCode = ErrorCode.PROVIDER_ERROR
    default_retryable: bool = False
    #: True when the manager wrapped something a plugin raised that was not a GatewayError
    #: (a bug in the plugin's error mapping; the original is the ``__cause__``).
    unmapped: bool = False

    def __init__(
        self,
        message: str,
        *,
        gateway: str | None = None,
        code: ErrorCode | None = None,
        retryable: bool | None = None,
        provider_code: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.gateway = gateway
        self.code = code or self.default_code
        self.retryable = self.default_retryable if retryable is None else retryable
        self.provider_code = provider_code
        self.http_status = http_status
        self.request_id = request_id

    def provider_fields(self) -> ProviderFields:
        """What the provider said (code, HTTP status, request id), to carry over to a clearer error.

        A plugin that re-raises with a better message keeps the provider's evidence:
        ``raise NotFound("no order X", gateway=name, **exc.provider_fields()) from exc``.
        """
        return {"provider_code": self.provider_code, "http_status": self.http_status, "request_id": self.request_id}

    def __str__(self) -> str:
        parts = [self.message]
        details = [
            f"{k}={v}"
            for k, v in (
                ("gateway", self.gateway),
                ("provider_code", self.provider_code),
                ("http_status", self.http_status),
                ("request_id", self.request_id),
            )
            if v is not None
        ]
        if details:
            parts.append(f"({', '.join(details)})")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, gateway={self.gateway!r}, code={self.code.value!r})"


class InvalidMoney(GatewayError, ValueError):
    """A Money value (or a provider wire amount) could not be built."""

    default_code = ErrorCode.INVALID_MONEY


class InvalidAmount(InvalidMoney):
    """The amount is not an exact decimal the currency (or wire format) can carry."""


class InvalidCurrency(InvalidMoney):
    """The currency code is not a usable ISO 4217 code."""


class CurrencyMismatch(InvalidMoney):
    """Two amounts in different currencies were combined."""


class InvalidRequest(GatewayError, ValueError):
    """The request is malformed or not acceptable; nothing was charged."""

    default_code = ErrorCode.INVALID_REQUEST


class UnsupportedCurrency(InvalidRequest):
    """The gateway does not offer this currency (or configuration narrowed it away)."""

    default_code = ErrorCode.UNSUPPORTED_CURRENCY


class AmountOutOfRange(InvalidRequest):
    """Below the gateway's minimum, above its maximum, or beyond what can be refunded/captured."""

    default_code = ErrorCode.AMOUNT_OUT_OF_RANGE


class CapabilityNotSupported(GatewayError):
    """The gateway does not implement this operation or feature. Raised before anything is sent."""

    default_code = ErrorCode.NOT_SUPPORTED


class PaymentDeclined(GatewayError):
    """The payment was declined. ``decline_code`` is the provider's reason (``insufficient_funds``)."""

    default_code = ErrorCode.DECLINED

    def __init__(self, message: str, *, decline_code: str | None = None, **kwargs: Unpack[ErrorFields]) -> None:
        super().__init__(message, **kwargs)
        self.decline_code = decline_code


class AuthenticationRequired(GatewayError):
    """The payer must authenticate (3-D Secure, PayPal payer action).

    ``action_url`` is where to send the payer, if known; ``payment_id`` the provider's payment
    waiting for it (state ``REQUIRES_ACTION``), if one was created: follow it with
    ``payment_status`` or its webhooks to learn whether the payer completed the step.
    """

    default_code = ErrorCode.AUTHENTICATION_REQUIRED

    def __init__(
        self,
        message: str,
        *,
        action_url: str | None = None,
        payment_id: str | None = None,
        **kwargs: Unpack[ErrorFields],
    ) -> None:
        super().__init__(message, **kwargs)
        self.action_url = action_url
        self.payment_id = payment_id


class AuthenticationFailed(GatewayError):
    """The provider rejected the credentials (wrong or revoked key)."""

    default_code = ErrorCode.AUTHENTICATION_FAILED


class PermissionDenied(GatewayError):
    """The credentials lack a permission. ``permission`` names it when the provider says."""

    default_code = ErrorCode.PERMISSION_DENIED

    def __init__(self, message: str, *, permission: str | None = None, **kwargs: Unpack[ErrorFields]) -> None:
        super().__init__(message, **kwargs)
        self.permission = permission


class RateLimited(GatewayError):
    """The provider throttled us; retry later with the same idempotency key."""

    default_code = ErrorCode.RATE_LIMITED
    default_retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Unpack[ErrorFields]) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class GatewayUnavailable(GatewayError):
    """The provider could not be reached or failed (connection error, timeout, 5xx)."""

    default_code = ErrorCode.UNAVAILABLE
    default_retryable = True


class OutcomeUnknown(GatewayUnavailable):
    """The request may have taken effect (e.g. timed out after sending).

    When ``retryable`` is true, retry with the *same* idempotency key to learn the outcome without
    acting twice. When it is false, a retry with that key would only replay the same answer (Stripe
    saves a 500 for its key): read the payment's status to learn what happened; never retry with a
    new key until the status says nothing was charged.
    """

    default_code = ErrorCode.OUTCOME_UNKNOWN


class IdempotencyConflict(GatewayError):
    """The idempotency key was already used with different parameters."""

    default_code = ErrorCode.IDEMPOTENCY_CONFLICT


class WebhookVerificationFailed(GatewayError):
    """A webhook's signature, secret or timestamp did not verify; the event was not believed."""

    default_code = ErrorCode.WEBHOOK_VERIFICATION_FAILED


class ConfigurationError(GatewayError):
    """Deployment configuration, plugin settings or environment variables are wrong."""

    default_code = ErrorCode.CONFIGURATION


class PluginLoadError(ConfigurationError):
    """A plugin failed to import or register. Names the entry point, distribution and version.

    They are attributes too (``None`` where unknown, and ``entry_point`` for a plugin registered
    in code rather than through an entry point), so a host can report or disable the plugin
    without parsing the message.
    """

    default_code = ErrorCode.PLUGIN_LOAD

    def __init__(
        self,
        message: str,
        *,
        entry_point: str | None = None,
        distribution: str | None = None,
        version: str | None = None,
        **kwargs: Unpack[ErrorFields],
    ) -> None:
        super().__init__(message, **kwargs)
        self.entry_point = entry_point
        self.distribution = distribution
        self.version = version


class UnknownGateway(ConfigurationError, LookupError):
    """No gateway of that name is configured."""

    default_code = ErrorCode.UNKNOWN_GATEWAY


class NotFound(GatewayError, LookupError):
    """The provider has no object with that id."""

    default_code = ErrorCode.NOT_FOUND
