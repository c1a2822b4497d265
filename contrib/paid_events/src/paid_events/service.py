"""The application service of paid events: what organizers and participants do, on a real store.

Every state change is one database transaction; every provider call happens outside a
transaction, after the row that names it (with its operation id) is committed, so a crash between
the call and the write is finished by :meth:`PaidEvents.reconcile` with the same idempotency key
and never charges twice. Seats and promo-code uses move only through conditional ``UPDATE``\\ s
(``... WHERE seats_taken < capacity``), which PostgreSQL serializes on the row lock and SQLite on
its single writer, so no interleaving can oversell. A webhook is believed only after
``GatewayManager.parse_webhook`` verified it, and processed once: its ``(gateway, event id)`` row
is inserted in the same transaction as the fulfilment and the outbox message.

Two clocks run per paid registration: the platform's seat hold (``hold_expires_at``,
``hold_minutes`` from now) and the provider's checkout expiry (``checkout_expires_at``), which is
the hold fitted into the window the gateway declares (:class:`gateway_core.CheckoutExpiry`, e.g.
Stripe's 30 minutes to 24 hours) or nothing for a gateway that takes none. Both are stored, so a
retry sends the very same request; when the hold lapses first, reconciliation expires (voids) the
checkout and gives the seat back, and a payment that still lands is handled as a late payment.

A registration is *paid* only once the provider confirmed the payment (``paid_at``); a
``payment_id`` alone names the payment a checkout would create. Refunds, the fee report and the
delete guard read ``paid_at``.
"""

from __future__ import annotations

import contextlib
import enum
import secrets
import time
import unicodedata
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
    AuthenticationRequired,
    CapabilityNotSupported,
    CaptureRequest,
    CheckoutRequest,
    CheckoutSession,
    ConfigurationError,
    EventType,
    Feature,
    GatewayError,
    GatewayManager,
    InvalidAmount,
    InvalidRequest,
    Money,
    NotFound,
    PaymentDeclined,
    PaymentState,
    PaymentStatus,
    RateLimited,
    Refund,
    RefundRequest,
    RefundStatus,
    RouteDecision,
    UnknownGateway,
    UnsupportedCurrency,
    VoidRequest,
    WebhookEvent,
)
from paid_events import domain
from paid_events.config import PlatformConfig
from paid_events.domain import EventKind, Promo, PromoKind, Quote
from paid_events.errors import (
    AlreadyRegistered,
    CheckoutPending,
    EventClosed,
    InvalidDate,
    InvalidInput,
    InvalidPrice,
    InvalidPromoCode,
    InvalidTransition,
    PaidEventsError,
    PriceChanged,
    PriceLocked,
    PromoCodeExhausted,
    PromoCodeExpired,
    RegistrationClosed,
    SoldOut,
    UnknownEvent,
    UnknownPayment,
    UnknownPromoCode,
    UnknownRegistration,
    UnknownSession,
)
from paid_events.store import (
    LIVE_STATUSES,
    MAX_COUNT,
    EventRow,
    OutboxRow,
    ProcessedWebhookRow,
    PromoCodeRow,
    RegistrationRow,
    SessionRow,
    Store,
    hash_token,
)

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
    "SessionView",
    "WebhookOutcome",
]

log = structlog.get_logger("paid_events")

_T = TypeVar("_T")

_PROVIDER_ATTEMPTS = 3
_MAX_TITLE = 200
#: How long one caller's refund request may be in flight before another caller may re-send it
#: (with the same idempotency key) as a lost answer.
_REFUND_CLAIM = timedelta(minutes=2)
#: A payment the payer completed that the provider has not settled yet.
_IN_FLIGHT = frozenset({PaymentState.PENDING, PaymentState.REQUIRES_ACTION, PaymentState.AUTHORIZED})
#: The errors that prove a refund request made no refund (gateway_core/errors.py): refused before
#: anything was sent (CapabilityNotSupported, ConfigurationError, the core's InvalidRequest checks)
#: or in the provider's answer (InvalidRequest, PaymentDeclined). Any other error may come after the
#: provider acted: a bare GatewayError (the core wraps a plugin's KeyError in one), OutcomeUnknown,
#: even InvalidMoney (the refund names no amount: it can only come from reading the answer) and
#: NotFound, AuthenticationFailed or PermissionDenied (met in a read after the refund: PayPal reads
#: a refund's amount when its answer lacks one).
_REFUSED = (InvalidRequest, CapabilityNotSupported, ConfigurationError, PaymentDeclined)


def _utcnow() -> datetime:
    return datetime.now(UTC)


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
class SessionView:
    """One session (date) of a permanent event."""

    id: str
    event_id: str
    starts_at: datetime


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
    """A registration after checkout: ``checkout_url`` to pay, or ``status == "confirmed"`` when free.

    ``resumed`` says the participant already had this open checkout (same e-mail, same terms) and
    got it back instead of a second registration.
    """

    registration_id: str
    status: str
    quote: Quote
    checkout_url: str | None = None
    checkout_id: str | None = None
    resumed: bool = False


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
    #: When the provider confirmed the payment; ``None``: nothing was paid through a gateway.
    paid_at: datetime | None = None

    @property
    def paid(self) -> bool:
        return self.paid_at is not None

    @property
    def refundable(self) -> bool:
        """A payment the provider confirmed that is not refunded (yet): what :meth:`PaidEvents.refund_all`
        refunds. With a status other than ``confirmed`` (``rejected``, ``paid_no_seat``) it is
        money the organizer owes back for no ticket."""
        return self.paid and self.amount.is_positive and self.refund_state != "refunded"


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
    """The platform's service fee per paid payment and in total.

    The platform collects the fee payment by payment (each rounded with ``fee_rounding``, passed to
    the provider as that payment's application fee), so ``total_fee`` is the sum of the per-payment
    fees: what was actually collected. ``fee_on_total`` is the percentage of ``total_sales``
    rounded once; it can differ by a few minor units (3 x 10.10 EUR at 5 %: 3 x 0.51 = 1.53
    collected, 5 % of 30.30 = 1.52). ``rounding_difference`` shows by how much.
    """

    lines: tuple[FeeLine, ...]
    total_sales: Money
    total_fee: Money
    fee_on_total: Money

    @property
    def rounding_difference(self) -> Money:
        return self.total_fee - self.fee_on_total


@attrs.frozen
class RefundOutcome:
    """One refund's outcome.

    ``state``: ``refunded`` (the provider refunded it), ``already_refunded`` (refunded before this
    request: so recorded here, or refused by the provider as nothing remains to refund while the
    payment's status shows the price refunded: in its dashboard, or under another key), ``pending``
    (the provider accepted it and will finish later: a webhook or :meth:`PaidEvents.reconcile`
    settles it), ``in_progress`` (another caller's request is in flight), ``unknown`` (the
    provider's answer was lost, or was an error that does not prove the refund was not made, such
    as a bare :class:`~gateway_core.GatewayError`: a retry first reads the payment's refunded
    total, then re-sends with the same idempotency key) or ``failed`` (refused before it was made,
    or failed at the provider; a retry asks again under a new key).
    """

    registration_id: str
    state: str
    amount: Money
    refund_id: str | None = None
    error: str | None = None


@attrs.frozen
class ReconcileReport:
    checkouts_recovered: int = 0
    confirmed: int = 0
    released: int = 0
    still_pending: int = 0
    refunds_completed: int = 0
    refunds_failed: int = 0
    refunds_pending: int = 0
    #: Refunds whose outcome is unknown: kept under their key until the payment's refunded total
    #: or the provider's refund webhook settles them (each reconcile reads the total, then re-sends).
    refunds_unknown: int = 0


# --------------------------------------------------------------------------------------------
# The service
# --------------------------------------------------------------------------------------------


class _Live(Exception):
    """This e-mail already has a live registration for the event (carried out of the transaction)."""

    def __init__(self, registration_id: str) -> None:
        super().__init__(registration_id)
        self.registration_id = registration_id


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
        sessions: Iterable[datetime] = (),
    ) -> EventView:
        """Create an event; ``capacity`` is the organizer's plan size, ``gateways`` those they enabled.

        A one-off event needs ``starts_at`` in the future. A permanent event (a series) has no
        single date: give its ``sessions`` (future dates) here or later with :meth:`add_session`.
        An on-demand event has no date at all.

        Besides the platform's price rules, the list ``price`` must be one an enabled gateway takes
        as it is (at or above its minimum, on its wire step): only a discount (early-bird or promo
        code) is ever rounded up. Otherwise :class:`InvalidPrice` names the lowest price an enabled
        gateway takes and the nearest price above this one that a gateway would take.
        """
        event_kind = self._kind(kind)
        title = self._text("title", title)
        organizer = self._text("organizer", organizer)
        if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= MAX_COUNT:
            raise InvalidInput(f"capacity (the plan size) must be a whole number from 1 to {MAX_COUNT}")
        enabled = self._enabled_gateways(gateways)
        offered = self._offered(enabled)
        domain.validate_price(price, self.config, offered)
        self._check_list_price(price, enabled)
        self._check_early(price, early_price, early_until, early_from, offered)
        if isinstance(sessions, (str, bytes, datetime)) or not isinstance(sessions, Iterable):
            raise InvalidInput("sessions must be a list of datetimes")
        sessions = tuple(sessions)  # read once: a generator would be used up by the checks
        now = self.clock()
        self._check_dates(event_kind, starts_at, sessions, now)
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
            created_at=now,
        )
        with self.store.transaction() as s:
            s.add(row)
            s.flush()
            for when in sorted(sessions):
                s.add(SessionRow(id=str(uuid.uuid4()), event_id=row.id, starts_at=when, created_at=now))
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
        """Change the price while no payment is confirmed; afterwards delete and recreate the event.

        The new list price follows :meth:`create_event`'s rules, an enabled gateway taking it as it is.
        """
        domain.require_money("price", price)
        with self.store.transaction() as s:
            row = self._event(s, event_id, lock=True)
            offered = self._offered(row.gateway_names)
            if price.currency != row.currency:
                raise InvalidPrice(f"the event is sold in {row.currency}; its currency cannot change")
            domain.validate_price(price, self.config, offered)
            self._check_list_price(price, row.gateway_names)
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
        """Delete an event nobody holds or has paid for, once every message to its participants is out.

        Refused (:class:`InvalidTransition`) while a checkout is open, a payment the provider
        confirmed is not refunded, or a message (a cancellation, say) is still unsent: drain the
        outbox first. A message that failed permanently does not block.
        """
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
                            RegistrationRow.paid_at.is_not(None),
                            RegistrationRow.refund_state != "refunded",
                        ),
                    ),
                )
            )
            if blocking:
                raise InvalidTransition(
                    f"event {event_id} has {blocking} open checkouts or unrefunded payments; refund them first"
                )
            unsent = s.scalar(
                sa.select(sa.func.count())
                .select_from(OutboxRow)
                .where(OutboxRow.event_id == event_id, OutboxRow.sent_at.is_(None), OutboxRow.failed_at.is_(None))
            )
            if unsent:
                raise InvalidTransition(
                    f"event {event_id} has {unsent} messages to participants not sent yet; drain the outbox first"
                )
            s.execute(sa.delete(OutboxRow).where(OutboxRow.event_id == event_id))
            s.execute(sa.delete(RegistrationRow).where(RegistrationRow.event_id == event_id))
            s.execute(sa.delete(PromoCodeRow).where(PromoCodeRow.event_id == event_id))
            s.execute(sa.delete(SessionRow).where(SessionRow.event_id == event_id))
            s.execute(sa.delete(EventRow).where(EventRow.id == event_id))
        log.info("paid_events.event.deleted", event_id=event_id)

    def change_date(self, event_id: str, starts_at: datetime, *, session_id: str | None = None) -> int:
        """Move the event (or, for a permanent event, one of its sessions); everyone holding or having
        a ticket is notified. Returns how many.

        Only a confirmed ticket is told it stays valid; a pending registration (a held seat, not
        paid yet) is told the ticket it gets once paid is for the new date.

        The new date must be in the future (:class:`InvalidDate`); an on-demand event has no date.
        """
        self._check_aware("starts_at", starts_at)
        if starts_at is None:
            raise InvalidDate("starts_at is required")
        now = self.clock()
        if starts_at <= now:
            raise InvalidDate(f"the new date {starts_at.isoformat()} is not in the future")
        with self.store.transaction() as s:
            row = self._event(s, event_id, lock=True)
            self._require_active(row)
            kind = EventKind(row.kind)
            if kind is EventKind.ON_DEMAND:
                raise InvalidDate("an on-demand event has no date to change")
            if kind is EventKind.PERMANENT:
                if session_id is None:
                    raise InvalidDate("a permanent event has sessions: name the session_id whose date changes")
                session = self._session(s, row, session_id)
                old = session.starts_at
                session.starts_at = starts_at
                subject = f"New date for a session of {row.title}"
                body = f"The session of {row.title} on {_when(old)} now takes place on {_when(starts_at)}."
                held = "Your access token stays valid for every session."
                unpaid = "The ticket you get once your payment is confirmed admits you to every session."
            else:
                if session_id is not None:
                    raise InvalidDate("only a permanent event has sessions")
                row.starts_at = starts_at
                subject = f"New date for {row.title}"
                body = f"{row.title} now starts at {_when(starts_at)}."
                held = "Your ticket stays valid."
                unpaid = "The ticket you get once your payment is confirmed is for the new date."
            count = 0
            for reg in self._live_registrations(s, event_id):
                # A pending registration holds a seat but has no ticket (nor token) yet: told, not promised.
                tail = held if reg.status == "confirmed" else unpaid
                self._message(s, "date_change", row, reg, subject, f"{body} {tail}")
                count += 1
        log.info("paid_events.event.date_changed", event_id=event_id, session_id=session_id, notified=count)
        return count

    def add_session(self, event_id: str, starts_at: datetime) -> SessionView:
        """Add a session (a future date) to a permanent event; its participants are told."""
        self._check_aware("starts_at", starts_at)
        if starts_at is None:
            raise InvalidDate("starts_at is required")
        now = self.clock()
        if starts_at <= now:
            raise InvalidDate(f"the session date {starts_at.isoformat()} is not in the future")
        with self.store.transaction() as s:
            row = self._event(s, event_id, lock=True)
            self._require_active(row)
            if row.kind != EventKind.PERMANENT.value:
                raise InvalidDate("only a permanent event (a series) has sessions")
            session = SessionRow(id=str(uuid.uuid4()), event_id=event_id, starts_at=starts_at, created_at=now)
            s.add(session)
            notified = 0
            for reg in self._live_registrations(s, event_id):
                tail = (
                    "Your access token admits you to it."
                    if reg.status == "confirmed"
                    else "The ticket you get once your payment is confirmed admits you to it."
                )
                self._message(
                    s,
                    "session_added",
                    row,
                    reg,
                    f"A new session of {row.title}",
                    f"{row.title} has a new session on {_when(starts_at)}. {tail}",
                )
                notified += 1
        log.info("paid_events.session.added", event_id=event_id, session_id=session.id, notified=notified)
        return SessionView(session.id, event_id, starts_at)

    def sessions(self, event_id: str) -> list[SessionView]:
        """The sessions of a permanent event, earliest first (empty for other kinds)."""
        with self.store.transaction() as s:
            self._event(s, event_id)
            rows = s.scalars(
                sa.select(SessionRow).where(SessionRow.event_id == event_id).order_by(SessionRow.starts_at)
            ).all()
            return [SessionView(r.id, r.event_id, r.starts_at) for r in rows]

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
            # reconcile) gives the seat back. A payment that still lands is paid_no_seat: refundable.
            self._void(registration_id, gateway, checkout_id)
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
        if max_uses is not None and (
            isinstance(max_uses, bool) or not isinstance(max_uses, int) or not 1 <= max_uses <= MAX_COUNT
        ):
            raise InvalidPromoCode(f"max_uses must be a whole number from 1 to {MAX_COUNT}")
        self._check_aware("expires_at", expires_at)
        if expires_at is not None and expires_at <= self.clock():
            raise InvalidPromoCode(f"the code's expiry {expires_at.isoformat()} is already past")
        pct = domain.parse_percent(percent) if percent is not None else None
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
                self._require_active(event)
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
            self._require_open(event, self.clock())
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

        The same participant (e-mail compared case-insensitively) coming back while their earlier
        checkout is still pending gets that checkout back (``resumed``) when the terms are the same
        (promo code, gateway, price), or else has it closed (the seat and promo use come back) and a
        fresh one opened. A checkout whose answer was lost (:class:`CheckoutPending`) is finished
        with its own operation id. Only a confirmed ticket is :class:`AlreadyRegistered`.
        """
        if accept_price is not None:
            domain.require_money("accept_price (the final price of the quote)", accept_price)
        address = domain.normalize_email(email)
        key = domain.email_key(address)
        canonical = domain.normalize_promo_code(promo_code) if promo_code is not None else None
        for _ in range(3):
            try:
                return self._register(event_id, address, key, canonical, gateway, accept_price)
            except _Live as live:
                resumed = self._resume(live.registration_id, canonical, gateway, accept_price)
                if resumed is not None:
                    return resumed
        raise AlreadyRegistered(f"this e-mail's registration for event {event_id} is changing; try again")

    def _register(  # noqa: PLR0917 (private; one call site)
        self,
        event_id: str,
        address: str,
        key: str,
        canonical: str | None,
        gateway: str | None,
        accept_price: Money | None,
    ) -> CheckoutResult:
        now = self.clock()
        registration_id = str(uuid.uuid4())
        try:
            with self.store.transaction() as s:
                event = self._event(s, event_id)
                self._require_open(event, now)
                self._check_no_live(s, event_id, key)
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
                if promo is not None and not self._take_promo_use(s, promo.id, now):
                    raise PromoCodeExhausted(f"promo code {promo.code} has no uses left")
                hold_until = now + timedelta(minutes=self.config.hold_minutes)
                reg = RegistrationRow(
                    id=registration_id,
                    event_id=event_id,
                    email=address,
                    email_key=key,
                    status="pending",
                    currency=event.currency,
                    price_minor=quote.final.to_minor(),
                    fee_minor=quote.fee.to_minor(),
                    promo_id=promo.id if promo is not None else None,
                    gateway=quote.gateway,
                    operation_id=f"checkout:{registration_id}" if not quote.free else None,
                    hold_expires_at=hold_until if not quote.free else None,
                    checkout_expires_at=(
                        self._checkout_expiry(quote.gateway, hold_until, now) if quote.gateway is not None else None
                    ),
                    refund_state="none",
                    refund_attempt=1,
                    created_at=now,
                )
                s.add(reg)
                s.flush()
                if quote.free:
                    self._confirm(s, event, reg, now)
        except IntegrityError as exc:
            if "email" not in str(exc.orig):
                raise
            with self.store.transaction() as s:  # a concurrent registration of the same address won
                self._check_no_live(s, event_id, key)
            raise AlreadyRegistered(f"this e-mail's registration for event {event_id} is changing; try again") from None
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

    def _check_no_live(self, s: Session, event_id: str, key: str) -> None:
        """Raise :class:`AlreadyRegistered` for a confirmed ticket, :class:`_Live` for a pending one."""
        live = s.execute(
            sa.select(RegistrationRow.id, RegistrationRow.status).where(
                RegistrationRow.event_id == event_id,
                RegistrationRow.email_key == key,
                RegistrationRow.status.in_(LIVE_STATUSES),
            )
        ).first()
        if live is None:
            return
        if live.status == "confirmed":
            raise AlreadyRegistered(f"this e-mail already has a ticket for event {event_id}")
        raise _Live(live.id)

    def _resume(
        self, registration_id: str, canonical: str | None, gateway: str | None, accept_price: Money | None
    ) -> CheckoutResult | None:
        """The participant's pending registration: its open checkout back, or ``None`` once it is closed.

        ``None`` tells :meth:`checkout` to register afresh (the seat and promo use came back).
        """
        now = self.clock()
        with self.store.transaction() as s:
            reg = self._registration(s, registration_id)
            if reg.status == "confirmed":
                raise AlreadyRegistered(f"this e-mail already has a ticket for event {reg.event_id}")
            if reg.status != "pending" or reg.gateway is None:
                return None
            event = self._event(s, reg.event_id)
            promo = s.get(PromoCodeRow, reg.promo_id) if reg.promo_id is not None else None
            try:
                quote = self._quote(event, promo, reg.gateway)
            except PaidEventsError:
                quote = None
        amount = Money.from_minor(reg.price_minor, reg.currency)
        same_terms = (
            quote is not None
            and quote.final == amount
            and (promo.code if promo is not None else None) == canonical
            and gateway in (None, reg.gateway)
            and accept_price in (None, amount)
        )
        held = _held(reg, now)
        if reg.checkout_id is None and held:
            self._open_checkout(registration_id)  # the lost answer, finished (CheckoutPending if still lost)
            with self.store.transaction() as s:
                reg = self._registration(s, registration_id)
        if reg.checkout_id is not None and reg.gateway is not None:
            status = self._checkout_status(reg, gone_ok=not held)
            if status is None:  # its hold lapsed and the provider forgot it: nothing left to close
                self._release(registration_id, "expired")
                log.info("paid_events.checkout.replaced", registration_id=registration_id)
                return None
            if _awaits_capture(status) and held and self._capture(reg):
                status = self.gateways.payment_status(reg.gateway, reg.checkout_id)  # approved: captured now
            if status.is_paid and self._settle(reg) == "confirmed":
                raise AlreadyRegistered(f"this e-mail already has a ticket for event {reg.event_id} (just paid)")
            still_open = status.state in (PaymentState.PENDING, PaymentState.FAILED, PaymentState.REQUIRES_ACTION)
            if same_terms and held and still_open and quote is not None:
                log.info("paid_events.checkout.resumed", registration_id=registration_id)
                return CheckoutResult(
                    registration_id, "pending", quote, reg.checkout_url, reg.checkout_id, resumed=True
                )
            if not self._close_checkout(reg):
                raise AlreadyRegistered(f"this e-mail already has a ticket for event {reg.event_id} (just paid)")
        self._release(registration_id, "expired")
        log.info("paid_events.checkout.replaced", registration_id=registration_id)
        return None

    def _close_checkout(self, reg: RegistrationRow) -> bool:
        """Expire ``reg``'s open checkout at the provider. False when it turned out paid (and is confirmed)."""
        assert reg.gateway is not None
        assert reg.checkout_id is not None
        still_open = self._void(reg.id, reg.gateway, reg.checkout_id)
        status = self.gateways.payment_status(reg.gateway, reg.checkout_id)
        if status.is_paid:
            self._settle(reg)
            return False
        if not still_open and status.state in _IN_FLIGHT:
            raise AlreadyRegistered(f"this e-mail's payment for event {reg.event_id} is being processed")
        return True

    def _void(self, registration_id: str, gateway: str, checkout_id: str) -> bool:
        """Best effort: close a checkout so nobody pays it. A payment that lands anyway is a late payment.

        False when the provider says the checkout is no longer open (completed, or expired): the
        status check that follows says which.
        """
        try:
            self.gateways.void(gateway, VoidRequest(checkout_id), operation_id=f"expire:{registration_id}")
        except InvalidRequest:
            return False
        except (CapabilityNotSupported, NotFound):
            # This gateway cannot close a checkout, or has none left to close (PayPal forgets an
            # expired order): the status read that follows says what the checkout is.
            pass
        except GatewayError as exc:
            log.warning("paid_events.checkout.void_failed", registration_id=registration_id, error=type(exc).__name__)
        return True

    def _checkout_expiry(self, gateway: str, hold_until: datetime, now: datetime) -> datetime | None:
        """The provider checkout's expiry: the hold fitted into the gateway's window, or none it takes none."""
        window = self.gateways.gateway(gateway).capabilities.checkout_expiry
        return None if window is None else window.fit(hold_until, now)

    def _open_checkout(
        self, registration_id: str, rows: tuple[EventRow, RegistrationRow] | None = None
    ) -> CheckoutSession:
        """Call the provider for a committed pending registration, then record its answer.

        ``rows`` are the event and registration as just committed (saves a read); without them
        they are read again, as reconciliation does. A request rebuilt later whose stored expiry
        the gateway would now refuse (Stripe: less than 30 minutes ahead) is re-keyed instead: a
        new operation id and a freshly fitted expiry, both committed before the call. That is safe
        because the first attempt's checkout, if the provider made one, was never shown to anyone.
        """
        if rows is None:
            rows = self._rekey_if_stale(registration_id)
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
        refusal = self._record_checkout(registration_id, session)
        if refusal is not None:
            # The organizer cancelled the event or rejected the participant while the provider was
            # making the checkout: close it rather than hand it out (a payment that lands anyway is
            # a late payment, refundable), and give back the seat a cancelled event's hold keeps.
            self._void(registration_id, gateway, session.id)
            self._release(registration_id, "expired")
            log.warning("paid_events.checkout.closed_at_once", registration_id=registration_id, checkout_id=session.id)
            raise refusal
        log.info("paid_events.checkout.created", registration_id=registration_id, checkout_id=session.id)
        return session

    def _rekey_if_stale(self, registration_id: str) -> tuple[EventRow, RegistrationRow]:
        now = self.clock()
        with self.store.transaction() as s:
            reg = self._registration(s, registration_id, lock=True)
            event = self._event(s, reg.event_id)
            if reg.gateway is None or reg.checkout_id is not None or reg.checkout_expires_at is None:
                return event, reg
            window = self.gateways.gateway(reg.gateway).capabilities.checkout_expiry
            if window is not None and window.refusal(reg.checkout_expires_at, now) is None:
                return event, reg
            old = reg.operation_id or f"checkout:{reg.id}"
            hold_until = reg.hold_expires_at or now + timedelta(minutes=self.config.hold_minutes)
            moved = s.execute(
                sa.update(RegistrationRow)
                .where(
                    RegistrationRow.id == reg.id,
                    RegistrationRow.operation_id == old,
                    RegistrationRow.checkout_id.is_(None),
                )
                .values(
                    operation_id=_next_operation_id(old),
                    checkout_expires_at=self._checkout_expiry(reg.gateway, hold_until, now),
                )
                .execution_options(synchronize_session=False)
            )
            reg = self._registration(s, registration_id)
        if _rowcount(moved) == 1:
            log.info("paid_events.checkout.rekeyed", registration_id=registration_id, operation_id=reg.operation_id)
        return event, reg

    def _record_checkout(self, registration_id: str, session: CheckoutSession) -> PaidEventsError | None:
        """Record the provider's checkout; the refusal to raise when it must not be handed out.

        It is recorded either way, so a payment that still lands on it is found (and refunded).
        """
        with self.store.transaction() as s:
            s.execute(
                sa.update(RegistrationRow)
                .where(RegistrationRow.id == registration_id, RegistrationRow.checkout_id.is_(None))
                .values(checkout_id=session.id, payment_id=session.payment_id, checkout_url=session.url)
                .execution_options(synchronize_session=False)
            )
            reg = self._registration(s, registration_id)
            event = self._event(s, reg.event_id)
        if event.status != "active":
            return EventClosed(f"event {event.id} was cancelled while the checkout was being opened")
        if reg.status != "pending":
            return InvalidTransition(
                f"registration {registration_id} was {reg.status} while its checkout was being opened"
            )
        return None

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
            expires_at=reg.checkout_expires_at,
            application_fee=fee if supports_fee and fee.is_positive and fee < amount else None,
        )

    # -- webhooks -------------------------------------------------------------------------
    def handle_webhook(self, gateway: str, headers: Mapping[str, str], body: bytes) -> WebhookOutcome:
        """Verify, then process a webhook once however often it arrives.

        A payment that succeeded (``payment.succeeded`` with the registration's amount, or
        ``checkout.completed`` and a status check that says paid) confirms its registration; an
        expired or cancelled checkout gives its seat back. ``payment.failed`` is not believed on
        its own: an attempt may fail while the checkout still takes another (Stripe sends
        ``payment_intent.payment_failed`` for each declined card on an open Checkout Session), so
        the provider is asked about the registration's checkout, and only a final failure
        (``FAILED`` or ``CANCELED``) releases the seat (``failed``, the payer told once); a paid
        status confirms (the webhooks overtook each other); anything else keeps the seat. Before
        releasing on ``FAILED``, the checkout is expired, so that none a provider still keeps open
        can be paid for a released seat.

        Raises the gateway's :class:`~gateway_core.WebhookVerificationFailed` for a forged one and
        :class:`UnknownPayment` for one about a payment we never started; neither changes anything.
        A provider error while asking for a payment's status (a :class:`~gateway_core.GatewayError`)
        is raised too, before anything is recorded, so the provider's redelivery is processed.
        """
        event = self.gateways.parse_webhook(gateway, headers, body)
        relevant = {
            EventType.CHECKOUT_COMPLETED,
            EventType.PAYMENT_SUCCEEDED,
            EventType.CHECKOUT_EXPIRED,
            EventType.PAYMENT_CANCELED,
            EventType.PAYMENT_FAILED,
            EventType.REFUND_SUCCEEDED,
            EventType.REFUND_FAILED,
        }
        claimed, paid_id, failed_for_good = self._payment_outcome(gateway, event)
        fully_refunded = event.type is EventType.REFUND_SUCCEEDED and self._fully_refunded(gateway, event)
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
                    changed = self._confirm_paid(s, reg.id, paid_id)
                elif event.type in (EventType.CHECKOUT_EXPIRED, EventType.PAYMENT_CANCELED):
                    changed = self._release_in(s, reg.id, "expired")
                elif failed_for_good:
                    changed = self._payment_failed(s, reg)
                elif fully_refunded:
                    changed = self._mark_refunded(s, reg.id, event.refund_id)
                elif event.type is EventType.REFUND_SUCCEEDED:
                    # A part of the payment went back (the organizer's gesture in the provider's
                    # dashboard): the ticket stands, and refund() returns the rest.
                    log.info("paid_events.refund.partial", registration_id=reg.id, refund_id=event.refund_id)
                elif event.type is EventType.REFUND_FAILED:
                    changed = self._mark_refund_failed(s, reg.id, event.refund_id)
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

    def _payment_outcome(self, gateway: str, event: WebhookEvent) -> tuple[Money | None, str | None, bool]:
        """What a payment event says, asked outside any transaction: the amount paid (``None``: not
        paid), the payment id to record, and whether the payment failed for good."""
        if event.type in (EventType.CHECKOUT_COMPLETED, EventType.PAYMENT_SUCCEEDED):
            if event.type is EventType.PAYMENT_SUCCEEDED and event.amount is not None:
                return event.amount, event.payment_id, False
            if event.checkout_id or event.payment_id:  # "completed" may still be pending: ask the provider
                asked = event.checkout_id or event.payment_id or ""
                status = self.gateways.payment_status(gateway, asked)
                if (
                    event.type is EventType.CHECKOUT_COMPLETED
                    and _awaits_capture(status)
                    and self._capture_approved(gateway, event)
                ):
                    status = self.gateways.payment_status(gateway, asked)
                return status.amount if status.is_paid else None, event.payment_id, False
        elif event.type is EventType.PAYMENT_FAILED and (failure := self._failure_status(gateway, event)) is not None:
            final = failure.state in (PaymentState.FAILED, PaymentState.CANCELED)
            return failure.amount if failure.is_paid else None, event.payment_id or failure.payment_id, final
        return None, event.payment_id, False

    def _capture_approved(self, gateway: str, event: WebhookEvent) -> bool:
        """``checkout.completed`` on a gateway where that moves no money: capture the registration's checkout.

        See :meth:`_capture`. A provider error capturing is raised, as one reading the status is:
        nothing is recorded and the provider's redelivery captures again, under the same key.
        """
        if not self._host_completes(gateway):
            return False
        with self.store.transaction() as s:
            reg = self._find_registration(s, gateway, event.checkout_id, event.payment_id, event.reference)
        if reg is None or event.checkout_id not in (None, reg.checkout_id):
            return False
        return self._capture(reg)

    def _host_completes(self, gateway: str) -> bool:
        """Whether the payer's approval of a checkout on ``gateway`` moves money only once the host captures it."""
        return self.gateways.gateway(gateway).capabilities.host_completes_checkout

    def _capture(self, reg: RegistrationRow) -> bool:
        """Capture ``reg``'s approved checkout where its gateway needs the host to; True when captured.

        On a gateway that declares ``host_completes_checkout`` (PayPal: the payer's approval of an
        order moves no money until the merchant captures it, and an order nobody captures lapses,
        about 3 hours after it was made; docs/paypal.md, docs/host-guide.md section 3), a checkout
        that reads ``PENDING`` is captured with ``CaptureRequest(checkout_id)`` under one operation
        id per registration, ``capture:<registration id>``: a redelivered or concurrent webhook,
        reconcile and check_payment all send the same key, so the money is captured once. PayPal
        stores a ``PayPal-Request-Id`` "for a period of time" and, of "two simultaneous API requests
        with same PayPal-Request-Id", "processes the first request and might fail the second"
        (developer.paypal.com/reference/guidelines/idempotency): the failed one is a provider error
        here (raised: the webhook comes again, reconcile defers), and the status then reads paid.
        Only for a registration still ``pending`` whose hold has not lapsed and whose event is
        active (read again here): no money is taken for a seat given back or a cancelled event; a
        lapsed hold's approval is left to lapse (a payment that lands anyway is a late payment).
        ``AuthenticationRequired`` (the payer has not approved yet: PayPal's ``ORDER_NOT_APPROVED``)
        is False; any other provider error is raised (the caller keeps the registration pending).
        """
        gateway, checkout_id = reg.gateway, reg.checkout_id
        if gateway is None or checkout_id is None or not self._host_completes(gateway):
            return False
        with self.store.transaction() as s:
            current = self._registration(s, reg.id)
            active = self._event(s, current.event_id).status == "active"
        held = _held(current, self.clock())
        if current.status != "pending" or not active or not held:
            return False
        try:
            self.gateways.capture(gateway, CaptureRequest(checkout_id), operation_id=f"capture:{reg.id}")
        except AuthenticationRequired:
            return False  # not approved yet: the payer may still approve it, the registration stays pending
        log.info("paid_events.checkout.captured", registration_id=reg.id, checkout_id=checkout_id)
        return True

    def _failure_status(self, gateway: str, event: WebhookEvent) -> PaymentStatus | None:
        """Where a payment reported failed is now, as the provider says (``None``: no registration).

        Asked about the registration's checkout, not the event's ids: the checkout is what the
        payer pays on. Stripe's ``payment_intent.payment_failed`` names only the PaymentIntent, and
        is sent for a declined card while the Checkout Session is still open for another one; the
        session (``cs_``) reads ``PENDING`` then, as the core's contract says of a checkout still
        open after a declined card, and ``FAILED`` once a delayed method such as a bank debit
        failed after the checkout completed (``checkout.session.async_payment_failed``: "a payment
        intent using a delayed payment method fails"; docs/stripe.md, stripe_gateway/normalize.py).
        A ``FAILED`` pending registration's checkout is expired first and, unless the provider says
        it was no longer open, the status read again: a plugin that reports a checkout still open
        after a declined attempt ``FAILED`` (against the contract) then reads ``CANCELED``, so no
        one pays for a released seat, and one paid meanwhile reads paid. A provider error reading
        the status is raised: the caller records nothing and the webhook is delivered again.
        """
        with self.store.transaction() as s:
            reg = self._find_registration(s, gateway, event.checkout_id, event.payment_id, event.reference)
        if reg is None:
            return None  # the processing transaction reports the unknown payment
        asked = reg.checkout_id or reg.payment_id or event.checkout_id or event.payment_id
        if asked is None:
            return None
        status = self.gateways.payment_status(gateway, asked)
        if (
            status.state is PaymentState.FAILED
            and reg.status == "pending"
            and reg.checkout_id is not None
            and self._void(reg.id, gateway, reg.checkout_id)
        ):
            status = self.gateways.payment_status(gateway, asked)
        return status

    def _payment_failed(self, s: Session, reg: RegistrationRow) -> bool:
        """A pending registration's payment failed for good: release its seat and tell the payer, once.

        Only the move from ``pending`` (a conditional update) sends the message, so a second
        ``payment.failed`` (Stripe sends one for the PaymentIntent and one for the session) or a
        redelivery sends none.
        """
        if not self._release_in(s, reg.id, "failed"):
            return False
        event = self._event(s, reg.event_id)
        amount = Money.from_minor(reg.price_minor, reg.currency)
        text = f"Your payment of {amount} for {event.title} failed, so you have no ticket"
        if event.status != "active":
            text += f" and there is nothing to refund (the organizer cancelled {event.title})."
        else:
            text += " and the seat held for you was released."
            if self._registration_open(event):
                text += " You can register again while seats are left."
        self._message(s, "payment_failed", event, reg, f"Your payment for {event.title} failed", text)
        log.info("paid_events.payment.failed", registration_id=reg.id, event_id=reg.event_id)
        return True

    def _fully_refunded(self, gateway: str, event: WebhookEvent) -> bool:
        """Whether a ``refund.succeeded`` leaves the whole payment refunded, as the provider says now.

        The provider's refunded total for the payment decides, not the event: its amount is that
        one refund's (earlier partial refunds count too), and a late or out-of-order delivery may
        announce a refund that has failed since (the payer's bank sent the money back).
        """
        with self.store.transaction() as s:
            reg = self._find_registration(s, gateway, event.checkout_id, event.payment_id, event.reference)
        if reg is None:
            return False  # the processing transaction reports the unknown payment
        price = Money.from_minor(reg.price_minor, reg.currency)
        payment_id = reg.payment_id or event.payment_id
        if payment_id is None:  # nothing to ask about: the event's own amount is all there is
            return event.amount is not None and event.amount.currency == price.currency and event.amount >= price
        return _refunded_in_full(self.gateways.payment_status(gateway, payment_id), price)

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
        (the provider returns the one it made; re-keyed when the provider would now refuse the
        stored expiry), release one whose hold lapsed before any checkout was made, ask the
        provider for the payment's status, confirm a paid one, release the seat of a cancelled or
        expired one, and expire (void) a checkout whose hold ran out or whose event is cancelled
        (none is opened for a cancelled event). A checkout the provider no longer has (``NotFound``:
        PayPal forgets an order never completed once it expires) can never be paid: it is released
        too (``expired``) once its hold lapsed or its event is cancelled, and left pending before
        that. A payment the status shows failed is released only then, once its hold lapsed or its
        event is cancelled (``expired``, with no message): its checkout may still take another
        attempt; the ``payment.failed`` webhook (:meth:`handle_webhook`) is what releases a final
        failure at once and tells the payer. A
        payment reported paid when there is no seat for it (its event cancelled, or its hold lapsed
        and the event sold out, its promo code used up or its participant holding another ticket)
        is ``paid_no_seat`` and its payer is told the organizer refunds it. Then settle refunds:
        re-send a refund whose answer was lost (same key) and poll pending ones.
        Any other provider error on one registration (the provider down, rate limiting, a lost
        answer) leaves it pending and the sweep goes on.
        """
        with self.store.transaction() as s:
            pending = s.scalars(
                sa.select(RegistrationRow.id).where(
                    RegistrationRow.status == "pending", RegistrationRow.gateway.is_not(None)
                )
            ).all()
        counts = dict.fromkeys(attrs.fields_dict(ReconcileReport), 0)
        for registration_id in pending:
            try:
                outcome = self._reconcile_one(registration_id)
            except (GatewayError, CheckoutPending) as exc:
                log.warning("paid_events.reconcile.deferred", registration_id=registration_id, error=type(exc).__name__)
                outcome = "still_pending"
            for name in filter(None, outcome.split("+")):
                counts[name] += 1
        for outcome in self._settle_refunds():
            counts[outcome] += 1
        report = ReconcileReport(**counts)
        log.info("paid_events.reconcile.completed", **attrs.asdict(report))
        return report

    def _reconcile_one(self, registration_id: str) -> str:
        """One pending registration swept: the report fields it counts in, joined by ``+``."""
        with self.store.transaction() as s:
            reg = self._registration(s, registration_id)
            cancelled = self._event(s, reg.event_id).status != "active"
        if reg.status != "pending":
            return ""  # settled meanwhile (a webhook, another reconciler): nothing to count
        prefix = ""
        if reg.checkout_id is None:
            if cancelled or not _held(reg, self.clock()):
                # Nobody ever saw a checkout for it, so nothing can be paid: just give the seat back
                # (and open none for a cancelled event).
                return "released" if self._release(registration_id, "expired") else "still_pending"
            try:
                self._open_checkout(registration_id)
            except CheckoutPending:
                return "still_pending"
            except (GatewayError, EventClosed, InvalidTransition):  # failed, or closed at once: no hold
                return "released"
            prefix = "checkouts_recovered+"
            with self.store.transaction() as s:
                reg = self._registration(s, registration_id)
        outcome = self._settle(reg, cancelled=cancelled)
        return prefix + (
            "confirmed" if outcome == "confirmed" else "released" if outcome == "released" else "still_pending"
        )

    def check_payment(self, registration_id: str) -> str:
        """Ask the provider about one registration (e.g. when the payer returns) and apply the answer.

        Returns the registration's status afterwards. The payer's return alone proves nothing;
        this status check is what may confirm.

        A registration the organizer rejected while its checkout was open, with no payment recorded
        yet, is asked about too: the payer may have paid at that very moment (or on a gateway that
        cannot close a checkout). A payment found is recorded (``paid_at``, refundable) and its
        payer told once that the organizer refunds it; the registration stays ``rejected``.
        """
        with self.store.transaction() as s:
            reg = self._registration(s, registration_id)
        if reg.status == "rejected" and reg.paid_at is None:
            self._paid_since_rejection(reg)
        elif reg.status == "pending" and reg.gateway is not None:
            if reg.checkout_id is None:
                # Closed at once (the event was cancelled meanwhile): the status returned says so.
                with contextlib.suppress(EventClosed, InvalidTransition):
                    self._open_checkout(registration_id)
                with self.store.transaction() as s:
                    reg = self._registration(s, registration_id)
            if reg.status == "pending" and reg.checkout_id is not None:
                self._settle(reg)
        with self.store.transaction() as s:
            return self._registration(s, registration_id).status

    def _paid_since_rejection(self, reg: RegistrationRow) -> None:
        """Record the payment of a rejected registration's checkout, if the provider says it was paid.

        A checkout the provider no longer has (``NotFound``: PayPal forgets an order never
        completed) was never paid. Any other provider error is logged and left: the registration is
        ``rejected`` whatever the answer, and the payment's webhook (or the next check) records it.
        On a gateway where the host completes the checkout (PayPal) a rejected one is never
        captured, so its approval moves no money and lapses.
        """
        if reg.gateway is None or reg.checkout_id is None:
            return  # no checkout was ever made: nothing could be paid
        try:
            status = self.gateways.payment_status(reg.gateway, reg.checkout_id)
        except NotFound:
            return
        except GatewayError as exc:
            log.warning("paid_events.rejected.status_unavailable", registration_id=reg.id, error=type(exc).__name__)
            return
        if status.is_paid and self._amount_matches(reg, status.amount):
            with self.store.transaction() as s:
                self._confirm_paid(s, reg.id, status.payment_id)

    def _settle(self, reg: RegistrationRow, *, cancelled: bool = False) -> str:
        """Apply the provider's answer to a pending registration; ``cancelled``: its event is.

        The checkout of a lapsed hold, or of a cancelled event (cancel_event could not close it:
        the provider was down, or the process died), is expired first. One the provider no longer
        has (``NotFound``: PayPal forgets an order never completed once it expires) can never be
        paid: when the hold lapsed or the event is cancelled its seat is released (``expired``) with
        no void; before that the ``NotFound`` is raised, as any other provider error is, and the
        registration stays pending (see :meth:`_checkout_status`).
        """
        assert reg.gateway is not None
        assert reg.checkout_id is not None
        lapsed = cancelled or not _held(reg, self.clock())
        status = self._checkout_status(reg, gone_ok=lapsed)
        if status is not None and _awaits_capture(status) and not lapsed and self._capture(reg):
            status = self._checkout_status(reg, gone_ok=False)  # approved, and now captured
        if status is not None and not status.is_paid and status.state is not PaymentState.CANCELED:
            if not lapsed:
                return "pending"
            # The hold lapsed (before the provider's checkout did): expire the checkout first, so
            # nobody pays for a seat that is given back; the status below says what happened.
            still_open = self._void(reg.id, reg.gateway, reg.checkout_id)
            status = self._checkout_status(reg, gone_ok=True)
            if status is not None and not still_open and status.state in _IN_FLIGHT:
                # The payer completed the checkout and the money is on its way (a bank debit
                # settling later): keep the seat; the settlement (or its failure) decides.
                return "pending"
        with self.store.transaction() as s:
            if status is not None and status.is_paid:
                if not self._amount_matches(reg, status.amount):
                    return "pending"
                return "confirmed" if self._confirm_paid(s, reg.id, status.payment_id) else "pending"
            return "released" if self._release_in(s, reg.id, "expired") else "pending"

    def _checkout_status(self, reg: RegistrationRow, *, gone_ok: bool) -> PaymentStatus | None:
        """The status of ``reg``'s checkout; ``None`` when the provider has none and ``gone_ok``.

        ``gone_ok``: the hold lapsed or the event is cancelled, so a checkout the provider says it
        does not have (``NotFound``) is one nobody can pay any more. PayPal forgets an order never
        completed once it expires: "Any order that doesn't get completed, within a set amount of
        time, will automatically expire. The default amount of time is 3 hours" (PayPal on
        paypal/Checkout-PHP-SDK#84), after which ``GET /v2/checkout/orders/{id}`` answers 404
        ``RESOURCE_NOT_FOUND`` / ``INVALID_RESOURCE_ID`` (shopware/shopware#6850, #5776), the
        plugin's ``NotFound``. Otherwise the ``NotFound`` is raised: a provider may not know an
        order just made for a moment (paypal/PayPal-PHP-SDK#1267, a 404 right after the payer's
        return), and the hold's own lapse decides. Only ``NotFound`` counts: any other error
        (``GatewayUnavailable``, ``OutcomeUnknown``, ``RateLimited``...) says nothing about the
        checkout and is raised. A payment that still lands later is a late payment
        (:meth:`_confirm_paid` takes an ``expired`` registration).
        """
        assert reg.gateway is not None
        assert reg.checkout_id is not None
        try:
            return self.gateways.payment_status(reg.gateway, reg.checkout_id)
        except NotFound:
            if not gone_ok:
                raise
            log.warning("paid_events.checkout.gone", registration_id=reg.id, gateway=reg.gateway)
            return None

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
                    r.paid_at,
                )
                for r, code in rows
            ]

    def fee_report(self, event_id: str) -> FeeReport:
        """The service fee of every payment the provider confirmed and that is not refunded, and the total.

        See :class:`FeeReport` for why the total is the sum of the per-payment fees.
        """
        with self.store.transaction() as s:
            event = self._event(s, event_id)
            rows = s.scalars(
                sa.select(RegistrationRow)
                .where(
                    RegistrationRow.event_id == event_id,
                    RegistrationRow.paid_at.is_not(None),
                    RegistrationRow.price_minor > 0,
                    RegistrationRow.refund_state != "refunded",
                )
                .order_by(RegistrationRow.paid_at, RegistrationRow.id)
            ).all()
        lines = tuple(
            FeeLine(r.id, Money.from_minor(r.price_minor, r.currency), Money.from_minor(r.fee_minor, r.currency))
            for r in rows
        )
        zero = Money.zero(event.currency)
        total_sales = sum((line.amount for line in lines), zero)
        return FeeReport(
            lines,
            total_sales,
            sum((line.fee for line in lines), zero),
            domain.service_fee(total_sales, self.config),
        )

    def confirm(self, registration_id: str) -> None:
        """Confirm a registration by hand (paid outside the gateway, or a re-admission).

        Nothing is marked paid: only the provider's confirmation makes a payment refundable here.
        """
        with self.store.transaction() as s:
            reg = self._registration(s, registration_id, lock=True)
            event = self._event(s, reg.event_id)
            self._require_active(event)
            if reg.status == "confirmed":
                raise InvalidTransition(f"registration {registration_id} is already confirmed")
            if reg.status != "pending":
                self._check_no_other_live(s, reg)
                if not self._take_seat(s, event.id):
                    raise SoldOut(f"event {event.id} has no seat left for registration {registration_id}")
                if reg.promo_id is not None and not self._take_promo_use(s, reg.promo_id, None):
                    # Its use came back when it was released and was taken since (the seat rolls back).
                    raise PromoCodeExhausted(f"the promo code of registration {registration_id} has no uses left")
            self._confirm(s, event, reg, self.clock())
        log.info("paid_events.registration.confirmed", registration_id=registration_id, manual=True)

    def reject(self, registration_id: str, reason: str = "") -> None:
        """Reject a participant: the seat and promo use come back and the token stops working.

        No automatic refund: a payment the provider confirmed stays refundable (:meth:`refund`);
        a registration rejected before it was paid has nothing to refund, and its open checkout is
        closed so it cannot be paid afterwards. A payment that lands anyway (the payer paid at that
        very moment, or the gateway cannot close a checkout) is recorded (``paid_at``, refundable)
        when a webhook or :meth:`check_payment` reports it; the registration stays ``rejected`` and
        its payer is told once that the organizer refunds it (``paid_after_rejection``).
        """
        if not isinstance(reason, str):
            raise InvalidInput(f"reason must be text, not {type(reason).__name__}")
        if _has_control(reason, allowed="\n\r\t"):
            raise InvalidInput("reason must be text without control characters (line breaks and tabs are fine)")
        with self.store.transaction() as s:
            reg = self._registration(s, registration_id, lock=True)
            event = self._event(s, reg.event_id)
            if reg.status not in LIVE_STATUSES:
                raise InvalidTransition(f"registration {registration_id} is {reg.status}; it cannot be rejected")
            open_checkout = reg.status == "pending" and reg.checkout_id is not None
            moved = s.execute(
                sa.update(RegistrationRow)
                .where(RegistrationRow.id == reg.id, RegistrationRow.status.in_(LIVE_STATUSES))
                .values(status="rejected", token_hash=None)
                .execution_options(synchronize_session=False)
            )
            if _rowcount(moved) == 1:
                self._free_hold(s, reg)
            self._drop_unsent_confirmations(s, reg.id)
            text = f"Your registration for {event.title} was declined by the organizer."
            if reason:
                text += f" Reason: {reason[:500]}"
            self._message(s, "rejection", event, reg, f"Registration for {event.title} declined", text)
            gateway, checkout_id = reg.gateway, reg.checkout_id
        if open_checkout and gateway is not None and checkout_id is not None:
            # Close the checkout so the participant cannot pay for a rejected seat; a payment that
            # lands anyway is recorded as paid (paid_at), appears in refund_all, and its payer is
            # told the organizer refunds it (_paid_after_rejection).
            self._void(registration_id, gateway, checkout_id)
        log.info("paid_events.registration.rejected", registration_id=registration_id)

    def reissue_confirmation(self, registration_id: str) -> None:
        """Send the confirmation again **with a new access token**; the previous token stops working.

        Only a hash of each token is stored, so the old token cannot be sent again; the new message
        says that it replaces the earlier one. An earlier confirmation still waiting in the outbox is
        withdrawn (its token would no longer work). Refused with :class:`EventClosed` once the event
        is cancelled: its tickets admit nobody, and no confirmation follows the cancellation notice.
        """
        with self.store.transaction() as s:
            reg = self._registration(s, registration_id, lock=True)
            if reg.status != "confirmed":
                raise InvalidTransition(f"registration {registration_id} is {reg.status}, not confirmed")
            event = self._event(s, reg.event_id)
            self._require_active(event)
            self._drop_unsent_confirmations(s, reg.id)
            self._issue_token(s, event, reg, reissued=True)
        log.info("paid_events.confirmation.reissued", registration_id=registration_id)

    #: The organizer's "resend": it re-issues (see :meth:`reissue_confirmation`).
    resend_confirmation = reissue_confirmation

    def admit(self, event_id: str, token: str, *, session_id: str | None = None) -> bool:
        """Whether ``token`` admits its holder to the event; for a permanent event, to ``session_id``.

        A permanent event's ticket admits to every session of its series (including sessions added
        later), so ``session_id`` must name one of them (:class:`InvalidInput` when missing). A
        one-off or on-demand event has no sessions.
        """
        if not isinstance(token, str) or not token or len(token) > 200:
            return False
        with self.store.transaction() as s:
            event = s.get(EventRow, event_id) if isinstance(event_id, str) and len(event_id) <= 36 else None
            if event is None or event.status != "active":
                return False
            if event.kind == EventKind.PERMANENT.value:
                if session_id is None:
                    raise InvalidInput("a permanent event admits to one of its sessions: pass session_id")
                session = (
                    s.get(SessionRow, session_id) if isinstance(session_id, str) and len(session_id) <= 36 else None
                )
                if session is None or session.event_id != event_id:
                    return False
            elif session_id is not None:
                raise InvalidInput("only a permanent event has sessions")
            reg = s.scalar(sa.select(RegistrationRow).where(RegistrationRow.token_hash == hash_token(token)))
            return reg is not None and reg.event_id == event_id and reg.status == "confirmed"

    # -- refunds --------------------------------------------------------------------------
    def refund(self, registration_id: str) -> RefundOutcome:
        """Refund one payment through the gateway that took it; a retry never refunds twice.

        Only a payment the provider confirmed (``paid_at``) is refunded. The provider's answer is
        recorded as it is: succeeded (``refunded``), ``pending`` (settled later by the
        ``refund.succeeded`` / ``refund.failed`` webhook, by :meth:`reconcile` or by calling this
        again, which polls) or ``failed``. An unknown outcome (a lost answer, or any error that does
        not prove the refund was not made: an :class:`~gateway_core.OutcomeUnknown` such as Stripe's
        500, a bare :class:`~gateway_core.GatewayError` the core wraps a plugin's KeyError in) keeps
        its idempotency key: the next call reads the payment's refunded total (``refunded`` when it
        covers the price) and otherwise re-sends under the same key, never a new one. Only a refund
        refused before it was made (:class:`~gateway_core.InvalidRequest`, a decline,
        :class:`~gateway_core.CapabilityNotSupported`, :class:`~gateway_core.ConfigurationError`, at
        the key's first request) or reported failed is asked again under a new key. A refund
        refused as an :class:`~gateway_core.InvalidRequest` (an
        :class:`~gateway_core.AmountOutOfRange` such as Stripe's ``charge_already_refunded`` or
        PayPal's ``CAPTURE_FULLY_REFUNDED``: nothing remains, refunded in the provider's dashboard or
        under another key) reads the payment's status: ``already_refunded`` when its refunded total
        covers the price, with no further request; otherwise the refusal stands, its error saying
        what the status showed or that it could not be read. While one caller's request is in
        flight, another gets ``in_progress`` and sends nothing.
        """
        now = self.clock()
        with self.store.transaction() as s:
            reg = self._registration(s, registration_id, lock=True)
            amount = Money.from_minor(reg.price_minor, reg.currency)
            if reg.refund_state == "refunded":
                return RefundOutcome(registration_id, "already_refunded", amount, reg.refund_id)
            if not amount.is_positive or reg.paid_at is None or reg.payment_id is None or reg.gateway is None:
                raise InvalidTransition(f"registration {registration_id} has no confirmed payment to refund")
            claim = reg.refund_requested_at
            if reg.refund_state == "requested" and claim is not None and now < claim + _REFUND_CLAIM:
                return RefundOutcome(registration_id, "in_progress", amount, reg.refund_id)
            gateway, payment_id = reg.gateway, reg.payment_id
            # An earlier request of this attempt was sent and its answer lost: its outcome is unknown.
            resend = reg.refund_state == "requested"
            if reg.refund_state == "pending":
                poll = True
            else:
                poll = False
                if reg.refund_state == "failed":
                    reg.refund_attempt += 1
                reg.refund_state = "requested"
                reg.refund_requested_at = now
            attempt, refund_id = reg.refund_attempt, reg.refund_id
        if poll:
            return self._poll_refund(registration_id, gateway, payment_id, amount, refund_id)
        if resend and (settled := self._refunded_meanwhile(registration_id, gateway, payment_id, amount)):
            return settled
        errors: list[GatewayError] = []
        try:
            refund = self._with_retries(
                lambda: self.gateways.refund(
                    gateway,
                    RefundRequest(payment_id, reason="requested_by_organizer"),
                    operation_id=_refund_operation_id(registration_id, attempt),
                ),
                errors,
            )
        except GatewayError as exc:
            # Failed (asked again under a new key) only when no request under this key can have
            # made a refund: the key's first, refused each time it was tried. Anything else - an
            # OutcomeUnknown (Stripe's 500, replayed to its key), a bare GatewayError (a plugin's
            # KeyError after the HTTP call), a refusal of a re-send - may follow a refund the
            # provider made: it keeps its key, and the next refund() reads the refunded total first.
            unknown = resend or not _refused(errors)
            error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, InvalidRequest):
                # The provider's "nothing remains to refund" (Stripe's charge_already_refunded,
                # PayPal's CAPTURE_FULLY_REFUNDED: both AmountOutOfRange; the fake's InvalidRequest):
                # refunded in the dashboard, or by an earlier request under another key.
                settled, seen = self._refused_as_refunded(
                    registration_id, gateway, payment_id, amount, exc, resend=resend
                )
                if settled is not None:
                    return settled
                error += seen
            with self.store.transaction() as s:
                s.execute(
                    sa.update(RegistrationRow)
                    .where(RegistrationRow.id == registration_id, RegistrationRow.refund_state == "requested")
                    .values(refund_state="requested" if unknown else "failed", refund_requested_at=None)
                    .execution_options(synchronize_session=False)
                )
            log.warning(
                "paid_events.refund.unknown" if unknown else "paid_events.refund.failed",
                registration_id=registration_id,
                error=type(exc).__name__,
            )
            state = "unknown" if unknown else "failed"
            return RefundOutcome(registration_id, state, amount, error=error)
        return self._record_refund(registration_id, refund, amount)

    def _refused_as_refunded(
        self,
        registration_id: str,
        gateway: str,
        payment_id: str,
        amount: Money,
        refusal: InvalidRequest,
        *,
        resend: bool,
    ) -> tuple[RefundOutcome | None, str]:
        """A refund the provider refused: was the payment refunded already? (outcome, or what was seen).

        When the payment's refunded total covers the price, it is recorded refunded and no refund
        is asked again: ``already_refunded`` (made before this refund's key: in the provider's
        dashboard, or under another key), or ``refunded`` for a re-send, whose first request may be
        the one that made it. Otherwise the outcome is ``None`` with what the status showed, for
        the error: the refusal stays what the caller decides (``failed``, or ``unknown`` for a
        re-send). A status that cannot be read never counts as refunded.
        """
        status = self._refund_status(registration_id, gateway, payment_id)
        if isinstance(status, GatewayError):
            return None, (
                "; the payment's status, which tells whether it is refunded already, could not be read "
                f"({type(status).__name__}: {status})"
            )
        if not _refunded_in_full(status, amount):
            return None, (
                f"; the provider's status shows {status.amount_refunded} of the {amount} price refunded "
                f"(payment {status.state.value}): not refunded in full"
            )
        with self.store.transaction() as s:
            self._mark_refunded(s, registration_id, None)
        log.info(
            "paid_events.refund.already_refunded",
            registration_id=registration_id,
            error=type(refusal).__name__,
            provider_code=refusal.provider_code,
        )
        return RefundOutcome(registration_id, "refunded" if resend else "already_refunded", amount), ""

    def _record_refund(self, registration_id: str, refund: Refund, amount: Money) -> RefundOutcome:
        with self.store.transaction() as s:
            if refund.status is RefundStatus.SUCCEEDED:
                self._mark_refunded(s, registration_id, refund.id)
                state = "refunded"
            else:
                state = "pending" if refund.status is RefundStatus.PENDING else "failed"
                moved = s.execute(
                    sa.update(RegistrationRow)
                    .where(RegistrationRow.id == registration_id, RegistrationRow.refund_state == "requested")
                    .values(refund_state=state, refund_id=refund.id, refund_requested_at=None)
                    .execution_options(synchronize_session=False)
                )
                if _rowcount(moved) != 1 and self._registration(s, registration_id).refund_state == "refunded":
                    state = "refunded"  # its webhook settled it while the call was on its way back
        if refund.amount.currency == amount.currency:
            amount = refund.amount  # what this refund returns (less after a partial refund made elsewhere)
        event = "paid_events.refund.created" if state != "failed" else "paid_events.refund.failed"
        log.info(event, registration_id=registration_id, refund_id=refund.id, amount=str(amount), state=state)
        error = None if state != "failed" else f"the provider reports the refund {refund.status.value}"
        return RefundOutcome(registration_id, state, amount, refund.id, error)

    def _refund_status(self, registration_id: str, gateway: str, payment_id: str) -> PaymentStatus | GatewayError:
        """The refunded payment's status, or the error reading it (logged ``status_unavailable``): each caller
        decides what an unreadable status means for its refund."""
        try:
            return self.gateways.payment_status(gateway, payment_id)
        except GatewayError as exc:
            log.warning(
                "paid_events.refund.status_unavailable", registration_id=registration_id, error=type(exc).__name__
            )
            return exc

    def _refunded_meanwhile(
        self, registration_id: str, gateway: str, payment_id: str, amount: Money
    ) -> RefundOutcome | None:
        """Before re-sending a refund whose answer was lost: did it go through? (``None``: not seen.)

        The payment's refunded total decides. When the status cannot be read, the refund is
        re-sent with its own key, which is safe: that key never refunds twice.
        """
        status = self._refund_status(registration_id, gateway, payment_id)
        if isinstance(status, GatewayError):
            return None
        if not _refunded_in_full(status, amount):
            return None
        with self.store.transaction() as s:
            self._mark_refunded(s, registration_id, None)
        log.info("paid_events.refund.settled", registration_id=registration_id)
        return RefundOutcome(registration_id, "refunded", amount)

    def _poll_refund(
        self, registration_id: str, gateway: str, payment_id: str, amount: Money, refund_id: str | None
    ) -> RefundOutcome:
        """A pending refund: the payment's status says whether the money went back.

        When the status cannot be read the refund stays pending (the outcome says why): one
        provider outage must not stop a bulk refund half-way.
        """
        status = self._refund_status(registration_id, gateway, payment_id)
        if isinstance(status, GatewayError):
            return RefundOutcome(
                registration_id, "pending", amount, refund_id, error=f"{type(status).__name__}: {status}"
            )
        if status.amount_refunded >= amount or status.state is PaymentState.REFUNDED:
            with self.store.transaction() as s:
                self._mark_refunded(s, registration_id, refund_id)
            log.info("paid_events.refund.settled", registration_id=registration_id, refund_id=refund_id)
            return RefundOutcome(registration_id, "refunded", amount, refund_id)
        return RefundOutcome(registration_id, "pending", amount, refund_id)

    def _settle_refunds(self) -> list[str]:
        """Reconcile's refund half: the report field each unfinished refund counts in."""
        stale = self.clock() - _REFUND_CLAIM
        with self.store.transaction() as s:
            ids = s.scalars(
                sa.select(RegistrationRow.id).where(
                    sa.or_(
                        RegistrationRow.refund_state == "pending",
                        sa.and_(
                            RegistrationRow.refund_state == "requested",
                            sa.or_(
                                RegistrationRow.refund_requested_at.is_(None),
                                RegistrationRow.refund_requested_at <= stale,
                            ),
                        ),
                    )
                )
            ).all()
        fields = []
        for registration_id in ids:
            try:
                state = self.refund(registration_id).state
            except GatewayError as exc:
                log.warning(
                    "paid_events.reconcile.refund_deferred", registration_id=registration_id, error=type(exc).__name__
                )
                state = "pending"
            fields.append(
                "refunds_completed"
                if state in ("refunded", "already_refunded")
                else "refunds_failed"
                if state == "failed"
                else "refunds_unknown"
                if state == "unknown"
                else "refunds_pending"
            )
        return fields

    def refund_all(
        self, event_id: str, progress: Callable[[int, int, RefundOutcome], None] | None = None
    ) -> list[RefundOutcome]:
        """Refund every paid, unrefunded registration of the event, reporting progress after each.

        Safe to run twice at once (two organizers, two tabs): each payment is refunded once; the
        other run reports it ``in_progress`` or ``already_refunded``.
        """
        if progress is not None and not callable(progress):
            raise InvalidInput(f"progress must be a callable or None, not {type(progress).__name__}")
        with self.store.transaction() as s:
            self._event(s, event_id)
            ids = s.scalars(
                sa.select(RegistrationRow.id)
                .where(
                    RegistrationRow.event_id == event_id,
                    RegistrationRow.price_minor > 0,
                    RegistrationRow.paid_at.is_not(None),
                    RegistrationRow.refund_state != "refunded",
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
        """Record a payment the provider reported paid, and confirm its registration. True when it changed.

        By the registration's status (read under its row lock): ``pending`` is confirmed;
        ``expired`` or ``failed`` (a late payment) re-takes a seat, or is ``paid_no_seat``
        (:meth:`_no_seat`); any of the three is ``paid_no_seat`` when its event is cancelled and
        ``refunded`` when its refund was reported first (``paid_after_refund``). A payment first
        reported for any other status only records ``paid_at``: ``rejected`` tells its payer the
        organizer refunds it (:meth:`_paid_after_rejection`), ``confirmed`` (by hand) is its
        ticket's payment, and one refunded already is logged ``paid_after_refund``, promising
        nothing. A payment reported again changes nothing.
        """
        reg = self._registration(s, registration_id, lock=True)
        if payment_id is not None and reg.payment_id is None:
            reg.payment_id = payment_id
        newly_paid = reg.paid_at is None
        if newly_paid:
            reg.paid_at = self.clock()
        if reg.status in ("pending", "expired", "failed") and reg.refund_state == "refunded":
            # Refunded before its payment was reported (the webhooks overtook each other): no ticket.
            if reg.status == "pending":
                self._free_hold(s, reg)
            reg.status = "refunded"
            log.info("paid_events.registration.paid_after_refund", registration_id=reg.id, event_id=reg.event_id)
            return True
        if reg.status in ("pending", "expired", "failed"):
            event = self._event(s, reg.event_id, lock=True)
            if event.status != "active":
                # Paid for an event cancelled meanwhile (too late to close the checkout): no ticket
                # and no confirmation after the cancellation; the organizer refunds it.
                if reg.status == "pending":
                    self._free_hold(s, reg)
                self._no_seat(s, event, reg, "event_cancelled")
                return True
        if reg.status == "pending":
            # Lock the event row: a concurrent change_price waits, so no price changes under a confirmation.
            self._confirm(s, self._event(s, reg.event_id, lock=True), reg, self.clock())
            log.info("paid_events.registration.confirmed", registration_id=reg.id, event_id=reg.event_id)
            return True
        if reg.status in ("expired", "failed"):
            # Paid after the hold lapsed: re-take a seat if one is free, else the organizer must refund.
            event = self._event(s, reg.event_id, lock=True)
            other = s.scalar(
                sa.select(RegistrationRow).where(
                    RegistrationRow.event_id == reg.event_id,
                    RegistrationRow.email_key == reg.email_key,
                    RegistrationRow.status.in_(LIVE_STATUSES),
                    RegistrationRow.id != reg.id,
                )
            )
            if other is not None and other.status == "pending":
                # The participant opened a fresh checkout meanwhile: the paid one wins, the fresh one closes.
                self._release_in(s, other.id, "expired")
                other = None
            seat = other is None and self._take_seat(s, event.id)
            if seat and (reg.promo_id is None or self._take_promo_use(s, reg.promo_id, None)):
                self._confirm(s, event, reg, self.clock())
                log.info("paid_events.registration.confirmed", registration_id=reg.id, late=True)
            else:
                # No seat, or the code's use it gave back was taken since (its limit holds), or the
                # participant has a ticket from another registration: no ticket, the organizer refunds it.
                if seat:
                    self._give_back_seat(s, event.id)
                reason = "already_registered" if other is not None else "promo_code_exhausted" if seat else "sold_out"
                self._no_seat(s, event, reg, reason)
            return True
        if not newly_paid:
            return False  # reported again (a redelivery, its sibling event, a status check): recorded before
        if reg.refund_state == "refunded":
            # Refunded before its payment was reported (the refund's webhook overtook the payment's,
            # or the organizer refunded it in the provider's dashboard at once): nothing is owed, and
            # nobody is promised a refund already made.
            log.info(
                "paid_events.registration.paid_after_refund",
                registration_id=reg.id,
                event_id=reg.event_id,
                status=reg.status,
            )
        elif reg.status == "rejected":
            # Paid although the organizer rejected it meanwhile (the checkout could not be closed in
            # time, or the gateway cannot close one): no ticket; the organizer refunds it.
            self._paid_after_rejection(s, self._event(s, reg.event_id), reg)
        elif reg.status == "confirmed":
            # Confirmed by hand (confirm() leaves a pending registration's checkout open, and
            # re-admits a rejected one): this is its ticket's payment, recorded and refundable.
            log.info("paid_events.registration.paid_after_manual_confirm", registration_id=reg.id)
        else:
            # No ticket and no refund made: ``refunded`` whose refund failed since (refund.failed),
            # or ``paid_no_seat`` from before paid_at was recorded (0002). refund_all returns it.
            log.error("paid_events.registration.paid_without_ticket", registration_id=reg.id, status=reg.status)
        return True

    def _paid_after_rejection(self, s: Session, event: EventRow, reg: RegistrationRow) -> None:
        """Paid after the organizer rejected it: the payer is told the organizer refunds it.

        The registration stays ``rejected`` (the organizer's decision, which ``confirm`` can still
        reverse), its payment recorded (``paid_at``): refundable, in ``refund_all`` and the fee
        report until refunded, and shown ``paid`` and ``refundable`` by :meth:`participants`. Its
        own kind, ``paid_after_rejection``: the payer was told the registration was declined, not
        that a seat ran out (``paid_no_seat``, a status this one does not take). It follows the
        rejection in the outbox (a participant's messages go out in order) and does not repeat the
        organizer's reason.

        Told once: it is written only when the payment is first recorded (``paid_at`` moves from
        none under the row lock and is never cleared), so the payment reported again (a webhook's
        redelivery or its sibling, check_payment, reconcile) finds it recorded.
        """
        amount = Money.from_minor(reg.price_minor, reg.currency)
        self._message(
            s,
            "paid_after_rejection",
            event,
            reg,
            f"Your payment for {event.title} will be refunded",
            f"Your payment of {amount} for {event.title} arrived after the organizer declined your registration, "
            "so there is no ticket for this payment. The organizer will refund your payment.",
        )
        log.error("paid_events.registration.paid_after_rejection", registration_id=reg.id, event_id=reg.event_id)

    def _no_seat(self, s: Session, event: EventRow, reg: RegistrationRow, reason: str) -> None:
        """Paid, but no seat: ``paid_no_seat``, and the payer is told the organizer refunds it.

        Told once: only a registration still ``pending``, ``expired`` or ``failed`` comes here
        (under its row lock), and none ever leaves ``paid_no_seat`` for one of those, so the
        payment reported again (a webhook's redelivery or its sibling, reconcile, check_payment)
        finds it settled. The message says why without naming the promo code.
        """
        reg.status = "paid_no_seat"
        released = "arrived after the seat held for you was released, and"
        why = {
            "event_cancelled": "arrived after the organizer cancelled the event",
            "sold_out": f"{released} the event has sold out since",
            "promo_code_exhausted": f"{released} the promo code you used has been used up since",
            "already_registered": f"{released} you hold a ticket from another registration for it",
        }[reason]
        amount = Money.from_minor(reg.price_minor, reg.currency)
        self._message(
            s,
            "paid_no_seat",
            event,
            reg,
            f"Your payment for {event.title} will be refunded",
            f"Your payment of {amount} for {event.title} {why}, so there is no seat for this payment. "
            "The organizer will refund your payment.",
        )
        log.error("paid_events.registration.paid_no_seat", registration_id=reg.id, event_id=reg.event_id, reason=reason)

    def _confirm(self, s: Session, event: EventRow, reg: RegistrationRow, now: datetime) -> None:
        reg.status = "confirmed"
        reg.confirmed_at = now
        self._issue_token(s, event, reg, reissued=False)

    def _issue_token(self, s: Session, event: EventRow, reg: RegistrationRow, *, reissued: bool) -> None:
        token = secrets.token_urlsafe(32)
        reg.token_hash = hash_token(token)
        lines = [f"You are registered for {event.title}."]
        if event.kind == EventKind.PERMANENT.value:
            upcoming = s.scalars(
                sa.select(SessionRow.starts_at)
                .where(SessionRow.event_id == event.id, SessionRow.starts_at > self.clock())
                .order_by(SessionRow.starts_at)
            ).all()
            if upcoming:
                lines.append("Sessions: " + ", ".join(_when(when) for when in upcoming) + ".")
            lines.append("The same token admits you to every session of the series, including sessions added later.")
        elif event.starts_at is not None:
            lines.append(f"It starts at {_when(event.starts_at)}.")
        if reissued:
            lines.append(
                "This message replaces your earlier confirmation: the access token below is new, "
                "and the earlier token no longer works."
            )
        self._message(
            s,
            "confirmation",
            event,
            reg,
            f"Your ticket for {event.title}" + (" (new access token)" if reissued else ""),
            " ".join(lines) + "\nYour access token: {access_token}",
            secret=token,
        )

    @staticmethod
    def _drop_unsent_confirmations(s: Session, registration_id: str) -> None:
        """Withdraw confirmations not yet sent (and not being sent): their token no longer works."""
        s.execute(
            sa.delete(OutboxRow)
            .where(
                OutboxRow.registration_id == registration_id,
                OutboxRow.kind == "confirmation",
                OutboxRow.sent_at.is_(None),
                OutboxRow.claim_id.is_(None),
            )
            .execution_options(synchronize_session=False)
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
        self._free_hold(s, reg)
        log.info("paid_events.hold.released", registration_id=registration_id, status=status)
        return True

    def _free_hold(self, s: Session, reg: RegistrationRow) -> None:
        """A registration stopped holding or having a ticket: its seat and its promo use come back."""
        self._give_back_seat(s, reg.event_id)
        if reg.promo_id is not None:
            s.execute(
                sa.update(PromoCodeRow)
                .where(PromoCodeRow.id == reg.promo_id, PromoCodeRow.uses > 0)
                .values(uses=PromoCodeRow.uses - 1)
                .execution_options(synchronize_session=False)
            )

    @staticmethod
    def _take_promo_use(s: Session, promo_id: str, now: datetime | None) -> bool:
        """One use of the code, if one is left (and, with ``now``, the code has not expired)."""
        conditions = [
            PromoCodeRow.id == promo_id,
            sa.or_(PromoCodeRow.max_uses.is_(None), PromoCodeRow.uses < PromoCodeRow.max_uses),
        ]
        if now is not None:
            conditions.append(sa.or_(PromoCodeRow.expires_at.is_(None), PromoCodeRow.expires_at > now))
        redeemed = s.execute(
            sa.update(PromoCodeRow)
            .where(*conditions)
            .values(uses=PromoCodeRow.uses + 1)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(redeemed) == 1

    def _mark_refunded(self, s: Session, registration_id: str, refund_id: str | None) -> bool:
        moved = s.execute(
            sa.update(RegistrationRow)
            .where(RegistrationRow.id == registration_id, RegistrationRow.refund_state != "refunded")
            .values(refund_state="refunded", refund_id=refund_id, refund_requested_at=None)
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
            self._free_hold(s, self._registration(s, registration_id))
            self._drop_unsent_confirmations(s, registration_id)  # their token no longer works
        return True

    @staticmethod
    def _mark_refund_failed(s: Session, registration_id: str, refund_id: str | None) -> bool:
        """The provider's refund failed: the payment is refundable again (under a new key)."""
        moved = s.execute(
            sa.update(RegistrationRow)
            .where(
                RegistrationRow.id == registration_id,
                RegistrationRow.refund_state.in_(("requested", "pending", "refunded")),
                sa.or_(RegistrationRow.refund_id.is_(None), RegistrationRow.refund_id == (refund_id or "")),
            )
            .values(refund_state="failed", refund_id=refund_id, refund_requested_at=None)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(moved) == 1:
            log.error("paid_events.refund.failed_at_provider", registration_id=registration_id, refund_id=refund_id)
            return True
        return False

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
                attempts=0,
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
        elif discounted == listed:  # only a discount is rounded up; the list price is charged as it is
            raise InvalidPrice(
                f"no enabled gateway{'' if gateway is None else f' ({gateway})'} takes the list price {listed} "
                f"as it is: {_reasons(decision)}"
            )
        else:
            chosen, final = self._round_up(discounted, listed, candidates, decision, gateway)
        rule = self.gateways.gateway(chosen).capabilities.rule(final.currency)
        fee = domain.service_fee(final, self.config, rule.wire if rule is not None else None)
        return Quote(event.id, listed, current, discounted, final, fee, chosen, code, final != discounted)

    def _round_up(
        self,
        amount: Money,
        listed: Money,
        candidates: Iterable[str],
        decision: RouteDecision,
        named: str | None,
    ) -> tuple[str, Money]:
        """The gateway that takes ``amount`` rounded up the least (the first by priority on a tie).

        Never above the list price ``listed``: a gateway whose rounding would exceed it is not a
        candidate, and when none is left (the participant ``named`` a gateway that takes the
        discount only above the list price, or the deployment changed since the price was set)
        the discount is refused with :class:`InvalidPrice`, as the list price would be.
        """
        best: tuple[str, Money] | None = None
        above: list[str] = []
        for name in candidates:
            info = self.gateways.gateway(name)
            if Feature.HOSTED_CHECKOUT not in info.capabilities.features:
                continue
            try:
                rounded = self.gateways.round_up(amount, name)
            except (AmountOutOfRange, InvalidAmount, UnsupportedCurrency):
                continue
            if rounded > listed:
                above.append(f"{name} would charge {rounded}")
                continue
            if best is None or rounded < best[1]:
                best = name, rounded
        if best is None:
            which = "" if named is None else f" ({named})"
            limit = f" without exceeding the list price {listed} ({'; '.join(above)})" if above else ""
            raise InvalidPrice(
                f"no enabled gateway{which} takes the discounted price {amount} rounded up{limit}: {_reasons(decision)}"
            )
        return best

    def _check_list_price(self, price: Money, gateways: Sequence[str]) -> None:
        """Refuse a list price no enabled gateway takes as it is: rounding up is for discounts only.

        The message names the lowest price an enabled gateway takes in the currency and the nearest
        price at or above ``price`` that one would take (off a wire step, or below a minimum).
        """
        decision = self.gateways.route(price, [Feature.HOSTED_CHECKOUT], gateways)
        if decision.eligible:
            return
        lowest = self.gateways.minimum_price(price.currency, gateways)
        nearest: list[Money] = []
        for name in gateways:
            try:
                nearest.append(self.gateways.round_up(price, name))
            except (AmountOutOfRange, InvalidAmount, UnsupportedCurrency):
                continue
        hint = f"; the lowest price an enabled gateway takes in {price.currency} is {lowest}" if lowest else ""
        if nearest and min(nearest) != lowest:
            hint += f", the nearest one at or above {price} is {min(nearest)}"
        raise InvalidPrice(f"no enabled gateway takes the list price {price} as it is ({_reasons(decision)}){hint}")

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
    def _session(s: Session, event: EventRow, session_id: str) -> SessionRow:
        if not isinstance(session_id, str) or not session_id or len(session_id) > 36:
            raise UnknownSession("no such session")
        row = s.get(SessionRow, session_id)
        if row is None or row.event_id != event.id:
            raise UnknownSession(f"event {event.id} has no session {session_id}")
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
            .where(RegistrationRow.event_id == event_id, RegistrationRow.status.in_(LIVE_STATUSES))
            .order_by(RegistrationRow.created_at, RegistrationRow.id)
        ).all()

    @staticmethod
    def _check_no_other_live(s: Session, reg: RegistrationRow) -> None:
        other = s.scalar(
            sa.select(RegistrationRow.id).where(
                RegistrationRow.event_id == reg.event_id,
                RegistrationRow.email_key == reg.email_key,
                RegistrationRow.status.in_(LIVE_STATUSES),
                RegistrationRow.id != reg.id,
            )
        )
        if other is not None:
            raise AlreadyRegistered(f"this e-mail has another live registration for event {reg.event_id}")

    @staticmethod
    def _has_confirmed_payment(s: Session, event_id: str) -> bool:
        found = s.scalar(
            sa.select(RegistrationRow.id)
            .where(
                RegistrationRow.event_id == event_id,
                RegistrationRow.price_minor > 0,
                sa.or_(RegistrationRow.paid_at.is_not(None), RegistrationRow.confirmed_at.is_not(None)),
            )
            .limit(1)
        )
        return found is not None

    def _enabled_gateways(self, gateways: Sequence[str]) -> tuple[str, ...]:
        if isinstance(gateways, (str, bytes)) or not isinstance(gateways, Iterable) or not (given := tuple(gateways)):
            raise InvalidInput("enable at least one gateway (a list of configured gateway names)")
        names: list[str] = []
        for name in given:
            if not isinstance(name, str):
                raise InvalidInput(f"a gateway name must be a string, not {type(name).__name__}")
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
        if early_price is not None:
            domain.require_money("early_price", early_price)
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

    def _check_dates(
        self, kind: EventKind, starts_at: datetime | None, sessions: Sequence[datetime], now: datetime
    ) -> None:
        self._check_aware("starts_at", starts_at)
        if isinstance(sessions, (str, datetime)):
            raise InvalidInput("sessions must be a list of datetimes")
        for when in sessions:
            self._check_aware("a session's starts_at", when)
            if when is None:
                raise InvalidDate("a session needs a date")
        if kind is EventKind.ONE_OFF:
            if starts_at is None:
                raise InvalidDate("a one-off event needs a start date (starts_at)")
            if starts_at <= now:
                raise InvalidDate(f"starts_at {starts_at.isoformat()} is not in the future")
        elif starts_at is not None:
            raise InvalidDate(
                "a permanent event has no single date: give its sessions instead"
                if kind is EventKind.PERMANENT
                else "an on-demand event has no date"
            )
        if sessions and kind is not EventKind.PERMANENT:
            raise InvalidDate("only a permanent event (a series) has sessions")
        if any(when <= now for when in sessions):
            raise InvalidDate("every session must be in the future")

    @staticmethod
    def _require_active(event: EventRow) -> None:
        if event.status != "active":
            raise EventClosed(f"event {event.id} is cancelled")

    def _registration_open(self, event: EventRow) -> bool:
        """Whether the event takes registrations now (see :meth:`_require_open`)."""
        try:
            self._require_open(event, self.clock())
        except PaidEventsError:
            return False
        return True

    def _require_open(self, event: EventRow, now: datetime) -> None:
        """Registration is open: the event is active and, for a one-off, not past its late-join window."""
        self._require_active(event)
        if event.kind == EventKind.ONE_OFF.value and event.starts_at is not None:
            closes = event.starts_at + timedelta(minutes=self.config.late_join_minutes)
            if now >= closes:
                raise RegistrationClosed(
                    f"event {event.id} started at {event.starts_at.isoformat()}; registration is closed"
                )

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
        if _has_control(value):  # a title heads every message: a mail header takes no line break
            raise InvalidInput(f"{name} must be one line of text, without control characters")
        return value.strip()

    @staticmethod
    def _with_retries(call: Callable[[], _T], errors: list[GatewayError] | None = None) -> _T:
        """Retry a provider call whose outcome is unknown, with the same idempotency key each time.

        ``errors`` (when given) collects every attempt's error, the one raised last.
        """
        for attempt in range(1, _PROVIDER_ATTEMPTS + 1):
            try:
                return call()
            except GatewayError as exc:
                if errors is not None:
                    errors.append(exc)
                if not exc.retryable or attempt == _PROVIDER_ATTEMPTS:
                    raise
                if isinstance(exc, RateLimited) and exc.retry_after:
                    time.sleep(min(exc.retry_after, 1.0))
        raise AssertionError("unreachable")


class _Duplicate(Exception):
    """This webhook's (gateway, event id) row already exists: it was processed before."""


def _reasons(decision: RouteDecision) -> str:
    """Why each gateway refused the amount: ``"stripe-like: 1.00 HUF is below the 175.00 HUF minimum"``."""
    return "; ".join(str(e) for e in decision.excluded) or "no gateway is enabled"


def _refused(errors: Sequence[GatewayError]) -> bool:
    """Whether a refund call's errors (every attempt's, the raised one last) prove it made no refund.

    The last must be a refusal (:data:`_REFUSED`) that is final (not retryable); an earlier
    attempt, retried with the same key, a refusal or a rate limit (the provider did not run it).
    """
    *earlier, last = errors
    return (
        isinstance(last, _REFUSED)
        and not last.retryable
        and all(isinstance(e, (*_REFUSED, RateLimited)) for e in earlier)
    )


def _awaits_capture(status: PaymentStatus) -> bool:
    """Whether a checkout may be one approved but not captured: ``PENDING`` with nothing captured.

    A capture still settling (``PENDING`` with its amount captured) is not captured again.
    """
    return status.state is PaymentState.PENDING and not status.amount_captured.is_positive


def _refunded_in_full(status: PaymentStatus, price: Money) -> bool:
    """Whether the provider's status says ``price`` went back: the payment is refunded, or its
    refunded total (every refund of it, however made) reaches ``price`` in its currency."""
    refunded = status.amount_refunded
    return status.state is PaymentState.REFUNDED or (refunded.currency == price.currency and refunded >= price)


def _has_control(text: str, allowed: str = "") -> bool:
    """Whether ``text`` holds a control character (NUL, a line break ...) other than the ``allowed`` ones."""
    return any(unicodedata.category(c) == "Cc" and c not in allowed for c in text)


def _held(reg: RegistrationRow, now: datetime) -> bool:
    """Whether ``reg``'s seat hold still runs at ``now`` (a registration without one, free, always holds)."""
    return reg.hold_expires_at is None or now < reg.hold_expires_at


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0))


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _next_operation_id(operation_id: str) -> str:
    """``checkout:<id>`` -> ``checkout:<id>:2`` -> ``checkout:<id>:3`` ... (a new idempotency key)."""
    base, _, count = operation_id.rpartition(":")
    if count.isdigit() and base.count(":") == 1:
        return f"{base}:{int(count) + 1}"
    return f"{operation_id}:2"


def _refund_operation_id(registration_id: str, attempt: int) -> str:
    return f"refund:{registration_id}" if attempt <= 1 else f"refund:{registration_id}:{attempt}"


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
