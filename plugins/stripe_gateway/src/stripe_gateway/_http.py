"""The SDK's HTTP plumbing: the ``*_async`` methods' client, and the sync client's sessions.

Imported only when a gateway's client is built: importing this module imports the ``stripe`` SDK
(it subclasses ``stripe.HTTPXClient``), so :mod:`stripe_gateway.gateway` imports it lazily, from
the code that builds a ``StripeClient``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import weakref
from collections.abc import Mapping
from typing import Any

import requests
import stripe

__all__ = ["DEFAULT_TIMEOUT", "AsyncHTTPClient", "ThreadSessions", "close_session"]

DEFAULT_TIMEOUT = 30.0


class AsyncHTTPClient(stripe.HTTPXClient):
    """httpx for the SDK's ``*_async`` methods, with one short-lived connection per request.

    The SDK's own ``HTTPXClient`` keeps a pooled ``httpx.AsyncClient`` for its lifetime; pooled
    connections belong to the event loop that opened them, and a gateway is closed
    (``gateway_close``) on a worker thread, perhaps after that loop has ended, so they would
    outlive their loop. Opening and closing a client per request keeps every connection inside
    the ``await`` that made it, and leaves nothing for ``gateway_close`` to do here.

    ``HTTPXClient.__init__`` is skipped on purpose: it builds that pooled ``AsyncClient`` (and a
    TLS context) at once, for every gateway, even one that only ever runs sync operations. Here
    nothing is built until the first async request, which builds the TLS context (once, under a
    lock) and imports what httpx loads only when it first connects (httpcore, and anyio's
    asyncio backend: a few tenths of a second) on a worker thread, not on the event loop.
    """

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        stripe.HTTPClient.__init__(self)  # not HTTPXClient's: see the class docstring
        self._timeout = timeout
        self._client = None
        self._ssl: ssl.SSLContext | None = None
        self._ssl_lock = threading.Lock()
        # Set once _prepare has finished, not when it starts (_ssl is set early in it): a request
        # that finds it unset waits for the one preparation on a worker thread (_prepare_once).
        self._prepared = False
        self._prepare_lock = threading.Lock()

    def _tls(self) -> ssl.SSLContext:
        context = self._ssl
        if context is None:
            with self._ssl_lock:
                context = self._ssl
                if context is None:
                    context = self._ssl = ssl.create_default_context(cafile=stripe.ca_bundle_path)
        return context

    def close(self) -> None:
        """Nothing to close: no client outlives the request that opened it."""

    async def close_async(self) -> None:
        """Nothing to close (as :meth:`close`); the SDK's would close the ``AsyncClient`` never built here.

        ``RequestsClient.close_async``, the default client's, delegates to this one.
        """

    async def sleep_async(self, secs: float) -> None:
        import anyio  # noqa: PLC0415  (installed with stripe[async]; only async retries sleep here)

        await anyio.sleep(secs)

    def _prepare(self) -> None:
        """What the first request would otherwise do on the loop (see the class docstring).

        Only ahead of time: what fails here fails the request itself, where it is mapped.
        """
        import anyio  # noqa: PLC0415  (installed with stripe[async]; only async calls need it)
        import httpx  # noqa: PLC0415

        with contextlib.suppress(Exception):
            httpx.AsyncHTTPTransport(verify=self._tls())  # imports httpcore; opens no connection
            anyio.run(anyio.sleep, 0, backend="asyncio")  # a throwaway loop on this thread loads the backend

    def _prepare_once(self) -> None:
        """Run :meth:`_prepare` once; concurrent first requests wait here, each on its worker thread."""
        with self._prepare_lock:
            if not self._prepared:
                self._prepare()
                self._prepared = True

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        import httpx  # noqa: PLC0415  (installed with stripe[async]; only async calls need it)

        if not self._prepared:  # the first requests: set up off the event loop (see the class docstring)
            await asyncio.to_thread(self._prepare_once)
        args, kwargs = self._get_request_args_kwargs(method, url, headers, post_data)
        data = kwargs.pop("data", None)
        if data:  # the SDK's form-encoded body; httpx wants raw bytes as content=, not data=
            kwargs["content"] = data.encode() if isinstance(data, str) else data
        try:
            async with httpx.AsyncClient(verify=self._tls()) as client:
                response = await client.request(*args, **kwargs)
        except Exception as exc:
            self._handle_request_error(exc)
        return response.content, response.status_code, response.headers


def close_session(session: requests.Session) -> None:
    """Close ``session`` and, now, every idle connection its pools hold.

    ``Session.close()`` only clears each adapter's urllib3 ``PoolManager``, which (urllib3 2.8.0:
    its ``RecentlyUsedContainer`` has no ``dispose_func``) drops the pools without closing them;
    a pool's connections are closed when the pool is garbage-collected, and a response kept
    anywhere (the last answer a thread remembers, an exception's cause) keeps its pool, and the
    connection, alive. So each pool is closed first. A connection in use is closed when its
    request hands it back to the closed pool.
    """
    for adapter in session.adapters.values():
        if not isinstance(adapter, requests.adapters.HTTPAdapter):
            continue
        for manager in (adapter.poolmanager, *adapter.proxy_manager.values()):
            for key in list(manager.pools.keys()):
                pool = manager.pools.get(key)
                if pool is not None:
                    pool.close()
    session.close()


class _ThreadEnd:
    """A marker kept in one thread's locals: collected when the thread ends (see :class:`ThreadSessions`)."""

    __slots__ = ("__weakref__",)


def _release(sessions: dict[int, requests.Session], lock: threading.RLock, key: int) -> None:
    with lock:
        session = sessions.pop(key, None)
    if session is not None:
        close_session(session)


class ThreadSessions:
    """The sync client's ``requests`` sessions, one per thread as before, that :meth:`close` closes at once.

    ``stripe.RequestsClient`` keeps a ``requests.Session`` per thread (in a ``threading.local``)
    and its ``close()`` closes the calling thread's alone, so the sessions of the host's worker
    threads, and of the asyncio API's, kept their pooled connections open until the process
    ended. Handed to it as its ``session`` (stripe-python 16.1 ``RequestsClient`` calls only
    ``request`` and ``close`` on it), this object gives each thread a session of its own and
    keeps them all: :meth:`close` closes every one, from whichever thread calls it, and a
    thread's session is closed when the thread ends (its locals go, and the marker with them).
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.RLock()
        self._open: dict[int, requests.Session] = {}

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            ended = _ThreadEnd()
            with self._lock:
                self._open[id(ended)] = session
            # _release holds the dict, not this object: a gateway dropped unclosed still closes them
            weakref.finalize(ended, _release, self._open, self._lock, id(ended))
            self._local.session, self._local.ended = session, ended
        return session

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        return self._session().request(method, url, **kwargs)

    def close(self) -> None:
        """Close every thread's session: idempotent, and a session used again afterwards reconnects."""
        with self._lock:
            sessions = list(self._open.values())
        for session in sessions:
            close_session(session)
