"""``gateway check`` run as a user runs it: the ``gateway`` script, a gateway.toml, the entry point.

The requests leave through the plugin's real HTTP client, not the test seam, so the stand-in runs
with ``--spec-check`` and validates each one against Stripe's spec itself.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway_core.cli import cli
from tests.core.sockets import opened_since_now
from tests.stripe_gateway.conftest import StandIn, start_process, stop_process

GATEWAY = Path(sys.executable).with_name("gateway")


@pytest.fixture(scope="module")
def checked_standin() -> Iterator[StandIn]:
    process, line = start_process([sys.executable, "-m", "tests.stripe_gateway.standin", "--spec-check"], "PORT ")
    try:
        yield StandIn(process, f"http://127.0.0.1:{int(line.split()[1])}")
    finally:
        stop_process(process)


def results(done: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    # The core's own log line goes to stdout too (structlog's default); the JSON is the array.
    found: list[dict[str, object]] = json.loads(done.stdout[done.stdout.index("[\n") :])
    return found


def run_check(tmp_path: Path, standin: StandIn, key: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "gateway.toml"
    config.write_text(
        "[gateways.stripe_eu]\n"
        'provider = "stripe"\n'
        "[gateways.stripe_eu.settings]\n"
        'api_key = { env = "STRIPE_EU_API_KEY" }\n'
        f'api_base = "{standin.url}"\n'
    )
    env = {**os.environ, "STRIPE_EU_API_KEY": key}
    return subprocess.run(
        [str(GATEWAY), "--config", str(config), "check", "stripe_eu", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_check_passes_for_a_full_key(tmp_path: Path, checked_standin: StandIn) -> None:
    before = len(checked_standin.stats()["violations"])
    done = run_check(tmp_path, checked_standin, "sk_test_cli_full")
    assert done.returncode == 0, done.stderr
    assert [r["ok"] for r in results(done)] == [True] * 6  # credentials and five write permissions
    assert len(checked_standin.stats()["violations"]) == before


def test_check_names_the_missing_permission_and_fails(tmp_path: Path, checked_standin: StandIn) -> None:
    before = len(checked_standin.stats()["violations"])
    done = run_check(tmp_path, checked_standin, "rk_test_no_checkout")
    assert done.returncode == 1
    failed = [r for r in results(done) if not r["ok"]]
    assert failed == [
        {
            "name": "permission: Checkout Sessions write",
            "ok": False,
            "detail": "missing: the key lacks Checkout Sessions write",
        }
    ]
    assert "rk_test_no_checkout" not in done.stdout + done.stderr
    assert len(checked_standin.stats()["violations"]) == before


def test_check_passes_for_a_key_without_products_write_and_says_so(tmp_path: Path, checked_standin: StandIn) -> None:
    """The key works for everything the plugin sends: exit 0, the gap reported as advisory."""
    done = run_check(tmp_path, checked_standin, "rk_test_no_products")
    assert done.returncode == 0, done.stdout + done.stderr
    found = results(done)
    assert all(r["ok"] for r in found)
    products = next(r for r in found if r["name"] == "permission: Products write")
    assert str(products["detail"]).startswith("advisory, not a failure: missing: the key lacks Products write")


def test_check_run_in_process_leaves_no_connection_open(
    tmp_path: Path, checked_standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tool (or a test) running the command in its own process gets its sockets back when it returns.

    The check's manager is closed, not left to the garbage collector (disabled here, so that only
    a close can release the connection the check pooled).
    """
    config = tmp_path / "gateway.toml"
    config.write_text(
        "[gateways.stripe_eu]\n"
        'provider = "stripe"\n'
        "[gateways.stripe_eu.settings]\n"
        'api_key = { env = "STRIPE_EU_API_KEY" }\n'
        f'api_base = "{checked_standin.url}"\n'
    )
    monkeypatch.setenv("STRIPE_EU_API_KEY", "sk_test_cli_full")
    opened = opened_since_now(checked_standin.url)
    gc.disable()
    try:
        done = CliRunner().invoke(cli, ["--config", str(config), "check", "stripe_eu", "--json"])
        left = opened()
    finally:
        gc.enable()
    assert done.exit_code == 0, done.output
    assert left == 0  # was one: the manager was never closed


def test_the_stand_ins_spec_check_refuses_an_unknown_parameter(checked_standin: StandIn) -> None:
    request = urllib.request.Request(
        checked_standin.url + "/v1/checkout/sessions",
        data=b"mode=payment&success_url=https%3A%2F%2Fa.example%2F&colour=red",
        headers={"Authorization": "Bearer sk_test_cli_full"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 400
    info.value.close()
    assert "unknown parameter 'colour'" in checked_standin.stats()["violations"][-1]
