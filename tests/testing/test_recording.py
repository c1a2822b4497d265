"""The shared recording config: real cassettes written by real requests to a 127.0.0.1 server.

The server plays a provider that echoes credentials back, the worst case for a cassette.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import vcr  # type: ignore[import-untyped]
from vcr.errors import CannotOverwriteExistingCassetteException  # type: ignore[import-untyped]
from vcr.request import Request  # type: ignore[import-untyped]

from gateway_core.testing.recording import REDACTED, VARIES, scrub_text, vcr_config
from tests.testing.local_server import local_http_server

pytest_plugins = ["pytester"]

API_KEY = "sk_test_51AbCdEfGhIjKlMnOp"
ACCESS_TOKEN = "A21AAFakeAccessToken0123456789abcdef"
OPAQUE_SECRET = "opaque-env-secret-7d1e"  # no recognizable shape: only secrets= can catch it


def response_body(path: str) -> dict[str, Any]:
    return {
        "path": path,
        "access_token": ACCESS_TOKEN,
        "refresh_token": "r3fr3sh-0123",
        "payment_intent": {"id": "pi_123", "client_secret": "pi_123_secret_abc", "amount": 1250},
        "echo": f"you sent {API_KEY} and {OPAQUE_SECRET}",
        "webhook": {"endpoint_secret": "whsec_abcdef123456"},
    }


class ProviderHandler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.headers.get("Authorization") != f"Bearer {API_KEY}":
            self.send_response(401)
            self.end_headers()
            return
        body = json.dumps(response_body(self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", f"session={OPAQUE_SECRET}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def provider() -> Iterator[str]:
    with local_http_server(ProviderHandler) as base_url:
        yield base_url


def call(base_url: str, path: str, idempotency_key: str, body: bytes) -> dict[str, Any]:
    request = urllib.request.Request(
        base_url + path,
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {API_KEY}",
            "User-Agent": "gateway-core-stripe/0.1 (host build-42.corp.example)",
            "X-Stripe-Client-User-Agent": json.dumps({"uname": "Linux build-42.corp.example"}),
            "Idempotency-Key": idempotency_key,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    with urllib.request.urlopen(request) as response:
        payload: dict[str, Any] = json.loads(response.read())
        return payload


FORM = f"amount=1250&currency=eur&card[number]=4242424242424242&card[cvc]=123&note={API_KEY}".encode()


def record(base_url: str, cassette: Path) -> dict[str, Any]:
    recorder = vcr.VCR(**vcr_config(secrets=[OPAQUE_SECRET, None, ""]), record_mode="once")
    with recorder.use_cassette(str(cassette)):
        return call(base_url, "/v1/payment_intents?expand=latest_charge", "key-recorded-1", FORM)


def test_secrets_are_scrubbed_before_the_cassette_is_written(provider: str, tmp_path: Path) -> None:
    cassette = tmp_path / "payment.yaml"
    live = record(provider, cassette)
    assert live["access_token"] == ACCESS_TOKEN  # the code under test saw the real response

    text = cassette.read_text()
    for secret in (API_KEY, ACCESS_TOKEN, OPAQUE_SECRET, "r3fr3sh-0123", "pi_123_secret_abc", "whsec_abcdef123456"):
        assert secret not in text
    for card in ("4242424242424242", "cvc%5D=123"):
        assert card not in text
    assert "build-42" not in text  # user-agent details
    assert "set-cookie" not in text.lower()
    assert REDACTED in text
    assert "key-recorded-1" in text  # idempotency keys are not secret; kept for reading the cassette
    assert "expand=latest_charge" in text
    assert "1250" in text  # the amounts stay: scrubbing is targeted


def test_replay_ignores_idempotency_keys_and_needs_no_server(provider: str, tmp_path: Path) -> None:
    cassette = tmp_path / "payment.yaml"
    record(provider, cassette)
    replayer = vcr.VCR(**vcr_config(), record_mode="none")
    with replayer.use_cassette(str(cassette)) as played:
        # Another idempotency key (as every new run makes), the same request: the same interaction.
        replayed = call(provider, "/v1/payment_intents?expand=latest_charge", "key-of-another-run", FORM)
        assert played.play_count == 1
    assert replayed["path"] == "/v1/payment_intents?expand=latest_charge"
    assert replayed["access_token"] == REDACTED
    assert replayed["payment_intent"] == {"id": "pi_123", "client_secret": REDACTED, "amount": 1250}

    with replayer.use_cassette(str(cassette)), pytest.raises(CannotOverwriteExistingCassetteException):
        call(provider, "/v1/refunds", "key-3", b"")  # not recorded: replay refuses rather than calling out


def test_replay_refuses_another_body_but_not_another_nonce(provider: str, tmp_path: Path) -> None:
    cassette = tmp_path / "payment.yaml"
    body = FORM + b"&nonce=first-run-7f&metadata[timestamp]=1700000000"
    recorder = vcr.VCR(**vcr_config(), record_mode="once")
    with recorder.use_cassette(str(cassette)):
        call(provider, "/v1/payment_intents", "k-1", body)
    text = cassette.read_text()
    assert "first-run-7f" not in text  # what differs per run is not kept to match on
    assert VARIES in text

    replayer = vcr.VCR(**vcr_config(), record_mode="none")
    next_run = FORM + b"&nonce=second-run-9a&metadata[timestamp]=1800000000"
    with replayer.use_cassette(str(cassette)) as played:
        call(provider, "/v1/payment_intents", "k-2", next_run)
        assert played.play_count == 1
    for changed in (body.replace(b"amount=1250", b"amount=125000"), body.replace(b"currency=eur", b"currency=jpy")):
        with replayer.use_cassette(str(cassette)), pytest.raises(CannotOverwriteExistingCassetteException):
            call(provider, "/v1/payment_intents", "k-3", changed)  # another amount is another request

    # A plugin author can leave bodies out of matching altogether.
    loose = vcr.VCR(**vcr_config(match_body=False), record_mode="none")
    with loose.use_cassette(str(cassette)) as played:
        call(provider, "/v1/payment_intents", "k-4", b"amount=1")
        assert played.play_count == 1


def test_a_volatile_field_named_by_the_plugin_is_ignored(provider: str, tmp_path: Path) -> None:
    cassette = tmp_path / "order.yaml"
    config = vcr_config(volatile_fields=["invoice_id"])
    with vcr.VCR(**config, record_mode="once").use_cassette(str(cassette)):
        call(provider, "/v2/checkout/orders", "k-1", b"amount=1250&invoice_id=inv-run-1")
    with vcr.VCR(**config, record_mode="none").use_cassette(str(cassette)) as played:
        call(provider, "/v2/checkout/orders", "k-2", b"amount=1250&invoice_id=inv-run-2")
        assert played.play_count == 1
    with (
        vcr.VCR(**vcr_config(), record_mode="none").use_cassette(str(cassette)),
        pytest.raises(CannotOverwriteExistingCassetteException),
    ):
        call(provider, "/v2/checkout/orders", "k-3", b"amount=1250&invoice_id=inv-run-3")


def test_a_cassette_recorded_against_one_port_replays_on_another(tmp_path: Path) -> None:
    """Stand-ins listen on a free port, new each run: the port is not part of a request's identity."""
    cassette = tmp_path / "payment.yaml"
    with local_http_server(ProviderHandler) as first_run:
        record(first_run, cassette)
    with local_http_server(ProviderHandler) as second_run:
        assert second_run != first_run
        with vcr.VCR(**vcr_config(), record_mode="none").use_cassette(str(cassette)) as played:
            call(second_run, "/v1/payment_intents?expand=latest_charge", "key-2", FORM)
            assert played.play_count == 1


def test_the_config_leaves_the_record_mode_to_the_command_line() -> None:
    assert "record_mode" not in vcr_config()
    assert "port" not in vcr_config()["match_on"]
    assert "body" in vcr_config()["match_on"]
    assert "body" not in vcr_config(match_body=False)["match_on"]


STRIPE_CASSETTES = sorted((Path(__file__).parents[1] / "stripe_gateway" / "cassettes").rglob("*.yaml"))


@pytest.mark.parametrize("cassette", STRIPE_CASSETTES, ids=lambda p: p.stem)
def test_the_recorded_stripe_cassettes_match_under_the_shared_config(cassette: Path) -> None:
    """Every request recorded in tests/stripe_gateway/cassettes, sent again (to another port), finds its answer."""
    with vcr.VCR(**vcr_config(), record_mode="none").use_cassette(str(cassette)) as played:
        recorded = list(played.requests)
        assert recorded
        for request in recorded:
            again = Request(request.method, re.sub(r":\d+/", ":9/", request.uri), request.body, request.headers)
            assert played.can_play_response_for(again), f"{request.method} {request.path} no longer matches"


def test_scrub_text_catches_secret_shapes() -> None:
    text = "sk_live_abc123 rk_test_Z9 whsec_q_1 A21AAaaaaaaaaaaaaaaaaaaaaaaaaa pk_test_public ok"
    assert scrub_text(text) == f"{REDACTED} {REDACTED} {REDACTED} {REDACTED} pk_test_public ok"


def test_ci_replays_with_the_network_blocked(provider: str, pytester: pytest.Pytester) -> None:
    """The plugin author's setup, run as CI runs it: record once, then replay with --block-network."""
    pytester.makeconftest(
        """
import pytest
from tests.testing.local_server import local_http_server
from gateway_core.testing.recording import vcr_config as recording_config

@pytest.fixture(scope="module")
def vcr_config():
    return recording_config()
"""
    )
    pytester.makepyfile(
        test_recorded=f"""
import json, socket, urllib.request
import pytest

def post(path):
    request = urllib.request.Request("{provider}" + path, data=b"{{}}", method="POST",
                                     headers={{"Authorization": "Bearer {API_KEY}"}})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())

@pytest.mark.vcr
def test_recorded():
    assert post("/v1/charges")["payment_intent"]["amount"] == 1250

@pytest.mark.block_network
def test_unrecorded_network_is_blocked():
    with socket.socket() as sock, pytest.raises(Exception, match="Network is disabled"):
        sock.connect(("127.0.0.1", {provider.rsplit(":", 1)[1]}))
"""
    )
    # Recording reaches the local provider; the block_network test is blocked even then.
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "--record-mode=once").assert_outcomes(passed=2)
    cassettes = list(pytester.path.glob("cassettes/**/*.yaml"))
    assert len(cassettes) == 1
    assert API_KEY not in cassettes[0].read_text()
    # CI: replay only, every socket blocked (the provider is still up: it must not be used).
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--record-mode=none", "--block-network")
    result.assert_outcomes(passed=2)


class VersionedHandler(BaseHTTPRequestHandler):
    """A provider whose answer says which run it came from."""

    version = "v1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"version": self.version}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


# The test reads the server's URL and the answer it expects from run.json: a test module rewritten
# between in-process runs could be imported from a stale bytecode cache. It asserts *after* the
# ``with``: vcrpy's replayed response returns True from close(), so leaving the ``with`` block
# swallows an exception raised inside it.
RECORDED_TEST = """
import json, pathlib, urllib.request
import pytest

@pytest.mark.vcr
def test_recorded():
    run = json.loads((pathlib.Path(__file__).parent / "run.json").read_text())
    request = urllib.request.Request(run["url"] + "/v1/things", data=b"amount=5", method="POST")
    with urllib.request.urlopen(request) as response:
        body = response.read()
    assert json.loads(body)["version"] == run["version"]
"""


def test_the_command_lines_record_mode_re_records(pytester: pytest.Pytester) -> None:
    """``--record-mode=rewrite`` re-records with the shared config; no flag replays what was recorded."""
    pytester.makeconftest(
        """
import pytest
from gateway_core.testing.recording import vcr_config as recording_config

@pytest.fixture(scope="module")
def vcr_config():
    return recording_config()
"""
    )

    def run(version: str, *args: str) -> pytest.RunResult:
        VersionedHandler.version = version
        with local_http_server(VersionedHandler) as url:
            (pytester.path / "run.json").write_text(json.dumps({"url": url, "version": version}))
            return pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)

    pytester.makepyfile(test_recorded=RECORDED_TEST)
    run("v1", "--record-mode=once").assert_outcomes(passed=1)
    (cassette,) = pytester.path.glob("cassettes/**/*.yaml")
    assert '"version": "v1"' in cassette.read_text()
    run("v2", "--record-mode=rewrite").assert_outcomes(passed=1)  # the flag wins: recorded anew
    assert '"version": "v2"' in cassette.read_text()
    # No flag: replay, every socket blocked; the server (another port again) answers v3, unused.
    run("v2", "--block-network").assert_outcomes(passed=1)
    run("v3", "--block-network").assert_outcomes(failed=1)
