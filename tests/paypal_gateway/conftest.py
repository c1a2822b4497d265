"""Fixtures for the PayPal plugin's tests: the local stand-in, gateways configured against it, certificates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import pytest

from gateway_core.config import DeploymentConfig, GatewaySettings, Secret
from gateway_core.manager import GatewayManager
from tests.paypal_gateway import spec

HERE = Path(__file__).parent
# Test-only credentials of the local stand-in; they must never show up in logs, errors or results.
CLIENT_ID = "standin-client-id-7f3a9c"
CLIENT_SECRET = "standin-client-secret-e81b44d2"
WEBHOOK_ID = "8PT597110X687430LKGECATA"
GATEWAY = "paypal_test"
#: ``allowed_hosts`` for ``pytest.mark.block_network`` that matches no host, not even loopback:
#: a test marked with it proves it reaches no server, the stand-in included.
NO_HOST = ["(?!)"]


@attrs.frozen
class StandIn:
    """The running stand-in: its base URL, its PID, and its control endpoints."""

    base_url: str
    pid: int

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.base_url}/_standin/{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def reset(self) -> None:
        self._call("POST", "reset", {})

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "requests")
        return result

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = self._call("GET", "counts")
        return result

    def approve(self, order_id: str, capture_outcome: str = "COMPLETED") -> None:
        self._call("POST", f"orders/{order_id}/approve", {"capture_outcome": capture_outcome})

    def fault(
        self, method: str, path_contains: str, kind: str, *, count: int = 1, seconds: float = 1.0, **extra: Any
    ) -> None:
        """Inject ``kind`` into the next ``count`` matching requests.

        ``extra`` goes with it: ``status``, ``body`` and ``content_type`` of a ``garbage_after`` answer
        (sent after processing), ``status`` and ``body`` of a ``refuse`` answer (sent instead of processing);
        ``drop``, the fields a ``short_after`` answer (the real 2xx answer) leaves out; ``retry_after``,
        the ``Retry-After`` header of a ``429``; ``stall``, the seconds a ``cut_after`` body stops for.
        """
        self._call(
            "POST",
            "faults",
            {
                "method": method,
                "path_contains": path_contains,
                "kind": kind,
                "count": count,
                "seconds": seconds,
                **extra,
            },
        )

    def expire_authorization(self, authorization_id: str) -> None:
        """The authorization's honor period ends: PayPal reports it ``EXPIRED``."""
        self._call("POST", f"authorizations/{authorization_id}/expire", {})

    def config(self, **values: Any) -> None:
        self._call("POST", "config", values)

    def settle_refund(self, refund_id: str, status: str) -> None:
        """A PENDING refund (config ``refund_status="PENDING"``) becomes ``COMPLETED``, ``FAILED`` or ``CANCELLED``."""
        self._call("POST", f"refunds/{refund_id}/settle", {"status": status})

    def forget_request_ids(self) -> None:
        """Forget every stored answer, as PayPal does once a PayPal-Request-Id's retention window has passed."""
        self._call("POST", "request-ids/forget", {})

    def revoke_tokens(self) -> None:
        """Refuse every token issued so far (what a credential rotation does); orders and payments stay."""
        self._call("POST", "tokens/revoke", {})


@pytest.fixture(scope="session")
def standin_process() -> Iterator[StandIn]:
    process = subprocess.Popen(
        [sys.executable, str(HERE / "standin.py"), CLIENT_ID, CLIENT_SECRET, WEBHOOK_ID],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield StandIn(f"http://127.0.0.1:{port}", process.pid)
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


#: The two POSTs that change nothing at PayPal and so carry no PayPal-Request-Id.
UNKEYED_POSTS = frozenset({"/v1/oauth2/token", "/v1/notifications/verify-webhook-signature"})


def check_requests(requests: list[dict[str, Any]]) -> None:
    """Every request's headers and body validate against PayPal's spec; every POST that acts carries PayPal-Request-Id."""
    for request in requests:
        method, path = request["method"], request["path"]
        if path == "/v1/oauth2/token":
            continue
        spec.validate_headers(method, path, request["headers"])
        spec.validate_request(method, path, request["body"])
        if method == "POST" and path not in UNKEYED_POSTS:
            assert request["request_id"], f"POST {path} was sent without PayPal-Request-Id"


def observe(manager: GatewayManager, gateway: str = GATEWAY) -> list[Any]:
    """Every HTTP request the gateway sends from now on, as ``requests.PreparedRequest`` objects.

    A response hook on the client's ``requests.Session`` (the SDK's HTTP-client seam) sees what
    actually went out, whether a server, a stand-in or a cassette answered it.
    """
    sent: list[Any] = []
    client = manager.gateway_object(gateway).client  # type: ignore[attr-defined]
    client.session.hooks["response"].append(lambda response, *_args, **_kwargs: sent.append(response.request))
    return sent


def check_sent(sent: list[Any]) -> None:
    """What :func:`check_requests` checks, for requests seen by :func:`observe`."""
    for request in sent:
        path = urlsplit(request.url).path
        if path == "/v1/oauth2/token":
            continue
        spec.check_request(request.method, path, dict(request.headers), request.body)
        if request.method == "POST" and path not in UNKEYED_POSTS:
            assert request.headers.get("PayPal-Request-Id"), f"POST {path} was sent without PayPal-Request-Id"


@pytest.fixture
def standin(standin_process: StandIn) -> Iterator[StandIn]:
    """The stand-in, emptied for this test; afterwards every request the test sent is checked against the spec."""
    standin_process.reset()
    yield standin_process
    check_requests(standin_process.requests())


def paypal_settings(standin: StandIn, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "client_id": Secret(CLIENT_ID, source="test"),
        "client_secret": Secret(CLIENT_SECRET, source="test"),
        "environment": "sandbox",
        "base_url": standin.base_url,
        "webhook_id": WEBHOOK_ID,
        "timeout": 5,
        "retry_backoff": 0,
    }
    settings.update(overrides)
    return settings


@pytest.fixture
def make_manager(standin: StandIn) -> Callable[..., GatewayManager]:
    """A manager with one PayPal gateway on the stand-in, loaded through the real entry point."""

    def make(**overrides: Any) -> GatewayManager:
        config = DeploymentConfig([GatewaySettings(GATEWAY, "paypal", paypal_settings(standin, **overrides))])
        return GatewayManager(config)

    return make


@pytest.fixture
def manager(make_manager: Callable[..., GatewayManager]) -> GatewayManager:
    return make_manager()
