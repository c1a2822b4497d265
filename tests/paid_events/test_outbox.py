"""The outbox senders: file, log (never the body) and SMTP against a local server on 127.0.0.1."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog
from paid_events import config as pe_config
from paid_events import outbox
from paid_events.store import OutboxRow, Store

from gateway_core import ConfigurationError


def add_message(store: Store, *, secret: str | None = "tok-SECRET-123") -> None:
    with store.transaction() as s:
        s.add(
            OutboxRow(
                kind="confirmation",
                event_id="e1",
                registration_id="r1",
                recipient="ann@example.com",
                subject="Your ticket",
                body="Welcome.\nYour access token: {access_token}",
                secret=secret,
                created_at=datetime(2026, 11, 25, tzinfo=UTC),
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
            if verb == "DATA":
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


def test_log_sender_never_logs_the_body_or_token(store: Store) -> None:
    add_message(store)
    with structlog.testing.capture_logs() as logs:
        assert outbox.drain(store, outbox.LogSender()) == 1
    assert any(entry["event"] == "paid_events.message.logged" for entry in logs)
    assert "tok-SECRET-123" not in repr(logs)
    assert "ann@example.com" not in repr(logs)


def test_a_failed_send_leaves_the_message_for_the_next_drain(store: Store, tmp_path: Path) -> None:
    add_message(store)

    class Broken:
        def send(self, message: outbox.Message) -> None:
            raise ConnectionError("mail server down")

    with pytest.raises(ConnectionError):
        outbox.drain(store, Broken())
    assert outbox.pending_count(store) == 1
    assert outbox.drain(store, outbox.FileSender(tmp_path / "mail.txt")) == 1


def test_smtp_sender_sends_through_a_local_server(store: Store, smtp_server: tuple[int, list[str]]) -> None:
    port, received = smtp_server
    add_message(store)
    assert outbox.drain(store, outbox.SMTPSender("127.0.0.1", port, sender="events@example.com", timeout=10)) == 1
    assert len(received) == 1
    assert "To: ann@example.com" in received[0]
    assert "Subject: Your ticket" in received[0]
    assert "tok-SECRET-123" in received[0]


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
