"""The SDK's HTTP-client seam, used by every test: spec checks, a request log, injected faults."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

import attrs
import requests
import stripe
from requests.structures import CaseInsensitiveDict
from stripe_gateway._http import AsyncHTTPClient

from tests.stripe_gateway.formcodec import decode
from tests.stripe_gateway.speccheck import Spec, SpecViolation

#: Faults a test can queue: each applies to one HTTP attempt (the SDK's retries are attempts too).
FAULTS = ("timeout", "500", "429", "drop_after_send", "refuse_connection", "502_after_send", "cut_after_send")


@attrs.frozen
class Sent:
    method: str
    path: str
    template: str
    idempotency_key: str | None
    params: Mapping[str, Any]
    headers: Mapping[str, str] = attrs.field(repr=False)


class CheckedClient(stripe.RequestsClient):
    """A real ``requests`` client that first checks each request against Stripe's spec.

    ``faults`` is a queue of :data:`FAULTS`, consumed one per attempt:

    * ``timeout`` / ``drop_after_send``: the request reaches the server, then the response is
      lost (a read timeout / a reset connection) -- the ambiguous case idempotency keys exist for;
    * ``refuse_connection``: nothing is sent;
    * ``500`` / ``429``: the server's answer is replaced by Stripe's error envelope (the request
      never reaches the server);
    * ``502_after_send``: the request reaches the server, then a proxy answers 502 with an HTML
      page and no ``Stripe-Should-Retry`` in place of the server's answer;
    * ``cut_after_send``: the request reaches the server and its answer keeps its status but
      arrives cut off mid-body (not JSON any more), as through a proxy that dropped the rest.

    Retries do not sleep (backoff is the SDK's business, not what these tests measure).

    A request the spec refuses raises :class:`SpecViolation` here and is also kept in
    :attr:`violations` (shared by every instance): the plugin or the core may catch the error
    (the core wraps it as an unmapped ``GatewayError``), so an autouse fixture fails the test from
    that list instead of relying on the exception getting through. ``before_send`` runs a
    callable once just before the next request to a path template (to let the stand-in change
    state between the plugin's read and its write).
    """

    violations: ClassVar[list[str]] = []

    def __init__(self, spec: Spec, **kwargs: Any) -> None:
        super().__init__(timeout=10, **kwargs)
        self._async = AsyncHTTPClient(timeout=10)
        #: How many attempts went through the async (httpx) path.
        self.async_requests = 0
        self.spec = spec
        self.sent: list[Sent] = []
        self.faults: deque[str] = deque()
        #: Faults for one path template only, consumed before ``faults``.
        self.targeted: list[tuple[str, str]] = []
        self.before_send: dict[str, Callable[[], object]] = {}
        #: A 2xx answer to the next request to a path template, rewritten (the JSON object in, the
        #: one the SDK gets out): Stripe acted, and the answer that reaches the plugin is not whole.
        self.rewrite: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def _sleep_time_seconds(self, num_retries: int) -> float:
        return 0.0

    def _before(
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any
    ) -> tuple[str | None, str]:
        """Check and record one attempt; return the fault to inject, if any, and the path template."""
        body = post_data.decode() if isinstance(post_data, bytes) else post_data
        try:
            template = self.spec.check(method.upper(), url, body)
        except SpecViolation as violation:
            CheckedClient.violations.append(str(violation))
            raise
        hook = self.before_send.pop(template, None)
        if hook is not None:
            hook()
        hdrs = dict(headers or {})
        split = urlsplit(url)
        with self._lock:
            self.sent.append(
                Sent(
                    method.upper(),
                    split.path,
                    template,
                    hdrs.get("Idempotency-Key"),
                    decode(body if method.upper() == "POST" else split.query) if (body or split.query) else {},
                    hdrs,
                )
            )
            fault = next((f for t, f in self.targeted if t == template), None)
            if fault is not None:
                self.targeted.remove((template, fault))
            elif self.faults:
                fault = self.faults.popleft()
        return fault, template

    def _rewritten(
        self, template: str, result: tuple[bytes, int, Mapping[str, str]], fault: str | None = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        body, status, headers = result
        if fault == "cut_after_send":
            return body[: len(body) // 2], status, headers
        with self._lock:
            change = self.rewrite.pop(template, None) if 200 <= status < 300 else None
        if change is None:
            return result
        return json.dumps(change(json.loads(body))).encode(), status, headers

    def _early(self, fault: str | None) -> tuple[bytes, int, Mapping[str, str]] | None:
        if fault == "refuse_connection":
            self._handle_request_error(requests.exceptions.ConnectionError("connection refused"))
        if fault == "500":
            return _error(500, "api_error", "An unknown error occurred")
        if fault == "429":
            return _error(429, "invalid_request_error", "Too many requests", code="rate_limit", retry_after="1")
        return None

    def _late(self, fault: str | None) -> tuple[bytes, int, Mapping[str, str]] | None:
        if fault == "502_after_send":
            headers = CaseInsensitiveDict({"Content-Type": "text/html"})
            return b"<html><body><h1>502 Bad Gateway</h1></body></html>", 502, headers
        if fault == "timeout":
            self._handle_request_error(requests.exceptions.ReadTimeout("read timed out"))
        if fault == "drop_after_send":
            self._handle_request_error(requests.exceptions.ConnectionError("connection reset by peer"))
        return None

    def request(  # type: ignore[override]  # stripe's base annotates str; RequestsClient returns bytes
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        fault, template = self._before(method, url, headers, post_data)
        early = self._early(fault)
        if early is not None:
            return early
        result = super().request(method, url, headers, post_data)
        return self._late(fault) or self._rewritten(template, result, fault)

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        """The SDK's ``*_async`` path: the same checks, then the plugin's httpx client."""
        fault, template = self._before(method, url, headers, post_data)
        early = self._early(fault)
        if early is not None:
            return early
        self.async_requests += 1
        result = await self._async.request_async(method, url, headers, post_data)
        return self._late(fault) or self._rewritten(template, result, fault)

    async def sleep_async(self, secs: float) -> None:
        return None

    def posts(self) -> list[Sent]:
        return [s for s in self.sent if s.method == "POST"]


def _error(
    status: int, kind: str, message: str, *, code: str | None = None, retry_after: str | None = None
) -> tuple[bytes, int, Mapping[str, str]]:
    import json

    error: dict[str, Any] = {"type": kind, "message": message}
    if code:
        error["code"] = code
    headers = CaseInsensitiveDict({"Request-Id": "req_injected", "Content-Type": "application/json"})
    if retry_after:
        headers["Retry-After"] = retry_after
    return json.dumps({"error": error}).encode(), status, headers


def parse_raw_http(text: str) -> tuple[int, dict[str, str], bytes]:
    """A recorded raw HTTP response (status line, headers, blank line, body)."""
    head, _, body = text.replace("\r\n", "\n").partition("\n\n")
    lines = head.splitlines()
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    headers.pop("Content-Length", None)
    headers.pop("content-length", None)
    return status, headers, body.encode()


class ReplayClient(CheckedClient):
    """Spec-checks each request, then answers it with the next queued recorded response."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        self.responses: deque[tuple[int, Mapping[str, str], bytes]] = deque()

    def respond(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.responses.append((status, CaseInsensitiveDict(dict(headers)), body))

    def request(  # type: ignore[override]
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        self._before(method, url, headers, post_data)
        status, rheaders, rbody = self.responses.popleft()
        return rbody, status, rheaders
