"""The ``gateway`` command-line tool.

``gateway plugins``, ``gateway route``, ``gateway check`` and ``gateway demo``; plugins add their
own subcommands through the ``gateway_cli_commands`` hook. Errors print one line and exit 1;
``--json`` gives machine-readable output. click for parsing (small and fast to import) and rich
for tables.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

import click

from gateway_core.capabilities import Capabilities, Feature
from gateway_core.config import DeploymentConfig
from gateway_core.errors import GatewayError
from gateway_core.manager import GatewayManager
from gateway_core.money import Money
from gateway_core.routing import RouteDecision, RouteEntry, Router

CONFIG_ENV_VAR = "GATEWAY_CONFIG"
DEFAULT_CONFIG = "gateway.toml"


def _fail(message: str, as_json: bool = False, code: str = "error") -> NoReturn:
    if as_json:
        click.echo(json.dumps({"error": {"code": code, "message": message}}))
    else:
        click.echo(f"error: {message}", err=True)
    sys.exit(1)


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
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """gateway-core: payment gateways behind one contract."""
    ctx.obj = {"config": config_path}


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
                " ".join(sorted(d.capabilities.features)),
            )
            for name, (d, info) in sorted(providers.items())
        ]
        _table("Installed gateway providers", ("provider", "distribution", "currencies", "minimums", "features"), rows)
        for failure in manager.failures:
            click.echo(
                f"failed to load plugin {failure.entry_point!r} from {failure.distribution} {failure.version}: {failure.error}",
                err=True,
            )


def _router_for(config_path: str | None) -> tuple[Router, str]:
    config = _load_config(config_path)
    if config is not None:
        manager = GatewayManager(config)
        return manager.router, "configured gateways"
    manager = _installed()
    entries = [
        RouteEntry(name, definition.capabilities)
        for name, (definition, _) in sorted(manager.providers().items())
        if definition.capabilities.live
    ]
    return Router(entries), (
        "what installed providers declare (no gateway.toml; a configured gateway may offer less, "
        "e.g. currencies a provider keeps off until configuration enables them)"
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
    """Which gateways can take AMOUNT CURRENCY, in order, and why the others cannot."""
    with _errors(as_json):
        money = Money.of(amount, currency)
        router, basis = _router_for(ctx.obj["config"])
        decision = router.route(money, [Feature(f) for f in features])
        if as_json:
            click.echo(json.dumps(_decision_json(decision, basis), indent=2))
            return
        click.echo(f"Routing {money} over {basis}:")
        for i, name in enumerate(decision.eligible, 1):
            click.echo(f"  {i}. {name}")
        if not decision.eligible:
            click.echo("  no eligible gateway")
        for exclusion in decision.excluded:
            click.echo(f"  x  {exclusion}")


@cli.command()
@click.argument("gateway")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def check(ctx: click.Context, gateway: str, as_json: bool) -> None:
    """Check GATEWAY's credentials and permissions against its provider."""
    with _errors(as_json):
        config = _load_config(ctx.obj["config"])
        if config is None:
            _fail(f"no configuration: pass --config or create {DEFAULT_CONFIG}", as_json, "configuration")
        results = GatewayManager(config).check(gateway)
        if as_json:
            click.echo(json.dumps([{"name": r.name, "ok": r.ok, "detail": r.detail} for r in results], indent=2))
        else:
            for r in results:
                click.echo(f"  {'ok ' if r.ok else 'FAIL'} {r.name}{': ' + r.detail if r.detail else ''}")
        if not all(r.ok for r in results):
            sys.exit(1)


@cli.command()
@click.option(
    "--interactive", is_flag=True, help="Serve the fake checkout page on 127.0.0.1 and wait for a person to pay."
)
@click.option("--timeout", default=300, show_default=True, help="Seconds to wait in --interactive mode.")
def demo(interactive: bool, timeout: int) -> None:
    """A whole payment flow on the fake gateway: no keys, no network."""
    import structlog  # noqa: PLC0415

    from gateway_core.demo import run_demo  # noqa: PLC0415

    # The demo tells its own story; the CLI (an application, not the library) shows only error log lines.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(40),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    with _errors():
        run_demo(click.echo, interactive=interactive, timeout=timeout)


def _add_plugin_commands() -> None:
    """Let installed plugins add subcommands (the core never imports them by name)."""
    try:
        manager = _installed()
    except GatewayError as exc:  # a broken plugin must not take the CLI down
        click.echo(f"warning: plugins not loaded: {exc}", err=True)
        return
    manager.plugin_manager.hook.gateway_cli_commands(cli=cli)


def _logs_to_stderr() -> None:
    """The CLI is an application: its log lines go to stderr so stdout stays the command's output."""
    import structlog  # noqa: PLC0415

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``gateway`` script."""
    _logs_to_stderr()
    _add_plugin_commands()
    cli.main(args=list(argv) if argv is not None else None, prog_name="gateway")


if __name__ == "__main__":
    main()
