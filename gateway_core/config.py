"""Deployment configuration: which gateways run, under what names, with which settings.

Read from ``gateway.toml`` (``tomllib``); secrets come from environment variables and are held
as :class:`Secret`, which never prints its value::

    [core]
    strict_plugins = false            # true: a plugin that fails to load is an error
    disabled_plugins = ["paypal"]     # entry-point names not to load (also GATEWAY_CORE_DISABLE_PLUGINS)

    [gateways.stripe_eu]              # the gateway's name, used everywhere else
    provider = "stripe"               # the provider that plugin declares
    currencies = ["EUR", "HUF"]       # optional: narrow the provider's currencies
    priority = 10                     # routing order, lower first (default 100)

    [gateways.stripe_eu.settings]     # handed to the provider's factory
    api_key = { env = "STRIPE_EU_API_KEY" }

A setting whose name looks like a secret's -- ending in ``key``, ``token`` or ``credential`` (or
their plurals), or containing ``secret``, ``password``, ``passwd``, ``passphrase`` or
``private_key`` -- must come from the environment; a literal in the file is refused so secrets
never land in version control (a true/false flag such as ``verify_token = true`` is allowed).
The rule holds at any depth: in nested tables and in tables inside arrays, where
``{ env = "VAR" }`` is resolved too.
"""

from __future__ import annotations

import hmac
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from gateway_core.errors import ConfigurationError

__all__ = ["DISABLE_ENV_VAR", "DeploymentConfig", "GatewaySettings", "Secret"]

#: Comma-separated entry-point names that are not loaded.
DISABLE_ENV_VAR = "GATEWAY_CORE_DISABLE_PLUGINS"

_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,39}")
# A setting name that says "secret": ending in key/token/credential (plural too: api_keys,
# refresh_tokens, credentials) or containing secret, password, passwd, passphrase or private_key
# anywhere (client_secret, secrets, db_password_main, tls_passphrase, private_key_pem).
_SECRET_NAME_RE = re.compile(r"(keys?|tokens?|credentials?)$|secret|passw(or)?d|passphrase|private_?key")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Secret:
    """A secret value that never shows itself in ``repr``, ``str``, f-strings or logs.

    Call :meth:`reveal` at the one place the value is sent to the provider. A plain class with
    ``__slots__``, deliberately not an attrs class or dataclass: ``attrs.asdict``/``astuple``,
    ``dataclasses.asdict`` and ``vars()`` would hand the value to whatever serializes a config.
    Immutable; equal when value and source are (the values compared in constant time).
    """

    __slots__ = ("__value", "source")

    __value: str
    source: str

    def __init__(self, value: str, source: str = "code") -> None:
        if not isinstance(value, str):
            raise TypeError(f"a Secret holds a str, not {type(value).__name__}")
        object.__setattr__(self, "_Secret__value", value)
        object.__setattr__(self, "source", source)

    def reveal(self) -> str:
        return self.__value

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secret is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Secret is immutable")

    def __repr__(self) -> str:
        return f"Secret('********', source={self.source!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __bool__(self) -> bool:
        return bool(self.__value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return self.source == other.source and hmac.compare_digest(self.__value.encode(), other.__value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self.__value, self.source))

    def __reduce__(self) -> tuple[type[Secret], tuple[str, str]]:
        # pickle and copy rebuild it through __init__ (its __setattr__ refuses the default way)
        return (Secret, (self.__value, self.source))


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ConfigurationError(
            f"{kind} name {name!r} must be lowercase letters, digits, '_' or '-', starting with a letter"
        )
    return name


def _freeze(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@attrs.frozen
class GatewaySettings:
    """One configured gateway: its name, its provider, and the settings its factory reads."""

    name: str
    provider: str
    settings: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze)
    currencies: tuple[str, ...] | None = None
    priority: int = 100

    def __attrs_post_init__(self) -> None:
        _check_name("gateway", self.name)

    def get(self, key: str, default: Any = None) -> Any:
        return self.settings.get(key, default)

    def require(self, key: str) -> Any:
        """A required setting; :class:`ConfigurationError` naming the gateway if absent."""
        if key not in self.settings:
            raise ConfigurationError(
                f"gateway {self.name!r} ({self.provider}) needs setting {key!r}", gateway=self.name
            )
        return self.settings[key]

    def refuse_unknown(self, known: Iterable[str]) -> None:
        """:class:`ConfigurationError` naming every setting not in ``known`` (a provider's factory calls it).

        A misspelt setting (``minimum`` for ``minimums``) would otherwise be ignored, and what it
        meant to set silently left at its default. The error names the settings, never a value.
        """
        accepted = frozenset(known)
        unknown = sorted(set(self.settings) - accepted)
        if unknown:
            raise ConfigurationError(
                f"gateway {self.name!r} ({self.provider}): unknown settings {', '.join(map(repr, unknown))}; "
                f"it takes {', '.join(sorted(accepted))}",
                gateway=self.name,
            )

    def secret(self, key: str) -> Secret:
        """A required secret setting."""
        value = self.require(key)
        if isinstance(value, Secret):
            return value
        raise ConfigurationError(
            f"gateway {self.name!r} setting {key!r} must be a secret from the environment", gateway=self.name
        )


def _resolve_setting(gateway: str, key: str, value: Any, environ: Mapping[str, str]) -> Any:
    if isinstance(value, Secret):
        return value
    if isinstance(value, dict) and set(value) == {"env"}:
        var = value["env"]
        if not isinstance(var, str) or not _ENV_NAME_RE.fullmatch(var):
            raise ConfigurationError(f"gateway {gateway!r} setting {key!r}: bad env var name", gateway=gateway)
        if var not in environ:
            raise ConfigurationError(
                f"gateway {gateway!r} setting {key!r} reads environment variable {var}, which is not set",
                gateway=gateway,
            )
        return Secret(environ[var], source=f"env:{var}")
    if not isinstance(value, bool) and _SECRET_NAME_RE.search(key.lower()):  # 1234, ["..."], { value = "..." } too
        raise ConfigurationError(
            f'gateway {gateway!r} setting {key!r} looks like a secret: give it as {{ env = "VAR" }}, '
            "not as a literal in the file",
            gateway=gateway,
        )
    if isinstance(value, dict):  # a nested table follows the same rules (client.secret = { env = ... })
        return {k: _resolve_setting(gateway, f"{key}.{k}", v, environ) for k, v in value.items()}
    if isinstance(value, list):  # and so does a table in an array ([[settings.accounts]] api_key = ...)
        return [_resolve_setting(gateway, f"{key}[{i}]", v, environ) for i, v in enumerate(value)]
    return value


def _gateways(value: Iterable[GatewaySettings]) -> tuple[GatewaySettings, ...]:
    return tuple(value)


def _names(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


@attrs.frozen
class DeploymentConfig:
    """The whole deployment: gateways in configuration order plus plugin-loading policy."""

    gateways: tuple[GatewaySettings, ...] = attrs.field(converter=_gateways, factory=tuple)
    strict_plugins: bool = False
    disabled_plugins: frozenset[str] = attrs.field(converter=_names, factory=frozenset)

    def __attrs_post_init__(self) -> None:
        seen: set[str] = set()
        for gw in self.gateways:
            if gw.name in seen:
                raise ConfigurationError(f"gateway {gw.name!r} configured twice", gateway=gw.name)
            seen.add(gw.name)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> DeploymentConfig:
        """Read ``gateway.toml``; secrets are resolved from ``environ`` (default ``os.environ``)."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ConfigurationError(f"configuration file {p} not found") from exc
        except IsADirectoryError as exc:
            raise ConfigurationError(f"configuration file {p} is a directory, not a file") from exc
        except UnicodeDecodeError as exc:
            raise ConfigurationError(
                f"configuration file {p} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
            ) from exc
        except OSError as exc:  # permission denied, not a directory, name too long, I/O error...
            raise ConfigurationError(
                f"configuration file {p} cannot be read: {exc.strerror or type(exc).__name__}"
            ) from exc
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"configuration file {p} is not valid TOML: {exc}") from exc
        return cls.from_mapping(data, environ)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> DeploymentConfig:
        """Build from an already-parsed mapping with the ``gateway.toml`` layout."""
        env = os.environ if environ is None else environ
        unknown = set(data) - {"core", "gateways"}
        if unknown:
            raise ConfigurationError(f"unknown configuration sections: {', '.join(sorted(unknown))}")
        for section in ("core", "gateways"):
            if not isinstance(data.get(section, {}), Mapping):
                raise ConfigurationError(f"[{section}] must be a table")
        core = dict(data.get("core", {}))
        strict = core.pop("strict_plugins", False)
        disabled = core.pop("disabled_plugins", [])
        if core:
            raise ConfigurationError(f"unknown [core] keys: {', '.join(sorted(core))}")
        if not isinstance(strict, bool):
            raise ConfigurationError("[core] strict_plugins must be true or false")
        if not isinstance(disabled, list) or not all(isinstance(d, str) for d in disabled):
            raise ConfigurationError("[core] disabled_plugins must be a list of entry-point names")
        gateways = [cls._gateway(name, body, env) for name, body in dict(data.get("gateways", {})).items()]
        return cls(gateways, strict, frozenset(disabled) | disabled_from_env(env))

    @staticmethod
    def _gateway(name: str, body: Any, env: Mapping[str, str]) -> GatewaySettings:
        _check_name("gateway", name)
        if not isinstance(body, dict):
            raise ConfigurationError(f"[gateways.{name}] must be a table", gateway=name)
        body = dict(body)
        provider = body.pop("provider", None)
        if not isinstance(provider, str):
            raise ConfigurationError(f'[gateways.{name}] needs provider = "..."', gateway=name)
        currencies = body.pop("currencies", None)
        if currencies is not None and (
            not isinstance(currencies, list) or not all(isinstance(c, str) for c in currencies) or not currencies
        ):
            raise ConfigurationError(f"[gateways.{name}] currencies must be a non-empty list of codes", gateway=name)
        priority = body.pop("priority", 100)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ConfigurationError(f"[gateways.{name}] priority must be an integer", gateway=name)
        settings = body.pop("settings", {})
        if body:
            raise ConfigurationError(f"[gateways.{name}] unknown keys: {', '.join(sorted(body))}", gateway=name)
        if not isinstance(settings, dict):
            raise ConfigurationError(f"[gateways.{name}.settings] must be a table", gateway=name)
        resolved = {k: _resolve_setting(name, k, v, env) for k, v in settings.items()}
        return GatewaySettings(name, provider, resolved, tuple(currencies) if currencies else None, priority)


def disabled_from_env(environ: Mapping[str, str]) -> frozenset[str]:
    """Entry-point names listed in ``GATEWAY_CORE_DISABLE_PLUGINS``."""
    raw = environ.get(DISABLE_ENV_VAR, "")
    return frozenset(part.strip() for part in raw.split(",") if part.strip())
