"""The `gateway` CLI, run as a user runs it: a fresh interpreter, real entry points, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest


def gateway(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway_core.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        """
[gateways.cards]
provider = "fake"
currencies = ["EUR", "HUF"]
priority = 10
[gateways.cards.settings]
test_mode = true
minimums = { EUR = "0.50", HUF = "175" }

[gateways.wallet]
provider = "fake"
currencies = ["EUR"]
priority = 20
[gateways.wallet.settings]
test_mode = true
minimums = { EUR = "1.00" }
""",
        encoding="utf-8",
    )
    return path


def test_demo_runs_the_whole_flow_and_exits_zero() -> None:
    done = gateway("demo")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for expected in (
        "Checkout fake_cs_",
        "same checkout (True), payments made: 1",
        "Webhook verified: payment.succeeded",
        "recognised as duplicate",
        "Tampered webhook refused",
        "Refunded 500.00 HUF",
        "Webhook verified: refund.succeeded",
        "Final state: partially_refunded; captured 1500.00 HUF, refunded 500.00 HUF",
    ):
        assert expected in out


def test_plugins_lists_installed_providers_as_json() -> None:
    done = gateway("plugins", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    fake = next(p for p in data["providers"] if p["provider"] == "fake")
    assert fake["distribution"] == "gateway-core"
    assert fake["live"] is False
    assert fake["currencies"]["JPY"] == {"exponent": 0, "step": 1, "minimum": None, "maximum": None}
    assert "hosted_checkout" in fake["features"]


def test_plugins_table_names_distribution_and_version() -> None:
    done = gateway("plugins")
    assert done.returncode == 0, done.stderr
    assert "gateway-core 0.1.0" in done.stdout
    assert "provider" in done.stdout.splitlines()[1]


def test_route_with_config_gives_order_and_reasons(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    done = gateway("--config", str(config), "route", "--amount", "1500", "--currency", "HUF", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "basis": "configured gateways",
        "amount": "1500.00",
        "currency": "HUF",
        "eligible": ["cards"],
        "excluded": [{"gateway": "wallet", "reason": "HUF not offered"}],
    }
    below = gateway("--config", str(config), "route", "--amount", "0.75", "--currency", "EUR")
    assert below.returncode == 0
    assert "1. cards" in below.stdout
    assert "wallet: 0.75 EUR is below the 1.00 EUR minimum" in below.stdout


def test_route_reads_gateway_toml_from_the_working_directory(tmp_path: Path) -> None:
    write_config(tmp_path)
    done = gateway("route", "--amount", "0.30", "--currency", "EUR", cwd=tmp_path)
    assert done.returncode == 3  # no eligible gateway: a script can tell
    assert "no eligible gateway" in done.stdout
    assert "cards: 0.30 EUR is below the 0.50 EUR minimum" in done.stdout
    assert done.stderr == ""


def test_route_with_no_eligible_gateway_exits_three_with_json_too(tmp_path: Path) -> None:
    write_config(tmp_path)
    done = gateway("route", "--amount", "0.30", "--currency", "EUR", "--json", cwd=tmp_path)
    assert done.returncode == 3
    data = json.loads(done.stdout)
    assert data["eligible"] == []
    assert {e["gateway"] for e in data["excluded"]} == {"cards", "wallet"}
    found = gateway("route", "--amount", "5", "--currency", "EUR", "--json", cwd=tmp_path)
    assert found.returncode == 0
    assert json.loads(found.stdout)["eligible"] == ["cards", "wallet"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("route", "--amount", "1e3", "--currency", "HUF"), "'1e3' is not a plain decimal amount"),
        (("route", "--amount", "10", "--currency", "eur"), "did you mean 'EUR'?"),
        (("route", "--amount", "10.001", "--currency", "EUR"), "more decimals than EUR allows"),
        (("check", "nope"), "no configuration"),
    ],
)
def test_errors_are_one_clear_line_and_exit_one(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    done = gateway(*args, cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("route",), "Missing option '--amount' (see 'gateway route --help')"),
        (("route", "--amout", "3"), "No such option '--amout'"),
        (("route", "--amount", "1", "--currency", "EUR", "--feature", "nope"), "Invalid value for '--feature'"),
        (("routes",), "No such command 'routes'"),
        (("demo", "--timeout", "soon"), "'soon' is not a valid integer"),
        (("--nope",), "No such option '--nope' (see 'gateway --help')"),
    ],
)
def test_usage_errors_are_one_line_and_exit_two(tmp_path: Path, args: tuple[str, ...], said: str) -> None:
    done = gateway(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert said in lines[0]
    assert "--help" in lines[0]


def test_usage_errors_with_json_are_json(tmp_path: Path) -> None:
    done = gateway("route", "--json", "--amout", "3", cwd=tmp_path)
    assert done.returncode == 2
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "usage"
    assert "No such option '--amout'" in error["message"]
    assert done.stderr == ""


def test_help_is_not_an_error(tmp_path: Path) -> None:
    done = gateway("route", "--help", cwd=tmp_path)
    assert done.returncode == 0
    assert "--amount" in done.stdout
    assert "Exits 3 when no gateway is eligible" in done.stdout


def test_json_errors_are_json(tmp_path: Path) -> None:
    done = gateway("route", "--amount", "abc", "--currency", "EUR", "--json", cwd=tmp_path)
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"]["code"] == "invalid_money"


def test_check_reports_each_finding(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    done = gateway("--config", str(config), "check", "cards")
    assert done.returncode == 0, done.stderr
    assert "ok  test mode: fake gateway 'cards' takes no real money" in done.stdout
    assert "ok  webhook secret: from fake default" in done.stdout


def test_check_of_an_unknown_gateway_names_the_configured_ones(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    done = gateway("--config", str(config), "check", "nope")
    assert done.returncode == 1
    assert "no gateway named 'nope' (configured: cards, wallet)" in done.stderr


def test_a_broken_config_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "gateway.toml"
    bad.write_text(
        '[gateways.x]\nprovider = "fake"\n[gateways.x.settings]\napi_key = "sk_live_literal"\n', encoding="utf-8"
    )
    done = gateway("route", "--amount", "10", "--currency", "EUR", cwd=tmp_path)
    assert done.returncode == 1
    assert "looks like a secret" in done.stderr
    assert "sk_live_literal" not in done.stderr


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda tmp: tmp, "is a directory"),
        (lambda tmp: tmp / "missing.toml", "not found"),
        (lambda tmp: write_config(tmp) / "x.toml", "Not a directory"),
        (lambda tmp: write_bytes(tmp / "latin1.toml", b"[gateways.caf\xe9]\n"), "is not UTF-8 text"),
        (lambda tmp: write_bytes(tmp / "bad.toml", b"[gateways.x\n"), "is not valid TOML"),
    ],
)
@pytest.mark.parametrize("command", [("route", "--amount", "10", "--currency", "EUR"), ("check", "cards")])
def test_an_unreadable_config_is_one_line_and_exit_one(
    tmp_path: Path, make: Callable[[Path], Path], said: str, command: tuple[str, ...]
) -> None:
    done = gateway("--config", str(make(tmp_path)), *command, cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: configuration file ")
    assert said in lines[0]


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_log_lines_go_to_stderr_so_json_stays_parseable(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    # The check logs gateway.check.completed; with --json stdout must still be one JSON document.
    done = gateway("--config", str(config), "-v", "check", "cards", "--json")
    assert done.returncode == 0, done.stderr
    assert [r["name"] for r in json.loads(done.stdout)] == ["test mode", "webhook secret"]
    assert "gateway.check.completed" in done.stderr
    quiet = gateway("--config", str(config), "check", "cards", "--json")
    assert quiet.returncode == 0
    assert quiet.stderr == ""  # without --verbose no log line at all


def test_with_a_config_an_error_is_still_one_line(tmp_path: Path) -> None:
    # The refusal is logged (gateway.check.refused), but only with --verbose: the error stays one line.
    config = write_config(tmp_path)
    done = gateway("--config", str(config), "check", "zz")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["error: no gateway named 'zz' (configured: cards, wallet)"]
    verbose = gateway("--config", str(config), "--verbose", "check", "zz")
    assert verbose.returncode == 1
    assert "gateway.check.refused" in verbose.stderr
    assert verbose.stderr.strip().splitlines()[-1] == "error: no gateway named 'zz' (configured: cards, wallet)"


def test_demo_json_is_a_list_of_steps() -> None:
    done = gateway("demo", "--json")
    assert done.returncode == 0, done.stderr
    steps = json.loads(done.stdout)
    assert [s["step"] for s in steps] == list(range(1, len(steps) + 1))
    texts = [s["text"] for s in steps]
    assert any(t.startswith("Tampered webhook refused") for t in texts)
    assert any(t.startswith("Refunded 500.00 HUF") for t in texts)
    assert texts[-1] == "Demo complete: no keys, no network, nothing live."
    route_huf = next(s for s in steps if s["text"].startswith("Route 1500.00 HUF"))
    assert route_huf["details"] == ["excluded wallet: HUF not offered"]


def test_route_without_config_says_it_uses_declared_capabilities(tmp_path: Path) -> None:
    done = gateway("route", "--amount", "10", "--currency", "EUR", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["basis"].startswith("what installed providers declare")
    assert "fake" not in data["eligible"]  # the fake is never routed to unless configured
    # ... and says so, as every gateway left out gets its reason
    assert {
        "gateway": "fake",
        "reason": "not live: a test provider, routed to only when gateway.toml configures it",
    } in (data["excluded"])
    text = gateway("route", "--amount", "10", "--currency", "EUR", cwd=tmp_path)
    assert "x  fake: not live: a test provider" in text.stdout


def test_a_plugin_failing_to_add_commands_does_not_take_the_cli_down(tmp_path: Path) -> None:
    # An installed distribution whose gateway_cli_commands raises: the core's commands still work.
    (tmp_path / "broken_cli_plugin.py").write_text(
        "from gateway_core.hookspecs import hookimpl\n\n"
        "@hookimpl\n"
        "def gateway_cli_commands(cli):\n"
        "    raise RuntimeError('secret sk_live_do_not_print')\n",
        encoding="utf-8",
    )
    info = tmp_path / "broken_cli_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-cli-plugin\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[gateway_core]\nbroken_cli = broken_cli_plugin\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    listed = gateway("plugins", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert {"fake"} <= {row["provider"] for row in json.loads(listed.stdout)["providers"]}
    unknown = gateway("frobnicate", env=env)
    assert unknown.returncode == 2
    assert "broken_cli" in unknown.stderr
    assert "sk_live_do_not_print" not in unknown.stderr + unknown.stdout
