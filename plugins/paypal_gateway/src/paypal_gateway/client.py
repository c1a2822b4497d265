"""The one place ``paypalserversdk`` is used: a thread-safe client over its orders and payments controllers.

Imported lazily, the first time a PayPal operation runs (the SDK takes about 0.4 s to import).

* **Base URL.** The SDK has no base-URL option, so :class:`_Configuration` overrides
  ``get_base_uri`` (sandbox, live, or a local stand-in's ``base_url``).
* **OAuth.** Tokens come from ``/v1/oauth2/token`` through the SDK, are cached by
  :class:`TokenCache` under a lock (the SDK's own cache is not thread-safe) and are refreshed
  :data:`REFRESH_MARGIN` seconds before they expire. The token is made sure of *before* an
  operation is sent, as a read, so a failed token fetch is never reported as an operation whose
  outcome is unknown. A 401 from an API call (a revoked token, rotated credentials) drops the
  token and sends the same request, with the same ``PayPal-Request-Id``, once more.
* **Retries.** The SDK's own retries are off (they retry only GET/PUT and would hide failures);
  :meth:`PayPalClient._send` retries 429, 5xx, timeouts and dropped connections up to
  ``max_retries`` times, never an error that is not ``retryable`` (an ``ORDER_ALREADY_CAPTURED``
  gets the same answer again). A POST is retried only because it carries ``PayPal-Request-Id``:
  PayPal answers a repeat with the original outcome, so a retry never charges or refunds twice.
* **Unreadable answers.** A 2xx whose body is not a JSON object (a proxy's HTML page, a cut-off
  body) may follow an action PayPal took: a POST's is :class:`OutcomeUnknown` (retryable, same
  ``PayPal-Request-Id``: the body was mangled on its way, and PayPal sends its stored answer again),
  a read's :class:`GatewayUnavailable`; both are retried like a 5xx.
* **Short answers.** A 2xx JSON object that lacks what the plugin reads (:meth:`PayPalClient.answer_fault`)
  is not retried: PayPal replays that same object to the same ``PayPal-Request-Id``. Once a POST of
  the operation was answered 2xx it is :class:`OutcomeUnknown` with ``retryable=False`` (read the
  payment's status), after reads only :class:`GatewayUnavailable`.
* **Timeouts** are always set (``timeout`` setting, default 30 s).
* **Closing.** Every call, the SDK's and the plugin's own, goes through one ``requests.Session``
  (shared by all threads); :meth:`PayPalClient.close` closes it, with its pooled connections,
  when the client made it. A session handed in is its owner's to close.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
import structlog
from paypalserversdk.configuration import Configuration, Environment  # type: ignore[import-untyped]
from paypalserversdk.exceptions.o_auth_provider_exception import (  # type: ignore[import-untyped]
    OAuthProviderException,
)
from paypalserversdk.http.auth.o_auth_2 import ClientCredentialsAuthCredentials  # type: ignore[import-untyped]
from paypalserversdk.paypal_serversdk_client import PaypalServersdkClient  # type: ignore[import-untyped]

from gateway_core.errors import (
    AuthenticationFailed,
    GatewayError,
    GatewayUnavailable,
    InvalidRequest,
    OutcomeUnknown,
    RateLimited,
)
from paypal_gateway.errors import error_from_status, map_errors
from paypal_gateway.settings import PayPalSettings

__all__ = ["MAX_FETCH_BYTES", "REFRESH_MARGIN", "PayPalClient", "TokenCache", "close_session"]

log = structlog.get_logger("paypal_gateway")

#: Refresh a token this many seconds before PayPal says it expires.
REFRESH_MARGIN = 300
_MAX_RETRY_AFTER = 10.0
#: The most a certificate fetch reads (a PEM chain of two or three certificates is about 5 KB).
MAX_FETCH_BYTES = 64 * 1024


class _Configuration(Configuration):  # type: ignore[misc]
    """The SDK's configuration with a base URI we choose (the SDK offers only its two hosts)."""

    def __init__(self, base_uri: str, **kwargs: Any) -> None:
        self._base_uri = base_uri
        super().__init__(**kwargs)

    def get_base_uri(self, server: Any = None) -> str:
        return self._base_uri


class TokenCache:
    """One OAuth token per gateway, fetched once under a lock and refreshed before it expires.

    A token is used until ``expires_in - margin`` seconds after it was fetched, where the margin is
    :data:`REFRESH_MARGIN` (or half the lifetime of a shorter-lived token), measured on this
    cache's clock only. The SDK's own expiry check is switched off for the current token
    (``expiry = None``): apimatic-core 0.2 computes "now" as ``datetime.now().utctimetuple()``,
    which is local wall-clock time read as UTC, so east of UTC it thinks a fresh token expired
    (every call then fails) and west of UTC it keeps using an expired one. A token this cache
    retires, by refreshing or by :meth:`invalidate`, gets ``expiry = 0`` so the SDK, which keeps
    its own reference, asks this cache again.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._token: Any = None
        self._refresh_at = 0.0
        self.clock = clock
        #: How many tokens were fetched (tests check the cache is used).
        self.fetches = 0

    def _retire(self) -> None:
        if self._token is not None:
            self._token.expiry = 0
        self._token = None

    def provide(self, _last: Any, auth_manager: Any) -> Any:
        """The SDK's ``o_auth_token_provider`` callback: the current token, fetched if due."""
        with self._lock:
            if self._token is None or self.clock() >= self._refresh_at:
                fetched_at = self.clock()
                token = auth_manager.fetch_token()
                lifetime = int(getattr(token, "expires_in", 0) or 0)
                self._retire()
                token.expiry = None
                self._token = token
                self._refresh_at = fetched_at + lifetime - min(REFRESH_MARGIN, lifetime // 2)
                self.fetches += 1
            return self._token

    def invalidate(self, token: Any) -> None:
        """Drop ``token`` because PayPal refused it (revoked, or the credentials were rotated).

        Only that token is dropped: when another thread already replaced it, nothing changes.
        """
        with self._lock:
            if token is not None and token is self._token:
                self._retire()

    def access_token(self, auth_manager: Any) -> str:
        return str(self.provide(None, auth_manager).access_token)


class _Unreadable(Exception):
    """A 2xx answer whose body is not PayPal's JSON object (a proxy's HTML page, a cut-off body)."""

    def __init__(self, status: int | None) -> None:
        super().__init__(status)
        self.status = status


def _body(response: Any) -> dict[str, Any]:
    """The JSON object PayPal answered with; a 204 carries none. Anything else is :class:`_Unreadable`."""
    status = getattr(response, "status_code", None)
    text = getattr(response, "text", None)
    if not text and status == 204:
        return {}
    try:
        data = json.loads(text or "")
    except (TypeError, ValueError) as exc:
        raise _Unreadable(status) from exc
    if not isinstance(data, dict):
        raise _Unreadable(status)
    return data


def _unreadable_error(
    gateway: str,
    operation: str,
    status: int | None,
    *,
    mutating: bool,
    debug_id: str | None = None,
) -> GatewayUnavailable:
    """A 2xx whose body we cannot read: PayPal (or a proxy in front of it) may have acted, so never a plain failure.

    A POST is :class:`OutcomeUnknown`, retryable: the body was mangled on the way (a proxy's page,
    a cut-off transfer), not stored so by PayPal, and the same ``PayPal-Request-Id`` returns
    PayPal's stored answer and acts at most once. A read is :class:`GatewayUnavailable`. For a
    body that *is* PayPal's JSON but lacks a field, see :meth:`PayPalClient.answer_fault`.
    """
    text = f"PayPal {operation} answered HTTP {status} with a body that is not PayPal's JSON"
    fields: dict[str, Any] = {"gateway": gateway, "http_status": status, "request_id": debug_id}
    if mutating:
        return OutcomeUnknown(f"{text}; it may have taken effect: retry with the same PayPal-Request-Id", **fields)
    return GatewayUnavailable(text, **fields)


def _token_refused(exc: AuthenticationFailed) -> bool:
    """Whether an API call's 401 says the bearer token is no good (not that the credentials are)."""
    return exc.http_status == 401 and not isinstance(exc.__cause__, OAuthProviderException)


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


class PayPalClient:
    """Orders and payments calls for one gateway; every POST carries ``PayPal-Request-Id``."""

    def __init__(self, settings: PayPalSettings, *, session: requests.Session | None = None) -> None:
        self.settings = settings
        self.tokens = TokenCache()
        credentials = ClientCredentialsAuthCredentials(
            o_auth_client_id=settings.client_id.reveal(),
            o_auth_client_secret=settings.client_secret.reveal(),
            o_auth_token_provider=self.tokens.provide,
        )
        self._owns_session = session is None
        self._session = session or requests.Session()
        # The last HTTP answer this thread received, so a 2xx the SDK then fails to deserialize is
        # told apart from a failure before or while sending (see _call).
        self._answers = threading.local()
        self._session.hooks["response"].append(self._remember)
        config = _Configuration(
            settings.api_base,
            http_client_instance=self._session,
            override_http_client_configuration=True,
            timeout=settings.timeout,
            max_retries=0,
            environment=Environment.PRODUCTION if settings.live else Environment.SANDBOX,
            client_credentials_auth_credentials=credentials,
        )
        self._sdk = PaypalServersdkClient(config=config)

    @property
    def session(self) -> requests.Session:
        """The ``requests.Session`` every call goes through (the SDK's HTTP-client seam)."""
        return self._session

    def close(self) -> None:
        """Close the session (every pooled connection, whichever thread opened it) if this client made it.

        Idempotent (the pools are closed already, the session holds none); sends nothing: the OAuth
        token is simply dropped with the client.
        """
        if self._owns_session:
            close_session(self._session)

    # -- the request path -----------------------------------------------------------------
    def _token(self, operation: str) -> Any:
        """The current token, fetched first if due, as a read: nothing has been sent yet.

        A failure here is :class:`GatewayUnavailable` or :class:`AuthenticationFailed`, never
        :class:`OutcomeUnknown`: the operation itself was not sent.
        """
        with map_errors(self.settings.name, f"{operation} (OAuth token)", mutating=False):
            return self.tokens.provide(None, self._sdk.oauth_2)

    def _send(
        self, operation: str, call: Callable[[Mapping[str, Any]], Any], options: Mapping[str, Any]
    ) -> dict[str, Any]:
        mutating = "paypal_request_id" in options
        if mutating and not options["paypal_request_id"]:
            raise InvalidRequest(f"PayPal {operation}: a POST needs a PayPal-Request-Id", gateway=self.settings.name)
        attempt = 0
        renewed = False
        while True:
            try:
                token = self._token(operation)
                try:
                    return self._call(operation, call, options, mutating=mutating)
                except AuthenticationFailed as exc:
                    if renewed or not _token_refused(exc):
                        raise
                    # PayPal refused the token before acting (revoked, or the credentials were
                    # rotated): drop it and send the same request, same PayPal-Request-Id, once more.
                    renewed = True
                    self.tokens.invalidate(token)
                    self._log_token_refused(operation, exc)
            except (RateLimited, GatewayUnavailable) as exc:
                # Not an OutcomeUnknown PayPal would answer the same way again (ORDER_ALREADY_CAPTURED).
                if attempt >= self.settings.max_retries or not exc.retryable:
                    raise
                attempt += 1
                delay = self.settings.retry_backoff * 2 ** (attempt - 1)
                if isinstance(exc, RateLimited) and exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, _MAX_RETRY_AFTER))
                log.info(
                    "paypal.request.retry",
                    gateway=self.settings.name,
                    operation=operation,
                    attempt=attempt,
                    error=type(exc).__name__,
                    http_status=exc.http_status,
                    request_id=exc.request_id,
                )
                time.sleep(delay)

    def _remember(self, response: requests.Response, *_args: Any, **_kwargs: Any) -> None:
        """Session response hook: note the answer to an API call (not to a token fetch) in this thread,
        and whether a POST of the current operation has been answered 2xx (see :meth:`answer_fault`)."""
        if "/v1/oauth2/token" not in (response.url or ""):
            self._answers.last = response
            if response.request.method == "POST" and 200 <= response.status_code < 300:
                self._answers.posted = True

    def _call(
        self, operation: str, call: Callable[[Mapping[str, Any]], Any], options: Mapping[str, Any], *, mutating: bool
    ) -> dict[str, Any]:
        """One SDK call, its errors mapped; a 2xx answer that cannot be read is never a plain failure.

        The SDK deserializes a 2xx body itself (through jsonpickle, which falls back to YAML and
        may raise anything) before :func:`_body` reads it as JSON; either failing on a 2xx answer
        means PayPal may have acted (see :func:`_unreadable_error`).
        """
        name = self.settings.name
        self._answers.last = None
        try:
            with map_errors(name, operation, mutating=mutating):
                response = call(dict(options))
        except GatewayError:
            raise
        except Exception as exc:
            answer: requests.Response | None = self._answers.last
            if answer is None or not 200 <= answer.status_code < 300:
                raise
            debug_id = answer.headers.get("Paypal-Debug-Id")
            raise _unreadable_error(name, operation, answer.status_code, mutating=mutating, debug_id=debug_id) from exc
        try:
            return _body(response)
        except _Unreadable as exc:
            headers = getattr(response, "headers", None) or {}
            debug_id = next((str(v) for k, v in dict(headers).items() if str(k).lower() == "paypal-debug-id"), None)
            raise _unreadable_error(name, operation, exc.status, mutating=mutating, debug_id=debug_id) from exc

    def forget_answer(self) -> None:
        """Start an operation: :meth:`answer_fault` looks only at answers this thread gets after this."""
        self._answers.last = None
        self._answers.posted = False

    def answer_fault(self, operation: str, problem: str) -> GatewayUnavailable | None:
        """The error for a 2xx answer that parsed but lacks what the plugin needs, or ``None``.

        ``None`` when the last API answer this thread got since :meth:`forget_answer` is not a
        2xx: then the fault is not the answer's. Once a POST of the operation was answered 2xx,
        PayPal acted: it is :class:`OutcomeUnknown` with ``retryable=False``, whichever answer was
        short, since PayPal replays the same stored object to the same ``PayPal-Request-Id`` (a
        retry would only read it again); the host reads the payment's status instead. After reads
        only it is :class:`GatewayUnavailable` (retryable, as for an unreadable body).
        """
        answer: requests.Response | None = getattr(self._answers, "last", None)
        if answer is None or not 200 <= answer.status_code < 300:
            return None
        text = f"PayPal {operation} answered HTTP {answer.status_code} with JSON the plugin cannot use ({problem})"
        fields: dict[str, Any] = {
            "gateway": self.settings.name,
            "http_status": answer.status_code,
            "request_id": answer.headers.get("Paypal-Debug-Id"),
        }
        if getattr(self._answers, "posted", False):
            return OutcomeUnknown(
                f"{text}; PayPal acted: read the payment's status to learn what happened, and do not retry "
                "with a new key (the same PayPal-Request-Id replays the same answer)",
                retryable=False,
                **fields,
            )
        return GatewayUnavailable(text, **fields)

    def _log_token_refused(self, operation: str, exc: GatewayError) -> None:
        log.info(
            "paypal.token.refused",
            gateway=self.settings.name,
            operation=operation,
            http_status=exc.http_status,
            request_id=exc.request_id,
        )

    @staticmethod
    def _post(key: str, **options: Any) -> dict[str, Any]:
        return {"paypal_request_id": key, "prefer": "return=representation", **options}

    # -- orders ---------------------------------------------------------------------------
    def create_order(self, body: Mapping[str, Any], key: str) -> dict[str, Any]:
        return self._send("create order", self._sdk.orders.create_order, self._post(key, body=dict(body)))

    def get_order(self, order_id: str) -> dict[str, Any]:
        return self._send("get order", self._sdk.orders.get_order, {"id": order_id})

    def capture_order(self, order_id: str, key: str) -> dict[str, Any]:
        return self._send("capture order", self._sdk.orders.capture_order, self._post(key, id=order_id))

    def authorize_order(self, order_id: str, key: str) -> dict[str, Any]:
        return self._send("authorize order", self._sdk.orders.authorize_order, self._post(key, id=order_id))

    # -- payments -------------------------------------------------------------------------
    def get_authorization(self, authorization_id: str) -> dict[str, Any]:
        return self._send(
            "get authorization", self._sdk.payments.get_authorized_payment, {"authorization_id": authorization_id}
        )

    def capture_authorization(self, authorization_id: str, body: Mapping[str, Any], key: str) -> dict[str, Any]:
        return self._send(
            "capture authorization",
            self._sdk.payments.capture_authorized_payment,
            self._post(key, authorization_id=authorization_id, body=dict(body)),
        )

    def void_authorization(self, authorization_id: str, key: str) -> dict[str, Any]:
        return self._send(
            "void authorization", self._sdk.payments.void_payment, self._post(key, authorization_id=authorization_id)
        )

    def get_capture(self, capture_id: str) -> dict[str, Any]:
        return self._send("get capture", self._sdk.payments.get_captured_payment, {"capture_id": capture_id})

    def refund_capture(self, capture_id: str, body: Mapping[str, Any], key: str) -> dict[str, Any]:
        return self._send(
            "refund capture",
            self._sdk.payments.refund_captured_payment,
            self._post(key, capture_id=capture_id, body=dict(body)),
        )

    def get_refund(self, refund_id: str) -> dict[str, Any]:
        return self._send("get refund", self._sdk.payments.get_refund, {"refund_id": refund_id})

    # -- webhooks -------------------------------------------------------------------------
    def verify_webhook_signature(self, payload: bytes) -> dict[str, Any]:
        """``POST /v1/notifications/verify-webhook-signature`` (not in the SDK; same token and host).

        ``payload`` is the request JSON with the webhook body embedded byte for byte. It changes
        nothing at PayPal, so it carries no ``PayPal-Request-Id`` and every failure is a read's.
        """
        name, operation = self.settings.name, "verify webhook signature"
        renewed = False
        while True:
            token = self._token(operation)
            with map_errors(name, operation, mutating=False):
                response = self._session.post(
                    f"{self.settings.api_base}/v1/notifications/verify-webhook-signature",
                    data=payload,
                    headers={"Authorization": f"Bearer {token.access_token}", "Content-Type": "application/json"},
                    timeout=self.settings.timeout,
                )
            if response.status_code < 400:
                break
            try:
                data = response.json()
            except ValueError:
                data = {}
            error = error_from_status(
                response.status_code,
                gateway=name,
                operation=operation,
                mutating=False,
                name=(data.get("name") or data.get("error")) if isinstance(data, dict) else None,
                debug_id=response.headers.get("Paypal-Debug-Id"),
            )
            if response.status_code == 401 and not renewed:
                renewed = True
                self.tokens.invalidate(token)
                self._log_token_refused(operation, error)
                continue
            raise error
        try:
            return _body(response)
        except _Unreadable as exc:
            debug_id = response.headers.get("Paypal-Debug-Id")
            raise _unreadable_error(name, operation, exc.status, mutating=False, debug_id=debug_id) from exc

    def access_token(self) -> str:
        """A current OAuth access token (cached; for ``gateway check``). Never log it."""
        return str(self._token("get token").access_token)

    def fetch(self, url: str) -> bytes:
        """GET a public URL (a webhook signing certificate chain): no redirects, at most :data:`MAX_FETCH_BYTES`.

        A redirect, any status but 200 or a longer body is a :class:`GatewayError`; the caller
        (:class:`~paypal_gateway.webhooks.CertificateStore`) refuses the delivery.
        """
        name = self.settings.name
        with (
            map_errors(name, "fetch certificate", mutating=False),
            self._session.get(url, timeout=self.settings.timeout, allow_redirects=False, stream=True) as response,
        ):
            if response.status_code != 200:
                raise GatewayError(
                    f"PayPal certificate URL answered HTTP {response.status_code} (redirects are not followed)",
                    gateway=name,
                    http_status=response.status_code,
                )
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > MAX_FETCH_BYTES:
                raise GatewayError(f"PayPal certificate is larger than {MAX_FETCH_BYTES} bytes", gateway=name)
            data = bytearray()
            for chunk in response.iter_content(chunk_size=8192):
                data += chunk
                if len(data) > MAX_FETCH_BYTES:
                    raise GatewayError(f"PayPal certificate is larger than {MAX_FETCH_BYTES} bytes", gateway=name)
            return bytes(data)
