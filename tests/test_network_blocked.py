"""The suite runs with the network blocked: only loopback is reachable (pyproject's pytest addopts)."""

from __future__ import annotations

import socket

import pytest


def test_a_connection_off_loopback_is_refused_by_the_guard() -> None:
    # 203.0.113.0/24 is TEST-NET-3 (RFC 5737): without the guard this would time out instead.
    with socket.socket() as sock:
        sock.settimeout(1)
        with pytest.raises(RuntimeError, match="Network is disabled"):
            sock.connect(("203.0.113.7", 443))


def test_loopback_stays_reachable() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=1):
            pass
