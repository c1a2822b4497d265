"""The hook contract, pinned: names, argument order, firstresult, and a docstring that states the rule.

Arguments may be added (pluggy lets implementations take a subset) but never reordered or removed;
this test is where such a change has to be made on purpose.
"""

from __future__ import annotations

import inspect

import pytest

from gateway_core import hookspecs

#: Every hook: (arguments in order, firstresult).
CONTRACT: dict[str, tuple[list[str], bool]] = {
    "gateway_providers": ([], False),
    "gateway_cli_commands": (["cli"], False),
    "gateway_supported_currencies": (["context"], True),
    "gateway_minimum_amount": (["currency", "context"], True),
    "gateway_create_checkout": (["request", "context"], True),
    "gateway_authorize": (["request", "context"], True),
    "gateway_capture": (["request", "context"], True),
    "gateway_void": (["request", "context"], True),
    "gateway_refund": (["request", "context"], True),
    "gateway_payment_status": (["request", "context"], True),
    "gateway_parse_webhook": (["request", "context"], True),
    "gateway_check": (["context"], True),
    "gateway_close": (["context"], True),
}


def specs() -> dict[str, object]:
    return {
        name: obj
        for name, obj in vars(hookspecs).items()
        if callable(obj) and hasattr(obj, f"{hookspecs.PROJECT_NAME}_spec")
    }


def test_the_set_of_hooks_is_pinned() -> None:
    assert set(specs()) == set(CONTRACT)


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_each_hook_keeps_its_arguments_and_firstresult(name: str) -> None:
    spec = specs()[name]
    arguments, firstresult = CONTRACT[name]
    assert list(inspect.signature(spec).parameters) == arguments  # type: ignore[arg-type]
    assert getattr(spec, f"{hookspecs.PROJECT_NAME}_spec")["firstresult"] is firstresult


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_each_hook_documents_its_contract(name: str) -> None:
    doc = inspect.getdoc(specs()[name]) or ""
    assert "Since " in doc, name
    if name in hookspecs.OPERATION_HOOKS or name in hookspecs.METADATA_HOOKS or name in hookspecs.LIFECYCLE_HOOKS:
        assert "firstresult" in doc, name
        assert "dispatched to one gateway" in doc, name
    if name in hookspecs.OPERATION_HOOKS:
        assert "Mutating" in doc or "Read-only" in doc, name


def test_operation_metadata_and_lifecycle_hooks_are_exactly_the_gateway_object_hooks() -> None:
    gateway_object_hooks = (
        set(hookspecs.OPERATION_HOOKS) | set(hookspecs.METADATA_HOOKS) | set(hookspecs.LIFECYCLE_HOOKS)
    )
    assert gateway_object_hooks == set(CONTRACT) - {"gateway_providers", "gateway_cli_commands"}
    assert all(name.startswith("gateway_") for name in CONTRACT)


def test_mutating_hooks_are_the_ones_the_manager_keys() -> None:
    mutating = {name for name in hookspecs.OPERATION_HOOKS if "Mutating" in (inspect.getdoc(specs()[name]) or "")}
    assert mutating == {
        "gateway_create_checkout",
        "gateway_authorize",
        "gateway_capture",
        "gateway_void",
        "gateway_refund",
    }
