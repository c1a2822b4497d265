"""The ``gateway events`` commands, reached through the real ``gateway`` CLI and its plugin hook."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from paid_events.plugin import events, gateway_cli_commands


def gateway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway_core.cli", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_plugin_module_imports_without_sqlalchemy() -> None:
    code = "import sys, paid_events.plugin; print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic', 'psycopg')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_hook_adds_the_events_group() -> None:
    cli = click.Group("gateway")
    gateway_cli_commands(cli)
    assert cli.commands["events"] is events
    assert {"demo", "migrate", "example-config", "send-messages", "reconcile"} <= set(events.commands)


def test_gateway_events_demo_runs_the_story_end_to_end(tmp_path: Path) -> None:
    mailbox = tmp_path / "mailbox.txt"
    result = gateway("events", "demo", "--outbox", str(mailbox))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"the participants' messages are in {mailbox}" in out
    mail = mailbox.read_text(encoding="utf-8")
    assert mail.count("Your access token: ") == 5  # ann, bob, cat, dan and hal (the series)
    for kind in ("rejection", "paid_after_rejection", "date_change", "cancellation", "session_added"):
        assert f"({kind})" in mail
    assert "Ann@Example.com comes back before paying: same registration True, same checkout True" in out
    assert "fay: rejected, paid: False (nothing to refund)" in out
    # ivy paid as she was rejected: the organizer's list shows the payment owed back, and she is told
    assert "ivy paid as she was rejected: rejected, paid: True" in out
    assert re.search(r"ivy@example\.com +rejected +20\.00 EUR via stripe-like paid, refund due \(no ticket\)", out)
    assert re.search(r"fay@example\.com +rejected +20\.00 EUR via stripe-like not paid\n", out)
    assert re.search(r"ivy@example\.com +rejected +20\.00 EUR via stripe-like paid, refund refunded\n", out)
    assert "arrived after the organizer declined your registration" in mail
    assert "to the session added later: True" in out
    assert "delete refused while messages are unsent: InvalidTransition" in out
    assert "the organizer deletes the event" in out
    assert "rounded up from 0.40 EUR to the gateway minimum" in out
    assert "refused a 100 HUF event: InvalidPrice" in out
    assert "fee 0.90 EUR (not passed to paypal-like, which takes no application fee), via paypal-like" in out
    assert "the lowest price an enabled gateway takes in HUF is 175.00 HUF" in out
    assert "free, no checkout" in out
    assert "refused look-alike promo code: InvalidPromoCode" in out
    assert "ann's access token admits her: True" in out
    assert "bob: rejected" in out
    assert "[4/4]" in out
    assert "refunding ann again: already_refunded" in out
    assert "stripe-like: 3 refunds made" in out
    assert "paypal-like: 1 refunds made" in out
    assert "Traceback" not in result.stderr


def _store_with_messages(url: str) -> None:
    from datetime import UTC, datetime

    from paid_events.store import OutboxRow, Store

    store = Store.open(url)
    with store.transaction() as s:
        for kind, body, secret in (
            ("confirmation", "Your access token: {access_token}", "tok-SECRET-9"),
            ("date_change", "The webinar moved.", None),
        ):
            s.add(
                OutboxRow(
                    kind=kind,
                    event_id="e1",
                    registration_id="r1",
                    recipient="ann@example.com",
                    subject="s",
                    body=body,
                    secret=secret,
                    created_at=datetime(2026, 11, 25, tzinfo=UTC),
                    attempts=0,
                )
            )
    store.close()


def test_send_messages_writes_to_a_mailbox_file_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    _store_with_messages(url)
    monkeypatch.chdir(tmp_path)
    sent = CliRunner().invoke(events, ["send-messages", "--database", url])
    assert sent.exit_code == 0, sent.output
    assert "sent 2 messages to paid-events-mailbox.txt; 0 waiting" in sent.output
    assert "Your access token: tok-SECRET-9" in (tmp_path / "paid-events-mailbox.txt").read_text(encoding="utf-8")


def test_send_messages_to_the_log_leaves_tokens_queued(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    _store_with_messages(url)
    logged = CliRunner().invoke(events, ["send-messages", "--database", url, "--to-log"])
    assert logged.exit_code == 0, logged.output
    assert "sent 1 messages to the log; 1 waiting" in logged.output
    assert "never logged" in logged.output
    assert "tok-SECRET-9" not in logged.output
    to_file = CliRunner().invoke(events, ["send-messages", "--database", url, "--to-file", str(tmp_path / "m.txt")])
    assert "sent 1 messages" in to_file.output
    assert "tok-SECRET-9" in (tmp_path / "m.txt").read_text(encoding="utf-8")


def test_send_messages_to_the_log_is_refused_where_the_log_is_not_shown(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    _store_with_messages(url)
    quiet = gateway("events", "send-messages", "--database", url, "--to-log")  # log lines are off without -v
    assert quiet.returncode == 2, quiet.stdout + quiet.stderr
    assert "gateway -v events send-messages" in quiet.stderr
    assert "The webinar moved." not in quiet.stdout + quiet.stderr
    still = CliRunner().invoke(events, ["send-messages", "--database", url, "--to-file", str(tmp_path / "m.txt")])
    assert "sent 2 messages" in still.output  # nothing was marked sent and lost
    _store_with_messages(url)
    shown = gateway("-v", "events", "send-messages", "--database", url, "--to-log")
    assert shown.returncode == 0, shown.stderr
    assert "The webinar moved." in shown.stderr  # the log line is the message
    assert "tok-SECRET-9" not in shown.stdout + shown.stderr
    assert "sent 1 messages to the log; 1 waiting" in shown.stdout


def test_migrate_and_send_messages_on_a_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    runner = CliRunner()
    migrated = runner.invoke(events, ["migrate", "--database", url])
    assert migrated.exit_code == 0, migrated.output
    assert "newest migration" in migrated.output
    sent = runner.invoke(events, ["send-messages", "--database", url, "--to-file", str(tmp_path / "mail.txt")])
    assert sent.exit_code == 0, sent.output
    assert "sent 0 messages" in sent.output
    both = runner.invoke(events, ["send-messages", "--database", url, "--to-file", "x", "--smtp-host", "127.0.0.1"])
    assert both.exit_code == 2
    log_and_smtp = runner.invoke(events, ["send-messages", "--database", url, "--to-log", "--smtp-host", "127.0.0.1"])
    assert log_and_smtp.exit_code == 2


def test_reconcile_on_an_empty_store(tmp_path: Path) -> None:
    result = CliRunner().invoke(events, ["reconcile", "--database", f"sqlite:///{tmp_path / 'e.db'}"])
    assert result.exit_code == 0, result.output
    assert "checkouts recovered: 0, confirmed: 0, released: 0, still pending: 0" in result.output
    assert "refunds completed: 0, failed: 0, pending: 0, unknown: 0" in result.output
    assert "outcome is unknown" not in result.output


def test_reconcile_shows_a_refund_whose_outcome_is_unknown(tmp_path: Path) -> None:
    import sqlalchemy as sa
    from paid_events import config as pe_config
    from paid_events.service import PaidEvents
    from paid_events.store import RegistrationRow, Store

    import gateway_core.fake
    from gateway_core import GatewayManager, Money

    url = f"sqlite:///{tmp_path / 'e.db'}"
    platform, deployment = pe_config.load()
    store = Store.open(url)
    try:
        service = PaidEvents(
            store, GatewayManager(deployment, plugins=[gateway_core.fake], load_entry_points=False), platform
        )
        event = service.create_event(
            organizer="org-1",
            title="Pricing webinar",
            kind="on_demand",
            price=Money.of("20", "EUR"),
            capacity=5,
            gateways=["stripe-like"],
        )
        result = service.checkout(event.id, "ann@example.com")
        fake = service.gateways.gateway_object("stripe-like")
        assert isinstance(fake, gateway_core.fake.FakeGateway)
        fake.complete_checkout(result.checkout_id or "")
        assert service.check_payment(result.registration_id) == "confirmed"
        with store.transaction() as s:  # a refund was sent, and the process died before its answer
            s.execute(sa.update(RegistrationRow).values(refund_state="requested", refund_requested_at=None))
    finally:
        store.close()
    # The command's fake gateways (new ones) know no payment: neither the refunded-total read nor
    # the re-send under the refund's key tells what happened, so it stays unknown, and says so.
    out = CliRunner().invoke(events, ["reconcile", "--database", url])
    assert out.exit_code == 0, out.output
    assert "refunds completed: 0, failed: 0, pending: 0, unknown: 1" in out.output
    assert "never asked again under a new key" in out.output
    store = Store.open(url)
    try:
        with store.transaction() as s:
            assert s.scalar(sa.select(RegistrationRow.refund_state)) == "requested"
    finally:
        store.close()


def test_example_config_is_printed() -> None:
    result = CliRunner().invoke(events, ["example-config"])
    assert result.exit_code == 0
    assert "[platform.price_limits]" in result.output
    assert 'HUF = "700000"' in result.output


@pytest.mark.parametrize("database", ["postgresql"])
def test_demo_runs_on_postgresql(database: str, pg_schema: tuple[str, str]) -> None:
    url, schema = pg_schema
    from paid_events.demo import run

    lines: list[str] = []
    # a fresh schema of its own, so the demo's tables do not meet the other tests' rows
    import sqlalchemy as sa

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    demo_schema = f"{schema}_demo"
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{demo_schema}"'))
    try:
        run(database=f"{url}?options=-csearch_path%3D{demo_schema}", echo=lines.append)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{demo_schema}" CASCADE'))
        engine.dispose()
    assert any("Store: postgresql" in line for line in lines)
    assert any("refunding ann again: already_refunded" in line for line in lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reconcile", "--database", "sqlite:///{tmp}/e.db", "--config", "{tmp}/missing.toml"], "not found"),
        (["demo", "--config", "{tmp}/bad.toml"], "is not valid TOML"),
        (["migrate", "--database", "not a database url"], "not a database URL"),
        (["send-messages", "--database", "nosuchdriver://x/y"], "not a database URL"),
        (["migrate", "--database", "sqlite:///{tmp}/no/such/dir/e.db"], "database error"),
        (["migrate", "--database", "postgresql+psycopg://ann:s3cret-pw@127.0.0.1:1/x"], "database error"),
    ],
    ids=["missing-config", "bad-toml", "bad-url", "unknown-driver", "no-directory", "no-server"],
)
def test_events_commands_report_errors_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "bad.toml").write_text("[platform\n", encoding="utf-8")
    result = gateway("events", *(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]
    assert "s3cret-pw" not in result.stderr + result.stdout
