"""The installed environment, seen from outside the repository: only real packages are importable.

The workspace's editable installs must expose ``gateway_core`` and each member's own package, not
the repository's directories: no distribution provides ``plugins``, ``contrib``, ``examples`` or
``docs``, and the issue forbids top-level packages of those names. Run in a fresh interpreter from
a temporary directory, so neither pytest's rootdir nor the working directory is on ``sys.path``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import importlib.util, json, sys
names = sys.argv[1:]
print(json.dumps({n: (s.origin or list(s.submodule_search_locations or [])) if (s := importlib.util.find_spec(n)) else None
                  for n in names}))
"""


def find(tmp_path: Path, *names: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *names], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stderr == "", done.stderr  # no .pth file failed on the way
    found: dict[str, object] = json.loads(done.stdout)
    return found


@pytest.mark.parametrize("name", ["plugins", "contrib", "examples", "docs", "benchmarks"])
def test_repository_directories_are_not_importable_from_elsewhere(tmp_path: Path, name: str) -> None:
    assert find(tmp_path, name) == {name: None}


def test_tests_is_not_the_repositorys_from_elsewhere(tmp_path: Path) -> None:
    # (a third-party distribution may ship a stray top-level "tests"; it must not be ours)
    assert find(tmp_path, "tests")["tests"] != str(ROOT / "tests" / "__init__.py")


def test_the_real_packages_are_importable_from_the_checkout(tmp_path: Path) -> None:
    found = find(tmp_path, "gateway_core", "gateway_core.fake", "stripe_gateway", "paypal_gateway", "paid_events")
    assert found["gateway_core"] == str(ROOT / "gateway_core" / "__init__.py")
    assert found["gateway_core.fake"] == str(ROOT / "gateway_core" / "fake" / "__init__.py")
    for name, origin in found.items():
        assert isinstance(origin, str), name
        assert Path(origin).is_relative_to(ROOT), name
        assert not Path(origin).is_relative_to(ROOT / ".venv"), name  # the checkout itself, not a copy


def test_the_gateway_command_runs_from_elsewhere(tmp_path: Path) -> None:
    gateway = Path(sys.executable).with_name("gateway")
    done = subprocess.run(
        [str(gateway), "plugins", "--json"], check=False, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "fake" in {p["provider"] for p in json.loads(done.stdout)["providers"]}
