"""The ``gateway`` command-line tool.

``gateway plugins``, ``gateway route``, ``gateway check`` and ``gateway demo``; plugins add their
own subcommands through the ``gateway_cli_commands`` hook. Every command takes ``--json`` for
machine-readable output. Exit status:

* 0: done;
* 1: an error: one line ``error: ...`` on stderr (with ``--json``, ``{"error": {"code", "message"}}``
  on stdout instead), or ``gateway check`` found a failing check;
* 2: a usage error (unknown command or option, missing or bad value): one line ``error: ...``
  naming the ``--help`` to read, the same way;
* 3: ``gateway route`` found no eligible gateway (its output still lists every reason).

Log lines (one per operation) are off unless ``--verbose``, and then go to stderr, so stdout is
only the command's output and an error is only its one line. click for parsing (small and fast
to import) and tabulate for tables (not rich: see the root ``pyproject.toml``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

import attrs
import click

from gateway_core.capabilities import Capabilities, Feature
from gateway_core.config import DeploymentConfig
from gateway_core.errors import GatewayError
from gateway_core.manager import GatewayManager
from gateway_core.money import Money
from gateway_core.routing import Exclusion, RouteDecision, RouteEntry, Router

#: Exit statuses (see the module docstring).
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NO_ROUTE = 3

CONFIG_ENV_VAR = "GATEWAY_CONFIG"
DEFAULT_CONFIG = "gateway.toml"


def _fail(message: str, as_json: bool = False, code: str = "error", status: int = EXIT_ERROR) -> NoReturn:
    message = " ".join(message.split())  # one line, whatever the message held
    if as_json:
        click.echo(json.dumps({"error": {"code": code, "message": message}}))
    else:
        click.echo(f"error: {message}", err=True)
    sys.exit(status)


@cache
def _installed() -> GatewayManager:
    """A manager with every installed plugin loaded and no gateway configured (built once per run)."""
    return GatewayManager(DeploymentConfig())


@contextmanager
def _errors(as_json: bool = False) -> Iterator[None]:
    """Turn a GatewayError into one clear line (or a JSON object) and exit status 1."""
    try:
        yield
    except GatewayError as exc:
        _fail(str(exc), as_json, exc.code.value)


def _config_path(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit)
    from_env = os.environ.get(CONFIG_ENV_VAR)
    if from_env:
        return Path(from_env)
    default = Path(DEFAULT_CONFIG)
    return default if default.exists() else None


def _load_config(explicit: str | None) -> DeploymentConfig | None:
    path = _config_path(explicit)
    return None if path is None else DeploymentConfig.from_toml(path)


def _describe_minimums(caps: Capabilities, limit: int = 4) -> str:
    shown = [str(r.minimum) for r in caps.currencies.values() if r.minimum is not None][:limit]
    more = sum(1 for r in caps.currencies.values() if r.minimum is not None) - len(shown)
    return ", ".join(shown) + (f" (+{more})" if more > 0 else "") if shown else "one minor unit"


def _describe_currencies(caps: Capabilities, limit: int = 8) -> str:
    codes = list(caps.currencies)
    return " ".join(codes[:limit]) + (f" (+{len(codes) - limit})" if len(codes) > limit else "")


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    from tabulate import tabulate  # noqa: PLC0415  (only when printing a table)

    click.echo(title)
    click.echo(tabulate(rows, headers=list(columns), tablefmt="simple", maxcolwidths=[None, None, 40, 40, 60]))


@click.group()
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help=f"gateway.toml to use (default ${CONFIG_ENV_VAR} or ./{DEFAULT_CONFIG}).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log lines (one per operation) on stderr.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """gateway-core: payment gateways behind one contract."""
    ctx.obj = {"config": config_path, "verbose": verbose}


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """Installed providers: distribution, version, currencies, minimums, features."""
    with _errors(as_json):
        manager = _installed()
        providers = manager.providers()
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "providers": [
                            {
                                "provider": name,
                                "plugin": info.name,
                                "distribution": info.distribution,
                                "version": info.version,
                                "live": definition.capabilities.live,
                                "currencies": {
                                    code: {
                                        "exponent": rule.exponent,
                                        "step": rule.step,
                                        "minimum": str(rule.minimum.amount) if rule.minimum else None,
                                        "maximum": str(rule.maximum.amount) if rule.maximum else None,
                                    }
                                    for code, rule in definition.capabilities.currencies.items()
                                },
                                "features": sorted(definition.capabilities.features),
                                "card_brands": sorted(definition.capabilities.card_brands),
                                "host_completes_checkout": definition.capabilities.host_completes_checkout,
                            }
                            for name, (definition, info) in sorted(providers.items())
                        ],
                        "failures": [
                            {
                                "entry_point": f.entry_point,
                                "distribution": f.distribution,
                                "version": f.version,
                                "error": f.error,
                            }
                            for f in manager.failures
                        ],
                    },
                    indent=2,
                )
            )
            return
        rows = [
            (
                name,
                f"{info.distribution or '-'} {info.version or ''}".strip(),
                _describe_currencies(d.capabilities),
                _describe_minimums(d.capabilities),
                " ".join(
                    [
                        *sorted(d.capabilities.features),
                        # the host must capture an approved hosted checkout (PayPal): say so where features are read
                        *(["(host completes checkout)"] if d.capabilities.host_completes_checkout else []),
                    ]
                ),
            )
            for name, (d, info) in sorted(providers.items())
        ]
        _table("Installed gateway providers", ("provider", "distribution", "currencies", "minimums", "features"), rows)
        for failure in manager.failures:
            click.echo(
                f"failed to load plugin {failure.entry_point!r} from {failure.distribution} {failure.version}: {failure.error}",
                err=True,
            )


def _router_for(config_path: str | None) -> tuple[Router, str, tuple[Exclusion, ...]]:
    """The router to ask, what it routes over, and the gateways left out of it with the reason."""
    config = _load_config(config_path)
    if config is not None:
        manager = GatewayManager(config)
        return manager.router, "configured gateways", ()
    manager = _installed()
    providers = sorted(manager.providers().items())
    entries = [
        RouteEntry(name, definition.capabilities) for name, (definition, _) in providers if definition.capabilities.live
    ]
    # A test provider (the fake) takes no real money: routed to only where a gateway.toml configures it.
    skipped = tuple(
        Exclusion(name, "not live: a test provider, routed to only when gateway.toml configures it")
        for name, (definition, _) in providers
        if not definition.capabilities.live
    )
    return (
        Router(entries),
        "what installed providers declare (no gateway.toml; a configured gateway may offer less, "
        "e.g. currencies a provider keeps off until configuration enables them)",
        skipped,
    )


def _decision_json(decision: RouteDecision, basis: str) -> dict[str, Any]:
    return {
        "basis": basis,
        "amount": str(decision.amount.amount),
        "currency": decision.amount.currency,
        "eligible": list(decision.eligible),
        "excluded": [{"gateway": e.gateway, "reason": e.reason} for e in decision.excluded],
    }


@cli.command()
@click.option("--amount", required=True, help="Amount in major units, e.g. 1500 or 12.50.")
@click.option("--currency", required=True, help="ISO 4217 code, e.g. HUF.")
@click.option(
    "--feature", "features", multiple=True, type=click.Choice([f.value for f in Feature]), help="Required feature."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def route(ctx: click.Context, amount: str, currency: str, features: tuple[str, ...], as_json: bool) -> None:
    """Which gateways can take --amount in --currency, in order, and why the others cannot.

    Exits 3 when no gateway is eligible.
    """
    with _errors(as_json):
        money = Money.of(amount, currency)
        router, basis, skipped = _router_for(ctx.obj["config"])
        decision = router.route(money, [Feature(f) for f in features])
        decision = attrs.evolve(decision, excluded=decision.excluded + skipped)
        if as_json:
            click.echo(json.dumps(_decision_json(decision, basis), indent=2))
        else:
            click.echo(f"Routing {money} over {basis}:")
            for i, name in enumerate(decision.eligible, 1):
                click.echo(f"  {i}. {name}")
            if not decision.eligible:
                click.echo("  no eligible gateway")
            for exclusion in decision.excluded:
                click.echo(f"  x  {exclusion}")
    if not decision.eligible:
        sys.exit(EXIT_NO_ROUTE)


@cli.command()
@click.argument("gateway")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def check(ctx: click.Context, gateway: str, as_json: bool) -> None:
    """Check GATEWAY's credentials and permissions against its provider (exit 1 if a check fails)."""
    with _errors(as_json):
        config = _load_config(ctx.obj["config"])
        if config is None:
            _fail(f"no configuration: pass --config or create {DEFAULT_CONFIG}", as_json, "configuration")
        with GatewayManager(config) as manager:  # closed: the check's connections are released
            results = manager.check(gateway)
        if as_json:
            click.echo(json.dumps([{"name": r.name, "ok": r.ok, "detail": r.detail} for r in results], indent=2))
        else:
            for r in results:
                click.echo(f"  {'ok ' if r.ok else 'FAIL'} {r.name}{': ' + r.detail if r.detail else ''}")
        if not all(r.ok for r in results):
            sys.exit(EXIT_ERROR)


@cli.command()
@click.option(
    "--interactive", is_flag=True, help="Serve the fake checkout page on 127.0.0.1 and wait for a person to pay."
)
@click.option("--timeout", default=300, show_default=True, help="Seconds to wait in --interactive mode.")
@click.option("--json", "as_json", is_flag=True, help="The steps as one JSON list, once the flow is done.")
def demo(interactive: bool, timeout: int, as_json: bool) -> None:
    """A whole payment flow on the fake gateway: no keys, no network."""
    from gateway_core.demo import Report, run_demo  # noqa: PLC0415

    report = Report(None if as_json else click.echo)
    with _errors(as_json):
        # with --json the person doing --interactive still needs the page's address now
        run_demo(report, interactive=interactive, timeout=timeout, tell=lambda text: click.echo(text, err=True))
    if as_json:
        click.echo(json.dumps(report.steps, indent=2))


def _add_plugin_commands() -> GatewayError | None:
    """Let installed plugins add subcommands (the core never imports them by name).

    A broken plugin must not take the CLI down: the error is returned (and reported by the
    commands that need the plugins, or with an unknown command), not raised.
    """
    try:
        _installed().add_cli_commands(cli)
    except GatewayError as exc:
        return exc
    return None


def _wants_verbose(args: Sequence[str]) -> bool:
    """Whether ``-v``/``--verbose`` is among the group's options (read before click parses)."""
    it = iter(args)
    for arg in it:
        if arg in ("-v", "--verbose"):
            return True
        if arg == "--config":
            next(it, None)
        elif not arg.startswith("-"):
            return False  # the subcommand: what follows is its own
    return False


def _configure_logging(verbose: bool) -> None:
    """The CLI is an application: it decides where log lines go (stderr, and only when asked)."""
    import structlog  # noqa: PLC0415

    if verbose:
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    else:
        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
            logger_factory=structlog.ReturnLoggerFactory(),
        )


def _usage_failed(exc: click.UsageError, args: Sequence[str], plugin_error: GatewayError | None) -> NoReturn:
    command = exc.ctx.command_path if exc.ctx is not None else "gateway"
    message = f"{exc.format_message().removesuffix('.')} (see '{command} --help')"
    if message.startswith("No such command"):  # perhaps a plugin's, which did not load
        if plugin_error is not None:
            message += f"; plugins were not loaded: {plugin_error}"
        elif failed := [f.entry_point for f in _installed().failures]:
            message += f"; plugins that failed to load: {', '.join(failed)} ('gateway plugins' says why)"
    _fail(message, "--json" in args, "usage", EXIT_USAGE)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``gateway`` script."""
    args = list(sys.argv[1:] if argv is None else argv)
    _configure_logging(_wants_verbose(args))
    plugin_error = _add_plugin_commands()
    no_args_help = getattr(click.exceptions, "NoArgsIsHelpError", ())
    try:
        status = cli.main(args=args, prog_name="gateway", standalone_mode=False)
    except no_args_help as exc:  # `gateway` alone: the help, as click prints it
        click.echo(exc.format_message())
        sys.exit(EXIT_USAGE)
    except click.UsageError as exc:
        _usage_failed(exc, args, plugin_error)
    except click.ClickException as exc:  # a plugin's command refusing something
        _fail(exc.format_message(), "--json" in args, "error", exc.exit_code)
    except click.Abort:
        _fail("aborted", "--json" in args)
    sys.exit(status if isinstance(status, int) else 0)


if __name__ == "__main__":
    main()
