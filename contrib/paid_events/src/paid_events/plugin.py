"""gateway-core plugin module of paid_events: adds ``gateway events ...`` to the CLI.

It imports only click and the core's hook marker: SQLAlchemy and the service load inside the
commands, so ``gateway plugins`` stays fast.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from gateway_core import GatewayError
from gateway_core.hookspecs import hookimpl
from paid_events.errors import PaidEventsError

__all__ = ["events", "gateway_cli_commands"]


@contextlib.contextmanager
def _reported(database: str | None = None) -> Iterator[None]:
    """What a user can act on (a bad configuration, URL or store) as one ``error: ...`` line, exit 1.

    ``gateway`` prints a ``click.ClickException`` that way; anything else would be a traceback.
    The database URL is never echoed, and its password is blanked from a driver's message.
    """
    try:
        yield
    except (GatewayError, PaidEventsError) as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:
        sa_exc = sys.modules.get("sqlalchemy.exc")  # loaded by the command itself, if it got that far
        if sa_exc is not None and isinstance(exc, sa_exc.ArgumentError):
            raise click.ClickException(
                "--database is not a database URL (expected sqlite:///events.db or postgresql+psycopg://user@host/db)"
            ) from None
        if sa_exc is not None and isinstance(exc, sa_exc.DBAPIError):
            lines = str(exc.orig).strip().splitlines()
            raise click.ClickException(
                f"database error: {_blank_password(lines[0] if lines else '', database)}"
            ) from None
        raise


def _blank_password(text: str, database: str | None) -> str:
    import sqlalchemy as sa  # noqa: PLC0415 (only once a database error happened)

    try:
        password = sa.make_url(database).password if database else None
    except sa.exc.ArgumentError:
        password = None
    return text.replace(str(password), "***") if password else text


@hookimpl
def gateway_cli_commands(cli: click.Group) -> None:
    cli.add_command(events)


@click.group("events")
def events() -> None:
    """Paid events for a webinar platform: prices, promo codes, service fee, ticket caps, refunds."""


_DATABASE = click.option(
    "--database",
    metavar="URL",
    help="SQLAlchemy URL: sqlite:///events.db or postgresql+psycopg://user@host/db.",
)
_CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Platform and gateways TOML (default: the example shipped with paid_events).",
)


@events.command("demo")
@_DATABASE
@_CONFIG
@click.option(
    "--outbox",
    "outbox_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the participants' messages to this file and keep it (default: a temporary file).",
)
@click.option("--verbose", is_flag=True, help="Also show the structured log lines.")
def demo(database: str | None, config_path: Path | None, outbox_path: Path | None, verbose: bool) -> None:
    """Run the whole story on the fake gateway: create, register, pay, reject, move, cancel, refund."""
    from paid_events.demo import run  # noqa: PLC0415

    with _reported(database):
        run(database=database, config_path=config_path, outbox_path=outbox_path, echo=click.echo, verbose=verbose)


@events.command("migrate")
@click.option("--database", metavar="URL", required=True, help="SQLAlchemy URL of the store.")
def migrate(database: str) -> None:
    """Create or upgrade the store's tables (Alembic)."""
    from paid_events.store import Store  # noqa: PLC0415

    with _reported(database):
        Store.open(database).close()
    click.echo("paid_events store is at the newest migration")


@events.command("reconcile")
@click.option("--database", metavar="URL", required=True, help="SQLAlchemy URL of the store.")
@_CONFIG
def reconcile(database: str, config_path: Path | None) -> None:
    """Finish pending registrations: recover lost checkouts, confirm paid ones, release lapsed holds."""
    from gateway_core import GatewayManager  # noqa: PLC0415
    from paid_events import config  # noqa: PLC0415
    from paid_events.service import PaidEvents  # noqa: PLC0415
    from paid_events.store import Store  # noqa: PLC0415

    with _reported(database):
        platform, deployment = config.load(config_path)
        store = Store.open(database)
        try:
            with GatewayManager(deployment) as gateways:  # its plugins' sessions closed on the way out
                report = PaidEvents(store, gateways, platform).reconcile()
        finally:
            store.close()
    click.echo(
        f"checkouts recovered: {report.checkouts_recovered}, confirmed: {report.confirmed}, "
        f"released: {report.released}, still pending: {report.still_pending}; "
        f"refunds completed: {report.refunds_completed}, failed: {report.refunds_failed}, "
        f"pending: {report.refunds_pending}, unknown: {report.refunds_unknown}"
    )
    if report.refunds_unknown:
        click.echo(
            "a refund whose outcome is unknown may have been made: it is never asked again under a new key; "
            "the payment's refunded total or the provider's refund webhook settles it (check it at the provider "
            "if it stays unknown)"
        )


@events.command("example-config")
def example_config() -> None:
    """Print the example configuration (platform rules and two fake gateways)."""
    from paid_events.config import example_config_text  # noqa: PLC0415

    click.echo(example_config_text(), nl=False)


@events.command("send-messages")
@click.option("--database", metavar="URL", required=True, help="SQLAlchemy URL of the store.")
@click.option(
    "--to-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("paid-events-mailbox.txt"),
    show_default=True,
    help="Append messages (access tokens included) to this file: the default sender.",
)
@click.option("--smtp-host", help="Send through this SMTP server instead.")
@click.option("--smtp-port", type=int, default=25, show_default=True)
@click.option("--sender", default="events@localhost", show_default=True, help="The From address for SMTP.")
@click.option(
    "--to-log",
    is_flag=True,
    help="Write messages without an access token to the log instead (needs 'gateway -v'); confirmations stay queued.",
)
def send_messages(  # noqa: PLR0917 (click passes options positionally)
    database: str, to_file: Path, smtp_host: str | None, smtp_port: int, sender: str, to_log: bool
) -> None:
    """Drain the outbox: to a mailbox file (default), to SMTP, or to the log (no tokens)."""
    from paid_events import outbox  # noqa: PLC0415
    from paid_events.store import Store  # noqa: PLC0415

    ctx = click.get_current_context()
    file_given = ctx.get_parameter_source("to_file") is not click.core.ParameterSource.DEFAULT
    if sum((file_given, smtp_host is not None, to_log)) > 1:
        raise click.UsageError("choose one of --to-file, --smtp-host and --to-log")
    if to_log and isinstance(ctx.obj, dict) and not ctx.obj.get("verbose"):
        # The gateway command shows log lines only with -v: without it each message would be
        # marked sent and written nowhere.
        raise click.UsageError(
            "--to-log writes each message as a log line, which gateway shows only with -v: "
            "run 'gateway -v events send-messages --to-log ...'"
        )
    chosen: outbox.Sender
    if smtp_host is not None:
        chosen, where = outbox.SMTPSender(smtp_host, smtp_port, sender), f"SMTP {smtp_host}:{smtp_port}"
    elif to_log:
        chosen, where = outbox.LogSender(), "the log"
    else:
        chosen, where = outbox.FileSender(to_file), str(to_file)
    with _reported(database):
        store = Store.open(database)
        try:
            sent = outbox.drain(store, chosen)
            left, failed = outbox.pending_count(store), outbox.failed_count(store)
        finally:
            store.close()
    click.echo(f"sent {sent} messages to {where}; {left} waiting, {failed} failed for good")
    if to_log and left:
        click.echo("messages with an access token are never logged: send them with --to-file or --smtp-host")
