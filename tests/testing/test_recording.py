"""The shared recording config: real cassettes written by real requests to a 127.0.0.1 server.

The server plays a provider that echoes credentials back, the worst case for a cassette.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import vcr  # type: ignore[import-untyped]
from vcr.errors import CannotOverwriteExistingCassetteException  # type: ignore[import-untyped]

from gateway_core.testing.recording import REDACTED, scrub_text, vcr_config
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
        # Another idempotency key and body (as every new run makes): still the same interaction.
        replayed = call(provider, "/v1/payment_intents?expand=latest_charge", "key-of-another-run", b"amount=1250")
        assert played.play_count == 1
    assert replayed["path"] == "/v1/payment_intents?expand=latest_charge"
    assert replayed["access_token"] == REDACTED
    assert replayed["payment_intent"] == {"id": "pi_123", "client_secret": REDACTED, "amount": 1250}

    with replayer.use_cassette(str(cassette)), pytest.raises(CannotOverwriteExistingCassetteException):
        call(provider, "/v1/refunds", "key-3", b"")  # not recorded: replay refuses rather than calling out


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
