"""House rules of the core's source, read as code: it imports no plugin, contrib or example
package (nor a provider SDK), and no host code but the manager touches ``pm.hook``.

The forbidden packages are found from the workspace itself (every ``src/<package>`` of a member
under plugins/, contrib/ and examples/), so a new member is covered without editing this test.
Imports inside functions and ``importlib.import_module("...")`` with a literal name count too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "gateway_core"
#: Provider SDKs: ruff's banned-api refuses them at lint time; checked here as well.
SDKS = frozenset({"stripe", "paypalserversdk"})
#: The repository's own top-level directories: never importable as packages (see test_packaging).
TOP_LEVEL = frozenset({"plugins", "contrib", "examples", "docs", "benchmarks", "tests"})


def workspace_packages() -> frozenset[str]:
    return frozenset(
        package.name
        for area in ("plugins", "contrib", "examples")
        for package in (ROOT / area).glob("*/src/*")
        if package.is_dir() and (package / "__init__.py").exists()
    )


FORBIDDEN = workspace_packages() | SDKS | TOP_LEVEL


def imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, module) for every import statement and literal ``import_module``/``__import__`` call."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                yield node.lineno, node.args[0].value


def forbidden_imports(source: str) -> list[tuple[int, str]]:
    return [(line, name) for line, name in imported_modules(ast.parse(source)) if name.split(".")[0] in FORBIDDEN]


def hook_uses(source: str) -> list[int]:
    """Lines that read ``<something>.hook`` (pluggy's untyped hook relay)."""
    return [n.lineno for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Attribute) and n.attr == "hook"]


def core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_the_workspace_packages_are_found() -> None:
    assert {"stripe_gateway", "paypal_gateway", "paid_events", "example_gateway"} <= workspace_packages()


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_imports_no_plugin_contrib_example_or_sdk(path: Path) -> None:
    assert forbidden_imports(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_manager_touches_pm_hook(path: Path) -> None:
    if path == CORE / "manager.py":
        return
    assert hook_uses(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import stripe_gateway", [(1, "stripe_gateway")]),
        ("from paid_events.service import PaidEvents", [(1, "paid_events.service")]),
        ("def f():\n    import example_gateway.gateway as g", [(2, "example_gateway.gateway")]),
        ("import importlib\nimportlib.import_module('paypal_gateway')", [(2, "paypal_gateway")]),
        ("__import__('stripe')", [(1, "stripe")]),
        ("from contrib.paid_events import x", [(1, "contrib.paid_events")]),
        ("import gateway_core.fake\nfrom . import money\nimport stripe_gatewayx", []),
    ],
)
def test_the_check_sees_every_form_of_import(source: str, found: list[tuple[int, str]]) -> None:
    assert forbidden_imports(source) == found


def test_the_hook_check_sees_pm_hook() -> None:
    assert hook_uses("manager.plugin_manager.hook.gateway_cli_commands(cli=cli)") == [1]
    assert hook_uses("manager.add_cli_commands(cli)") == []
