"""Platform configuration: price limits per currency, the service fee and its rounding, hold and late-join time.

Read from the ``[platform]`` table of a TOML file whose ``[gateways]`` tables have gateway-core's
``gateway.toml`` layout, so one file configures both (see ``paid_events.example.toml``)::

    [platform]
    fee_percent = "5"            # a decimal string, never a float
    fee_rounding = "HALF_UP"     # a gateway_core.Rounding name
    discount_rounding = "HALF_UP"
    minimum_price = "1"          # major units of the ticket's currency
    hold_minutes = 30
    late_join_minutes = 10       # a one-off event takes registrations until this long after it starts

    [platform.price_limits]
    EUR = "2000"
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from decimal import Decimal
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from gateway_core import ConfigurationError, DeploymentConfig, InvalidMoney, Money, Rounding
from gateway_core.money import parse_decimal

__all__ = ["EXAMPLE_CONFIG", "PlatformConfig", "example_config_text", "load", "load_mapping"]

#: The name of the example configuration shipped inside the package.
EXAMPLE_CONFIG = "paid_events.example.toml"


def _freeze_limits(value: Mapping[str, Money]) -> Mapping[str, Money]:
    return MappingProxyType(dict(value))


def _decimal(name: str, value: object) -> Decimal:
    """A configured number, read as strictly as an amount: ``"1_5"`` or ``"1.5E+1"`` is not 15."""
    if not isinstance(value, str):
        raise ConfigurationError(f'[platform] {name} must be a decimal string such as "5", not {type(value).__name__}')
    try:
        return parse_decimal(value)
    except InvalidMoney:
        raise ConfigurationError(
            f"[platform] {name} = {value!r} is not a plain decimal (ASCII digits, optional '.', no exponent, "
            "underscores or spaces)"
        ) from None


def _rounding(name: str, value: object) -> Rounding:
    if not isinstance(value, str) or value not in Rounding.__members__:
        raise ConfigurationError(f"[platform] {name} must be one of {', '.join(Rounding.__members__)}")
    return Rounding[value]


@attrs.frozen
class PlatformConfig:
    """The platform's own rules (not a gateway's)."""

    price_limits: Mapping[str, Money] = attrs.field(converter=_freeze_limits)
    fee_percent: Decimal = Decimal(5)
    fee_rounding: Rounding = Rounding.HALF_UP
    discount_rounding: Rounding = Rounding.HALF_UP
    minimum_price: Decimal = Decimal(1)
    hold_minutes: int = 30
    #: How long after a one-off event's start registration stays open (0: closes at the start).
    late_join_minutes: int = 10

    def __attrs_post_init__(self) -> None:
        if not Decimal(0) <= self.fee_percent < Decimal(100):
            raise ConfigurationError(f"[platform] fee_percent must be in [0, 100), got {self.fee_percent}")
        if self.minimum_price <= 0:
            raise ConfigurationError("[platform] minimum_price must be positive")
        if self.hold_minutes < 1:
            raise ConfigurationError("[platform] hold_minutes must be at least 1")
        if self.late_join_minutes < 0:
            raise ConfigurationError("[platform] late_join_minutes must not be negative")
        for code, limit in self.price_limits.items():
            if limit.currency != code:
                raise ConfigurationError(f"[platform.price_limits] {code} is given in {limit.currency}")
            try:
                minimum = Money.of(self.minimum_price, code)
            except InvalidMoney:
                raise ConfigurationError(
                    f"[platform] minimum_price = {str(self.minimum_price)!r}: {code} has no such amount "
                    "(too many decimals for it)"
                ) from None
            if limit < minimum:
                raise ConfigurationError(
                    f"[platform.price_limits] {code} = {str(limit.amount)!r} is below minimum_price "
                    f"{str(self.minimum_price)!r}: nothing could be sold in {code}"
                )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PlatformConfig:
        """Build from the parsed ``[platform]`` table."""
        body = dict(data)
        raw_limits = body.pop("price_limits", None)
        if not isinstance(raw_limits, dict) or not raw_limits:
            raise ConfigurationError('[platform.price_limits] must be a table of currency = "limit"')
        limits: dict[str, Money] = {}
        for code, value in raw_limits.items():
            if not isinstance(value, str):
                raise ConfigurationError(f"[platform.price_limits] {code} must be a decimal string")
            try:
                limits[code] = Money.of(value, code)
            except InvalidMoney as exc:
                raise ConfigurationError(f"[platform.price_limits] {code}: {exc}") from None
        kwargs: dict[str, Any] = {}
        if "fee_percent" in body:
            kwargs["fee_percent"] = _decimal("fee_percent", body.pop("fee_percent"))
        if "minimum_price" in body:
            kwargs["minimum_price"] = _decimal("minimum_price", body.pop("minimum_price"))
        for name in ("fee_rounding", "discount_rounding"):
            if name in body:
                kwargs[name] = _rounding(name, body.pop(name))
        for name in ("hold_minutes", "late_join_minutes"):
            if name in body:
                minutes = body.pop(name)
                if isinstance(minutes, bool) or not isinstance(minutes, int):
                    raise ConfigurationError(f"[platform] {name} must be an integer")
                kwargs[name] = minutes
        if body:
            raise ConfigurationError(f"unknown [platform] keys: {', '.join(sorted(body))}")
        return cls(limits, **kwargs)

    def price_limit(self, currency: str) -> Money | None:
        """The highest ticket price in ``currency``; ``None`` when the platform does not sell it."""
        return self.price_limits.get(currency)


def load_mapping(
    data: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> tuple[PlatformConfig, DeploymentConfig]:
    """Split a parsed file into the platform's rules and gateway-core's deployment."""
    body = dict(data)
    platform = body.pop("platform", None)
    if not isinstance(platform, dict):
        raise ConfigurationError("the configuration needs a [platform] table")
    return PlatformConfig.from_mapping(platform), DeploymentConfig.from_mapping(body, environ)


def load(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> tuple[PlatformConfig, DeploymentConfig]:
    """Read a configuration file (default: the example shipped with the package)."""
    if path is None:
        text = example_config_text()
        where = EXAMPLE_CONFIG
    else:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigurationError(f"configuration file {p} not found") from None
        where = str(p)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"configuration file {where} is not valid TOML: {exc}") from None
    return load_mapping(data, environ)


def example_config_text() -> str:
    """The example configuration shipped inside the package."""
    return resources.files("paid_events").joinpath(EXAMPLE_CONFIG).read_text(encoding="utf-8")
