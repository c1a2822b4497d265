"""The outbox: senders (file, log without tokens, SMTP against a local server), retries, claims."""

from __future__ import annotations

import smtplib
import socketserver
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog
from paid_events import config as pe_config
from paid_events import outbox
from paid_events.service import PaidEvents
from paid_events.store import OutboxRow, Store

from gateway_core import ConfigurationError

from .conftest import Clock
from .helpers import Mailbox, make_event, pay


def add_message(
    store: Store,
    *,
    secret: str | None = "tok-SECRET-123",
    recipient: str = "ann@example.com",
    kind: str = "confirmation",
    body: str = "Welcome.\nYour access token: {access_token}",
) -> None:
    with store.transaction() as s:
        s.add(
            OutboxRow(
                kind=kind,
                event_id="e1",
                registration_id="r1",
                recipient=recipient,
                subject="Your ticket",
                body=body,
                secret=secret,
                created_at=datetime(2026, 11, 25, tzinfo=UTC),
                attempts=0,
            )
        )


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: greets, accepts every command, collects DATA."""

    def handle(self) -> None:
        def reply(line: str) -> None:
            self.wfile.write(line.encode() + b"\r\n")

        reply("220 localhost test SMTP")
        in_data = False
        lines: list[str] = []
        while raw := self.rfile.readline():
            text = raw.decode().rstrip("\r\n")
            if in_data:
                if text == ".":
                    in_data = False
                    self.server.received.append("\n".join(lines))  # type: ignore[attr-defined]
                    lines = []
                    reply("250 queued")
                else:
                    lines.append(text[1:] if text.startswith("..") else text)
                continue
            verb = text[:4].upper()
            if verb == "RCPT" and "refused@" in text:
                reply("550 no such user")
            elif verb == "DATA":
                in_data = True
                reply("354 end with .")
            elif verb == "QUIT":
                reply("221 bye")
                return
            else:
                reply("250 ok")


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list[str]]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.daemon_threads = True
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_file_sender_delivers_the_token_and_the_row_forgets_it(store: Store, tmp_path: Path) -> None:
    add_message(store)
    mailbox = tmp_path / "mail.txt"
    assert outbox.pending_count(store) == 1
    assert outbox.drain(store, outbox.FileSender(mailbox)) == 1
    assert "Your access token: tok-SECRET-123" in mailbox.read_text(encoding="utf-8")
    with store.transaction() as s:
        row = s.scalar(sa.select(OutboxRow))
        assert row is not None
        assert row.secret is None
        assert row.sent_at is not None
    assert outbox.pending_count(store) == 0
    assert outbox.drain(store, outbox.FileSender(mailbox)) == 0


def test_log_sender_writes_bodies_without_tokens_and_leaves_confirmations_queued(store: Store) -> None:
    add_message(store)  # a confirmation: it carries an access token
    add_message(store, secret=None, kind="date_change", body="The webinar moved to Friday.")
    with structlog.testing.capture_logs() as logs:
        assert outbox.drain(store, outbox.LogSender()) == 1
    logged = [entry for entry in logs if entry["event"] == "paid_events.message.logged"]
    assert [entry["body"] for entry in logged] == ["The webinar moved to Friday."]
    assert "tok-SECRET-123" not in repr(logs)
    assert "ann@example.com" not in repr(logs)
    with store.transaction() as s:
        confirmation = s.scalar(sa.select(OutboxRow).where(OutboxRow.kind == "confirmation"))
        assert confirmation is not None
        assert confirmation.sent_at is None  # not claimed as delivered
        assert confirmation.secret == "tok-SECRET-123"  # still there for a real sender
        assert confirmation.attempts == 0
    assert outbox.pending_count(store) == 1


def test_log_sender_refuses_a_message_with_a_token_handed_to_it_directly() -> None:
    with pytest.raises(ValueError, match="access token"):
        outbox.LogSender().send(outbox.Message(1, "confirmation", "a@example.com", "s", "token: abc", has_secret=True))


class Refusing:
    """A sender whose server refuses one address (as SMTP does with 550) and delivers the rest."""

    def __init__(self, refused: str) -> None:
        self.refused = refused
        self.delivered: list[outbox.Message] = []

    def send(self, message: outbox.Message) -> None:
        if message.recipient == self.refused:
            raise smtplib.SMTPRecipientsRefused({message.recipient: (550, b"no such user " + message.body.encode())})
        self.delivered.append(message)


def outbox_row(store: Store, recipient: str) -> OutboxRow:
    with store.transaction() as s:
        row = s.scalar(sa.select(OutboxRow).where(OutboxRow.recipient == recipient))
        assert row is not None
        return row


def test_a_refused_address_delays_only_its_own_message_and_backs_off(store: Store) -> None:
    now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    clock = lambda: now  # noqa: E731
    add_message(store, recipient="bad@example.com")
    add_message(store, recipient="ann@example.com")
    add_message(store, recipient="bob@example.com", secret=None)
    sender = Refusing("bad@example.com")
    policy = outbox.RetryPolicy(max_attempts=3, first_delay=timedelta(minutes=1))
    assert outbox.drain(store, sender, clock=clock, policy=policy) == 2  # the others are not blocked
    assert sorted(m.recipient for m in sender.delivered) == ["ann@example.com", "bob@example.com"]
    bad = outbox_row(store, "bad@example.com")
    assert (bad.attempts, bad.sent_at, bad.failed_at) == (1, None, None)
    assert bad.next_attempt_at == now + timedelta(minutes=1)
    assert bad.last_error is not None
    assert bad.last_error.startswith("SMTPRecipientsRefused")
    assert "bad@example.com" not in bad.last_error  # the address and the token are blanked out
    assert "tok-SECRET-123" not in bad.last_error
    assert bad.claim_id is None

    assert outbox.drain(store, sender, clock=clock, policy=policy) == 0  # not due yet: nothing is tried
    assert outbox_row(store, "bad@example.com").attempts == 1
    now += timedelta(minutes=1)
    outbox.drain(store, sender, clock=clock, policy=policy)
    second = outbox_row(store, "bad@example.com")
    assert second.attempts == 2
    assert second.next_attempt_at == now + timedelta(minutes=2)  # doubled
    now += timedelta(minutes=2)
    outbox.drain(store, sender, clock=clock, policy=policy)
    dead = outbox_row(store, "bad@example.com")
    assert (dead.attempts, dead.failed_at, dead.secret, dead.sent_at) == (3, now, None, None)  # failed for good
    assert outbox.pending_count(store) == 0
    assert outbox.failed_count(store) == 1
    now += timedelta(days=1)
    anyone = Refusing("nobody")
    assert outbox.drain(store, anyone, clock=clock) == 0
    assert anyone.delivered == []  # a message failed for good is never tried again


def test_a_failed_message_is_sent_by_a_later_drain_once_due(store: Store, tmp_path: Path) -> None:
    now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    add_message(store)

    class Broken:
        def send(self, message: outbox.Message) -> None:
            raise ConnectionError("mail server down")

    assert outbox.drain(store, Broken(), clock=lambda: now) == 0
    assert outbox.pending_count(store) == 1
    mailbox = tmp_path / "mail.txt"
    assert outbox.drain(store, outbox.FileSender(mailbox), clock=lambda: now) == 0  # backing off
    later = now + timedelta(minutes=1)
    assert outbox.drain(store, outbox.FileSender(mailbox), clock=lambda: later) == 1
    assert "tok-SECRET-123" in mailbox.read_text(encoding="utf-8")
    row = outbox_row(store, "ann@example.com")
    assert (row.attempts, row.sent_at, row.secret) == (2, later, None)


def test_no_transaction_is_held_while_a_message_is_being_sent(store: Store) -> None:
    add_message(store)
    wrote = threading.Event()

    def write_meanwhile() -> None:
        with store.transaction() as s:  # on SQLite this needs the write lock
            s.execute(sa.update(OutboxRow).values(subject="Your ticket"))
        wrote.set()

    class Slow:
        def send(self, message: outbox.Message) -> None:
            writer = threading.Thread(target=write_meanwhile)
            writer.start()
            assert wrote.wait(timeout=10), "a writer was blocked while the message was being sent"
            writer.join()

    assert outbox.drain(store, Slow()) == 1


def test_concurrent_drainers_never_send_a_message_twice(store: Store) -> None:
    for n in range(30):
        add_message(store, recipient=f"p{n}@example.com")
    sent: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    class Slow:
        def send(self, message: outbox.Message) -> None:
            time.sleep(0.01)  # a send takes a while: the others run meanwhile
            with lock:
                sent.append(message.id)

    def drainer() -> int:
        barrier.wait(timeout=30)
        return outbox.drain(store, Slow())

    with ThreadPoolExecutor(max_workers=4) as pool:
        counts = list(pool.map(lambda _: drainer(), range(4)))
    assert sum(counts) == 30
    assert sorted(sent) == sorted(set(sent))
    assert len(sent) == 30
    assert outbox.pending_count(store) == 0


def test_a_drainer_that_died_mid_send_leaves_the_message_to_the_next_after_the_lease(store: Store) -> None:
    now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    add_message(store)

    class Dies:
        def send(self, message: outbox.Message) -> None:
            raise KeyboardInterrupt  # not an Exception: the drain stops without recording anything

    with pytest.raises(KeyboardInterrupt):
        outbox.drain(store, Dies(), clock=lambda: now)
    mailbox = Refusing("nobody")
    assert outbox.drain(store, mailbox, clock=lambda: now + timedelta(minutes=5)) == 0  # still claimed
    assert outbox.drain(store, mailbox, clock=lambda: now + timedelta(minutes=10)) == 1  # the lease lapsed
    assert len(mailbox.delivered) == 1


def test_smtp_sender_sends_through_a_local_server(store: Store, smtp_server: tuple[int, list[str]]) -> None:
    port, received = smtp_server
    add_message(store)
    assert outbox.drain(store, outbox.SMTPSender("127.0.0.1", port, sender="events@example.com", timeout=10)) == 1
    assert len(received) == 1
    assert "To: ann@example.com" in received[0]
    assert "Subject: Your ticket" in received[0]
    assert "tok-SECRET-123" in received[0]


def test_smtp_refusing_one_address_does_not_block_the_others(store: Store, smtp_server: tuple[int, list[str]]) -> None:
    port, received = smtp_server
    add_message(store, recipient="refused@example.com")
    add_message(store, recipient="ann@example.com")
    add_message(store, recipient="bob@example.com", secret=None, kind="date_change", body="Moved.")
    sender = outbox.SMTPSender("127.0.0.1", port, sender="events@example.com", timeout=10)
    assert outbox.drain(store, sender) == 2
    assert [next(line for line in mail.splitlines() if line.startswith("To:")) for mail in received] == [
        "To: ann@example.com",
        "To: bob@example.com",
    ]
    refused = outbox_row(store, "refused@example.com")
    assert refused.attempts == 1
    assert refused.sent_at is None
    assert refused.last_error is not None
    assert refused.last_error.startswith("SMTPRecipientsRefused")


def test_message_repr_hides_the_body() -> None:
    message = outbox.Message(1, "confirmation", "a@example.com", "s", "token: abc")
    assert "abc" not in repr(message)


def test_config_file_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        pe_config.load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[platform\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        pe_config.load(bad)
    no_platform = tmp_path / "np.toml"
    no_platform.write_text("[gateways]\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"\[platform\]"):
        pe_config.load(no_platform)
    good = tmp_path / "good.toml"
    good.write_text(
        pe_config.example_config_text().replace('fee_percent = "5"', 'fee_percent = "7.5"'), encoding="utf-8"
    )
    assert str(pe_config.load(good)[0].fee_percent) == "7.5"


# -- a participant's messages, as the participant's registration changes ------------------------


class FailsOnce:
    """A real sender whose server is down for the first message of one kind, then delivers everything."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.failed = False
        self.delivered: list[outbox.Message] = []

    def send(self, message: outbox.Message) -> None:
        if message.kind == self.kind and not self.failed:
            self.failed = True
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        self.delivered.append(message)


def test_a_confirmation_retried_after_a_failure_is_never_delivered_after_the_cancellation(
    service: PaidEvents, store: Store, clock: Clock
) -> None:
    event_id = make_event(service)
    ann = service.checkout(event_id, "ann@example.com")
    pay(service, "stripe-like", ann.checkout_id)
    sender = FailsOnce("confirmation")
    assert outbox.drain(store, sender, clock=clock) == 0  # the confirmation failed once: it backs off
    service.cancel_event(event_id)
    assert outbox.drain(store, sender, clock=clock) == 0  # the cancellation waits behind ann's confirmation
    clock.advance(minutes=1)
    assert outbox.drain(store, sender, clock=clock) == 2
    assert [m.kind for m in sender.delivered] == ["confirmation", "cancellation"]


def test_a_participants_later_message_waits_only_for_that_participants_earlier_one(
    service: PaidEvents, store: Store, clock: Clock
) -> None:
    event_id = make_event(service)
    for email in ("ann@example.com", "bob@example.com"):
        pay(service, "stripe-like", service.checkout(event_id, email).checkout_id)
    sender = FailsOnce("confirmation")  # ann's confirmation fails, bob's goes out
    assert outbox.drain(store, sender, clock=clock) == 1
    service.change_date(event_id, clock() + timedelta(days=20))
    assert outbox.drain(store, sender, clock=clock) == 1  # bob's date change; ann's waits
    assert [(m.recipient, m.kind) for m in sender.delivered] == [
        ("bob@example.com", "confirmation"),
        ("bob@example.com", "date_change"),
    ]
    clock.advance(minutes=1)
    assert outbox.drain(store, sender, clock=clock) == 2
    assert [(m.recipient, m.kind) for m in sender.delivered[2:]] == [
        ("ann@example.com", "confirmation"),
        ("ann@example.com", "date_change"),
    ]


def test_a_confirmation_whose_token_was_revoked_by_a_refund_is_not_sent(service: PaidEvents, store: Store) -> None:
    event_id = make_event(service)
    ann = service.checkout(event_id, "ann@example.com")
    pay(service, "stripe-like", ann.checkout_id)
    assert service.refund(ann.registration_id).state == "refunded"  # before the confirmation went out
    mailbox = Mailbox()
    outbox.drain(store, mailbox)
    assert [m.kind for m in mailbox.messages] == []  # no "you are registered" with a dead token
    assert outbox.pending_count(store) == 0
    with store.transaction() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(OutboxRow).where(OutboxRow.secret.is_not(None))) == 0


def test_a_confirmation_being_sent_when_its_token_was_replaced_is_not_retried_with_the_dead_token(
    service: PaidEvents, store: Store, clock: Clock
) -> None:
    event_id = make_event(service)
    ann = service.checkout(event_id, "ann@example.com")
    pay(service, "stripe-like", ann.checkout_id)

    class ReissuedMidSend:
        """The organizer presses "resend" while the first confirmation is on its way; that send fails."""

        def __init__(self) -> None:
            self.delivered: list[outbox.Message] = []

        def send(self, message: outbox.Message) -> None:
            if not self.delivered and "(new access token)" not in message.subject:
                service.reissue_confirmation(ann.registration_id)
                self.delivered.append(message)
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            self.delivered.append(message)

    sender = ReissuedMidSend()
    outbox.drain(store, sender, clock=clock)
    clock.advance(minutes=1)
    outbox.drain(store, sender, clock=clock)
    assert outbox.pending_count(store) == 0
    tokens = [m.body.rsplit(" ", 1)[-1] for m in sender.delivered[1:]]  # what reached the participant
    assert len(tokens) == 1
    assert service.admit(event_id, tokens[0])  # only the working token was delivered
