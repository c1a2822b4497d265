"""Stripe objects (as plain dicts) to gateway-core results and webhook events.

Works on ``StripeObject.to_dict()`` output and on JSON from fixtures alike, and does not import
the SDK. Amounts go through the plugin's own wire formats (:class:`~gateway_core.money.WireFormat`),
never ISO exponents: Stripe's ``100000`` ISK is 1000 ISK.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gateway_core.capabilities import CurrencyRule
from gateway_core.errors import GatewayError, UnsupportedCurrency
from gateway_core.models import (
    CheckoutSession,
    CheckoutStatus,
    EventType,
    PaymentState,
    PaymentStatus,
    Refund,
    RefundStatus,
    WebhookEvent,
)
from gateway_core.money import Money, WireFormat

__all__ = [
    "MalformedAnswer",
    "Wire",
    "charge_amounts",
    "checkout_session",
    "event",
    "intent_amounts",
    "intent_state",
    "payment_status",
    "refund",
    "session_status",
]


class MalformedAnswer(GatewayError):
    """A Stripe answer lacks a field the plugin needs, or has one it cannot read.

    Never the host's error: the gateway turns it into :class:`~gateway_core.errors.OutcomeUnknown`
    after a POST Stripe answered, and :class:`~gateway_core.errors.GatewayUnavailable` after reads.
    """


_PI_STATES: Mapping[str, PaymentState] = {
    "requires_payment_method": PaymentState.PENDING,
    "requires_confirmation": PaymentState.PENDING,
    "requires_action": PaymentState.REQUIRES_ACTION,
    "processing": PaymentState.PENDING,
    "requires_capture": PaymentState.AUTHORIZED,
    "canceled": PaymentState.CANCELED,
    "succeeded": PaymentState.SUCCEEDED,
}

_REFUND_STATUSES: Mapping[str, RefundStatus] = {
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,
    "succeeded": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.CANCELED,
}


class Wire:
    """Converts Stripe's integer amounts with the plugin's currency rules."""

    def __init__(self, rules: Mapping[str, CurrencyRule], gateway: str) -> None:
        self._rules = rules
        self._gateway = gateway

    def fmt(self, currency_code: str) -> WireFormat:
        rule = self._rules.get(currency_code.upper())
        if rule is None:
            raise UnsupportedCurrency(
                f"stripe: {currency_code.upper()} is not a declared currency", gateway=self._gateway
            )
        return rule.wire

    def to_minor(self, money: Money) -> int:
        return self.fmt(money.currency).to_minor(money)

    def money(self, minor: Any, currency_code: Any) -> Money:
        """An amount Stripe sent; :class:`MalformedAnswer` if it is not one this gateway can read."""
        if isinstance(minor, bool) or not isinstance(minor, int) or not isinstance(currency_code, str):
            raise MalformedAnswer(f"stripe: malformed amount {minor!r} {currency_code!r}", gateway=self._gateway)
        try:
            return self.fmt(currency_code).from_minor(minor)
        except UnsupportedCurrency as exc:  # Stripe's answer, not the host's request, named it
            raise MalformedAnswer(f"stripe: an amount in undeclared {currency_code!r}", gateway=self._gateway) from exc


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) else None


def _id(value: Any) -> str | None:
    """An object's id whether the field holds the id or the expanded object."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _expanded(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _charge(pi: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The PaymentIntent's charge: ``latest_charge`` if expanded, else the old embedded list."""
    latest = _expanded(pi.get("latest_charge"))
    if latest is not None:
        return latest
    charges = _expanded(pi.get("charges"))
    data = charges.get("data") if charges is not None else None
    if isinstance(data, list) and data and isinstance(data[0], Mapping):
        return data[0]
    return None


def charge_amounts(charge: Mapping[str, Any]) -> tuple[int, int, int]:
    """(amount, captured, refunded) of a Charge, in Stripe minor units.

    On a partial capture Stripe counts the released remainder in ``amount_refunded``; it was
    never money, so it is subtracted from what was refunded.
    """
    amount = int(charge.get("amount") or 0)
    captured = _charge_captured(charge, amount)
    return amount, captured, _refunded(charge, amount, captured)


def _charge_captured(charge: Mapping[str, Any], amount: int) -> int:
    """A charge's captured amount: ``amount_captured`` where the API version has it, else its ``captured`` flag."""
    if isinstance(charge.get("amount_captured"), int):
        return int(charge["amount_captured"])
    return amount if charge.get("captured") else 0


def _refunded(charge: Mapping[str, Any], amount: int, captured: int) -> int:
    refunded = int(charge.get("amount_refunded") or 0)
    released = amount - captured if 0 < captured < amount else 0
    if released and refunded >= released:
        refunded -= released
    return min(refunded, captured)


def intent_amounts(pi: Mapping[str, Any]) -> tuple[int, int, int]:
    """(amount, captured, refunded) of a PaymentIntent, in Stripe minor units.

    Uses ``amount_received`` and the charge's ``amount_captured``/``amount_refunded`` where the
    API version has them; older shapes fall back to the charge's ``captured`` flag (see
    :func:`charge_amounts` for the released remainder of a partial capture).
    """
    amount = int(pi.get("amount") or 0)
    charge = _charge(pi)
    received = pi.get("amount_received")
    if charge is None:
        return amount, received if isinstance(received, int) else 0, 0
    charge_amount = int(charge.get("amount") or amount)
    captured = received if isinstance(received, int) else _charge_captured(charge, charge_amount)
    return amount, captured, _refunded(charge, charge_amount, captured)


def intent_state(pi: Mapping[str, Any]) -> PaymentState:
    """The normalized state of a PaymentIntent, refunds included."""
    status = str(pi.get("status"))
    state = _PI_STATES.get(status)
    if state is None:
        return PaymentState.PENDING
    if status == "requires_payment_method" and pi.get("last_payment_error"):
        return PaymentState.FAILED
    if state is PaymentState.SUCCEEDED:
        _, captured, refunded = intent_amounts(pi)
        if refunded and refunded >= captured:
            return PaymentState.REFUNDED
        if refunded:
            return PaymentState.PARTIALLY_REFUNDED
    return state


def session_status(session: Mapping[str, Any]) -> CheckoutStatus:
    return {"complete": CheckoutStatus.COMPLETE, "expired": CheckoutStatus.EXPIRED}.get(
        str(session.get("status")), CheckoutStatus.OPEN
    )


#: A PaymentIntent's states that hold no money: an expired session with one of these is ``CANCELED``.
_UNPAID = frozenset({PaymentState.FAILED, PaymentState.PENDING, PaymentState.REQUIRES_ACTION})


def checkout_session(
    session: Mapping[str, Any], wire: Wire, gateway: str, *, amount: Money | None = None
) -> CheckoutSession:
    """A Checkout Session as a :class:`CheckoutSession`; ``amount`` when Stripe omits the total."""
    total = session.get("amount_total")
    if isinstance(total, int) and isinstance(session.get("currency"), str):
        amount = wire.money(total, session["currency"])
    if amount is None:
        raise MalformedAnswer("stripe: checkout session has no amount_total", gateway=gateway)
    return CheckoutSession(
        gateway,
        str(session["id"]),
        str(session.get("url") or ""),
        amount,
        session_status(session),
        _ts(session.get("expires_at")),
        payment_id=_id(session.get("payment_intent")),
        reference=_text(session.get("client_reference_id")),
        live=bool(session.get("livemode", False)),
        raw=session,  # the response's own parsed JSON, not shared with anything else: no copy
    )


def payment_status(
    pi: Mapping[str, Any] | None, wire: Wire, gateway: str, *, session: Mapping[str, Any] | None = None
) -> PaymentStatus:
    """A PaymentIntent (and the Checkout Session behind it, if any) as a :class:`PaymentStatus`.

    Only a captured payment is ``SUCCEEDED``: a session that completed with ``payment_status``
    ``unpaid`` (asynchronous methods, or authorize-only) is ``PENDING`` unless its PaymentIntent
    says more. While the session is still ``open``, a declined attempt is not the payment's end:
    the PaymentIntent is back in ``requires_payment_method`` with a ``last_payment_error`` and the
    payer can try another card on the same session, so it is ``PENDING``, not ``FAILED``.
    """
    if pi is not None:
        amount_minor, captured, refunded = intent_amounts(pi)
        currency_code = str(pi["currency"])
        state = intent_state(pi)
        if state is PaymentState.FAILED and session is not None and session.get("status") == "open":
            state = PaymentState.PENDING  # awaiting the payer: the session still takes a payment
        elif state in _UNPAID and session is not None and session.get("status") == "expired":
            # "After it expires, a customer can't complete a Checkout Session" (Expire a Checkout
            # Session, docs.stripe.com/api/checkout/sessions/expire): nothing more will be paid on
            # it, whatever its PaymentIntent still says (a declined attempt's requires_payment_method).
            state = PaymentState.CANCELED
        payment_id = str(pi["id"])
        reference = _reference(pi)
        live = bool(pi.get("livemode", False))
    elif session is not None:
        currency_code = str(session.get("currency") or "")
        amount_minor = int(session.get("amount_total") or 0)
        status, paid = session.get("status"), session.get("payment_status")
        if status == "expired":
            state = PaymentState.CANCELED
        elif status == "complete" and paid in ("paid", "no_payment_required"):
            state = PaymentState.SUCCEEDED
        else:
            state = PaymentState.PENDING
        captured = amount_minor if state is PaymentState.SUCCEEDED else 0
        refunded = 0
        payment_id = str(session["id"])
        reference = None
        live = bool(session.get("livemode", False))
    else:
        raise GatewayError("stripe: nothing to report a status from", gateway=gateway)
    if session is not None:
        reference = _text(session.get("client_reference_id")) or reference
    return PaymentStatus(
        gateway,
        payment_id,
        state,
        wire.money(amount_minor, currency_code),
        wire.money(captured, currency_code),
        wire.money(refunded, currency_code),
        checkout_id=str(session["id"]) if session is not None else None,
        reference=reference,
        live=live,
        raw={"payment_intent": dict(pi) if pi else None, "checkout_session": dict(session) if session else None},
    )


def refund(obj: Mapping[str, Any], wire: Wire, gateway: str, *, payment_id: str, reason: str | None) -> Refund:
    return Refund(
        gateway,
        str(obj["id"]),
        _id(obj.get("payment_intent")) or payment_id,
        wire.money(obj.get("amount"), obj.get("currency")),
        _REFUND_STATUSES.get(str(obj.get("status")), RefundStatus.PENDING),
        reason,
        live=bool(obj.get("livemode", False)),
        raw=dict(obj),
    )


# --------------------------------------------------------------------------------------------
# Webhook events
# --------------------------------------------------------------------------------------------


def _event_type(provider_type: str, obj: Mapping[str, Any]) -> EventType:
    match provider_type:
        case "checkout.session.completed":
            # Paid means captured; unpaid (async methods, authorize-only) is not yet money.
            return EventType.PAYMENT_SUCCEEDED if obj.get("payment_status") == "paid" else EventType.CHECKOUT_COMPLETED
        case "checkout.session.async_payment_succeeded" | "payment_intent.succeeded":
            return EventType.PAYMENT_SUCCEEDED
        case "checkout.session.async_payment_failed" | "payment_intent.payment_failed":
            return EventType.PAYMENT_FAILED
        case "checkout.session.expired":
            return EventType.CHECKOUT_EXPIRED
        case "payment_intent.amount_capturable_updated":
            return EventType.PAYMENT_AUTHORIZED
        case "payment_intent.canceled":
            return EventType.PAYMENT_CANCELED
        case "payment_intent.processing":
            return EventType.PAYMENT_PENDING
        case "charge.refunded":
            # Stripe sends it when a refund is *created*, not when the money has gone back: "the
            # charge.refunded event, which was sent after you created a refund" (Stripe changelog
            # 2024-10-28, "Adds created, updated, and failed events for all refund types"), and a
            # refund can be created pending (the balance is short, the payment method settles
            # refunds later) or fail afterwards (spec3 Refund.status: a card refund is pending,
            # succeeded or failed). The charge says how much is refunded (amount_refunded,
            # refunded), not whether any refund has settled. So the newest refund's own status
            # decides where the charge lists its refunds; where it does not (API >= 2022-11-15),
            # the outcome is unknown: UNKNOWN, reported with payment_id set, never guessed
            # succeeded. refund.created / refund.updated / refund.failed carry the status.
            newest = _newest_refund(obj)
            return _refund_event_type(newest.get("status")) if newest is not None else EventType.UNKNOWN
        case "refund.created" | "refund.updated" | "charge.refund.updated":
            return _refund_event_type(obj.get("status"))
        case "refund.failed":
            return EventType.REFUND_FAILED
        case "charge.dispute.created":
            return EventType.DISPUTE_OPENED
    return EventType.UNKNOWN


def _refund_event_type(status: Any) -> EventType:
    """The event a refund's own ``status`` reports (spec3 ``Refund.status``)."""
    if status == "succeeded":
        return EventType.REFUND_SUCCEEDED
    if status in ("failed", "canceled"):
        return EventType.REFUND_FAILED
    if status in ("pending", "requires_action"):
        return EventType.REFUND_PENDING
    return EventType.UNKNOWN  # a status this plugin does not know, or none: reported, not guessed


def _newest_refund(charge: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The most recent refund a ``charge.refunded`` event's charge lists, if it lists any.

    Since API 2022-11-15 a charge no longer embeds its refunds unless expanded, so an event
    from a current endpoint usually has none: the event then names the payment, not the refund.
    """
    refunds = _expanded(charge.get("refunds"))
    data = refunds.get("data") if refunds is not None else None
    listed = [r for r in data if isinstance(r, Mapping)] if isinstance(data, list) else []
    if not listed:
        return None
    return max(listed, key=lambda r: int(r["created"]) if isinstance(r.get("created"), int) else 0)


def _is_minor(value: Any) -> bool:
    """A positive integer amount (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _event_amount(provider_type: str, obj: Mapping[str, Any], wire: Wire) -> Money | None:
    if provider_type.startswith("checkout.session."):
        minor = obj.get("amount_total")
    elif provider_type == "charge.refunded":
        # Not the charge's cumulative amount_refunded: the event's amount is the refund's.
        newest = _newest_refund(obj)
        minor = newest.get("amount") if newest is not None else None
    elif provider_type == "payment_intent.succeeded" and _is_minor(obj.get("amount_received")):
        # ``amount`` is what was intended; after a partial capture Stripe collected less
        minor = obj["amount_received"]
    elif provider_type == "payment_intent.amount_capturable_updated" and _is_minor(obj.get("amount_capturable")):
        minor = obj["amount_capturable"]  # what the payer authorized, which may be less than intended
    else:
        minor = obj.get("amount")
    currency_code = obj.get("currency")
    if not isinstance(minor, int) or isinstance(minor, bool) or not isinstance(currency_code, str):
        return None
    # Not wire.money: it calls an undeclared currency a malformed answer, and a verified event in
    # one (a dispute, a payment made outside this plugin) must still reach the host, amount unset;
    # the currency code stays in the event's raw payload.
    try:
        fmt = wire.fmt(currency_code)
    except UnsupportedCurrency:
        return None
    return fmt.from_minor(minor)


def _failure_code(obj: Mapping[str, Any]) -> str | None:
    error = _expanded(obj.get("last_payment_error"))
    if error is not None:
        return _text(error.get("decline_code")) or _text(error.get("code"))
    for key in ("failure_reason", "failure_code"):
        if code := _text(obj.get(key)):
            return code
    return None


def _text(value: Any) -> str | None:
    """A non-empty string field, else ``None``: read by shape, never ``str()`` of an object or number."""
    return value if isinstance(value, str) and value else None


def _reference(obj: Mapping[str, Any]) -> str | None:
    """The host's reference in an object's ``metadata`` (a mapping of strings), if it holds one."""
    metadata = _expanded(obj.get("metadata"))
    return _text(metadata.get("reference")) if metadata is not None else None


def event(payload: Mapping[str, Any], wire: Wire, gateway: str) -> WebhookEvent:
    """A verified Stripe event (parsed JSON) as a :class:`WebhookEvent`; unknown types are ``UNKNOWN``."""
    provider_type = str(payload["type"])
    data = _expanded(payload.get("data"))
    obj = _expanded(data.get("object")) if data is not None else None
    if obj is None:
        raise KeyError("data.object")
    kind = obj.get("object")
    payment_id: str | None = None
    checkout_id: str | None = None
    refund_id: str | None = None
    reference: str | None = None
    failure_code = _failure_code(obj)
    if kind == "checkout.session":
        checkout_id = _id(obj.get("id"))
        payment_id = _id(obj.get("payment_intent"))
        reference = _text(obj.get("client_reference_id"))
    elif kind == "payment_intent":
        payment_id = _id(obj.get("id"))
        reference = _reference(obj)
    elif kind == "refund":
        refund_id = _id(obj.get("id"))
        payment_id = _id(obj.get("payment_intent")) or _id(obj.get("charge"))
    elif kind in ("charge", "dispute"):
        payment_id = _id(obj.get("payment_intent")) or _id(obj.get("charge")) or _id(obj.get("id"))
        if provider_type == "charge.refunded":
            newest = _newest_refund(obj)
            refund_id = _id(newest.get("id")) if newest is not None else None
            # The event is about the refund: its failure_reason, not the charge's own failure_code.
            failure_code = _failure_code(newest) if newest is not None else None
    return WebhookEvent(
        gateway,
        str(payload["id"]),
        _event_type(provider_type, obj),
        provider_type,
        occurred_at=_ts(payload.get("created")),
        payment_id=payment_id,
        checkout_id=checkout_id,
        refund_id=refund_id,
        reference=reference,
        amount=_event_amount(provider_type, obj, wire),
        failure_code=failure_code,
        live=bool(payload.get("livemode", False)),
        raw=dict(payload),
    )
