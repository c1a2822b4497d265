"""The ``gateway events`` commands, reached through the real ``gateway`` CLI and its plugin hook."""

from __future__ import annotations

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


def test_gateway_events_demo_runs_the_story_end_to_end() -> None:
    result = gateway("events", "demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "rounded up from 0.40 EUR to the gateway minimum" in out
    assert "free, no checkout" in out
    assert "refused look-alike promo code: InvalidPromoCode" in out
    assert "ann's access token admits her: True" in out
    assert "bob: rejected" in out
    assert "[3/3]" in out
    assert "refunding ann again: already_refunded" in out
    assert "stripe-like: 2 refunds made" in out
    assert "paypal-like: 1 refunds made" in out
    assert "Traceback" not in result.stderr


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


def test_reconcile_on_an_empty_store(tmp_path: Path) -> None:
    result = CliRunner().invoke(events, ["reconcile", "--database", f"sqlite:///{tmp_path / 'e.db'}"])
    assert result.exit_code == 0, result.output
    assert "checkouts recovered: 0, confirmed: 0, released: 0, still pending: 0" in result.output


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
