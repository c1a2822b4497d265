"""The public API, pinned (after stripe-python's tests/test_exports.py).

Adding a name is a deliberate change to this list; removing or renaming one breaks hosts and
plugins and needs a deprecation first.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import gateway_core
from gateway_core import errors

PUBLIC_API = [
    "AmountOutOfRange",
    "AsyncGatewayManager",
    "AuthenticationFailed",
    "AuthenticationRequired",
    "Authorization",
    "AuthorizeRequest",
    "Capabilities",
    "CapabilityNotSupported",
    "Capture",
    "CaptureRequest",
    "CheckResult",
    "CheckoutExpiry",
    "CheckoutRequest",
    "CheckoutSession",
    "CheckoutStatus",
    "ConfigurationError",
    "Currency",
    "CurrencyMismatch",
    "CurrencyRule",
    "DeploymentConfig",
    "ErrorCode",
    "EventType",
    "Exclusion",
    "Feature",
    "GatewayError",
    "GatewayInfo",
    "GatewayManager",
    "GatewaySettings",
    "GatewayUnavailable",
    "IdempotencyConflict",
    "InvalidAmount",
    "InvalidCurrency",
    "InvalidMoney",
    "InvalidRequest",
    "LineItem",
    "Money",
    "NotFound",
    "OperationContext",
    "OutcomeUnknown",
    "PaymentDeclined",
    "PaymentState",
    "PaymentStatus",
    "PermissionDenied",
    "PluginFailure",
    "PluginInfo",
    "PluginLoadError",
    "ProviderDefinition",
    "RateLimited",
    "Refund",
    "RefundRequest",
    "RefundStatus",
    "Rounding",
    "RouteDecision",
    "Router",
    "Secret",
    "Source",
    "StatusRequest",
    "UnknownGateway",
    "UnsupportedCurrency",
    "Void",
    "VoidRequest",
    "WebhookEvent",
    "WebhookRequest",
    "WebhookVerificationFailed",
    "WireFormat",
    "__version__",
    "hookimpl",
    "on_outcome",
]


def test_all_is_exactly_the_public_api() -> None:
    assert gateway_core.__all__ == PUBLIC_API


def test_every_exported_name_resolves() -> None:
    for name in gateway_core.__all__:
        assert getattr(gateway_core, name) is not None, name


def test_star_import_gives_exactly_the_public_api() -> None:
    namespace: dict[str, object] = {}
    exec("from gateway_core import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(PUBLIC_API)


def test_every_error_in_the_tree_is_exported_from_the_package() -> None:
    error_classes = {name for name in errors.__all__ if name not in ("ErrorFields", "ProviderFields")}
    assert error_classes <= set(PUBLIC_API)
    for name in error_classes - {"ErrorCode"}:
        assert issubclass(getattr(errors, name), errors.GatewayError), name


def test_the_error_tree_in_the_module_docstring_names_every_error() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        if name in ("ErrorCode", "ErrorFields", "ProviderFields"):
            continue
        assert name in doc, name


def drawn_tree() -> list[tuple[int, str, tuple[str, ...]]]:
    """(depth, class name, extra bases in parentheses) for each line of the tree in errors' docstring."""
    doc = errors.__doc__ or ""
    lines = [line for line in doc.splitlines() if "GatewayError " in line or "── " in line]
    root_indent = len(lines[0]) - len(lines[0].lstrip())
    drawn = []
    for line in lines:
        body = line[root_indent:]
        name_at = body.index("── ") + 3 if "── " in body else 0
        depth = 0 if name_at == 0 else (name_at - 4) // 4 + 1
        rest = body[name_at:]
        name = rest.split()[0]
        extras = re.match(r"\S+ \(([^)]*)\)", rest)
        drawn.append((depth, name, tuple(e.strip() for e in extras.group(1).split(",")) if extras else ()))
    return drawn


def test_the_error_tree_drawing_is_the_class_hierarchy() -> None:
    drawn = drawn_tree()
    assert drawn[0] == (0, "GatewayError", ())
    parents: list[str] = []
    seen = []
    for depth, name, extras in drawn:
        cls = getattr(errors, name)
        parents = [*parents[:depth], name]
        seen.append(name)
        if depth == 0:
            continue
        parent = getattr(errors, parents[depth - 1])
        # the drawn parent is the class's one base inside the tree; the parentheses name every other base
        tree_bases = [b for b in cls.__bases__ if issubclass(b, errors.GatewayError)]
        assert tree_bases == [parent], f"{name} is drawn under {parent.__name__}, but its bases are {cls.__bases__}"
        others = tuple(b.__name__ for b in cls.__bases__ if not issubclass(b, errors.GatewayError))
        assert others == extras, f"{name} is drawn with ({', '.join(extras)}), but also derives from {others}"
    exported = {n for n in errors.__all__ if n not in ("ErrorCode", "ErrorFields", "ProviderFields")}
    assert sorted(seen) == sorted(exported)  # every error drawn exactly once


def test_the_tree_parser_sees_a_misdrawn_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = errors.__doc__ or ""
    moved = doc.replace("│   └── UnknownGateway (LookupError)", "├── UnknownGateway (LookupError)  ")
    assert moved != doc
    monkeypatch.setattr(errors, "__doc__", moved)
    with pytest.raises(AssertionError, match="UnknownGateway is drawn under GatewayError"):
        test_the_error_tree_drawing_is_the_class_hierarchy()
    monkeypatch.setattr(errors, "__doc__", doc.replace("NotFound (LookupError)", "NotFound              "))
    with pytest.raises(AssertionError, match=r"NotFound is drawn with \(\), but also derives from \('LookupError',\)"):
        test_the_error_tree_drawing_is_the_class_hierarchy()


def test_the_version_is_a_string() -> None:
    assert isinstance(gateway_core.__version__, str)
    assert gateway_core.__version__.count(".") == 2


def test_importing_the_package_does_not_import_asyncio_machinery_or_provider_sdks() -> None:
    code = (
        "import sys, gateway_core; "
        "print(','.join(m for m in ('gateway_core.aio', 'stripe', 'paypalserversdk') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_provider_fields_carry_the_providers_evidence_to_a_clearer_error() -> None:
    original = errors.NotFound(
        "404", gateway="pp", provider_code="RESOURCE_NOT_FOUND", http_status=404, request_id="dbg-1"
    )
    clearer = errors.NotFound("no order O-1", gateway="pp", **original.provider_fields())
    assert (clearer.provider_code, clearer.http_status, clearer.request_id) == ("RESOURCE_NOT_FOUND", 404, "dbg-1")
    assert "gateway" not in original.provider_fields()
