"""What the operating system says this process holds open: its TCP connections to a port, from /proc.

The plugins' close tests ask the kernel, not the HTTP library: a connection is open while this
process has a file descriptor on a TCP socket whose remote end is ``127.0.0.1:port``, in any
state (one the server has closed, ``CLOSE_WAIT``, still holds the descriptor: still a leak).
Sockets are told apart by inode, so a test follows the ones it opened, whatever other tests
left behind closes meanwhile.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

PROC_TCP = Path("/proc/net/tcp")
PROC_FDS = Path("/proc/self/fd")


def connections_to(port: int) -> frozenset[str]:
    """The TCP sockets (inodes) this process holds open to ``127.0.0.1:port`` (Linux; skips elsewhere)."""
    if not PROC_TCP.exists() or not PROC_FDS.exists():
        pytest.skip("counting open sockets needs Linux's /proc")
    inodes = set()
    for fd in os.listdir(PROC_FDS):
        try:
            target = os.readlink(PROC_FDS / fd)
        except OSError:  # closed between the listing and the read
            continue
        if target.startswith("socket:["):
            inodes.add(target.removeprefix("socket:[").removesuffix("]"))
    found = set()
    for line in PROC_TCP.read_text().splitlines()[1:]:
        fields = line.split()
        remote, inode = fields[2], fields[9]
        address, _, remote_port = remote.partition(":")
        # 0100007F: 127.0.0.1 as /proc writes it (little-endian hex)
        if address == "0100007F" and int(remote_port, 16) == port and inode in inodes:
            found.add(inode)
    return frozenset(found)


def opened_since_now(url: str) -> Callable[[], int]:
    """A counter: how many of the connections to ``url``'s port this process opens from now on are open."""
    port = urlsplit(url).port
    assert port is not None, f"{url} names no port"
    before = connections_to(port)
    return lambda: len(connections_to(port) - before)
