"""PayPal webhooks: verification (API or offline) and the mapping of event types onto the core's.

Offline verification follows PayPal's documented scheme: the signed message is
``transmission_id|transmission_time|webhook_id|crc32(raw body)`` (CRC32 as an unsigned decimal),
signed SHA256withRSA by the certificate at ``PAYPAL-CERT-URL``. Before that URL is fetched it must
be ``https`` on one of PayPal's API hosts for the environment, with the path
``/v1/notifications/certs/...``, no port, credentials, query or fragment; it is fetched without
following redirects and at most 64 KB are read. The certificate chain is verified by
cryptography's X.509 path validation against the trust anchors (the CA bundle from
``webhook_ca_bundle``, else ``certifi``'s; an intermediate CA in the bundle is an anchor too, so a
``cert_url`` that serves only the leaf verifies when the bundle holds its issuer, as PayPal's own
SDKs bundle it), every certificate must be in its validity period, and
the leaf must be PayPal's signing certificate: subject CN and subjectAltName
``messageverificationcerts[.sandbox].paypal.com``, a key usable for signatures. Verified
certificates are cached (a bounded LRU) until the first certificate of the chain expires; failures
are remembered briefly and fetches are rate-limited (:class:`CertificateStore`).
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import zlib
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from gateway_core.errors import GatewayError, WebhookVerificationFailed
from gateway_core.models import EventType

__all__ = [
    "CERT_HOSTS",
    "CERT_SUBJECTS",
    "EVENT_TYPES",
    "REFUND_EVENTS",
    "REFUND_STATUS_EVENTS",
    "STATUS_REASON",
    "CertificateStore",
    "check_cert_url",
    "event_type",
    "signed_message",
    "status_reason",
]

#: PayPal's hosts that serve webhook signing certificates, per environment.
CERT_HOSTS: Mapping[str, frozenset[str]] = {
    "live": frozenset({"api.paypal.com", "api-m.paypal.com"}),
    "sandbox": frozenset({"api.sandbox.paypal.com", "api-m.sandbox.paypal.com"}),
}
#: The subject common name of PayPal's webhook signing certificate, per environment.
CERT_SUBJECTS: Mapping[str, str] = {
    "live": "messageverificationcerts.paypal.com",
    "sandbox": "messageverificationcerts.sandbox.paypal.com",
}
CERT_PATH_PREFIX = "/v1/notifications/certs/"

#: PayPal event type -> the core's, where the name alone decides (a refund event's refund decides:
#: :data:`REFUND_EVENTS`). Anything else is reported as ``EventType.UNKNOWN``.
EVENT_TYPES: Mapping[str, EventType] = {
    "CHECKOUT.ORDER.APPROVED": EventType.CHECKOUT_COMPLETED,
    "CHECKOUT.ORDER.COMPLETED": EventType.CHECKOUT_COMPLETED,
    # "A problem occurred after the buyer approved the order but before you captured the payment":
    # the approved checkout will not be paid.
    "CHECKOUT.PAYMENT-APPROVAL.REVERSED": EventType.PAYMENT_FAILED,
    "PAYMENT.AUTHORIZATION.CREATED": EventType.PAYMENT_AUTHORIZED,
    "PAYMENT.AUTHORIZATION.VOIDED": EventType.PAYMENT_CANCELED,
    "PAYMENT.CAPTURE.COMPLETED": EventType.PAYMENT_SUCCEEDED,
    "PAYMENT.CAPTURE.PENDING": EventType.PAYMENT_PENDING,
    "PAYMENT.CAPTURE.DENIED": EventType.PAYMENT_FAILED,
    "PAYMENT.CAPTURE.DECLINED": EventType.PAYMENT_FAILED,
    "PAYMENT.CAPTURE.REVERSED": EventType.PAYMENT_REVERSED,
    # "A dispute is created" (developer.paypal.com/docs/disputes/webhooks); its resource is a
    # Customer Disputes v1 dispute (dispute_id, disputed_transactions, dispute_amount, reason).
    "CUSTOMER.DISPUTE.CREATED": EventType.DISPUTE_OPENED,
}

#: Events about one refund, whose type is decided by that refund's own ``status``, never by the
#: event's name. ``PAYMENT.CAPTURE.REFUNDED`` ("A merchant refunds a payment capture", PayPal's
#: event-names page, Payments v2) fires when the refund is made, and PayPal makes some refunds
#: ``PENDING`` (Payments v2 ``refund_status``; ``status_details.reason`` ``ECHECK``: the recorded
#: sandbox refund, ``tests/paypal_gateway/data/recorded/test_refund_success.yaml``, is one), so
#: ``refund.succeeded`` for it would claim money back that is not. The ``PAYMENT.REFUND.*`` names
#: are not on PayPal's published list (its Payments v2 section names seven events, none of them
#: these); integrations in the wild subscribe to them, so should PayPal send one, the same rule
#: reads its refund, and the name alone claims nothing.
REFUND_EVENTS: frozenset[str] = frozenset(
    {
        "PAYMENT.CAPTURE.REFUNDED",
        "PAYMENT.REFUND.PENDING",
        "PAYMENT.REFUND.COMPLETED",
        "PAYMENT.REFUND.FAILED",
        "PAYMENT.REFUND.CANCELLED",
    }
)
#: Payments v2 ``refund_status.status`` -> the core's event. A ``CANCELLED`` refund returned
#: nothing, as a ``FAILED`` one: the amount is refundable again (``refund.failed``).
REFUND_STATUS_EVENTS: Mapping[str, EventType] = {
    "COMPLETED": EventType.REFUND_SUCCEEDED,
    "PENDING": EventType.REFUND_PENDING,
    "FAILED": EventType.REFUND_FAILED,
    "CANCELLED": EventType.REFUND_FAILED,
}


def event_type(provider_type: str, resource_type: Any, resource: Mapping[str, Any]) -> EventType:
    """The core's event type for a verified PayPal event.

    A refund event (:data:`REFUND_EVENTS`) is typed by its Refund resource's own ``status``
    (:data:`REFUND_STATUS_EVENTS`); a resource that is not a refund, or a refund with no status
    or one this plugin does not know, is ``UNKNOWN``: reported, never guessed succeeded. Every
    other event is typed by its name (:data:`EVENT_TYPES`).
    """
    if provider_type not in REFUND_EVENTS:
        return EVENT_TYPES.get(provider_type, EventType.UNKNOWN)
    status = resource.get("status") if resource_type == "refund" else None
    return REFUND_STATUS_EVENTS.get(status, EventType.UNKNOWN) if isinstance(status, str) else EventType.UNKNOWN


#: The shape of a Payments v2 ``status_details.reason`` (``capture_status_details``: 1 to 64
#: characters, pattern ``^[A-Z_]+$``; ``authorization_status_details``: at most 24, the same
#: pattern; ``refund_status_details``: the enum ``ECHECK``; shared/specs/paypal/payments_payment_v2.json).
STATUS_REASON = re.compile(r"[A-Z_]{1,64}")


def status_reason(resource: Mapping[str, Any]) -> str | None:
    """A capture's, authorization's or refund's ``status_details.reason``, or ``None``.

    Why a capture is ``PENDING``/``DENIED``, an authorization ``PENDING``, a refund ``PENDING`` or
    ``FAILED`` (Payments v2 ``*_status_details``). Read by shape, as the rest of an event: anything
    but a string of PayPal's documented shape (:data:`STATUS_REASON`) -- a number, a list, an
    object, an oversized or free-text string -- is absent, never passed on to the host as a code.
    """
    details = resource.get("status_details")
    return reason_code(details.get("reason") if isinstance(details, dict) else None)


def reason_code(value: Any) -> str | None:
    """``value`` if it is a reason code of PayPal's shape (:data:`STATUS_REASON`), else ``None``.

    Also a dispute's ``reason`` (Customer Disputes v1: ``MERCHANDISE_OR_SERVICE_NOT_RECEIVED``,
    ``UNAUTHORISED``, ... -- upper-case words joined by ``_``).
    """
    return value if isinstance(value, str) and STATUS_REASON.fullmatch(value) else None


HEADERS = ("paypal-transmission-id", "paypal-transmission-time", "paypal-transmission-sig", "paypal-cert-url")


def signed_message(transmission_id: str, transmission_time: str, webhook_id: str, body: bytes) -> bytes:
    """The bytes PayPal signs for a webhook delivery."""
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body) & 0xFFFFFFFF}".encode()


def check_cert_url(url: str, environment: str, *, gateway: str | None = None) -> str:
    """Refuse a ``cert_url`` that is not PayPal's own (before anything is fetched)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookVerificationFailed("PAYPAL-CERT-URL is not a valid URL", gateway=gateway) from exc
    if parts.scheme != "https":
        raise WebhookVerificationFailed("PAYPAL-CERT-URL must use https", gateway=gateway)
    host = (parts.hostname or "").lower()
    if host not in CERT_HOSTS[environment] or parts.username or parts.password:
        raise WebhookVerificationFailed(
            f"PAYPAL-CERT-URL host {host!r} is not one of PayPal's {environment} hosts", gateway=gateway
        )
    # An explicit :443 is https's own port, the same origin as none; any other port is refused.
    if port not in (None, 443):
        raise WebhookVerificationFailed("PAYPAL-CERT-URL must name no port but 443", gateway=gateway)
    path = parts.path
    if not path.startswith(CERT_PATH_PREFIX) or len(path) == len(CERT_PATH_PREFIX) or ".." in path or "%" in path:
        raise WebhookVerificationFailed(f"PAYPAL-CERT-URL path must be under {CERT_PATH_PREFIX}", gateway=gateway)
    if parts.query or parts.fragment:
        raise WebhookVerificationFailed("PAYPAL-CERT-URL must not carry a query or fragment", gateway=gateway)
    return url


class CertificateStore:
    """Fetches, checks and caches PayPal's webhook signing certificates (thread-safe).

    ``fetch`` GETs a URL (already checked by :func:`check_cert_url`) and returns the PEM chain
    (the leaf first; any intermediates after it). ``roots_pem`` is the trust anchors' PEM bundle:
    roots, and intermediates too (a chain served as the leaf alone verifies against its issuing
    intermediate in the bundle). ``clock`` gives the current time.

    Bounded, so forged deliveries cannot grow memory or make the service a fetcher for anyone:

    * verified certificates are kept for at most ``max_cached`` URLs (least recently used goes
      first), each until the first certificate of its chain expires;
    * a URL whose fetch or check failed is refused without fetching for ``failure_ttl`` (at most
      ``max_failures`` such URLs are remembered);
    * at most ``max_fetches`` fetches happen per ``fetch_window``; beyond that a delivery with a
      new URL is refused without fetching (PayPal retries refused deliveries, for up to 3 days).
    """

    def __init__(
        self,
        environment: str,
        fetch: Callable[[str], bytes],
        roots_pem: bytes,
        *,
        gateway: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_cached: int = 16,
        failure_ttl: timedelta = timedelta(minutes=1),
        max_failures: int = 256,
        max_fetches: int = 10,
        fetch_window: timedelta = timedelta(minutes=1),
    ) -> None:
        from cryptography import x509  # noqa: PLC0415  (only when webhooks are verified offline)
        from cryptography.x509.verification import Store  # noqa: PLC0415

        self.environment = environment
        self.gateway = gateway
        self._fetch = fetch
        self._clock = clock
        self._store = Store(x509.load_pem_x509_certificates(roots_pem))
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[Any, datetime]] = OrderedDict()
        self._failed: OrderedDict[str, datetime] = OrderedDict()
        self._fetches: deque[datetime] = deque()
        self._max_cached = max_cached
        self._failure_ttl = failure_ttl
        self._max_failures = max_failures
        self._max_fetches = max_fetches
        self._fetch_window = fetch_window

    def public_key(self, url: str) -> Any:
        """The verified leaf certificate's public key for ``url``."""
        check_cert_url(url, self.environment, gateway=self.gateway)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(url)
            if cached is not None and now < cached[1]:
                self._cache.move_to_end(url)
                return cached[0]
            self._cache.pop(url, None)
            failed_until = self._failed.get(url)
            if failed_until is not None and now < failed_until:
                raise self._fail("this PAYPAL-CERT-URL failed moments ago; not fetched again yet")
            self._failed.pop(url, None)
            while self._fetches and self._fetches[0] <= now - self._fetch_window:
                self._fetches.popleft()
            if len(self._fetches) >= self._max_fetches:
                raise self._fail("too many certificate fetches just now; not fetched (PayPal will retry)")
            self._fetches.append(now)
        try:
            try:
                pem = self._fetch(url)
            except GatewayError as exc:
                raise WebhookVerificationFailed(
                    "could not fetch PayPal's webhook certificate", gateway=self.gateway
                ) from exc
            key, valid_until = self._verify_chain(pem, now)
        except WebhookVerificationFailed:
            with self._lock:
                self._failed[url] = now + self._failure_ttl
                self._failed.move_to_end(url)
                while len(self._failed) > self._max_failures:
                    self._failed.popitem(last=False)
            raise
        with self._lock:
            self._cache[url] = (key, valid_until)
            self._cache.move_to_end(url)
            while len(self._cache) > self._max_cached:
                self._cache.popitem(last=False)
        return key

    def _fail(self, reason: str) -> WebhookVerificationFailed:
        return WebhookVerificationFailed(f"PayPal webhook certificate refused: {reason}", gateway=self.gateway)

    def _verify_chain(self, pem: bytes, now: datetime) -> tuple[Any, datetime]:
        """The leaf's public key and when the first certificate of the verified chain expires.

        The path is built and checked by cryptography's X.509 verifier (RFC 5280 and the CA/B
        Forum's Web PKI profile, which PayPal's DigiCert-issued signing certificates follow):
        signatures, CA flags and path lengths, key usages, validity of every certificate at
        ``now``, and a ``serverAuth``-capable leaf whose subjectAltName is PayPal's signing host.
        On top of that the leaf's subject CN must be that host (what PayPal's own SDKs check) and,
        when the leaf says what its key is for, that must include signing.
        """
        from cryptography import x509  # noqa: PLC0415
        from cryptography.x509 import DNSName  # noqa: PLC0415
        from cryptography.x509.oid import NameOID  # noqa: PLC0415
        from cryptography.x509.verification import PolicyBuilder, VerificationError  # noqa: PLC0415

        try:
            chain = x509.load_pem_x509_certificates(pem)
        except ValueError as exc:
            raise self._fail("not a PEM certificate chain") from exc
        for cert in chain:
            if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                raise self._fail("a certificate in the chain is not valid now")
        leaf, intermediates = chain[0], chain[1:]
        subject = CERT_SUBJECTS[self.environment]
        names = [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if names != [subject]:
            raise self._fail(f"subject is not {subject}")
        try:
            usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            usage = None
        if usage is not None and not usage.digital_signature:
            raise self._fail("the certificate's key usage does not include digital signatures")
        verifier = PolicyBuilder().store(self._store).time(now).build_server_verifier(DNSName(subject))
        try:
            verified = verifier.verify(leaf, intermediates)
        except VerificationError as exc:
            hint = ""
            if not intermediates:
                # PayPal may serve the leaf alone (its own SDKs read only the first certificate and
                # ship the issuing CA): the trust store must then hold that intermediate.
                hint = (
                    "; PAYPAL-CERT-URL served the leaf certificate only, so webhook_ca_bundle must hold "
                    "the intermediate CA that issued it"
                )
            raise self._fail(f"the chain does not lead to a trusted root ({exc}){hint}") from exc
        return leaf.public_key(), min(cert.not_valid_after_utc for cert in verified)


def verify_offline(
    headers: Mapping[str, str], body: bytes, webhook_id: str, store: CertificateStore, *, gateway: str | None = None
) -> None:
    """Verify a delivery with the certificate at its ``PAYPAL-CERT-URL``; raise if it does not check out."""
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: PLC0415

    algo = headers.get("paypal-auth-algo", "SHA256withRSA")
    if algo != "SHA256withRSA":
        raise WebhookVerificationFailed(f"unsupported PAYPAL-AUTH-ALGO {algo!r}", gateway=gateway)
    try:
        signature = base64.b64decode(headers["paypal-transmission-sig"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookVerificationFailed("PAYPAL-TRANSMISSION-SIG is not base64", gateway=gateway) from exc
    key = store.public_key(headers["paypal-cert-url"])
    if not isinstance(key, rsa.RSAPublicKey):
        raise WebhookVerificationFailed("PayPal webhook certificate is not RSA", gateway=gateway)
    message = signed_message(headers["paypal-transmission-id"], headers["paypal-transmission-time"], webhook_id, body)
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise WebhookVerificationFailed("PayPal webhook signature does not match the body", gateway=gateway) from exc


def parse_transmission_time(value: str, *, gateway: str | None = None) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise WebhookVerificationFailed("PAYPAL-TRANSMISSION-TIME is not a timestamp", gateway=gateway) from exc
    if parsed.tzinfo is None:
        raise WebhookVerificationFailed("PAYPAL-TRANSMISSION-TIME has no time zone", gateway=gateway)
    return parsed
