"""The outbox: messages written in the same transaction as the change they announce, sent later.

A drainer takes one message at a time in three steps, so no transaction (and on SQLite no write
lock) is held while a message is being sent:

1. **claim** (a short transaction): the oldest message that is unsent, not failed for good, due
   (``next_attempt_at``) and not claimed by a live drainer is stamped with a claim id and a lease
   (``claimed_until``); ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the single writer on SQLite;
2. **send**, outside any transaction;
3. **record** (a short transaction, only under the drainer's own claim): sent (the token erased),
   or failed: ``attempts`` counts, ``last_error`` says why (type and message, with the token and
   the address blanked), ``next_attempt_at`` backs off exponentially; after ``max_attempts`` the
   message is failed for good (``failed_at``) and its token erased (the organizer re-issues the
   confirmation).

A participant's messages about an event go out in the order they were written: a message is not
claimed while an earlier one to the same address about the same event is unsent (and not failed
for good), so a confirmation retried after a failure never arrives after the cancellation written
after it. A confirmation whose token its registration no longer has (refunded, rejected, re-issued
since) is withdrawn when it comes up, never sent.

One refused address therefore delays only its own messages. Two drainers never send the same
message while its claim holds (the lease must outlast a send: SMTP's timeout is 30 s, the lease
10 minutes). Delivery is at-least-once only across a crash: a drainer that dies after sending and
before recording leaves the claim to lapse, and the message is sent again.

A confirmation's body holds the placeholder ``{access_token}``; the token waits in the row's
``secret`` column and is erased when the message is sent. A sender that cannot deliver a token to
its recipient says so with ``delivers_secrets = False`` (:class:`LogSender`): it is never given a
message that carries one, so such messages wait for a real sender instead of being marked sent.
"""

from __future__ import annotations

import smtplib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import attrs
import sqlalchemy as sa
import structlog
from sqlalchemy.orm import Session, aliased

from gateway_core import ConfigurationError, Secret
from paid_events.store import OutboxRow, RegistrationRow, Store, hash_token

__all__ = [
    "FileSender",
    "LogSender",
    "Message",
    "RetryPolicy",
    "SMTPSender",
    "Sender",
    "drain",
    "failed_count",
    "pending_count",
]

log = structlog.get_logger("paid_events.outbox")

TOKEN_PLACEHOLDER = "{access_token}"  # noqa: S105 (a template placeholder, not a secret)
_MAX_ERROR = 300


@attrs.frozen
class Message:
    """A message ready to deliver (``body`` is rendered: it may contain the access token)."""

    id: int
    kind: str
    recipient: str
    subject: str
    body: str = attrs.field(repr=False)
    #: Whether ``body`` carries an access token.
    has_secret: bool = False


class Sender(Protocol):
    """Delivers one message or raises. A sender may declare ``delivers_secrets = False`` (default True)."""

    def send(self, message: Message) -> None: ...


@attrs.frozen
class RetryPolicy:
    """How the outbox retries: ``first_delay`` doubling per attempt up to ``max_delay``, ``max_attempts`` in all."""

    max_attempts: int = 8
    first_delay: timedelta = timedelta(minutes=1)
    max_delay: timedelta = timedelta(hours=6)
    #: How long a claim keeps other drainers off a message; must outlast one send.
    lease: timedelta = timedelta(minutes=10)

    def __attrs_post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError("outbox max_attempts must be at least 1")
        if self.first_delay <= timedelta(0) or self.max_delay < self.first_delay or self.lease <= timedelta(0):
            raise ConfigurationError("outbox delays and lease must be positive, max_delay >= first_delay")

    def delay(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt."""
        factor: int = 2 ** min(max(attempts - 1, 0), 30)
        return min(self.first_delay * factor, self.max_delay)


@attrs.define
class FileSender:
    """Appends each message to a text file (a development mailbox): the default sender."""

    path: Path

    def send(self, message: Message) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(
                f"--- message {message.id} ({message.kind})\nTo: {message.recipient}\n"
                f"Subject: {message.subject}\n\n{message.body}\n\n"
            )


@attrs.define
class LogSender:
    """Writes a message without an access token to the log: id, kind, subject and body.

    It cannot deliver a token (a token must never reach a log line), so it declares
    ``delivers_secrets = False`` and is never handed a confirmation: those stay in the outbox for
    a file or SMTP sender. The recipient's address is not logged either.
    """

    delivers_secrets = False

    def send(self, message: Message) -> None:
        if message.has_secret:  # never reached through drain(); a direct caller is refused
            raise ValueError("LogSender does not take messages that carry an access token")
        log.info(
            "paid_events.message.logged",
            message_id=message.id,
            kind=message.kind,
            subject=message.subject,
            body=message.body,
        )


@attrs.define
class SMTPSender:
    """Sends through an SMTP server with :mod:`smtplib` (STARTTLS and login optional)."""

    host: str
    port: int = 25
    sender: str = "events@localhost"
    starttls: bool = False
    username: str | None = None
    password: Secret | None = None
    timeout: float = 30.0

    def send(self, message: Message) -> None:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.recipient
        mail["Subject"] = message.subject
        mail.set_content(message.body)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username is not None and self.password is not None:
                smtp.login(self.username, self.password.reveal())
            smtp.send_message(mail)


@attrs.frozen
class _Claim:
    id: int
    claim_id: str
    attempts: int
    recipient: str
    secret: str | None
    message: Message


def _utcnow() -> datetime:
    return datetime.now(UTC)


def drain(
    store: Store,
    sender: Sender,
    *,
    limit: int | None = None,
    clock: Callable[[], datetime] = _utcnow,
    policy: RetryPolicy | None = None,
) -> int:
    """Send the due messages, oldest first, one at a time; returns how many were sent.

    A failed send is recorded on its message (see the module docstring) and the drain goes on
    with the next one. ``limit`` bounds the attempts of this call.
    """
    policy = policy or RetryPolicy()
    with_secrets = bool(getattr(sender, "delivers_secrets", True))
    sent = attempted = 0
    tried: set[int] = set()
    while limit is None or attempted < limit:
        claim = _claim(store, clock(), policy, with_secrets, tried)
        if claim is None:
            break
        attempted += 1
        tried.add(claim.id)
        try:
            sender.send(claim.message)
        except Exception as exc:  # any sender failure is recorded on its message
            _record_failure(store, claim, exc, clock(), policy)
            continue
        _record_sent(store, claim, clock())
        sent += 1
    return sent


def _claim(store: Store, now: datetime, policy: RetryPolicy, with_secrets: bool, tried: set[int]) -> _Claim | None:
    with store.transaction() as s:
        stmt = sa.select(OutboxRow).where(
            OutboxRow.sent_at.is_(None),
            OutboxRow.failed_at.is_(None),
            sa.or_(OutboxRow.next_attempt_at.is_(None), OutboxRow.next_attempt_at <= now),
            sa.or_(OutboxRow.claimed_until.is_(None), OutboxRow.claimed_until <= now),
            ~_earlier_unsent(with_secrets),
        )
        if not with_secrets:
            stmt = stmt.where(OutboxRow.secret.is_(None))
        if tried:
            stmt = stmt.where(OutboxRow.id.not_in(tried))
        stmt = stmt.order_by(OutboxRow.id).limit(1)
        if store.dialect == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True, of=OutboxRow)
        while (row := s.scalar(stmt)) is not None and _token_revoked(s, row):
            # The registration's token changed since (refunded, rejected, re-issued): the message
            # would deliver a token that no longer works. Withdraw it, as reissuing does.
            s.delete(row)
            s.flush()
            log.info("paid_events.message.withdrawn", message_id=row.id, kind=row.kind)
        if row is None:
            return None
        claim_id = str(uuid.uuid4())
        attempts = row.attempts + 1
        # The row is locked (PostgreSQL) or the writer is ours (SQLite): this update is the claim.
        row.claim_id = claim_id
        row.claimed_until = now + policy.lease
        row.attempts = attempts
        body = row.body
        if row.secret is not None:
            body = body.replace(TOKEN_PLACEHOLDER, row.secret)
        message = Message(row.id, row.kind, row.recipient, row.subject, body, has_secret=row.secret is not None)
        return _Claim(row.id, claim_id, attempts, row.recipient, row.secret, message)


def _earlier_unsent(with_secrets: bool) -> sa.Exists:
    """An earlier message to the same participant about the same event is still to be sent.

    A participant's messages go out in the order they were written, so a confirmation retried
    after a failure never arrives after the cancellation or date change written after it; a
    message waits only behind that participant's own earlier ones (others are not held up), and
    one failed for good holds nothing back. A sender that takes no tokens is not held up by a
    message it could never send.
    """
    earlier = aliased(OutboxRow)
    condition = sa.and_(
        earlier.event_id == OutboxRow.event_id,
        sa.func.lower(earlier.recipient) == sa.func.lower(OutboxRow.recipient),
        earlier.id < OutboxRow.id,
        earlier.sent_at.is_(None),
        earlier.failed_at.is_(None),
    )
    if not with_secrets:
        condition = sa.and_(condition, earlier.secret.is_(None))
    return sa.exists().where(condition)


def _token_revoked(s: Session, row: OutboxRow) -> bool:
    """Whether ``row`` carries an access token its registration no longer has (checked by its hash)."""
    if row.secret is None or row.registration_id is None:
        return False
    registration = s.get(RegistrationRow, row.registration_id)
    if registration is None:
        return False  # not a registration this store holds: nothing to compare with
    return registration.token_hash != hash_token(row.secret)


def _record_sent(store: Store, claim: _Claim, now: datetime) -> None:
    with store.transaction() as s:
        done = s.execute(
            sa.update(OutboxRow)
            .where(OutboxRow.id == claim.id, OutboxRow.claim_id == claim.claim_id)
            .values(sent_at=now, secret=None, claim_id=None, claimed_until=None, next_attempt_at=None)
            .execution_options(synchronize_session=False)
        )
    if int(getattr(done, "rowcount", 0)) != 1:
        log.warning("paid_events.message.claim_lapsed", message_id=claim.id)  # sent; another drainer may resend
    log.info("paid_events.message.sent", message_id=claim.id, kind=claim.message.kind, attempts=claim.attempts)


def _record_failure(store: Store, claim: _Claim, exc: Exception, now: datetime, policy: RetryPolicy) -> None:
    error = f"{type(exc).__name__}: {exc}"
    for private in (claim.secret, claim.recipient):
        if private:
            error = error.replace(private, "[redacted]")
    final = claim.attempts >= policy.max_attempts
    values: dict[str, object] = {
        "last_error": error[:_MAX_ERROR],
        "claim_id": None,
        "claimed_until": None,
        "next_attempt_at": None if final else now + policy.delay(claim.attempts),
    }
    if final:
        values |= {"failed_at": now, "secret": None}
    with store.transaction() as s:
        s.execute(
            sa.update(OutboxRow)
            .where(OutboxRow.id == claim.id, OutboxRow.claim_id == claim.claim_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    log.warning(
        "paid_events.message.failed_for_good" if final else "paid_events.message.failed",
        message_id=claim.id,
        kind=claim.message.kind,
        attempts=claim.attempts,
        error=type(exc).__name__,
    )


def pending_count(store: Store) -> int:
    """Messages not yet sent and not failed for good."""
    with store.transaction() as s:
        return int(
            s.scalar(
                sa.select(sa.func.count())
                .select_from(OutboxRow)
                .where(OutboxRow.sent_at.is_(None), OutboxRow.failed_at.is_(None))
            )
            or 0
        )


def failed_count(store: Store) -> int:
    """Messages that failed for good (``max_attempts`` reached); ``last_error`` says why."""
    with store.transaction() as s:
        return int(
            s.scalar(sa.select(sa.func.count()).select_from(OutboxRow).where(OutboxRow.failed_at.is_not(None))) or 0
        )
