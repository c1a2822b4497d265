"""The outbox: messages written in the same transaction as the change they announce, sent later.

A sender drains it one message per transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
several drainers never send the same message twice at once; SQLite has one writer anyway). A
message is marked sent in the transaction that sent it: delivery is at-least-once should the
process die between the send and the commit.

A confirmation's body holds the placeholder ``{access_token}``; the token waits in the row's
``secret`` column and is erased when the message is sent. :class:`LogSender` never writes it:
log lines carry the message id, kind and subject only.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import attrs
import sqlalchemy as sa
import structlog

from gateway_core import Secret
from paid_events.store import OutboxRow, Store

__all__ = ["FileSender", "LogSender", "Message", "SMTPSender", "Sender", "drain", "pending_count"]

log = structlog.get_logger("paid_events.outbox")

TOKEN_PLACEHOLDER = "{access_token}"  # noqa: S105 (a template placeholder, not a secret)


@attrs.frozen
class Message:
    """A message ready to deliver (``body`` is rendered: it may contain the access token)."""

    id: int
    kind: str
    recipient: str
    subject: str
    body: str = attrs.field(repr=False)


class Sender(Protocol):
    def send(self, message: Message) -> None: ...


@attrs.define
class FileSender:
    """Appends each message to a text file (a development mailbox)."""

    path: Path

    def send(self, message: Message) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(
                f"--- message {message.id} ({message.kind})\nTo: {message.recipient}\n"
                f"Subject: {message.subject}\n\n{message.body}\n\n"
            )


@attrs.define
class LogSender:
    """Writes one log line per message: id, kind and subject, never the body (it holds the token)."""

    def send(self, message: Message) -> None:
        log.info("paid_events.message.logged", message_id=message.id, kind=message.kind, subject=message.subject)


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


def drain(
    store: Store,
    sender: Sender,
    *,
    limit: int | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Send unsent messages, oldest first, until none is left (or ``limit``). Returns how many were sent."""
    sent = 0
    while limit is None or sent < limit:
        with store.transaction() as s:
            stmt = sa.select(OutboxRow).where(OutboxRow.sent_at.is_(None)).order_by(OutboxRow.id).limit(1)
            if store.dialect == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            row = s.scalar(stmt)
            if row is None:
                break
            body = row.body
            if row.secret is not None:
                body = body.replace(TOKEN_PLACEHOLDER, row.secret)
            sender.send(Message(row.id, row.kind, row.recipient, row.subject, body))
            row.sent_at = clock()
            row.secret = None
        sent += 1
        log.info("paid_events.message.sent", message_id=row.id, kind=row.kind)
    return sent


def pending_count(store: Store) -> int:
    """Messages not yet sent."""
    with store.transaction() as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(OutboxRow).where(OutboxRow.sent_at.is_(None))) or 0)
