"""``.ci/run`` installs uv on a clean machine through pip only, whatever pip allows there.

Each case runs the real script (``.ci/run --ensure-uv``) with ``python3`` replaced by a stand-in
that behaves like one kind of system -- pip refusing with PEP 668's "externally managed" error, a
python without the venv module -- and "installs" uv by writing a script where pip would put it.
No network: nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: A python3 stand-in. Behaviour switches: PIP_USER_OK, PIP_PLAIN_OK, VENV_OK, BREAK_OK (1 or 0).
PYTHON3 = r"""#!/usr/bin/env bash
echo "python3 $*" >> "$HOME/calls.log"
install_uv() { mkdir -p "$1"; printf '#!/bin/sh\necho uv-stand-in\n' > "$1/uv"; chmod +x "$1/uv"; }
refuse() { echo "error: externally-managed-environment" >&2; exit 1; }
case "$*" in
  "-m site --user-base") echo "$HOME/.local" ;;
  *"pip install --quiet --user --break-system-packages uv") [ "$BREAK_OK" = 1 ] || refuse; install_uv "$HOME/.local/bin" ;;
  *"pip install --quiet --user uv") [ "$PIP_USER_OK" = 1 ] || refuse; install_uv "$HOME/.local/bin" ;;
  *"pip install --quiet uv") [ "$PIP_PLAIN_OK" = 1 ] || refuse; install_uv "$HOME/system-bin" ;;
  "-m venv "*)
    [ "$VENV_OK" = 1 ] || { echo "The virtual environment was not created: ensurepip is not available" >&2; exit 1; }
    mkdir -p "$3/bin"; cp "$(dirname "$0")/venv-python" "$3/bin/python" ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
"""

#: The python of a virtualenv the stand-in made: its pip installs uv into the virtualenv.
VENV_PYTHON = r"""#!/usr/bin/env bash
echo "venv-python $*" >> "$HOME/calls.log"
case "$*" in
  "-m pip install --quiet uv") printf '#!/bin/sh\necho uv-stand-in\n' > "$(dirname "$0")/uv"; chmod +x "$(dirname "$0")/uv" ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
"""


def ensure_uv(tmp_path: Path, **behaviour: int) -> subprocess.CompletedProcess[str]:
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "python3").write_text(PYTHON3, encoding="utf-8")
    (shims / "python3").chmod(0o755)
    (shims / "venv-python").write_text(VENV_PYTHON, encoding="utf-8")
    (shims / "venv-python").chmod(0o755)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    # only the shims and the system's basic tools: no uv, no real python3 ahead of the stand-in
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("bash", "env", "dirname", "mkdir", "rm", "cp", "chmod", "cat", "printf", "sh"):
        found = shutil.which(tool)
        assert found is not None, tool
        (tools / tool).symlink_to(found)
    env = {
        "PATH": f"{shims}:{tools}:{home / 'system-bin'}",
        "HOME": str(home),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        **{
            k: str(v)
            for k, v in {"PIP_USER_OK": 0, "PIP_PLAIN_OK": 0, "VENV_OK": 0, "BREAK_OK": 0, **behaviour}.items()
        },
    }
    return subprocess.run(
        [str(tools / "bash"), str(ROOT / ".ci" / "run"), "--ensure-uv"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_pip_user_is_enough_where_it_works(tmp_path: Path) -> None:
    done = ensure_uv(tmp_path, PIP_USER_OK=1)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "home" / ".local" / "bin" / "uv")


def test_an_externally_managed_python_gets_uv_in_a_throwaway_virtualenv(tmp_path: Path) -> None:
    done = ensure_uv(tmp_path, VENV_OK=1)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "cache" / "gateway-core-ci" / "uv-venv" / "bin" / "uv")
    assert "trying a throwaway virtualenv" in done.stderr
    calls = (tmp_path / "home" / "calls.log").read_text(encoding="utf-8")
    assert "--break-system-packages" not in calls  # the virtualenv came first


def test_the_virtualenv_is_reused_on_the_next_run(tmp_path: Path) -> None:
    assert ensure_uv(tmp_path, VENV_OK=1).returncode == 0
    log = tmp_path / "home" / "calls.log"
    log.unlink()
    shutil.rmtree(tmp_path / "shims")
    shutil.rmtree(tmp_path / "tools")
    again = ensure_uv(tmp_path)  # pip and venv now refuse everything
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().endswith("uv-venv/bin/uv")
    assert "pip install" not in log.read_text(encoding="utf-8")


def test_without_a_venv_module_it_breaks_system_packages_as_a_last_resort(tmp_path: Path) -> None:
    done = ensure_uv(tmp_path, BREAK_OK=1)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "home" / ".local" / "bin" / "uv")
    assert "--break-system-packages" in done.stderr
    assert not (tmp_path / "cache" / "gateway-core-ci" / "uv-venv").exists()  # the failed one is removed


def test_inside_a_virtualenv_plain_pip_is_used(tmp_path: Path) -> None:
    done = ensure_uv(tmp_path, PIP_PLAIN_OK=1)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "home" / "system-bin" / "uv")


def test_when_nothing_works_it_says_so_and_fails(tmp_path: Path) -> None:
    done = ensure_uv(tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("error: could not install uv")


@pytest.mark.skipif(os.name != "posix", reason="a bash script")
def test_the_script_is_valid_bash() -> None:
    assert subprocess.run(["bash", "-n", str(ROOT / ".ci" / "run")], check=False).returncode == 0
