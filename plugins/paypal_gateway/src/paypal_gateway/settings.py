"""The settings a PayPal gateway reads from ``[gateways.NAME.settings]``, checked without the SDK.

::

    [gateways.paypal_eu.settings]
    client_id = { env = "PAYPAL_CLIENT_ID" }
    client_secret = { env = "PAYPAL_CLIENT_SECRET" }
    environment = "sandbox"           # or "live"
    webhook_id = "8PT597110X687430LKGECATA"
    webhook_verification = "api"      # or "offline"
    account_country = "BR"            # optional: enables BRL (MY: MYR, CN: CNY)
    timeout = 30                      # seconds, connect and read
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs

from gateway_core.config import GatewaySettings, Secret
from gateway_core.errors import ConfigurationError

__all__ = ["BASE_URLS", "PayPalSettings"]

#: PayPal's API hosts per environment (paypal-server-sdk 2.4.0 ``Configuration.environments``).
BASE_URLS: Mapping[str, str] = {
    "sandbox": "https://api-m.sandbox.paypal.com",
    "live": "https://api-m.paypal.com",
}

_KNOWN = frozenset(
    {
        "client_id",
        "client_secret",
        "environment",
        "base_url",
        "webhook_id",
        "webhook_verification",
        "webhook_ca_bundle",
        "webhook_tolerance",
        "account_country",
        "timeout",
        "max_retries",
        "retry_backoff",
    }
)
_COUNTRY_RE = re.compile(r"[A-Z]{2}")
_WEBHOOK_ID_RE = re.compile(r"[a-zA-Z0-9]{1,50}")
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _number(settings: GatewaySettings, key: str, default: float, *, minimum: float) -> float:
    value: Any = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ConfigurationError(
            f"gateway {settings.name!r} setting {key!r} must be a number >= {minimum}", gateway=settings.name
        )
    return float(value)


@attrs.frozen
class PayPalSettings:
    """One PayPal gateway's settings, validated. Secrets stay :class:`Secret` until sent."""

    name: str
    client_id: Secret
    client_secret: Secret
    environment: Literal["sandbox", "live"] = "sandbox"
    base_url: str | None = None
    webhook_id: str | None = None
    webhook_verification: Literal["api", "offline"] = "api"
    webhook_ca_bundle: str | None = None
    webhook_tolerance: float = 900.0
    account_country: str | None = None
    timeout: float = 30.0
    max_retries: int = 2
    retry_backoff: float = 0.5

    @property
    def api_base(self) -> str:
        """Where requests go: ``base_url`` if set (a local stand-in), else the environment's host."""
        return self.base_url or BASE_URLS[self.environment]

    @property
    def live(self) -> bool:
        return self.environment == "live"

    @classmethod
    def from_gateway(cls, settings: GatewaySettings) -> PayPalSettings:
        """Validate ``settings``; :class:`ConfigurationError` names the gateway and the setting."""
        name = settings.name
        settings.refuse_unknown(_KNOWN)
        client_id = settings.secret("client_id")
        client_secret = settings.secret("client_secret")
        if not client_id or not client_secret:
            raise ConfigurationError(f"gateway {name!r}: client_id and client_secret must not be empty", gateway=name)
        environment = settings.get("environment", "sandbox")
        if environment not in ("sandbox", "live"):
            raise ConfigurationError(f"gateway {name!r}: environment must be 'sandbox' or 'live'", gateway=name)
        base_url = settings.get("base_url")
        if base_url is not None:
            base_url = _check_base_url(name, base_url)
        webhook_id = settings.get("webhook_id")
        if webhook_id is not None and (not isinstance(webhook_id, str) or not _WEBHOOK_ID_RE.fullmatch(webhook_id)):
            # The verify-webhook-signature schema: ^[a-zA-Z0-9]+$, at most 50 characters.
            raise ConfigurationError(
                f"gateway {name!r}: webhook_id must be the webhook's id from the developer dashboard "
                "(letters and digits)",
                gateway=name,
            )
        verification = settings.get("webhook_verification", "api")
        if verification not in ("api", "offline"):
            raise ConfigurationError(f"gateway {name!r}: webhook_verification must be 'api' or 'offline'", gateway=name)
        ca_bundle = settings.get("webhook_ca_bundle")
        if ca_bundle is not None and not isinstance(ca_bundle, str):
            raise ConfigurationError(f"gateway {name!r}: webhook_ca_bundle must be a file path", gateway=name)
        country = settings.get("account_country")
        if country is not None and (not isinstance(country, str) or not _COUNTRY_RE.fullmatch(country)):
            raise ConfigurationError(
                f"gateway {name!r}: account_country must be an ISO 3166-1 alpha-2 code such as 'BR'", gateway=name
            )
        timeout = _number(settings, "timeout", 30.0, minimum=0.001)
        retries = settings.get("max_retries", 2)
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
            raise ConfigurationError(f"gateway {name!r}: max_retries must be an integer from 0 to 10", gateway=name)
        return cls(
            name,
            client_id,
            client_secret,
            environment,
            base_url,
            webhook_id,
            verification,
            ca_bundle,
            _number(settings, "webhook_tolerance", 900.0, minimum=1),
            country,
            timeout,
            retries,
            _number(settings, "retry_backoff", 0.5, minimum=0),
        )


def _check_base_url(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(f"gateway {name!r}: base_url must be a URL", gateway=name)
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(f"gateway {name!r}: base_url must be an absolute http(s) URL", gateway=name)
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        # Credentials and tokens are sent to this host: plain http only to a stand-in on this machine.
        raise ConfigurationError(
            f"gateway {name!r}: base_url may use plain http only for a loopback stand-in", gateway=name
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(f"gateway {name!r}: base_url must not have a query or fragment", gateway=name)
    return value.rstrip("/")
