"""Faults injected at the stand-in: a retry carries the same PayPal-Request-Id and acts exactly once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from gateway_core.errors import GatewayUnavailable, InvalidAmount, OutcomeUnknown, PaymentDeclined, RateLimited
from gateway_core.manager import GatewayManager
from gateway_core.models import AuthorizeRequest, CaptureRequest, CheckoutRequest, RefundRequest
from gateway_core.money import Money
from tests.paypal_gateway.conftest import GATEWAY, StandIn
from tests.paypal_gateway.test_checkout import checkout, key, paid_capture

FAULTS = ["500", "429", "drop_after", "cut_after", "undecodable_after", "delay_after"]


def attempts(standin: StandIn, suffix: str) -> list[str | None]:
    return [r["request_id"] for r in standin.requests() if r["method"] == "POST" and r["path"].endswith(suffix)]


@pytest.mark.parametrize("fault", FAULTS)
def test_capture_is_retried_with_the_same_request_id_and_happens_once(
    make_manager: Callable[..., GatewayManager], standin: StandIn, fault: str
) -> None:
    manager = make_manager(timeout=0.5)
    order_id = checkout(manager, Money.of("10.00", "EUR"))
    standin.approve(order_id)
    standin.fault("POST", f"/orders/{order_id}/capture", fault, seconds=1.5)
    capture = manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key="capture-once")
    assert attempts(standin, "/capture") == ["capture-once", "capture-once"]
    assert standin.counts()["captures"] == 1
    assert manager.payment_status(GATEWAY, order_id).payment_id == capture.id


@pytest.mark.parametrize("fault", FAULTS)
def test_refund_is_retried_with_the_same_request_id_and_happens_once(
    make_manager: Callable[..., GatewayManager], standin: StandIn, fault: str
) -> None:
    manager = make_manager(timeout=0.5)
    capture_id = paid_capture(manager, standin, Money.of("10.00", "EUR"))
    standin.fault("POST", "/refund", fault, seconds=1.5)
    refund = manager.refund(GATEWAY, RefundRequest(capture_id, Money.of("4.00", "EUR")), idempotency_key="refund-once")
    assert refund.amount == Money.of("4.00", "EUR")
    assert attempts(standin, "/refund") == ["refund-once", "refund-once"]
    assert standin.counts()["refunds"] == 1
    assert manager.payment_status(GATEWAY, capture_id).amount_refunded == Money.of("4.00", "EUR")


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("500", OutcomeUnknown),
        ("429", RateLimited),
        ("drop_after", OutcomeUnknown),
        ("cut_after", OutcomeUnknown),
        ("undecodable_after", OutcomeUnknown),
        ("delay_after", OutcomeUnknown),
    ],
)
def test_without_retries_the_error_is_retryable_and_a_manual_retry_refunds_once(
    make_manager: Callable[..., GatewayManager], standin: StandIn, fault: str, error: type[Exception]
) -> None:
    manager = make_manager(timeout=0.5, max_retries=0)
    capture_id = paid_capture(manager, standin, Money.of("10.00", "EUR"))
    standin.fault("POST", "/refund", fault, seconds=1.5)
    request = RefundRequest(capture_id, Money.of("3.00", "EUR"))
    with pytest.raises(error) as info:
        manager.refund(GATEWAY, request, idempotency_key="manual-retry")
    assert info.value.retryable  # type: ignore[attr-defined]
    manager.refund(GATEWAY, request, idempotency_key="manual-retry")
    assert standin.counts()["refunds"] == 1
    assert manager.payment_status(GATEWAY, capture_id).amount_refunded == Money.of("3.00", "EUR")


#: Answers whose body does not arrive whole, after PayPal acted: requests raises neither a
#: ConnectionError nor a Timeout for the first two (ChunkedEncodingError, ContentDecodingError).
BODY_FAULTS = {
    "cut_off": {"kind": "cut_after"},
    "not_decodable": {"kind": "undecodable_after"},
    "stalled_mid_body": {"kind": "cut_after", "stall": 1.5},
}


@pytest.mark.parametrize("fault", BODY_FAULTS.values(), ids=BODY_FAULTS.keys())
def test_a_post_whose_answer_is_cut_off_is_outcome_unknown_and_a_retry_refunds_once(
    make_manager: Callable[..., GatewayManager], standin: StandIn, fault: dict[str, object]
) -> None:
    manager = make_manager(timeout=0.5, max_retries=0)
    capture_id = paid_capture(manager, standin, Money.of("10.00", "EUR"))
    standin.fault("POST", "/refund", **fault)  # type: ignore[arg-type]
    request = RefundRequest(capture_id, Money.of("4.00", "EUR"))
    with pytest.raises(OutcomeUnknown) as info:
        manager.refund(GATEWAY, request, idempotency_key="cut-off")
    assert info.value.retryable
    assert not info.value.unmapped
    assert "same PayPal-Request-Id" in info.value.message
    assert standin.counts()["refunds"] == 1  # PayPal did act
    refund = manager.refund(GATEWAY, request, idempotency_key="cut-off")
    assert refund.amount == Money.of("4.00", "EUR")
    assert attempts(standin, "/refund") == ["cut-off", "cut-off"]
    assert standin.counts()["refunds"] == 1


@pytest.mark.parametrize("fault", BODY_FAULTS.values(), ids=BODY_FAULTS.keys())
def test_a_read_whose_answer_is_cut_off_is_unavailable(
    make_manager: Callable[..., GatewayManager], standin: StandIn, fault: dict[str, object]
) -> None:
    manager = make_manager(timeout=0.5, max_retries=0)
    order_id = checkout(manager, Money.of("10.00", "EUR"))
    standin.fault("GET", f"/v2/checkout/orders/{order_id}", **fault)  # type: ignore[arg-type]
    with pytest.raises(GatewayUnavailable) as info:
        manager.payment_status(GATEWAY, order_id)
    assert not isinstance(info.value, OutcomeUnknown)
    assert not info.value.unmapped
    assert info.value.retryable
    assert manager.payment_status(GATEWAY, order_id).checkout_id == order_id


@pytest.mark.parametrize(("retry_after", "slept"), [("2", 2.0), ("60", 10.0), ("soon", 0.0)])
def test_retry_after_is_honoured_and_capped_at_10_seconds(
    make_manager: Callable[..., GatewayManager],
    standin: StandIn,
    monkeypatch: pytest.MonkeyPatch,
    retry_after: str,
    slept: float,
) -> None:
    """A 429's Retry-After is waited for before the retry, at most 10 s; one that is no number is ignored."""
    from paypal_gateway import client

    delays: list[float] = []
    # The client module's clock only: record the wait instead of waiting.
    monkeypatch.setattr(client, "time", SimpleNamespace(sleep=delays.append, time=time.time))
    manager = make_manager(max_retries=1, retry_backoff=0)
    capture_id = paid_capture(manager, standin, Money.of("10.00", "EUR"))
    standin.fault("POST", "/refund", "429", retry_after=retry_after)
    refund = manager.refund(GATEWAY, RefundRequest(capture_id, Money.of("4.00", "EUR")), idempotency_key="throttled")
    assert refund.amount == Money.of("4.00", "EUR")
    assert delays == [slept]
    assert attempts(standin, "/refund") == ["throttled", "throttled"]
    standin.fault("POST", "/refund", "429", retry_after=retry_after)
    with pytest.raises(RateLimited) as info:  # no retries left: the host is told how long to wait
        make_manager(max_retries=0).refund(GATEWAY, RefundRequest(capture_id), idempotency_key=key())
    assert info.value.retry_after == (None if retry_after == "soon" else float(retry_after))
    assert standin.counts()["refunds"] == 1


def test_reads_that_keep_failing_give_up_as_unavailable(
    make_manager: Callable[..., GatewayManager], standin: StandIn
) -> None:
    manager = make_manager(max_retries=1)
    standin.fault("GET", "/v2/checkout/orders/", "500", count=2)
    with pytest.raises(GatewayUnavailable) as info:
        manager.payment_status(GATEWAY, "ANYORDERID0000000")
    assert not isinstance(info.value, OutcomeUnknown)
    assert info.value.http_status == 500
    assert info.value.request_id


def test_connection_refused_is_unavailable_not_unknown(make_manager: Callable[..., GatewayManager]) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    manager = make_manager(base_url=f"http://127.0.0.1:{port}", max_retries=0)
    with pytest.raises(GatewayUnavailable) as info:
        manager.refund(GATEWAY, RefundRequest("ANYCAPTURE0000000"), idempotency_key=key())
    assert not isinstance(info.value, OutcomeUnknown)


def test_a_fresh_gateway_fetches_one_token_for_threads_that_start_together(
    make_manager: Callable[..., GatewayManager], standin: StandIn
) -> None:
    """N threads make a new gateway's first calls at the same moment: one token is fetched, not N."""
    order_id = checkout(make_manager(), Money.of("10.00", "EUR"))
    manager = make_manager()  # a new gateway: no token yet
    threads_n = 8
    start = threading.Barrier(threads_n, timeout=10)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            start.wait()
            manager.payment_status(GATEWAY, order_id)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    # Slow the token endpoint down so every thread asks for a token while the first fetch is in flight.
    standin.fault("POST", "/v1/oauth2/token", "delay_after", seconds=0.5)
    threads = [threading.Thread(target=read) for _ in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    paths = [r["path"] for r in standin.requests()]
    assert paths.count("/v1/oauth2/token") == 2  # one for the setup gateway, one for the threads' gateway
    assert paths.count(f"/v2/checkout/orders/{order_id}") == threads_n


def test_a_revoked_token_is_dropped_and_the_call_sent_again_once(
    make_manager: Callable[..., GatewayManager], standin: StandIn
) -> None:
    """After a credential rotation PayPal refuses the cached token: one new token, the same request id, one refund."""
    manager = make_manager()
    capture_id = paid_capture(manager, standin, Money.of("10.00", "EUR"))
    standin.revoke_tokens()
    refund = manager.refund(GATEWAY, RefundRequest(capture_id, Money.of("4.00", "EUR")), idempotency_key="rotated")
    assert attempts(standin, "/refund") == ["rotated", "rotated"]
    assert standin.counts()["refunds"] == 1
    assert [r["path"] for r in standin.requests()].count("/v1/oauth2/token") == 2
    assert refund.amount == manager.payment_status(GATEWAY, capture_id).amount_refunded


def test_a_token_refused_twice_is_authentication_failed(
    make_manager: Callable[..., GatewayManager], standin: StandIn
) -> None:
    """The retry after a refused token happens once: a token refused again is reported, not retried forever."""
    from gateway_core.errors import AuthenticationFailed

    manager = make_manager()
    checkout(manager, Money.of("10.00", "EUR"))
    standin.config(token_expires_in=-1)  # every token the stand-in issues from now on is already expired
    try:
        standin.revoke_tokens()
        with pytest.raises(AuthenticationFailed) as info:
            checkout(manager, Money.of("10.00", "EUR"))
    finally:
        standin.config(token_expires_in=32400)
    assert info.value.http_status == 401
    assert len(attempts(standin, "/v2/checkout/orders")) == 3  # the first order, then the two refused attempts


@pytest.mark.parametrize("fault", ["500", "drop_after"])
def test_a_failed_token_fetch_is_unavailable_and_sends_nothing(
    make_manager: Callable[..., GatewayManager], standin: StandIn, fault: str
) -> None:
    """The POST was never sent, so the error says so (not OutcomeUnknown, not "retry with the same id")."""
    manager = make_manager(max_retries=0)
    standin.fault("POST", "/v1/oauth2/token", fault)
    with pytest.raises(GatewayUnavailable) as info:
        checkout(manager, Money.of("10.00", "EUR"))
    assert not isinstance(info.value, OutcomeUnknown)
    assert "PayPal-Request-Id" not in info.value.message
    assert "token" in info.value.message
    assert attempts(standin, "/v2/checkout/orders") == []
    checkout(manager, Money.of("10.00", "EUR"))  # the next call fetches a token and succeeds
    assert standin.counts()["orders"] == 1


def test_the_token_does_not_depend_on_the_machines_time_zone(
    make_manager: Callable[..., GatewayManager], standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """apimatic-core reads local wall-clock time as UTC; east of UTC it took a fresh 1-hour token for expired."""
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")  # UTC+9, no daylight saving
    time.tzset()
    standin.config(token_expires_in=3600)
    try:
        manager = make_manager()
        checkout(manager, Money.of("10.00", "EUR"))
        checkout(manager, Money.of("10.00", "EUR"))
    finally:
        standin.config(token_expires_in=32400)
        monkeypatch.undo()
        time.tzset()
    assert standin.counts()["orders"] == 2
    assert [r["path"] for r in standin.requests()].count("/v1/oauth2/token") == 1


def test_short_lived_token_is_cached_and_accepted(manager: GatewayManager, standin: StandIn) -> None:
    standin.config(token_expires_in=120)
    try:
        checkout(manager, Money.of("10.00", "EUR"))
        checkout(manager, Money.of("10.00", "EUR"))
    finally:
        standin.config(token_expires_in=32400)
    assert [r["path"] for r in standin.requests()].count("/v1/oauth2/token") == 1


class _Token:
    def __init__(self, n: int, expires_in: int) -> None:
        self.access_token = f"token-{n}"
        self.expires_in = expires_in


class _Issuer:
    """What TokenCache calls: the SDK's OAuth2 manager's fetch_token (here counting and not networked)."""

    def __init__(self, expires_in: int) -> None:
        self.expires_in = expires_in
        self.issued = 0

    def fetch_token(self) -> _Token:
        self.issued += 1
        return _Token(self.issued, self.expires_in)


@pytest.mark.parametrize(("lifetime", "refresh_after"), [(32400, 32100), (120, 60)])
def test_token_is_refreshed_before_it_expires(lifetime: int, refresh_after: int) -> None:
    from paypal_gateway.client import TokenCache

    now = [1_000_000.0]
    cache = TokenCache(clock=lambda: now[0])
    issuer = _Issuer(lifetime)
    first = cache.provide(None, issuer)
    assert first.access_token == "token-1"
    now[0] += refresh_after - 1
    assert cache.access_token(issuer) == "token-1"
    now[0] += 1
    assert cache.access_token(issuer) == "token-2"
    assert cache.fetches == 2
    # The SDK keeps its own reference to the token it was given: the retired one must read as expired.
    assert first.expiry == 0


def test_invalidate_drops_only_the_refused_token() -> None:
    from paypal_gateway.client import TokenCache

    cache = TokenCache(clock=lambda: 1_000_000.0)
    issuer = _Issuer(32400)
    stale = cache.provide(None, issuer)
    cache.invalidate(stale)
    fresh = cache.provide(None, issuer)
    assert (stale.expiry, fresh.access_token) == (0, "token-2")
    cache.invalidate(stale)  # another thread saw the same 401 late: the fresh token stays
    assert cache.access_token(issuer) == "token-2"
    assert cache.fetches == 2


def test_wrong_credentials_are_authentication_failed(
    make_manager: Callable[..., GatewayManager], standin: StandIn
) -> None:
    from gateway_core.config import Secret
    from gateway_core.errors import AuthenticationFailed

    manager = make_manager(client_secret=Secret("not-the-secret-3c9d"))
    with pytest.raises(AuthenticationFailed) as info:
        checkout(manager, Money.of("10.00", "EUR"))
    assert "not-the-secret-3c9d" not in str(info.value)
    assert standin.counts()["orders"] == 0


def test_check_reports_credentials(make_manager: Callable[..., GatewayManager], standin: StandIn) -> None:
    from gateway_core.config import Secret

    good = {r.name: r for r in make_manager().check(GATEWAY)}
    assert good["credentials"].ok
    assert good["webhook_id"].ok
    bad = {r.name: r for r in make_manager(client_secret=Secret("wrong-secret-77aa"), webhook_id=None).check(GATEWAY)}
    assert not bad["credentials"].ok
    assert not bad["webhook_id"].ok
    assert "wrong-secret-77aa" not in bad["credentials"].detail


def test_logs_carry_no_secret_or_token(
    make_manager: Callable[..., GatewayManager], standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    import structlog.testing

    from tests.paypal_gateway.conftest import CLIENT_ID, CLIENT_SECRET

    manager = make_manager(timeout=0.5)
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        capture_id = paid_capture(manager, standin, Money.of("10.00", "EUR"))
        standin.fault("POST", "/refund", "drop_after")
        manager.refund(GATEWAY, RefundRequest(capture_id), idempotency_key=key())
    assert any(entry["event"] == "paypal.request.retry" for entry in logs)
    texts = [repr(entry) for entry in logs] + [f"{r.getMessage()} {r.__dict__!r}" for r in caplog.records]
    leaks = [t for t in texts for s in (CLIENT_ID, CLIENT_SECRET, "A21AA", "Bearer ", "Basic ") if s in t]
    assert leaks == []


def test_refund_in_another_currency_is_refused_and_refunds_nothing(manager: GatewayManager, standin: StandIn) -> None:
    from gateway_core.errors import InvalidRequest

    capture_id = paid_capture(manager, standin, Money.of("10.00", "EUR"))
    with pytest.raises(InvalidRequest) as info:
        manager.refund(GATEWAY, RefundRequest(capture_id, Money.of("5.00", "USD")), idempotency_key=key())
    assert info.value.provider_code == "REFUND_CAPTURE_CURRENCY_MISMATCH"
    assert standin.counts()["refunds"] == 0


#: 2xx bodies a proxy in front of PayPal might answer with, after PayPal acted. The SDK returns the
#: HTML page as a string; it raises a YAML error on the cut-off JSON itself (jsonpickle falls back to YAML).
UNREADABLE = {
    "html": "<html>\n<head><title>201 Created</title></head>\n<body>Created</body>\n</html>\n",
    "cut_off_json": '{"id": "2GG279541U471931P", "status": "COMPL',
    "json_not_an_object": '["COMPLETED"]',
    "empty": "",
}


@pytest.mark.parametrize("body", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_an_unreadable_2xx_to_a_refund_is_outcome_unknown_and_a_retry_refunds_once(
    make_manager: Callable[..., GatewayManager], standin: StandIn, body: str
) -> None:
    """PayPal may have refunded: the error says retry with the same key, and that retry refunds nothing more."""
    manager = make_manager(max_retries=0)
    capture_id = paid_capture(manager, standin, Money.of("10.00", "EUR"))
    standin.fault("POST", "/refund", "garbage_after", status=201, body=body)
    request = RefundRequest(capture_id, Money.of("4.00", "EUR"))
    with pytest.raises(OutcomeUnknown) as info:
        manager.refund(GATEWAY, request, idempotency_key="unreadable")
    assert info.value.retryable
    assert not info.value.unmapped
    assert info.value.http_status == 201
    assert "same PayPal-Request-Id" in info.value.message
    assert standin.counts()["refunds"] == 1  # PayPal did act
    refund = manager.refund(GATEWAY, request, idempotency_key="unreadable")
    assert refund.amount == Money.of("4.00", "EUR")
    assert attempts(standin, "/refund") == ["unreadable", "unreadable"]
    assert standin.counts()["refunds"] == 1
    assert manager.payment_status(GATEWAY, capture_id).amount_refunded == Money.of("4.00", "EUR")


def test_an_unreadable_2xx_to_a_capture_is_retried_with_the_same_request_id(
    make_manager: Callable[..., GatewayManager], standin: StandIn
) -> None:
    manager = make_manager()
    order_id = checkout(manager, Money.of("10.00", "EUR"))
    standin.approve(order_id)
    standin.fault("POST", f"/orders/{order_id}/capture", "garbage_after", status=201, body=UNREADABLE["html"])
    capture = manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key="capture-unreadable")
    assert attempts(standin, "/capture") == ["capture-unreadable", "capture-unreadable"]
    assert standin.counts()["captures"] == 1
    assert manager.payment_status(GATEWAY, order_id).payment_id == capture.id


@pytest.mark.parametrize("body", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_an_unreadable_2xx_to_a_read_is_unavailable(
    make_manager: Callable[..., GatewayManager], standin: StandIn, body: str
) -> None:
    manager = make_manager(max_retries=0)
    order_id = checkout(manager, Money.of("10.00", "EUR"))
    standin.fault("GET", f"/v2/checkout/orders/{order_id}", "garbage_after", status=200, body=body)
    with pytest.raises(GatewayUnavailable) as info:
        manager.payment_status(GATEWAY, order_id)
    assert not isinstance(info.value, OutcomeUnknown)
    assert not info.value.unmapped
    assert info.value.retryable
    assert info.value.http_status == 200
    assert manager.payment_status(GATEWAY, order_id).checkout_id == order_id  # the next read is answered


#: 2xx answers that are PayPal-shaped JSON objects but lack what the plugin reads (PayPal acted;
#: a proxy or an API change took the field away). Never the host's error, never a bare KeyError.
INCOMPLETE = {
    "no_id": '{"status": "COMPLETED"}',
    "amount_not_money": '{"id": "5LR41237J0562441H", "status": "COMPLETED", "amount": {"value": 4}}',
    "amount_in_an_unknown_currency": '{"id": "5LR41237J0562441H", "status": "COMPLETED", '
    '"amount": {"value": "4.00", "currency_code": "XXY"}}',
}


@pytest.mark.parametrize("body", INCOMPLETE.values(), ids=INCOMPLETE.keys())
def test_an_incomplete_2xx_to_a_refund_is_outcome_unknown_and_a_retry_refunds_once(
    make_manager: Callable[..., GatewayManager], standin: StandIn, body: str
) -> None:
    manager = make_manager(max_retries=0)
    capture_id = paid_capture(manager, standin, Money.of("10.00", "EUR"))
    standin.fault("POST", "/refund", "garbage_after", status=201, body=body, content_type="application/json")
    request = RefundRequest(capture_id, Money.of("4.00", "EUR"))
    with pytest.raises(OutcomeUnknown) as info:
        manager.refund(GATEWAY, request, idempotency_key="incomplete")
    assert not info.value.unmapped  # not "gateway plugin raised KeyError"
    assert info.value.retryable is False  # PayPal would replay the same answer: read the status
    assert info.value.http_status == 201
    assert "cannot use" in info.value.message
    assert "read the payment's status" in info.value.message
    assert "do not retry with a new key" in info.value.message
    assert standin.counts()["refunds"] == 1  # PayPal did act
    refund = manager.refund(GATEWAY, request, idempotency_key="incomplete")  # the stand-in's whole stored answer
    assert refund.amount == Money.of("4.00", "EUR")
    assert standin.counts()["refunds"] == 1


@pytest.mark.parametrize("body", INCOMPLETE.values(), ids=INCOMPLETE.keys())
def test_a_short_answer_paypal_replays_is_not_retryable_and_the_status_tells_what_happened(
    make_manager: Callable[..., GatewayManager], standin: StandIn, body: str
) -> None:
    """PayPal keeps the answer for the PayPal-Request-Id: a retry with it reads the same short object.

    So the error says ``retryable=False`` (the plugin does not retry it either, whatever
    ``max_retries`` is), and the payment's status is what tells the host the refund was made.
    """
    manager = make_manager(max_retries=2)
    capture_id = paid_capture(manager, standin, Money.of("10.00", "EUR"))
    # The first answer and PayPal's replay of it to the same id are both short.
    standin.fault("POST", "/refund", "garbage_after", count=2, status=201, body=body, content_type="application/json")
    request = RefundRequest(capture_id, Money.of("4.00", "EUR"))
    with pytest.raises(OutcomeUnknown) as info:
        manager.refund(GATEWAY, request, idempotency_key="replayed-short")
    assert info.value.retryable is False
    assert attempts(standin, "/refund") == ["replayed-short"]  # not retried by the plugin
    with pytest.raises(OutcomeUnknown) as again:
        manager.refund(GATEWAY, request, idempotency_key="replayed-short")
    assert again.value.retryable is False  # the host's retry learned nothing more
    assert standin.counts()["refunds"] == 1
    assert manager.payment_status(GATEWAY, capture_id).amount_refunded == Money.of("4.00", "EUR")


def test_an_order_created_without_an_approval_link_is_outcome_unknown(
    make_manager: Callable[..., GatewayManager], standin: StandIn
) -> None:
    manager = make_manager(max_retries=0)
    body = '{"id": "5O190127TN364715T", "status": "PAYER_ACTION_REQUIRED", "links": []}'
    standin.fault(
        "POST", "/v2/checkout/orders", "garbage_after", status=200, body=body, content_type="application/json"
    )
    request = CheckoutRequest.single(
        "Ticket", Money.of("10.00", "EUR"), "https://shop.example/p", "https://shop.example/c"
    )
    with pytest.raises(OutcomeUnknown) as info:
        manager.create_checkout(GATEWAY, request, idempotency_key="no-link")
    assert "no approval link" in info.value.message
    assert info.value.retryable is False
    assert not info.value.unmapped
    session = manager.create_checkout(GATEWAY, request, idempotency_key="no-link")
    assert session.url
    assert standin.counts()["orders"] == 1


def test_a_capture_answer_with_an_unreadable_amount_is_outcome_unknown_not_invalid_amount(
    make_manager: Callable[..., GatewayManager], standin: StandIn
) -> None:
    """InvalidAmount would tell the host its own amount was wrong, and that nothing was captured."""
    manager = make_manager(max_retries=0)
    order_id = checkout(manager, Money.of("10.00", "EUR"))
    standin.approve(order_id)
    capture = {"id": "2GG279541U471931P", "status": "COMPLETED", "amount": {"value": "ten", "currency_code": "EUR"}}
    body = json.dumps(
        {"id": order_id, "status": "COMPLETED", "purchase_units": [{"payments": {"captures": [capture]}}]}
    )
    standin.fault(
        "POST", f"/orders/{order_id}/capture", "garbage_after", status=201, body=body, content_type="application/json"
    )
    with pytest.raises(OutcomeUnknown) as info:
        manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key="capture-bad-amount")
    assert not isinstance(info.value, InvalidAmount)
    assert info.value.retryable is False
    assert "'ten'" in info.value.message
    assert standin.counts()["captures"] == 1
    retried = manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key="capture-bad-amount")
    assert retried.amount == Money.of("10.00", "EUR")  # PayPal's stored answer, read this time
    assert standin.counts()["captures"] == 1


def test_an_incomplete_2xx_to_a_read_is_unavailable(
    make_manager: Callable[..., GatewayManager], standin: StandIn
) -> None:
    manager = make_manager(max_retries=0)
    order_id = checkout(manager, Money.of("10.00", "EUR"))
    body = json.dumps({"id": order_id, "status": "CREATED"})  # no purchase units: no amount to report
    standin.fault(
        "GET",
        f"/v2/checkout/orders/{order_id}",
        "garbage_after",
        status=200,
        body=body,
        content_type="application/json",
    )
    with pytest.raises(GatewayUnavailable) as info:
        manager.payment_status(GATEWAY, order_id)
    assert not isinstance(info.value, OutcomeUnknown)
    assert not info.value.unmapped
    assert info.value.retryable  # nothing was changed: the next read may well be whole
    assert "the order has no amount" in info.value.message
    assert manager.payment_status(GATEWAY, order_id).checkout_id == order_id


def test_a_refund_whose_follow_up_read_is_incomplete_is_still_outcome_unknown(
    make_manager: Callable[..., GatewayManager], standin: StandIn
) -> None:
    """The refund POST was answered 2xx: whichever answer after it is short, PayPal has acted."""
    manager = make_manager(max_retries=0)
    capture_id = paid_capture(manager, standin, Money.of("10.00", "EUR"))
    # No amount: the plugin reads the refund; and the refund it reads has none either.
    standin.fault("POST", "/refund", "short_after", drop=["amount"])
    standin.fault("GET", "/v2/payments/refunds/", "short_after", drop=["amount"])
    with pytest.raises(OutcomeUnknown) as info:
        manager.refund(GATEWAY, RefundRequest(capture_id), idempotency_key="full-refund")
    assert "amount is missing" in info.value.message
    assert info.value.retryable is False  # whichever answer was short, once the POST was answered
    assert standin.counts()["refunds"] == 1
    refund = manager.refund(GATEWAY, RefundRequest(capture_id), idempotency_key="full-refund")
    assert refund.amount == Money.of("10.00", "EUR")
    assert standin.counts()["refunds"] == 1


@pytest.mark.parametrize("by", ["capture id", "order id"])
def test_a_full_refund_answered_without_its_amount_reports_what_it_refunded_not_the_capture(
    make_manager: Callable[..., GatewayManager], standin: StandIn, by: str
) -> None:
    """After a partial refund, a full refund returns what remained: the amount is read from the refund."""
    manager = make_manager(max_retries=0)
    order_id = checkout(manager, Money.of("10.00", "EUR"))
    standin.approve(order_id)
    capture_id = manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key=key()).id
    manager.refund(GATEWAY, RefundRequest(capture_id, Money.of("4.00", "EUR")), idempotency_key=key())
    standin.fault("POST", f"/captures/{capture_id}/refund", "short_after", drop=["amount"])
    refund = manager.refund(
        GATEWAY, RefundRequest(capture_id if by == "capture id" else order_id), idempotency_key=key()
    )
    assert refund.amount == Money.of("6.00", "EUR")  # not the capture's 10.00
    assert refund.payment_id == capture_id
    assert [r["path"] for r in standin.requests() if r["path"].startswith("/v2/payments/refunds/")] == [
        f"/v2/payments/refunds/{refund.id}"
    ]
    assert manager.payment_status(GATEWAY, capture_id).amount_refunded == Money.of("10.00", "EUR")


def test_a_full_refund_whose_amount_cannot_be_read_back_never_reports_one(
    make_manager: Callable[..., GatewayManager], standin: StandIn
) -> None:
    """No amount in the answer and no such refund to read it from: a short answer, not a guess."""
    manager = make_manager(max_retries=0)
    capture_id = paid_capture(manager, standin, Money.of("10.00", "EUR"))
    manager.refund(GATEWAY, RefundRequest(capture_id, Money.of("4.00", "EUR")), idempotency_key=key())
    body = '{"id": "1JU08902781691411", "status": "COMPLETED"}'  # an id PayPal does not know
    standin.fault("POST", "/refund", "garbage_after", status=201, body=body, content_type="application/json")
    with pytest.raises(OutcomeUnknown) as info:
        manager.refund(GATEWAY, RefundRequest(capture_id), idempotency_key=key())
    assert info.value.retryable is False
    assert not info.value.unmapped
    assert "read the payment's status" in info.value.message
    assert info.value.http_status == 404
    assert manager.payment_status(GATEWAY, capture_id).amount_refunded == Money.of("10.00", "EUR")


def test_a_failed_read_of_a_refunds_amount_is_outcome_unknown_and_a_retry_reads_it(
    make_manager: Callable[..., GatewayManager], standin: StandIn
) -> None:
    """PayPal refunded: a 5xx on the follow-up read must not say nothing happened."""
    manager = make_manager(max_retries=0)
    capture_id = paid_capture(manager, standin, Money.of("10.00", "EUR"))
    standin.fault("POST", "/refund", "short_after", count=2, drop=["amount"])
    standin.fault("GET", "/v2/payments/refunds/", "500")
    with pytest.raises(OutcomeUnknown) as info:
        manager.refund(GATEWAY, RefundRequest(capture_id), idempotency_key="read-back")
    assert info.value.retryable is True
    assert info.value.http_status == 500
    refund = manager.refund(GATEWAY, RefundRequest(capture_id), idempotency_key="read-back")
    assert refund.amount == Money.of("10.00", "EUR")
    assert standin.counts()["refunds"] == 1


#: Capture answers (PayPal acted) with a list or string where PayPal puts an object.
MISSHAPEN_CAPTURES = {
    "payments_a_list": {"purchase_units": [{"payments": ["x"]}]},
    "payments_a_string": {"purchase_units": [{"payments": "captures"}]},
}


@pytest.mark.parametrize("shape", MISSHAPEN_CAPTURES.values(), ids=MISSHAPEN_CAPTURES.keys())
def test_a_wrongly_shaped_capture_answer_is_a_short_answer_not_unmapped(
    make_manager: Callable[..., GatewayManager], standin: StandIn, shape: dict[str, object]
) -> None:
    manager = make_manager(max_retries=0)
    order_id = checkout(manager, Money.of("10.00", "EUR"))
    standin.approve(order_id)
    body = json.dumps({"id": order_id, "status": "COMPLETED", **shape})
    standin.fault(
        "POST", f"/orders/{order_id}/capture", "garbage_after", status=201, body=body, content_type="application/json"
    )
    with pytest.raises(OutcomeUnknown) as info:
        manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key="misshapen")
    assert not info.value.unmapped  # not "gateway plugin raised AttributeError"
    assert info.value.retryable is False
    assert "lists no capture" in info.value.message
    assert standin.counts()["captures"] == 1
    assert manager.payment_status(GATEWAY, order_id).amount_captured == Money.of("10.00", "EUR")


def test_wrongly_shaped_details_of_a_capture_read_as_absent(
    make_manager: Callable[..., GatewayManager], standin: StandIn
) -> None:
    """A declined capture whose status_details is a list is still a decline; a misshapen
    supplementary_data on a status read is no related order."""
    manager = make_manager(max_retries=0)
    order_id = checkout(manager, Money.of("10.00", "EUR"))
    standin.approve(order_id)
    declined = {"id": "2GG279541U471931P", "status": "DECLINED", "status_details": ["DECLINED"],
                "amount": {"currency_code": "EUR", "value": "10.00"}}  # fmt: skip
    body = json.dumps(
        {"id": order_id, "status": "COMPLETED", "purchase_units": [{"payments": {"captures": [declined]}}]}
    )
    standin.fault(
        "POST", f"/orders/{order_id}/capture", "garbage_after", status=201, body=body, content_type="application/json"
    )
    with pytest.raises(PaymentDeclined) as info:
        manager.capture(GATEWAY, CaptureRequest(order_id), idempotency_key=key())
    assert info.value.decline_code == "DECLINED"
    capture_id = manager.payment_status(GATEWAY, order_id).payment_id
    capture = {"id": capture_id, "status": "COMPLETED", "amount": {"currency_code": "EUR", "value": "10.00"},
               "supplementary_data": ["x"]}  # fmt: skip
    standin.fault(
        "GET", f"/captures/{capture_id}", "garbage_after", status=200, body=json.dumps(capture),
        content_type="application/json",
    )  # fmt: skip
    status = manager.payment_status(GATEWAY, capture_id)
    assert (status.payment_id, status.checkout_id) == (capture_id, None)


@pytest.mark.parametrize("rest", [False, True], ids=["partial", "the_rest"])
def test_a_manual_retry_of_a_lost_authorization_capture_captures_once(
    make_manager: Callable[..., GatewayManager], standin: StandIn, rest: bool
) -> None:
    """The retry reads the authorization as the first attempt left it (partly or wholly captured);
    it still sends the same PayPal-Request-Id and gets PayPal's stored capture, never a refusal."""
    manager = make_manager(max_retries=0)
    amount = Money.of("30.00", "USD")
    order_id = checkout(manager, amount, capture=False)
    standin.approve(order_id)
    auth = manager.authorize(GATEWAY, AuthorizeRequest(amount, order_id), idempotency_key=key())
    if rest:
        manager.capture(GATEWAY, CaptureRequest(auth.id, Money.of("10.00", "USD")), idempotency_key=key())
    request = CaptureRequest(auth.id) if rest else CaptureRequest(auth.id, Money.of("20.00", "USD"))
    standin.fault("POST", f"/authorizations/{auth.id}/capture", "drop_after")
    with pytest.raises(OutcomeUnknown):
        manager.capture(GATEWAY, request, idempotency_key="capture-lost")
    capture = manager.capture(GATEWAY, request, idempotency_key="capture-lost")
    assert capture.amount == Money.of("20.00", "USD")
    assert attempts(standin, "/capture")[-2:] == ["capture-lost", "capture-lost"]
    assert standin.counts()["captures"] == (2 if rest else 1)
    assert manager.payment_status(GATEWAY, order_id).amount_captured == Money.of("30.00" if rest else "20.00", "USD")
