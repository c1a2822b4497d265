"""Hatch build hook: an editable install that exposes ``gateway_core`` and nothing else.

Hatchling's default editable wheel puts the directory holding ``gateway_core`` -- the repository
root -- on ``sys.path``, so every top-level directory there (``plugins``, ``contrib``, ``examples``,
``docs``, ``tests``, ``benchmarks``) became importable from anywhere, though no distribution
provides a package of those names. Its exact mode avoids that with an import hook from the
``editables`` package, which then has to be installed at run time as well.

For editable builds only, this hook adds to the wheel a ``.pth`` file and a small meta-path finder
(written here, standard library only) that answers for the one name ``gateway_core`` with this
checkout's directory. ``dev-mode-dirs`` in ``pyproject.toml`` points hatchling's own ``.pth`` at
a directory that does not exist, so it adds nothing. This file is not part of the wheel.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

PACKAGE = "gateway_core"

FINDER = '''\
"""Finds ``{package}`` in the checkout it was installed from in editable mode (and nothing else)."""

import sys
from importlib.machinery import PathFinder

ROOT = {root!r}


class EditableFinder:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return PathFinder.find_spec(name, [ROOT]) if name == {package!r} else None


if not any(getattr(f, "__module__", None) == __name__ for f in sys.meta_path):
    sys.meta_path.append(EditableFinder)
'''


def get_build_hook() -> type:
    """The hook class, built when hatchling asks (hatchling is only there at build time)."""
    interface: Any = importlib.import_module("hatchling.builders.hooks.plugin.interface")

    class EditableHook(interface.BuildHookInterface):  # type: ignore[misc]
        PLUGIN_NAME = "gateway-core-editable"

        def initialize(self, version: str, build_data: dict[str, Any]) -> None:
            if version != "editable":
                return
            self._generated = Path(tempfile.mkdtemp(prefix="gateway-core-editable-"))
            finder = self._generated / f"_{PACKAGE}_finder.py"
            finder.write_text(FINDER.format(package=PACKAGE, root=str(Path(self.root).resolve())), encoding="utf-8")
            pth = self._generated / f"_{PACKAGE}_finder.pth"
            pth.write_text(f"import _{PACKAGE}_finder\n", encoding="utf-8")
            build_data["force_include_editable"][str(finder)] = finder.name
            build_data["force_include_editable"][str(pth)] = pth.name

        def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
            generated = getattr(self, "_generated", None)
            if generated is not None:
                shutil.rmtree(generated, ignore_errors=True)

    return EditableHook
