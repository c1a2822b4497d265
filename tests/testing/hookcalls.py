"""Which gateway-core hooks the tests really call: runtime evidence for "every hook has a test".

A pytest plugin (``tests/conftest.py`` loads it). While a session runs, every
:class:`pluggy.PluginManager` built for gateway-core (every :class:`GatewayManager`, whoever
builds it: a test, a fixture, a harness, the CLI run in-process, a pytester run) gets pluggy's
hook-call monitoring (``PluginManager.add_hookcall_monitoring``), added as the manager is
constructed so that the metadata hooks called while it starts are seen too. A hook counts as
called when at least one implementation that is not a wrapper ran for it.

Two hooks are not dispatched through pluggy's hook caller: the manager calls each
``gateway_providers`` and ``gateway_cli_commands`` implementation itself, one by one, so that a
failure names its plugin. For those the evidence is the manager's own result: a manager that
finished starting with a provider has called ``gateway_providers``; ``add_cli_commands`` that
returned with an implementation registered has called ``gateway_cli_commands``.

``tests/test_docs.py::test_every_hook_is_called_by_some_test`` runs last (this plugin moves it)
and fails for a hook spec no test called -- on a run of the whole suite only; any narrower run
cannot tell and skips it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pluggy
import pytest

from gateway_core import hookspecs
from gateway_core.manager import GatewayManager

#: The hooks called during this session (and whether the session ran every test module).
CALLED = pytest.StashKey[set[str]]()
WHOLE_SUITE = pytest.StashKey[bool]()

#: The final test, moved to the end of the run.
FINAL_TEST = "test_every_hook_is_called_by_some_test"

_active: list[set[str]] = []  # one set per running session (pytester runs nest inside the outer one)
_undo: list[Callable[[], None]] = []


def _record(hook: str) -> None:
    for called in _active:
        called.add(hook)


def _before(hook_name: str, hook_impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, object]) -> None:
    if any(not (impl.wrapper or impl.hookwrapper) for impl in hook_impls):
        _record(hook_name)


def _after(
    outcome: object, hook_name: str, hook_impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, object]
) -> None:
    return None


def _install() -> None:
    pm_init = pluggy.PluginManager.__init__
    manager_init = GatewayManager.__init__
    add_cli_commands = GatewayManager.add_cli_commands

    def watched_pm_init(self: pluggy.PluginManager, project_name: str, *args: Any, **kwargs: Any) -> None:
        pm_init(self, project_name, *args, **kwargs)
        if project_name == hookspecs.PROJECT_NAME:
            self.add_hookcall_monitoring(_before, _after)

    def watched_manager_init(self: GatewayManager, *args: Any, **kwargs: Any) -> None:
        manager_init(self, *args, **kwargs)
        if self.providers():
            _record("gateway_providers")

    def watched_add_cli_commands(self: GatewayManager, cli: Any) -> None:
        add_cli_commands(self, cli)
        if self.plugin_manager.hook.gateway_cli_commands.get_hookimpls():
            _record("gateway_cli_commands")

    pluggy.PluginManager.__init__ = watched_pm_init  # type: ignore[method-assign]
    GatewayManager.__init__ = watched_manager_init  # type: ignore[method-assign]
    GatewayManager.add_cli_commands = watched_add_cli_commands  # type: ignore[method-assign]

    def undo() -> None:
        pluggy.PluginManager.__init__ = pm_init  # type: ignore[method-assign]
        GatewayManager.__init__ = manager_init  # type: ignore[method-assign]
        GatewayManager.add_cli_commands = add_cli_commands  # type: ignore[method-assign]

    _undo.append(undo)


def pytest_configure(config: pytest.Config) -> None:
    called: set[str] = set()
    config.stash[CALLED] = called
    if not _active:
        _install()
    _active.append(called)


def pytest_unconfigure(config: pytest.Config) -> None:
    called = config.stash.get(CALLED, None)
    if called is not None and called in _active:
        _active.remove(called)
    if not _active:
        while _undo:
            _undo.pop()()


def test_files(config: pytest.Config) -> set[Path]:
    """Every test module the run's test paths hold."""
    roots = [config.rootpath / p for p in config.getini("testpaths")] or [config.rootpath]
    return {path for root in roots for path in root.rglob("test_*.py")}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    final = [item for item in items if item.name == FINAL_TEST]
    for item in final:
        items.remove(item)
        items.append(item)


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    narrowed = any(config.getoption(option, None) for option in ("keyword", "markexpr", "deselect", "lf", "stepwise"))
    collected = {Path(str(item.path)) for item in session.items}
    config.stash[WHOLE_SUITE] = not narrowed and test_files(config) <= collected
