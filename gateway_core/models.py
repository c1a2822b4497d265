"""Requests the host sends and the normalized results and webhook events it gets back.

All are frozen attrs values. Results carry the provider's ids, whether the object is live, and the
provider's payload as ``raw`` (excluded from ``repr`` and ``==``, so a payload never reaches a log
line by accident).

Requests are safe to log the same way: their ``repr`` shows what a request is shaped like, never
the payer's data or what a webhook's sender proved itself with. Fields that hold such a value are
still compared by ``==`` (the fake, like a provider, compares what a reused idempotency key was
sent with) and are read as usual; only their ``repr`` changes:

* a payment-method token or an e-mail address (``payment_method``, ``customer_email``) shows as
  its length, ``<hidden: 24 chars>`` (``None`` stays ``None``);
* ``metadata`` and a webhook's ``headers`` show their keys, each value hidden as above
  (``{'order': <hidden: 2 chars>}``), so the header names are there to debug a signature;
* a webhook's ``body`` shows as its size, ``<hidden: 512 bytes>``.

Amounts, ids, ``reference``, URLs, line items and the other fields show as they are.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

import attrs

from gateway_core.errors import InvalidRequest
from gateway_core.money import Money

__all__ = [
    "Authorization",
    "AuthorizeRequest",
    "Capture",
    "CaptureRequest",
    "CheckResult",
    "CheckoutRequest",
    "CheckoutSession",
    "CheckoutStatus",
    "EventType",
    "LineItem",
    "OperationContext",
    "PaymentState",
    "PaymentStatus",
    "Refund",
    "RefundRequest",
    "RefundStatus",
    "StatusRequest",
    "Void",
    "VoidRequest",
    "WebhookEvent",
    "WebhookHeaders",
    "WebhookRequest",
]

_MAX_METADATA_KEYS = 40


def _freeze_metadata(value: Mapping[str, str] | None) -> Mapping[str, str]:
    try:
        data = dict(value or {})
    except (TypeError, ValueError):
        raise InvalidRequest(f"metadata must be a mapping of str to str, not {type(value).__name__}") from None
    if len(data) > _MAX_METADATA_KEYS:
        raise InvalidRequest(f"metadata has {len(data)} keys; at most {_MAX_METADATA_KEYS} are portable")
    for key, val in data.items():
        if not isinstance(key, str) or not isinstance(val, str):
            raise InvalidRequest("metadata keys and values must be str")
    return MappingProxyType(data)


def _hidden(value: object) -> str:
    """The ``repr`` of a value the payer or a webhook's sender owns: its size, never its content."""
    if value is None:
        return "None"
    if isinstance(value, str):
        return f"<hidden: {len(value)} chars>"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<hidden: {len(value)} bytes>"
    return f"<hidden: {type(value).__name__}>"


def _keys_only(value: object) -> str:
    """The ``repr`` of metadata or headers: each key as it is, each value :func:`_hidden`."""
    if not isinstance(value, Mapping):
        return _hidden(value)
    return "{" + ", ".join(f"{key!r}: {_hidden(val)}" for key, val in value.items()) + "}"


def _raw_field() -> Any:
    return attrs.field(factory=dict, repr=False, eq=False)


def _positive(_: object, attribute: attrs.Attribute[Money], value: Money) -> None:
    if not isinstance(value, Money):
        raise InvalidRequest(f"{attribute.name} must be Money, not {type(value).__name__}")
    if not value.is_positive:
        raise InvalidRequest(f"{attribute.name} must be positive, got {value}")


def _positive_or_none(obj: object, attribute: attrs.Attribute[Money], value: Money | None) -> None:
    if value is not None:
        _positive(obj, attribute, value)


def _check_fee(fee: object, amount: Money, what: str) -> None:
    """An ``application_fee`` is ``None``, or Money in ``amount``'s currency between zero and ``amount``."""
    if fee is None:
        return
    if not isinstance(fee, Money):
        raise InvalidRequest(f"application_fee must be Money or None, not {type(fee).__name__}")
    if fee.currency != amount.currency:
        raise InvalidRequest(f"application_fee must be in the {what}'s currency")
    if fee.amount < 0 or fee > amount:
        raise InvalidRequest(f"application_fee must be between zero and the {what} amount")


def _check_url(label: str, url: object) -> None:
    if not isinstance(url, str):
        raise InvalidRequest(f"{label} must be an absolute http(s) URL, not {type(url).__name__}")
    if not url.startswith(("https://", "http://")):
        raise InvalidRequest(f"{label} must be an absolute http(s) URL")


# --------------------------------------------------------------------------------------------
# Context
# --------------------------------------------------------------------------------------------


@attrs.frozen
class OperationContext:
    """What the manager knows about one call; every operation hook receives it.

    ``idempotency_key`` is set for every mutating operation and must be sent to the provider
    (Stripe ``Idempotency-Key``, PayPal ``PayPal-Request-Id``). ``asynchronous`` is true only when
    the call comes from the asyncio API to an asyncio-native provider: the hook may then return an
    awaitable (see :attr:`~gateway_core.hookspecs.ProviderDefinition.asyncio_native`).
    """

    gateway: str
    provider: str
    operation: str
    idempotency_key: str | None = None
    asynchronous: bool = False


# --------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------


@attrs.frozen
class LineItem:
    """One line of a hosted checkout: name, unit amount and quantity."""

    name: str
    unit_amount: Money = attrs.field(validator=_positive)
    quantity: int = 1

    def __attrs_post_init__(self) -> None:
        name: object = self.name  # untyped callers pass anything: check what arrived, not the annotation
        if not isinstance(name, str):
            raise InvalidRequest(f"line item name must be a str, not {type(name).__name__}")
        if not name.strip():
            raise InvalidRequest("line item name must not be empty")
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int) or self.quantity < 1:
            raise InvalidRequest(f"quantity must be a positive int, got {self.quantity!r}")

    @property
    def total(self) -> Money:
        return self.unit_amount * self.quantity


def _line_items(value: Any) -> tuple[LineItem, ...]:
    if isinstance(value, LineItem | str | bytes) or not isinstance(value, Iterable):
        raise InvalidRequest(f"line_items must be a collection of LineItem, not {type(value).__name__}")
    items = tuple(value)
    if not items:
        raise InvalidRequest("a checkout needs at least one line item")
    for item in items:
        if not isinstance(item, LineItem):
            raise InvalidRequest(f"line_items must all be LineItem, not {type(item).__name__}")
    currencies = {i.unit_amount.currency for i in items}
    if len(currencies) > 1:
        raise InvalidRequest(f"line items mix currencies: {', '.join(sorted(currencies))}")
    return items


@attrs.frozen
class CheckoutRequest:
    """A hosted checkout the payer is redirected to.

    ``capture=False`` asks for authorize-only (capture later). ``application_fee`` is the
    platform's fee where the gateway declares :attr:`Feature.APPLICATION_FEE`.

    Its ``repr`` hides ``customer_email`` (its length shows) and ``metadata``'s values (its keys
    show); see the module docstring.
    """

    line_items: tuple[LineItem, ...] = attrs.field(converter=_line_items)
    success_url: str
    cancel_url: str
    reference: str | None = None
    customer_email: str | None = attrs.field(default=None, repr=_hidden)
    metadata: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze_metadata, repr=_keys_only)
    expires_at: datetime | None = None
    locale: str | None = None
    capture: bool = True
    application_fee: Money | None = None
    #: The total, summed once at construction (the manager and plugins read it several times per call).
    _total: Money = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        total = self.line_items[0].total
        for item in self.line_items[1:]:
            total = total + item.total
        object.__setattr__(self, "_total", total)
        _check_url("success_url", self.success_url)
        _check_url("cancel_url", self.cancel_url)
        expires_at: object = self.expires_at
        if expires_at is not None and not isinstance(expires_at, datetime):
            raise InvalidRequest(f"expires_at must be a datetime or None, not {type(expires_at).__name__}")
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise InvalidRequest("expires_at must be timezone-aware")
        _check_fee(self.application_fee, self.amount, "checkout")

    @classmethod
    def single(cls, name: str, amount: Money, success_url: str, cancel_url: str, **kwargs: Any) -> CheckoutRequest:
        """A checkout of one item at ``amount``."""
        return cls(line_items=(LineItem(name, amount),), success_url=success_url, cancel_url=cancel_url, **kwargs)

    @property
    def amount(self) -> Money:
        """The total to be paid."""
        return self._total


@attrs.frozen
class AuthorizeRequest:
    """Authorize (hold) ``amount`` on a payment method token the host collected client-side.

    ``payment_method`` is required: the manager refuses ``None``, a blank str or anything but a
    str with :class:`~gateway_core.errors.InvalidRequest` before any plugin runs.

    ``return_url`` is where the provider sends the payer back after authenticating (3-D Secure):
    with one, a plugin whose provider offers a hosted authentication page gives its address as
    :attr:`AuthenticationRequired.action_url <gateway_core.errors.AuthenticationRequired>`, so a
    host without the provider's browser SDK can redirect the payer there and take them back.
    Optional; when given, the manager refuses anything but an absolute http(s) URL, checked as
    :class:`CheckoutRequest` checks ``success_url``, with ``InvalidRequest`` before any plugin runs.

    Its ``repr`` hides ``payment_method`` and ``customer_email`` (their length shows) and
    ``metadata``'s values (its keys show); see the module docstring.
    """

    amount: Money = attrs.field(validator=_positive)
    payment_method: str = attrs.field(repr=_hidden)
    reference: str | None = None
    customer_email: str | None = attrs.field(default=None, repr=_hidden)
    metadata: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze_metadata, repr=_keys_only)
    application_fee: Money | None = None
    #: Where the provider sends the payer back after authenticating, e.g. 3-D Secure.
    return_url: str | None = None

    def __attrs_post_init__(self) -> None:
        _check_fee(self.application_fee, self.amount, "authorization")


@attrs.frozen
class CaptureRequest:
    """Capture an authorization, wholly (``amount=None``) or partly."""

    payment_id: str
    amount: Money | None = attrs.field(default=None, validator=_positive_or_none)


@attrs.frozen
class VoidRequest:
    """Cancel an uncaptured authorization, or expire an open checkout."""

    payment_id: str


@attrs.frozen
class RefundRequest:
    """Refund a captured payment, wholly (``amount=None``) or partly, with an optional reason."""

    payment_id: str
    amount: Money | None = attrs.field(default=None, validator=_positive_or_none)
    reason: str | None = None


@attrs.frozen
class StatusRequest:
    """Retrieve a payment's (or checkout's) current state from the provider."""

    payment_id: str


def _header_text(value: object, what: str) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")  # HTTP header bytes (an ASGI scope's raw headers)
    if isinstance(value, str):
        return value
    raise InvalidRequest(f"webhook header {what} must be str or bytes, not {type(value).__name__}")


#: Webhook headers as a host's web framework gives them: a mapping, or (name, value) pairs of str
#: or bytes (an ASGI scope's ``headers``).
WebhookHeaders = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]


def _lower_headers(headers: WebhookHeaders) -> Mapping[str, str]:
    """Headers by lower-case name, from a mapping or (name, value) pairs, str or bytes.

    A name given twice with different values is refused: which signature would be believed?
    """
    given: object = headers  # untyped callers pass anything: check what arrived, not the annotation
    if isinstance(given, Mapping):
        pairs: Iterable[Any] = given.items()
    elif isinstance(given, Iterable) and not isinstance(given, str | bytes):
        pairs = given
    else:
        raise InvalidRequest(f"webhook headers must be a mapping or (name, value) pairs, not {type(given).__name__}")
    out: dict[str, str] = {}
    for pair in pairs:
        if not (isinstance(pair, tuple | list) and len(pair) == 2):
            raise InvalidRequest("webhook headers given as pairs must be (name, value) pairs")
        name = _header_text(pair[0], "names").lower()
        value = _header_text(pair[1], "values")
        if out.get(name, value) != value:
            raise InvalidRequest(f"webhook header {name!r} given twice with different values")
        out[name] = value
    return MappingProxyType(out)


@attrs.frozen
class WebhookRequest:
    """A webhook exactly as received: headers (case-insensitive lookup) and the raw body bytes.

    Its ``repr`` shows the header names with their values hidden (a signature, or an
    ``Authorization`` a proxy passed on) and the body's size, not its bytes; see the module docstring.
    """

    headers: Mapping[str, str] = attrs.field(converter=_lower_headers, repr=_keys_only)
    body: bytes = attrs.field(repr=_hidden)
    received_at: datetime | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


class CheckoutStatus(enum.StrEnum):
    OPEN = "open"
    COMPLETE = "complete"
    EXPIRED = "expired"


class PaymentState(enum.StrEnum):
    """A payment's normalized state. Only ``SUCCEEDED`` means the money is ours."""

    PENDING = "pending"  # awaiting the payer or settlement; so is a checkout still open after a declined card
    REQUIRES_ACTION = "requires_action"  # payer must authenticate
    AUTHORIZED = "authorized"  # held, awaiting capture
    SUCCEEDED = "succeeded"  # captured / paid
    FAILED = "failed"  # declined or failed, final for this payment; a checkout still open for another card is PENDING
    CANCELED = "canceled"  # voided, or checkout expired unpaid
    REFUNDED = "refunded"  # fully refunded
    PARTIALLY_REFUNDED = "partially_refunded"


class RefundStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


@attrs.frozen
class CheckoutSession:
    """A hosted checkout: send the payer to ``url`` before ``expires_at``."""

    gateway: str
    id: str
    url: str
    amount: Money
    status: CheckoutStatus
    expires_at: datetime | None
    payment_id: str | None = None
    reference: str | None = None
    live: bool = True
    raw: Mapping[str, Any] = _raw_field()


@attrs.frozen
class Authorization:
    """An authorization (hold) or, if the provider captured immediately, a paid payment."""

    gateway: str
    id: str
    amount: Money
    state: PaymentState
    live: bool = True
    raw: Mapping[str, Any] = _raw_field()


@attrs.frozen
class Capture:
    gateway: str
    id: str
    payment_id: str
    amount: Money
    state: PaymentState
    live: bool = True
    raw: Mapping[str, Any] = _raw_field()


@attrs.frozen
class Void:
    gateway: str
    payment_id: str
    state: PaymentState
    live: bool = True
    raw: Mapping[str, Any] = _raw_field()


@attrs.frozen
class Refund:
    gateway: str
    id: str
    payment_id: str
    amount: Money
    status: RefundStatus
    reason: str | None = None
    live: bool = True
    raw: Mapping[str, Any] = _raw_field()


@attrs.frozen
class PaymentStatus:
    """A payment's state with the amounts the provider reports.

    ``amount_refunded`` is what the payer has back or has on its way back: the sum of the
    payment's refunds that succeeded or are still pending; a failed or canceled refund is not in
    it. It is the amount no longer refundable: ``amount_captured - amount_refunded`` is what
    further refunds may still take. A refund counts from the moment the provider accepts it, so
    a host that reads the status to learn whether a refund whose answer was lost was made sees
    it while it is pending too. When a refund fails or is canceled, its amount leaves the total
    and is refundable again (``refund.failed``). This is how the providers book it: Stripe makes
    a refund's balance transaction when the refund is created, pending or not, and a failed
    one's ``failure_balance_transaction`` reverses it; PayPal's ``total_refunded_amount``
    includes a ``PENDING`` refund. A plugin whose provider lists refunds with their statuses
    sums the succeeded and the pending ones.

    ``state`` follows the same amounts: ``PARTIALLY_REFUNDED`` once some of the captured amount
    is refunded or pending refund, ``REFUNDED`` once all of it is, whatever the refunds' own
    statuses (a :class:`Refund`'s ``status`` says whether one has settled).
    """

    gateway: str
    payment_id: str
    state: PaymentState
    amount: Money
    amount_captured: Money
    amount_refunded: Money
    checkout_id: str | None = None
    reference: str | None = None
    live: bool = True
    raw: Mapping[str, Any] = _raw_field()

    @property
    def is_paid(self) -> bool:
        return self.state in (PaymentState.SUCCEEDED, PaymentState.PARTIALLY_REFUNDED)


@attrs.frozen
class CheckResult:
    """One finding of a configuration check: ``"credentials"`` ok, ``"permission: Checkout Sessions write"`` missing."""

    name: str
    ok: bool
    detail: str = ""


# --------------------------------------------------------------------------------------------
# Webhook events
# --------------------------------------------------------------------------------------------


class EventType(enum.StrEnum):
    """Normalized webhook event types. ``UNKNOWN`` is reported, never dropped."""

    CHECKOUT_COMPLETED = "checkout.completed"  # payer finished; payment may still be pending
    CHECKOUT_EXPIRED = "checkout.expired"
    PAYMENT_AUTHORIZED = "payment.authorized"
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_PENDING = "payment.pending"
    PAYMENT_FAILED = "payment.failed"  # an attempt failed, not always the payment: read its status
    PAYMENT_CANCELED = "payment.canceled"
    REFUND_SUCCEEDED = "refund.succeeded"
    REFUND_PENDING = "refund.pending"  # the provider is still processing it; succeeded or failed follows
    REFUND_FAILED = "refund.failed"
    PAYMENT_REVERSED = "payment.reversed"
    DISPUTE_OPENED = "dispute.opened"
    UNKNOWN = "unknown"


@attrs.frozen
class WebhookEvent:
    """A verified webhook, normalized.

    ``id`` is the provider's event id: deduplicate on ``(gateway, id)`` to process each event
    once however often it arrives. ``provider_type`` is the provider's own name for the event.
    """

    gateway: str
    id: str
    type: EventType
    provider_type: str
    occurred_at: datetime | None = None
    payment_id: str | None = None
    checkout_id: str | None = None
    refund_id: str | None = None
    reference: str | None = None
    amount: Money | None = None
    failure_code: str | None = None
    live: bool = True
    raw: Mapping[str, Any] = _raw_field()
