"""The application service of paid events: what organizers and participants do, on a real store.

Every state change is one database transaction; every provider call happens outside a
transaction, after the row that names it (with its operation id) is committed, so a crash between
the call and the write is finished by :meth:`PaidEvents.reconcile` with the same idempotency key
and never charges twice. Seats and promo-code uses move only through conditional ``UPDATE``\\ s
(``... WHERE seats_taken < capacity``), which PostgreSQL serializes on the row lock and SQLite on
its single writer, so no interleaving can oversell. A webhook is believed only after
``GatewayManager.parse_webhook`` verified it, and processed once: its ``(gateway, event id)`` row
is inserted in the same transaction as the fulfilment and the outbox message.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

import attrs
import sqlalchemy as sa
import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway_core import (
    AmountOutOfRange,
    CheckoutRequest,
    CheckoutSession,
    EventType,
    Feature,
    GatewayError,
    GatewayManager,
    InvalidAmount,
    InvalidRequest,
    Money,
    PaymentState,
    RateLimited,
    RefundRequest,
    UnknownGateway,
    UnsupportedCurrency,
    VoidRequest,
)
from paid_events import domain
from paid_events.config import PlatformConfig
from paid_events.domain import EventKind, Promo, PromoKind, Quote
from paid_events.errors import (
    AlreadyRegistered,
    CheckoutPending,
    EventClosed,
    InvalidInput,
    InvalidPrice,
    InvalidPromoCode,
    InvalidTransition,
    PriceChanged,
    PriceLocked,
    PromoCodeExhausted,
    PromoCodeExpired,
    SoldOut,
    UnknownEvent,
    UnknownPayment,
    UnknownPromoCode,
    UnknownRegistration,
)
from paid_events.store import EventRow, OutboxRow, ProcessedWebhookRow, PromoCodeRow, RegistrationRow, Store

__all__ = [
    "CheckoutResult",
    "EventView",
    "FeeLine",
    "FeeReport",
    "PaidEvents",
    "Participant",
    "PromoView",
    "ReconcileReport",
    "RefundOutcome",
    "WebhookOutcome",
]

log = structlog.get_logger("paid_events")

_T = TypeVar("_T")

_PROVIDER_ATTEMPTS = 3
_MAX_TITLE = 200


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# Views returned to callers
# --------------------------------------------------------------------------------------------


@attrs.frozen
class EventView:
    id: str
    organizer: str
    title: str
    kind: EventKind
    price: Money
    early_price: Money | None
    early_from: datetime | None
    early_until: datetime | None
    capacity: int
    seats_taken: int
    gateways: tuple[str, ...]
    starts_at: datetime | None
    status: str

    @property
    def seats_left(self) -> int:
        return self.capacity - self.seats_taken


@attrs.frozen
class PromoView:
    id: str
    event_id: str
    code: str
    promo: Promo
    max_uses: int | None
    uses: int
    expires_at: datetime | None


@attrs.frozen
class CheckoutResult:
    """A registration after checkout: ``checkout_url`` to pay, or ``status == "confirmed"`` when free."""

    registration_id: str
    status: str
    quote: Quote
    checkout_url: str | None = None
    checkout_id: str | None = None


@attrs.frozen
class Participant:
    registration_id: str
    email: str
    status: str
    amount: Money
    fee: Money
    gateway: str | None
    promo_code: str | None
    refund_state: str
    created_at: datetime
    confirmed_at: datetime | None


class WebhookOutcome(enum.StrEnum):
    """What a verified webhook did: fulfilled or changed a registration, was a repeat, or was ignored."""

    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


@attrs.frozen
class FeeLine:
    registration_id: str
    amount: Money
    fee: Money


@attrs.frozen
class FeeReport:
    """The platform's service fee per confirmed payment and in total (the sum of the per-payment fees)."""

    lines: tuple[FeeLine, ...]
    total_sales: Money
    total_fee: Money


@attrs.frozen
class RefundOutcome:
    registration_id: str
    state: str  # refunded | already_refunded | failed
    amount: Money
    refund_id: str | None = None
    error: str | None = None


@attrs.frozen
class ReconcileReport:
    checkouts_recovered: int = 0
    confirmed: int = 0
    released: int = 0
    still_pending: int = 0


# --------------------------------------------------------------------------------------------
# The service
# --------------------------------------------------------------------------------------------


class PaidEvents:
    """Paid events on one store and one gateway manager.

    ``clock`` returns the current UTC time (tests move it). ``success_url``/``cancel_url`` are
    where the provider sends the payer back; the return alone never confirms anything.
    """

    def __init__(
        self,
        store: Store,
        gateways: GatewayManager,
        config: PlatformConfig,
        *,
        clock: Callable[[], datetime] = _utcnow,
        success_url: str = "https://events.example.invalid/checkout/success",
        cancel_url: str = "https://events.example.invalid/checkout/cancel",
    ) -> None:
        self.store = store
        self.gateways = gateways
        self.config = config
        self.clock = clock
        self.success_url = success_url
        self.cancel_url = cancel_url

    # -- events ---------------------------------------------------------------------------
    def create_event(
        self,
        *,
        organizer: str,
        title: str,
        kind: EventKind | str,
        price: Money,
        capacity: int,
        gateways: Sequence[str],
        starts_at: datetime | None = None,
        early_price: Money | None = None,
        early_until: datetime | None = None,
        early_from: datetime | None = None,
    ) -> EventView:
        """Create an event; ``capacity`` is the organizer's plan size, ``gateways`` those they enabled."""
        event_kind = self._kind(kind)
        title = self._text("title", title)
        organizer = self._text("organizer", organizer)
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise InvalidInput("capacity (the plan size) must be a positive whole number")
        enabled = self._enabled_gateways(gateways)
        offered = self._offered(enabled)
        domain.validate_price(price, self.config, offered)
        self._check_early(price, early_price, early_until, early_from, offered)
        self._check_aware("starts_at", starts_at)
        row = EventRow(
            id=str(uuid.uuid4()),
            organizer=organizer,
            title=title,
            kind=event_kind.value,
            currency=price.currency,
            price_minor=price.to_minor(),
            early_price_minor=early_price.to_minor() if early_price is not None else None,
            early_from=early_from,
            early_until=early_until,
            capacity=capacity,
            seats_taken=0,
            gateways=",".join(enabled),
            starts_at=starts_at,
            status="active",
            created_at=self.clock(),
        )
        with self.store.transaction() as s:
            s.add(row)
        log.info("paid_events.event.created", event_id=row.id, price=str(price), capacity=capacity)
        return _event_view(row)

    def event(self, event_id: str) -> EventView:
        with self.store.transaction() as s:
            return _event_view(self._event(s, event_id))

    def change_price(
        self,
        event_id: str,
        price: Money,
        *,
        early_price: Money | None = None,
        early_until: datetime | None = None,
        early_from: datetime | None = None,
    ) -> EventView:
        """Change the price while no payment is confirmed; afterwards delete and recreate the event."""
        with self.store.transaction() as s:
            row = self._event(s, event_id, lock=True)
            offered = self._offered(row.gateway_names)
            if price.currency != row.currency:
                raise InvalidPrice(f"the event is sold in {row.currency}; its currency cannot change")
            domain.validate_price(price, self.config, offered)
            self._check_early(price, early_price, early_until, early_from, offered)
            if self._has_confirmed_payment(s, event_id):
                raise PriceLocked("a payment is confirmed, so the price cannot change; delete and recreate the event")
            row.price_minor = price.to_minor()
            row.early_price_minor = early_price.to_minor() if early_price is not None else None
            row.early_until = early_until
            row.early_from = early_from
            view = _event_view(row)
        log.info("paid_events.event.price_changed", event_id=event_id, price=str(price))
        return view

    def delete_event(self, event_id: str) -> None:
        """Delete an event nobody holds or has paid for (refund paid tickets first)."""
        with self.store.transaction() as s:
            self._event(s, event_id, lock=True)
            blocking = s.scalar(
                sa.select(sa.func.count())
                .select_from(RegistrationRow)
                .where(
                    RegistrationRow.event_id == event_id,
                    sa.or_(
                        RegistrationRow.status == "pending",
                        sa.and_(
                            RegistrationRow.price_minor > 0,
                            RegistrationRow.refund_state != "refunded",
                            RegistrationRow.payment_id.is_not(None),
                            RegistrationRow.status.in_(("confirmed", "rejected", "paid_no_seat")),
                        ),
                    ),
                )
            )
            if blocking:
                raise InvalidTransition(
                    f"event {event_id} has {blocking} open checkouts or unrefunded payments; refund them first"
                )
            s.execute(sa.delete(OutboxRow).where(OutboxRow.event_id == event_id))
            s.execute(sa.delete(RegistrationRow).where(RegistrationRow.event_id == event_id))
            s.execute(sa.delete(PromoCodeRow).where(PromoCodeRow.event_id == event_id))
            s.execute(sa.delete(EventRow).where(EventRow.id == event_id))
        log.info("paid_events.event.deleted", event_id=event_id)

    def change_date(self, event_id: str, starts_at: datetime) -> int:
        """Move the event; every participant holding or having a ticket is notified. Returns how many."""
        self._check_aware("starts_at", starts_at)
        if starts_at is None:
            raise InvalidInput("starts_at is required")
        with self.store.transaction() as s:
            row = self._event(s, event_id, lock=True)
            if row.status != "active":
                raise EventClosed(f"event {event_id} is cancelled")
            row.starts_at = starts_at
            count = 0
            for reg in self._live_registrations(s, event_id):
                self._message(
                    s,
                    "date_change",
                    row,
                    reg,
                    f"New date for {row.title}",
                    f"{row.title} now starts at {starts_at.isoformat()}. Your ticket stays valid.",
                )
                count += 1
        log.info("paid_events.event.date_changed", event_id=event_id, notified=count)
        return count

    def cancel_event(self, event_id: str) -> int:
        """Cancel the event; every participant is notified. Refunds are the organizer's next step."""
        with self.store.transaction() as s:
            row = self._event(s, event_id, lock=True)
            if row.status == "cancelled":
                raise InvalidTransition(f"event {event_id} is already cancelled")
            row.status = "cancelled"
            count = 0
            open_checkouts: list[tuple[str, str, str]] = []
            for reg in self._live_registrations(s, event_id):
                self._message(
                    s,
                    "cancellation",
                    row,
                    reg,
                    f"{row.title} is cancelled",
                    f"The organizer cancelled {row.title}. If you paid, the organizer will refund you.",
                )
                count += 1
                if reg.status == "pending" and reg.gateway is not None and reg.checkout_id is not None:
                    open_checkouts.append((reg.id, reg.gateway, reg.checkout_id))
        for registration_id, gateway, checkout_id in open_checkouts:
            # Close open checkouts so nobody pays for a cancelled event; the expiry webhook (or
            # reconcile) gives the seat back. A payment that still lands is confirmed and refundable.
            try:
                self.gateways.void(gateway, VoidRequest(checkout_id), operation_id=f"expire:{registration_id}")
            except GatewayError as exc:
                log.warning("paid_events.cancel.void_failed", registration_id=registration_id, error=type(exc).__name__)
        log.info("paid_events.event.cancelled", event_id=event_id, notified=count, checkouts_closed=len(open_checkouts))
        return count

    # -- promo codes ----------------------------------------------------------------------
    def add_promo_code(
        self,
        event_id: str,
        code: str,
        *,
        percent: Decimal | str | None = None,
        amount: Money | None = None,
        max_uses: int | None = None,
        expires_at: datetime | None = None,
    ) -> PromoView:
        """Add a percentage or fixed-amount code, optionally limited in uses and time (one-off events only)."""
        canonical = domain.normalize_promo_code(code)
        if max_uses is not None and (isinstance(max_uses, bool) or not isinstance(max_uses, int) or max_uses < 1):
            raise InvalidPromoCode("max_uses must be a positive whole number")
        self._check_aware("expires_at", expires_at)
        pct: Decimal | None = None
        if percent is not None:
            try:
                pct = Decimal(percent) if isinstance(percent, str) else percent
            except ArithmeticError:
                raise InvalidPromoCode("percent must be a decimal number") from None
            if not isinstance(pct, Decimal) or not pct.is_finite():
                raise InvalidPromoCode("percent must be a finite decimal (never a float)")
        promo = Promo(canonical, PromoKind.PERCENT if pct is not None else PromoKind.FIXED, pct, amount)
        row = PromoCodeRow(
            id=str(uuid.uuid4()),
            event_id=event_id,
            code=canonical,
            kind=promo.kind.value,
            percent=pct,
            amount_minor=amount.to_minor() if amount is not None else None,
            max_uses=max_uses,
            uses=0,
            expires_at=expires_at,
        )
        try:
            with self.store.transaction() as s:
                event = self._event(s, event_id)
                domain.check_promo_allowed(EventKind(event.kind))
                if amount is not None and amount.currency != event.currency:
                    raise InvalidPromoCode(f"the event is sold in {event.currency}, the code is in {amount.currency}")
                s.add(row)
                s.flush()
        except IntegrityError:
            raise InvalidPromoCode(f"event {event_id} already has promo code {canonical}") from None
        log.info("paid_events.promo.created", event_id=event_id, promo_id=row.id, kind=promo.kind.value)
        return PromoView(row.id, event_id, canonical, promo, max_uses, 0, expires_at)

    def promo_code(self, event_id: str, code: str) -> PromoView:
        canonical = domain.normalize_promo_code(code)
        with self.store.transaction() as s:
            event = self._event(s, event_id)
            row = self._promo(s, event, canonical)
            return PromoView(
                row.id, event_id, row.code, _promo(row, event.currency), row.max_uses, row.uses, row.expires_at
            )

    # -- quoting and checkout -------------------------------------------------------------
    def quote(self, event_id: str, promo_code: str | None = None, *, gateway: str | None = None) -> Quote:
        """The final price (and fee and gateway) the participant would pay now; writes nothing."""
        canonical = domain.normalize_promo_code(promo_code) if promo_code is not None else None
        with self.store.transaction() as s:
            event = self._event(s, event_id)
            promo = self._usable_promo(s, event, canonical) if canonical is not None else None
            return self._quote(event, promo, gateway)

    def checkout(
        self,
        event_id: str,
        email: str,
        promo_code: str | None = None,
        *,
        gateway: str | None = None,
        accept_price: Money | None = None,
    ) -> CheckoutResult:
        """Register ``email``: hold a seat (and a promo use), then open a checkout on the routed gateway.

        ``accept_price`` is the final price the participant was shown; a different price now is
        refused with :class:`PriceChanged`. A free ticket (a 100 % code) is confirmed at once with no
        checkout. Payment is confirmed later, only by a verified webhook or a status check.
        """
        address = domain.normalize_email(email)
        canonical = domain.normalize_promo_code(promo_code) if promo_code is not None else None
        now = self.clock()
        registration_id = str(uuid.uuid4())
        try:
            with self.store.transaction() as s:
                event = self._event(s, event_id)
                if event.status != "active":
                    raise EventClosed(f"event {event_id} is cancelled")
                promo = self._usable_promo(s, event, canonical) if canonical is not None else None
                quote = self._quote(event, promo, gateway)
                if accept_price is not None and accept_price != quote.final:
                    raise PriceChanged(f"the price is now {quote.final}, not {accept_price}")
                taken = s.execute(
                    sa.update(EventRow)
                    .where(
                        EventRow.id == event_id, EventRow.status == "active", EventRow.seats_taken < EventRow.capacity
                    )
                    .values(seats_taken=EventRow.seats_taken + 1)
                    .execution_options(synchronize_session=False)
                )
                if _rowcount(taken) != 1:
                    raise SoldOut(f"event {event_id} is sold out")
                if promo is not None:
                    redeemed = s.execute(
                        sa.update(PromoCodeRow)
                        .where(
                            PromoCodeRow.id == promo.id,
                            sa.or_(PromoCodeRow.max_uses.is_(None), PromoCodeRow.uses < PromoCodeRow.max_uses),
                            sa.or_(PromoCodeRow.expires_at.is_(None), PromoCodeRow.expires_at > now),
                        )
                        .values(uses=PromoCodeRow.uses + 1)
                        .execution_options(synchronize_session=False)
                    )
                    if _rowcount(redeemed) != 1:
                        raise PromoCodeExhausted(f"promo code {promo.code} has no uses left")
                reg = RegistrationRow(
                    id=registration_id,
                    event_id=event_id,
                    email=address,
                    status="pending",
                    currency=event.currency,
                    price_minor=quote.final.to_minor(),
                    fee_minor=quote.fee.to_minor(),
                    promo_id=promo.id if promo is not None else None,
                    gateway=quote.gateway,
                    operation_id=f"checkout:{registration_id}" if not quote.free else None,
                    hold_expires_at=now + timedelta(minutes=self.config.hold_minutes) if not quote.free else None,
                    refund_state="none",
                    created_at=now,
                )
                s.add(reg)
                s.flush()
                if quote.free:
                    self._confirm(s, event, reg, now)
        except IntegrityError as exc:
            if "email" in str(exc.orig):
                raise AlreadyRegistered(f"this e-mail already holds or has a ticket for event {event_id}") from None
            raise
        if quote.free:
            log.info(
                "paid_events.registration.confirmed", registration_id=registration_id, event_id=event_id, free=True
            )
            return CheckoutResult(registration_id, "confirmed", quote)
        log.info(
            "paid_events.checkout.started",
            registration_id=registration_id,
            event_id=event_id,
            gateway=quote.gateway,
            amount=str(quote.final),
            fee=str(quote.fee),
        )
        session = self._open_checkout(registration_id, (event, reg))
        return CheckoutResult(registration_id, "pending", quote, session.url, session.id)

    def _open_checkout(
        self, registration_id: str, rows: tuple[EventRow, RegistrationRow] | None = None
    ) -> CheckoutSession:
        """Call the provider for a committed pending registration, then record its answer.

        ``rows`` are the event and registration as just committed (saves a read); without them
        they are read again, as reconciliation does.
        """
        if rows is None:
            with self.store.transaction() as s:
                reg = self._registration(s, registration_id)
                rows = (self._event(s, reg.event_id), reg)
        event, reg = rows
        request = self._checkout_request(event, reg)
        gateway, operation_id = reg.gateway, reg.operation_id
        assert gateway is not None
        assert operation_id is not None
        try:
            session = self._with_retries(
                lambda: self.gateways.create_checkout(gateway, request, operation_id=operation_id)
            )
        except GatewayError as exc:
            if exc.retryable:
                log.warning("paid_events.checkout.unknown", registration_id=registration_id, error=type(exc).__name__)
                raise CheckoutPending(
                    f"the gateway's answer for registration {registration_id} was lost; it will be reconciled"
                ) from exc
            self._release(registration_id, "failed")
            log.warning("paid_events.checkout.failed", registration_id=registration_id, error=type(exc).__name__)
            raise
        self._record_checkout(registration_id, session)
        log.info("paid_events.checkout.created", registration_id=registration_id, checkout_id=session.id)
        return session

    def _record_checkout(self, registration_id: str, session: CheckoutSession) -> None:
        with self.store.transaction() as s:
            s.execute(
                sa.update(RegistrationRow)
                .where(RegistrationRow.id == registration_id, RegistrationRow.checkout_id.is_(None))
                .values(checkout_id=session.id, payment_id=session.payment_id, checkout_url=session.url)
                .execution_options(synchronize_session=False)
            )

    def _checkout_request(self, event: EventRow, reg: RegistrationRow) -> CheckoutRequest:
        """The checkout request, rebuilt identically from the row (so a retry matches the provider's record)."""
        amount = Money.from_minor(reg.price_minor, reg.currency)
        fee = Money.from_minor(reg.fee_minor, reg.currency)
        assert reg.gateway is not None
        supports_fee = Feature.APPLICATION_FEE in self.gateways.gateway(reg.gateway).capabilities.features
        return CheckoutRequest.single(
            event.title,
            amount,
            self.success_url,
            self.cancel_url,
            reference=reg.id,
            customer_email=reg.email,
            metadata={"registration_id": reg.id, "event_id": event.id},
            expires_at=reg.hold_expires_at,
            application_fee=fee if supports_fee and fee.is_positive and fee < amount else None,
        )

    # -- webhooks -------------------------------------------------------------------------
    def handle_webhook(self, gateway: str, headers: Mapping[str, str], body: bytes) -> WebhookOutcome:
        """Verify, then process a webhook once however often it arrives.

        Raises the gateway's :class:`~gateway_core.WebhookVerificationFailed` for a forged one and
        :class:`UnknownPayment` for one about a payment we never started; neither changes anything.
        """
        event = self.gateways.parse_webhook(gateway, headers, body)
        relevant = {
            EventType.CHECKOUT_COMPLETED,
            EventType.PAYMENT_SUCCEEDED,
            EventType.CHECKOUT_EXPIRED,
            EventType.PAYMENT_CANCELED,
            EventType.PAYMENT_FAILED,
            EventType.REFUND_SUCCEEDED,
        }
        claimed: Money | None = None
        if event.type in (EventType.CHECKOUT_COMPLETED, EventType.PAYMENT_SUCCEEDED):
            if event.type is EventType.PAYMENT_SUCCEEDED and event.amount is not None:
                claimed = event.amount
            elif event.checkout_id or event.payment_id:  # "completed" may still be pending: ask the provider
                status = self.gateways.payment_status(gateway, event.checkout_id or event.payment_id or "")
                claimed = status.amount if status.is_paid else None
        try:
            with self.store.transaction() as s:
                s.add(
                    ProcessedWebhookRow(
                        gateway=gateway, event_id=event.id, type=event.type.value, processed_at=self.clock()
                    )
                )
                try:
                    s.flush()
                except IntegrityError:
                    raise _Duplicate from None
                reg = self._find_registration(s, gateway, event.checkout_id, event.payment_id, event.reference)
                if reg is None:
                    if event.type in relevant:  # raising rolls the processed row back: nothing changes
                        raise UnknownPayment(
                            f"webhook {event.id} from {gateway} is about a payment this platform did not start"
                        )
                    return WebhookOutcome.IGNORED
                s.execute(
                    sa.update(ProcessedWebhookRow)
                    .where(ProcessedWebhookRow.gateway == gateway, ProcessedWebhookRow.event_id == event.id)
                    .values(registration_id=reg.id)
                    .execution_options(synchronize_session=False)
                )
                changed = False
                if claimed is not None and self._amount_matches(reg, claimed):
                    changed = self._confirm_paid(s, reg.id, event.payment_id)
                elif event.type in (EventType.CHECKOUT_EXPIRED, EventType.PAYMENT_CANCELED):
                    changed = self._release_in(s, reg.id, "expired")
                elif event.type is EventType.REFUND_SUCCEEDED:
                    changed = self._mark_refunded(s, reg.id, event.refund_id)
                registration_id = reg.id
        except _Duplicate:
            log.info("paid_events.webhook.duplicate", gateway=gateway, webhook_id=event.id)
            return WebhookOutcome.DUPLICATE
        except UnknownPayment:
            log.warning("paid_events.webhook.unknown_payment", gateway=gateway, webhook_id=event.id)
            raise
        log.info(
            "paid_events.webhook.processed",
            gateway=gateway,
            webhook_id=event.id,
            type=event.type.value,
            registration_id=registration_id,
            changed=changed,
        )
        return WebhookOutcome.PROCESSED if changed else WebhookOutcome.IGNORED

    @staticmethod
    def _amount_matches(reg: RegistrationRow, amount: Money) -> bool:
        expected = Money.from_minor(reg.price_minor, reg.currency)
        if amount == expected:
            return True
        log.error(
            "paid_events.payment.amount_mismatch", registration_id=reg.id, expected=str(expected), received=str(amount)
        )
        return False

    # -- reconciliation -------------------------------------------------------------------
    def reconcile(self) -> ReconcileReport:
        """Finish what a crash, a lost answer or a missed webhook left pending.

        For every pending paid registration: re-issue a lost checkout with the same operation id
        (the provider returns the one it made), ask the provider for the payment's status, confirm
        a paid one, release the seat of a cancelled or expired one, and expire (void) a checkout
        whose hold ran out.
        """
        with self.store.transaction() as s:
            pending = s.scalars(
                sa.select(RegistrationRow.id).where(
                    RegistrationRow.status == "pending", RegistrationRow.gateway.is_not(None)
                )
            ).all()
        recovered = confirmed = released = still = 0
        for registration_id in pending:
            with self.store.transaction() as s:
                reg = self._registration(s, registration_id)
            if reg.checkout_id is None:
                try:
                    self._open_checkout(registration_id)
                except CheckoutPending:
                    still += 1
                    continue
                except GatewayError:
                    released += 1
                    continue
                recovered += 1
                with self.store.transaction() as s:
                    reg = self._registration(s, registration_id)
            outcome = self._settle(reg)
            if outcome == "confirmed":
                confirmed += 1
            elif outcome == "released":
                released += 1
            else:
                still += 1
        report = ReconcileReport(recovered, confirmed, released, still)
        log.info("paid_events.reconcile.completed", **attrs.asdict(report))
        return report

    def check_payment(self, registration_id: str) -> str:
        """Ask the provider about one registration (e.g. when the payer returns) and apply the answer.

        Returns the registration's status afterwards. The payer's return alone proves nothing;
        this status check is what may confirm.
        """
        with self.store.transaction() as s:
            reg = self._registration(s, registration_id)
        if reg.status == "pending" and reg.gateway is not None:
            if reg.checkout_id is None:
                self._open_checkout(registration_id)
                with self.store.transaction() as s:
                    reg = self._registration(s, registration_id)
            self._settle(reg)
        with self.store.transaction() as s:
            return self._registration(s, registration_id).status

    def _settle(self, reg: RegistrationRow) -> str:
        assert reg.gateway is not None
        assert reg.checkout_id is not None
        status = self.gateways.payment_status(reg.gateway, reg.checkout_id)
        if not status.is_paid and status.state is not PaymentState.CANCELED:
            if reg.hold_expires_at is not None and self.clock() >= reg.hold_expires_at:
                # Completed or expired meanwhile (InvalidRequest): the status below says which.
                with contextlib.suppress(InvalidRequest):
                    self.gateways.void(reg.gateway, VoidRequest(reg.checkout_id), operation_id=f"expire:{reg.id}")
                status = self.gateways.payment_status(reg.gateway, reg.checkout_id)
            else:
                return "pending"
        with self.store.transaction() as s:
            if status.is_paid:
                if not self._amount_matches(reg, status.amount):
                    return "pending"
                return "confirmed" if self._confirm_paid(s, reg.id, status.payment_id) else "pending"
            return "released" if self._release_in(s, reg.id, "expired") else "pending"

    # -- the organizer's view and actions -------------------------------------------------
    def participants(self, event_id: str) -> list[Participant]:
        """Every registration of the event with its payment status, oldest first."""
        with self.store.transaction() as s:
            self._event(s, event_id)
            rows = s.execute(
                sa.select(RegistrationRow, PromoCodeRow.code)
                .outerjoin(PromoCodeRow, PromoCodeRow.id == RegistrationRow.promo_id)
                .where(RegistrationRow.event_id == event_id)
                .order_by(RegistrationRow.created_at, RegistrationRow.id)
            ).all()
            return [
                Participant(
                    r.id,
                    r.email,
                    r.status,
                    Money.from_minor(r.price_minor, r.currency),
                    Money.from_minor(r.fee_minor, r.currency),
                    r.gateway,
                    code,
                    r.refund_state,
                    r.created_at,
                    r.confirmed_at,
                )
                for r, code in rows
            ]

    def fee_report(self, event_id: str) -> FeeReport:
        """The service fee of every confirmed, unrefunded payment, and the total."""
        with self.store.transaction() as s:
            event = self._event(s, event_id)
            rows = s.scalars(
                sa.select(RegistrationRow)
                .where(
                    RegistrationRow.event_id == event_id,
                    RegistrationRow.status == "confirmed",
                    RegistrationRow.price_minor > 0,
                    RegistrationRow.refund_state != "refunded",
                )
                .order_by(RegistrationRow.confirmed_at, RegistrationRow.id)
            ).all()
        lines = tuple(
            FeeLine(r.id, Money.from_minor(r.price_minor, r.currency), Money.from_minor(r.fee_minor, r.currency))
            for r in rows
        )
        zero = Money.zero(event.currency)
        return FeeReport(
            lines,
            sum((line.amount for line in lines), zero),
            sum((line.fee for line in lines), zero),
        )

    def confirm(self, registration_id: str) -> None:
        """Confirm a registration by hand (paid outside the gateway, or a re-admission)."""
        with self.store.transaction() as s:
            reg = self._registration(s, registration_id, lock=True)
            event = self._event(s, reg.event_id)
            if reg.status == "confirmed":
                raise InvalidTransition(f"registration {registration_id} is already confirmed")
            if reg.status != "pending" and not self._take_seat(s, event.id):
                raise SoldOut(f"event {event.id} has no seat left for registration {registration_id}")
            self._confirm(s, event, reg, self.clock())
        log.info("paid_events.registration.confirmed", registration_id=registration_id, manual=True)

    def reject(self, registration_id: str, reason: str = "") -> None:
        """Reject a participant: the seat comes back and the token stops working. No automatic refund."""
        with self.store.transaction() as s:
            reg = self._registration(s, registration_id, lock=True)
            event = self._event(s, reg.event_id)
            if reg.status not in ("pending", "confirmed"):
                raise InvalidTransition(f"registration {registration_id} is {reg.status}; it cannot be rejected")
            open_checkout = reg.status == "pending" and reg.checkout_id is not None
            moved = s.execute(
                sa.update(RegistrationRow)
                .where(RegistrationRow.id == reg.id, RegistrationRow.status.in_(("pending", "confirmed")))
                .values(status="rejected", token_hash=None)
                .execution_options(synchronize_session=False)
            )
            if _rowcount(moved) == 1:
                self._give_back_seat(s, event.id)
            text = f"Your registration for {event.title} was declined by the organizer."
            if reason:
                text += f" Reason: {reason[:500]}"
            self._message(s, "rejection", event, reg, f"Registration for {event.title} declined", text)
            gateway, checkout_id = reg.gateway, reg.checkout_id
        if open_checkout and gateway is not None and checkout_id is not None:
            try:  # best effort: close the checkout so the participant cannot pay for a rejected seat
                self.gateways.void(gateway, VoidRequest(checkout_id), operation_id=f"expire:{registration_id}")
            except GatewayError as exc:
                log.warning("paid_events.reject.void_failed", registration_id=registration_id, error=type(exc).__name__)
        log.info("paid_events.registration.rejected", registration_id=registration_id)

    def resend_confirmation(self, registration_id: str) -> None:
        """Send the confirmation again. Only a hash of the token is kept, so a new token replaces the old one."""
        with self.store.transaction() as s:
            reg = self._registration(s, registration_id, lock=True)
            if reg.status != "confirmed":
                raise InvalidTransition(f"registration {registration_id} is {reg.status}, not confirmed")
            self._issue_token(s, self._event(s, reg.event_id), reg, resent=True)
        log.info("paid_events.confirmation.resent", registration_id=registration_id)

    def admit(self, event_id: str, token: str) -> bool:
        """Whether ``token`` admits its holder to (every session of) the event."""
        if not isinstance(token, str) or not token or len(token) > 200:
            return False
        with self.store.transaction() as s:
            event = s.get(EventRow, event_id)
            if event is None or event.status != "active":
                return False
            reg = s.scalar(sa.select(RegistrationRow).where(RegistrationRow.token_hash == _hash_token(token)))
            return reg is not None and reg.event_id == event_id and reg.status == "confirmed"

    # -- refunds --------------------------------------------------------------------------
    def refund(self, registration_id: str) -> RefundOutcome:
        """Refund one payment through the gateway that took it; a retry never refunds twice."""
        with self.store.transaction() as s:
            reg = self._registration(s, registration_id, lock=True)
            amount = Money.from_minor(reg.price_minor, reg.currency)
            if reg.refund_state == "refunded":
                return RefundOutcome(registration_id, "already_refunded", amount, reg.refund_id)
            if not amount.is_positive or reg.payment_id is None or reg.gateway is None:
                raise InvalidTransition(f"registration {registration_id} has no payment to refund")
            if reg.status not in ("confirmed", "rejected", "paid_no_seat"):
                raise InvalidTransition(f"registration {registration_id} is {reg.status}; nothing was paid")
            reg.refund_state = "requested"
            gateway, payment_id = reg.gateway, reg.payment_id
        try:
            refund = self._with_retries(
                lambda: self.gateways.refund(
                    gateway,
                    RefundRequest(payment_id, reason="requested_by_organizer"),
                    operation_id=f"refund:{registration_id}",
                )
            )
        except GatewayError as exc:
            if not exc.retryable:
                with self.store.transaction() as s:
                    s.execute(
                        sa.update(RegistrationRow)
                        .where(RegistrationRow.id == registration_id, RegistrationRow.refund_state == "requested")
                        .values(refund_state="failed")
                        .execution_options(synchronize_session=False)
                    )
            log.warning("paid_events.refund.failed", registration_id=registration_id, error=type(exc).__name__)
            return RefundOutcome(registration_id, "failed", amount, error=f"{type(exc).__name__}: {exc}")
        with self.store.transaction() as s:
            self._mark_refunded(s, registration_id, refund.id)
        log.info("paid_events.refund.created", registration_id=registration_id, refund_id=refund.id, amount=str(amount))
        return RefundOutcome(registration_id, "refunded", amount, refund.id)

    def refund_all(
        self, event_id: str, progress: Callable[[int, int, RefundOutcome], None] | None = None
    ) -> list[RefundOutcome]:
        """Refund every paid, unrefunded registration of the event, reporting progress after each."""
        with self.store.transaction() as s:
            self._event(s, event_id)
            ids = s.scalars(
                sa.select(RegistrationRow.id)
                .where(
                    RegistrationRow.event_id == event_id,
                    RegistrationRow.price_minor > 0,
                    RegistrationRow.payment_id.is_not(None),
                    RegistrationRow.refund_state != "refunded",
                    RegistrationRow.status.in_(("confirmed", "rejected", "paid_no_seat")),
                )
                .order_by(RegistrationRow.created_at, RegistrationRow.id)
            ).all()
        outcomes: list[RefundOutcome] = []
        for done, registration_id in enumerate(ids, start=1):
            outcome = self.refund(registration_id)
            outcomes.append(outcome)
            if progress is not None:
                progress(done, len(ids), outcome)
        return outcomes

    # -- internals: state changes (inside a transaction) -----------------------------------
    def _confirm_paid(self, s: Session, registration_id: str, payment_id: str | None) -> bool:
        """Confirm a registration whose payment the provider reported paid. True when it changed."""
        reg = self._registration(s, registration_id, lock=True)
        if payment_id is not None and reg.payment_id is None:
            reg.payment_id = payment_id
        if reg.status == "pending":
            # Lock the event row: a concurrent change_price waits, so no price changes under a confirmation.
            self._confirm(s, self._event(s, reg.event_id, lock=True), reg, self.clock())
            log.info("paid_events.registration.confirmed", registration_id=reg.id, event_id=reg.event_id)
            return True
        if reg.status in ("expired", "failed"):
            # Paid after the hold lapsed: re-take a seat if one is free, else the organizer must refund.
            event = self._event(s, reg.event_id, lock=True)
            if self._take_seat(s, event.id):
                self._confirm(s, event, reg, self.clock())
                log.info("paid_events.registration.confirmed", registration_id=reg.id, late=True)
            else:
                reg.status = "paid_no_seat"
                log.error("paid_events.registration.paid_no_seat", registration_id=reg.id, event_id=reg.event_id)
            return True
        return False

    def _confirm(self, s: Session, event: EventRow, reg: RegistrationRow, now: datetime) -> None:
        reg.status = "confirmed"
        reg.confirmed_at = now
        self._issue_token(s, event, reg, resent=False)

    def _issue_token(self, s: Session, event: EventRow, reg: RegistrationRow, *, resent: bool) -> None:
        token = secrets.token_urlsafe(32)
        reg.token_hash = _hash_token(token)
        when = f" It starts at {event.starts_at.isoformat()}." if event.starts_at is not None else ""
        series = " The same token admits you to every session." if event.kind == EventKind.PERMANENT.value else ""
        self._message(
            s,
            "confirmation",
            event,
            reg,
            f"Your ticket for {event.title}" + (" (resent)" if resent else ""),
            f"You are registered for {event.title}.{when}{series}\nYour access token: {{access_token}}",
            secret=token,
        )

    def _release(self, registration_id: str, status: str) -> bool:
        with self.store.transaction() as s:
            return self._release_in(s, registration_id, status)

    def _release_in(self, s: Session, registration_id: str, status: str) -> bool:
        """Pending -> ``status``: the held seat and promo use come back. True when it changed."""
        reg = self._registration(s, registration_id)
        moved = s.execute(
            sa.update(RegistrationRow)
            .where(RegistrationRow.id == registration_id, RegistrationRow.status == "pending")
            .values(status=status)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(moved) != 1:
            return False
        self._give_back_seat(s, reg.event_id)
        if reg.promo_id is not None:
            s.execute(
                sa.update(PromoCodeRow)
                .where(PromoCodeRow.id == reg.promo_id, PromoCodeRow.uses > 0)
                .values(uses=PromoCodeRow.uses - 1)
                .execution_options(synchronize_session=False)
            )
        log.info("paid_events.hold.released", registration_id=registration_id, status=status)
        return True

    def _mark_refunded(self, s: Session, registration_id: str, refund_id: str | None) -> bool:
        moved = s.execute(
            sa.update(RegistrationRow)
            .where(RegistrationRow.id == registration_id, RegistrationRow.refund_state != "refunded")
            .values(refund_state="refunded", refund_id=refund_id)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(moved) != 1:
            return False
        revoked = s.execute(
            sa.update(RegistrationRow)
            .where(RegistrationRow.id == registration_id, RegistrationRow.status == "confirmed")
            .values(status="refunded", token_hash=None)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(revoked) == 1:
            reg = self._registration(s, registration_id)
            self._give_back_seat(s, reg.event_id)
        return True

    @staticmethod
    def _take_seat(s: Session, event_id: str) -> bool:
        taken = s.execute(
            sa.update(EventRow)
            .where(EventRow.id == event_id, EventRow.seats_taken < EventRow.capacity)
            .values(seats_taken=EventRow.seats_taken + 1)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(taken) == 1

    @staticmethod
    def _give_back_seat(s: Session, event_id: str) -> None:
        s.execute(
            sa.update(EventRow)
            .where(EventRow.id == event_id, EventRow.seats_taken > 0)
            .values(seats_taken=EventRow.seats_taken - 1)
            .execution_options(synchronize_session=False)
        )

    def _message(  # noqa: PLR0917
        self,
        s: Session,
        kind: str,
        event: EventRow,
        reg: RegistrationRow,
        subject: str,
        body: str,
        *,
        secret: str | None = None,
    ) -> None:
        s.add(
            OutboxRow(
                kind=kind,
                event_id=event.id,
                registration_id=reg.id,
                recipient=reg.email,
                subject=subject,
                body=body,
                secret=secret,
                created_at=self.clock(),
            )
        )

    # -- internals: reads and checks ------------------------------------------------------
    def _quote(self, event: EventRow, promo: PromoCodeRow | None, gateway: str | None) -> Quote:
        now = self.clock()
        listed = Money.from_minor(event.price_minor, event.currency)
        early = (
            Money.from_minor(event.early_price_minor, event.currency) if event.early_price_minor is not None else None
        )
        current = domain.current_price(listed, early, event.early_until, now, event.early_from)
        discounted = current
        if promo is not None:
            discounted = domain.apply_promo(current, _promo(promo, event.currency), self.config.discount_rounding)
        code = promo.code if promo is not None else None
        if not discounted.is_positive:
            zero = Money.zero(event.currency)
            return Quote(event.id, listed, current, zero, zero, zero, None, code)
        candidates = [g for g in self.gateways.gateway_names() if g in event.gateway_names]
        if gateway is not None:
            if gateway not in candidates:
                raise InvalidInput(f"gateway {gateway!r} is not enabled for event {event.id}")
            candidates = [gateway]
        decision = self.gateways.route(discounted, [Feature.HOSTED_CHECKOUT], candidates)
        if decision.eligible:
            chosen, final = decision.eligible[0], discounted
        else:
            chosen, final = self._round_up(discounted, candidates, decision)
        fee = domain.service_fee(final, self.config)
        return Quote(event.id, listed, current, discounted, final, fee, chosen, code, final != discounted)

    def _round_up(self, amount: Money, candidates: Iterable[str], decision: object) -> tuple[str, Money]:
        for name in candidates:
            info = self.gateways.gateway(name)
            if Feature.HOSTED_CHECKOUT not in info.capabilities.features:
                continue
            try:
                return name, self.gateways.round_up(amount, name)
            except (AmountOutOfRange, InvalidAmount, UnsupportedCurrency):
                continue
        raise InvalidPrice(f"no enabled gateway can take {amount}: {decision}")

    def _usable_promo(self, s: Session, event: EventRow, code: str) -> PromoCodeRow:
        domain.check_promo_allowed(EventKind(event.kind))
        row = self._promo(s, event, code)
        if row.expires_at is not None and self.clock() >= row.expires_at:
            raise PromoCodeExpired(f"promo code {code} expired")
        if row.max_uses is not None and row.uses >= row.max_uses:
            raise PromoCodeExhausted(f"promo code {code} has no uses left")
        return row

    @staticmethod
    def _promo(s: Session, event: EventRow, code: str) -> PromoCodeRow:
        row = s.scalar(sa.select(PromoCodeRow).where(PromoCodeRow.event_id == event.id, PromoCodeRow.code == code))
        if row is None:
            raise UnknownPromoCode(f"event {event.id} has no promo code {code}")
        return row

    def _event(self, s: Session, event_id: str, *, lock: bool = False) -> EventRow:
        if not isinstance(event_id, str) or not event_id or len(event_id) > 36:
            raise UnknownEvent("no such event")
        stmt = sa.select(EventRow).where(EventRow.id == event_id)
        if lock:
            stmt = stmt.with_for_update()
        row = s.scalar(stmt)
        if row is None:
            raise UnknownEvent(f"no event {event_id}")
        return row

    @staticmethod
    def _registration(s: Session, registration_id: str, *, lock: bool = False) -> RegistrationRow:
        if not isinstance(registration_id, str) or not registration_id or len(registration_id) > 36:
            raise UnknownRegistration("no such registration")
        stmt = sa.select(RegistrationRow).where(RegistrationRow.id == registration_id)
        if lock:
            stmt = stmt.with_for_update()
        row = s.scalar(stmt.execution_options(populate_existing=True))
        if row is None:
            raise UnknownRegistration(f"no registration {registration_id}")
        return row

    @staticmethod
    def _find_registration(
        s: Session, gateway: str, checkout_id: str | None, payment_id: str | None, reference: str | None
    ) -> RegistrationRow | None:
        for column, value in (
            (RegistrationRow.checkout_id, checkout_id),
            (RegistrationRow.payment_id, payment_id),
            (RegistrationRow.id, reference),
        ):
            if value:
                row = s.scalar(
                    sa.select(RegistrationRow).where(column == value[:255], RegistrationRow.gateway == gateway)
                )
                if row is not None:
                    return row
        return None

    @staticmethod
    def _live_registrations(s: Session, event_id: str) -> Sequence[RegistrationRow]:
        return s.scalars(
            sa.select(RegistrationRow)
            .where(RegistrationRow.event_id == event_id, RegistrationRow.status.in_(("pending", "confirmed")))
            .order_by(RegistrationRow.created_at, RegistrationRow.id)
        ).all()

    @staticmethod
    def _has_confirmed_payment(s: Session, event_id: str) -> bool:
        found = s.scalar(
            sa.select(RegistrationRow.id)
            .where(
                RegistrationRow.event_id == event_id,
                RegistrationRow.price_minor > 0,
                RegistrationRow.confirmed_at.is_not(None),
            )
            .limit(1)
        )
        return found is not None

    def _enabled_gateways(self, gateways: Sequence[str]) -> tuple[str, ...]:
        if isinstance(gateways, str) or not gateways:
            raise InvalidInput("enable at least one gateway (a list of configured gateway names)")
        names: list[str] = []
        for name in gateways:
            try:
                info = self.gateways.gateway(name)
            except UnknownGateway:
                raise InvalidInput(f"no gateway named {name!r} is configured") from None
            if Feature.HOSTED_CHECKOUT not in info.capabilities.features:
                raise InvalidInput(f"gateway {name!r} offers no hosted checkout")
            if name not in names:
                names.append(name)
        return tuple(names)

    def _offered(self, gateways: Iterable[str]) -> set[str]:
        offered: set[str] = set()
        for name in gateways:
            offered |= set(self.gateways.gateway(name).capabilities.currencies)
        return offered

    def _check_early(
        self,
        price: Money,
        early_price: Money | None,
        early_until: datetime | None,
        early_from: datetime | None,
        offered: set[str],
    ) -> None:
        if (early_price is None) != (early_until is None):
            raise InvalidPrice("an early-bird price needs both early_price and early_until")
        if early_price is None:
            if early_from is not None:
                raise InvalidPrice("early_from needs an early-bird price")
            return
        self._check_aware("early_until", early_until)
        self._check_aware("early_from", early_from)
        if early_from is not None and early_until is not None and early_from >= early_until:
            raise InvalidPrice("the early-bird period must start before it ends")
        if early_price.currency != price.currency:
            raise InvalidPrice("the early-bird price must be in the ticket's currency")
        domain.validate_price(early_price, self.config, offered)
        if early_price >= price:
            raise InvalidPrice("the early-bird price must be below the regular price")

    @staticmethod
    def _check_aware(name: str, value: datetime | None) -> None:
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise InvalidInput(f"{name} must be a timezone-aware datetime")

    @staticmethod
    def _kind(kind: EventKind | str) -> EventKind:
        try:
            return EventKind(kind)
        except ValueError:
            raise InvalidInput(f"kind must be one of {', '.join(k.value for k in EventKind)}") from None

    @staticmethod
    def _text(name: str, value: str) -> str:
        if not isinstance(value, str) or not value.strip() or len(value) > _MAX_TITLE:
            raise InvalidInput(f"{name} must be 1 to {_MAX_TITLE} characters")
        return value.strip()

    @staticmethod
    def _with_retries(call: Callable[[], _T]) -> _T:
        """Retry a provider call whose outcome is unknown, with the same idempotency key each time."""
        for attempt in range(1, _PROVIDER_ATTEMPTS + 1):
            try:
                return call()
            except GatewayError as exc:
                if not exc.retryable or attempt == _PROVIDER_ATTEMPTS:
                    raise
                if isinstance(exc, RateLimited) and exc.retry_after:
                    time.sleep(min(exc.retry_after, 1.0))
        raise AssertionError("unreachable")


class _Duplicate(Exception):
    """This webhook's (gateway, event id) row already exists: it was processed before."""


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0))


def _promo(row: PromoCodeRow, currency: str) -> Promo:
    if row.kind == PromoKind.PERCENT.value:
        assert row.percent is not None
        return Promo(row.code, PromoKind.PERCENT, percent=Decimal(str(row.percent)))
    assert row.amount_minor is not None
    return Promo(row.code, PromoKind.FIXED, amount=Money.from_minor(row.amount_minor, currency))


def _event_view(row: EventRow) -> EventView:
    return EventView(
        row.id,
        row.organizer,
        row.title,
        EventKind(row.kind),
        Money.from_minor(row.price_minor, row.currency),
        Money.from_minor(row.early_price_minor, row.currency) if row.early_price_minor is not None else None,
        row.early_from,
        row.early_until,
        row.capacity,
        row.seats_taken,
        row.gateway_names,
        row.starts_at,
        row.status,
    )
