"""Documented hooks are tested hooks (the idea of datasette's ``tests/test_docs.py``).

* ``docs/hooks.md`` is generated from :mod:`gateway_core.hookspecs` (a hook is any function there
  carrying the ``gateway_core_spec`` attribute pluggy's spec marker sets). A hook without its
  section fails, and so does a stale page. Regenerate with ``uv run python -m tests.test_docs``.
* Every hook has a test. **The rule:** a hook counts as tested when some Python file under
  ``tests/`` (this file and ``tests/core/test_hookspecs.py``, which pin names rather than
  behaviour, excepted), read as code and not as text, does one of these:

  1. defines or calls a function named like the hook (a test plugin or stand-in implementing it,
     or a test calling a plugin's implementation);
  2. calls the manager method that dispatches the hook (``.create_checkout(...)`` for
     ``gateway_create_checkout``; the method is found from the manager's docstrings, which link
     each method to its hook);
  3. for a hook no manager method dispatches (registration and metadata hooks), defines a test
     function whose name contains the hook's name without ``gateway_``
     (``test_minimum_amount_raises_the_minimum`` for ``gateway_minimum_amount``): the way to
     test a start-up hook that only a provider implements.

  Names in comments and strings do not count.
* The guides' code blocks marked ``# file: PATH`` are verbatim parts of that file, so the example
  plugin is built exactly as docs/plugin-authors.md says.
* docs/host-guide.md's blocks marked ``# NAME`` (``# payments.py``, ``# conftest.py``,
  ``# test_payments.py``, ``# gateway.test.toml``) are put together into those files and run as
  a host's test suite, so the guide's code works as written.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway_core import hookspecs
from gateway_core.capabilities import FEATURE_HOOKS
from gateway_core.manager import GatewayManager

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HOOKS_MD = DOCS / "hooks.md"
TESTS = ROOT / "tests"
pytest_plugins = ["pytester"]

NOT_BEHAVIOUR_TESTS = {TESTS / "test_docs.py", TESTS / "core" / "test_hookspecs.py"}


def hook_specs() -> dict[str, Callable[..., Any]]:
    """Every hook spec, in declaration order."""
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return {name: obj for name, obj in vars(hookspecs).items() if callable(obj) and hasattr(obj, marker)}


def manager_methods() -> dict[str, str]:
    """Hook name -> the GatewayManager method whose docstring says it dispatches that hook."""
    found: dict[str, str] = {}
    for name, method in vars(GatewayManager).items():
        doc = getattr(method, "__doc__", None) or ""
        for hook in re.findall(r"hookspecs\.(gateway_\w+)", doc):
            found[hook] = name
    return found


def signature(name: str, spec: Callable[..., Any]) -> str:
    sig = inspect.signature(spec)
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"def {name}({params}) -> {sig.return_annotation}: ..."


def _markdown(doc: str) -> str:
    """Sphinx roles and double backticks as Markdown code spans."""
    doc = re.sub(r":(?:func|class|mod|attr|meth|data):`~?(?:[\w.]*\.)?(\w+)`", r"`\1`", doc)
    return doc.replace("``", "`")


def _kind(name: str) -> str:
    if name in hookspecs.OPERATION_HOOKS:
        return "operation hook, implemented by gateway objects"
    if name in hookspecs.METADATA_HOOKS:
        return "metadata hook, implemented by gateway objects, called once at start-up"
    return "registration hook, implemented by plugin modules"


def render_hooks_md() -> str:
    """The whole of docs/hooks.md, from the hook specs."""
    module_doc = _markdown(inspect.getdoc(hookspecs) or "")
    out = [
        "# Hook reference",
        "",
        "<!-- Generated from gateway_core/hookspecs.py by `uv run python -m tests.test_docs`; do not edit. -->",
        "",
        "Every hook gateway-core defines, with its contract. Implement hooks with",
        "`from gateway_core import hookimpl` and `@hookimpl`; an implementation may take any subset",
        "of a hook's arguments. The guide for writing a provider is [plugin-authors.md](plugin-authors.md).",
        "",
        "## The contract in general",
        "",
        module_doc,
        "",
    ]
    methods = manager_methods()
    for name, spec in hook_specs().items():
        opts = getattr(spec, f"{hookspecs.PROJECT_NAME}_spec")
        facts = [f"**Kind:** {_kind(name)}", f"**firstresult:** {'yes' if opts['firstresult'] else 'no'}"]
        if name in methods:
            facts.append(f"**Called through:** `GatewayManager.{methods[name]}`")
        features = sorted(str(f) for f, hooks in FEATURE_HOOKS.items() if name in hooks)
        if features:
            facts.append(f"**Required by features:** {', '.join(f'`{f}`' for f in features)}")
        out += [
            f"## `{name}`",
            "",
            "```python",
            signature(name, spec),
            "```",
            "",
            *[f"- {fact}" for fact in facts],
            "",
            _markdown(inspect.getdoc(spec) or ""),
            "",
        ]
    return "\n".join(out).rstrip() + "\n"


def documented_hooks(text: str) -> set[str]:
    return set(re.findall(r"^## `(gateway_\w+)`$", text, flags=re.MULTILINE))


def test_every_hook_has_a_section_in_the_reference() -> None:
    missing = set(hook_specs()) - documented_hooks(HOOKS_MD.read_text(encoding="utf-8"))
    assert missing == set(), f"undocumented hooks: {sorted(missing)}; run `uv run python -m tests.test_docs`"


def test_the_reference_documents_no_hook_that_does_not_exist() -> None:
    stale = documented_hooks(HOOKS_MD.read_text(encoding="utf-8")) - set(hook_specs())
    assert stale == set()


def test_the_reference_is_generated_from_the_current_specs() -> None:
    assert HOOKS_MD.read_text(encoding="utf-8") == render_hooks_md(), (
        "docs/hooks.md is stale: run `uv run python -m tests.test_docs`"
    )


def test_the_renderer_really_covers_each_hook() -> None:
    rendered = render_hooks_md()
    for name, spec in hook_specs().items():
        assert signature(name, spec) in rendered
        first_line = _markdown((inspect.getdoc(spec) or "").splitlines()[0])
        assert first_line in rendered


# -- every hook has a test ----------------------------------------------------------------------


def _test_files() -> Iterator[Path]:
    for path in sorted(TESTS.rglob("*.py")):
        if path not in NOT_BEHAVIOUR_TESTS:
            yield path


def _evidence(tree: ast.AST) -> Iterator[str]:
    """What a file does, as tokens: ``def:NAME``, ``call:NAME`` and ``test:NAME``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield f"def:{node.name}"
            if node.name.startswith("test"):
                yield f"test:{node.name}"
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute):
                yield f"call:{func.attr}"
            elif isinstance(func, ast.Name):
                yield f"call:{func.id}"


@functools.cache
def hooks_with_tests() -> dict[str, list[str]]:
    """Hook -> the test files that exercise it, by the rule in the module docstring."""
    methods = manager_methods()
    evidence = {path: set(_evidence(ast.parse(path.read_text(encoding="utf-8")))) for path in _test_files()}
    found: dict[str, list[str]] = {}
    for hook in hook_specs():
        short = hook.removeprefix("gateway_")
        wanted = {f"def:{hook}", f"call:{hook}"} | ({f"call:{methods[hook]}"} if hook in methods else set())
        found[hook] = [
            str(path.relative_to(ROOT))
            for path, tokens in evidence.items()
            if tokens & wanted or (hook not in methods and any(t.startswith("test:") and short in t for t in tokens))
        ]
    return found


@pytest.mark.parametrize("hook", sorted(hook_specs()))
def test_every_hook_has_a_test(hook: str) -> None:
    assert hooks_with_tests()[hook], f"no test exercises {hook} (see the rule in tests/test_docs.py)"


def test_the_hook_test_rule_can_fail() -> None:
    tree = ast.parse("def helper():\n    '''gateway_refund'''\n    # gateway_refund\n    x = 'gateway_refund'\n")
    assert set(_evidence(tree)) == {"def:helper"}, "strings and comments must not count as tests"


# -- the guides are built from the example plugin ------------------------------------------------


def file_blocks() -> Iterator[tuple[str, str, str]]:
    """(guide, path, code) for every fenced block in the guides whose first line is ``# file: PATH``."""
    for guide in sorted(DOCS.glob("*.md")):
        text = guide.read_text(encoding="utf-8")
        for match in re.finditer(r"```\w*\n(?:#|//) file: (\S+)\n(.*?)```", text, flags=re.DOTALL):
            yield guide.name, match.group(1), match.group(2)


def test_guides_quote_real_files() -> None:
    blocks = list(file_blocks())
    assert any(path.startswith("examples/example_gateway/") for _, path, _ in blocks)
    for guide, path, code in blocks:
        source = (ROOT / path).read_text(encoding="utf-8")
        for chunk in re.split(r"\n[ \t]*(?:#|//) \.\.\.\n", code):
            assert chunk.strip() in source, f"{guide} quotes {path}, but the file no longer says:\n{chunk}"


# -- the host guide runs --------------------------------------------------------------------------


def guide_files(guide: Path) -> dict[str, str]:
    """The files a guide's ``# NAME`` blocks make, each the concatenation of its blocks in order."""
    files: dict[str, str] = {}
    for match in re.finditer(
        r"```\w*\n# ([\w.-]+\.(?:py|toml))\n(.*?)```", guide.read_text(encoding="utf-8"), re.DOTALL
    ):
        files[match.group(1)] = files.get(match.group(1), "") + match.group(2) + "\n"
    return files


def test_the_host_guide_runs_as_a_host_test_suite(pytester: pytest.Pytester) -> None:
    files = guide_files(DOCS / "host-guide.md")
    assert set(files) == {"payments.py", "conftest.py", "test_payments.py", "gateway.test.toml"}
    for name, text in files.items():
        (pytester.path / name).write_text(text, encoding="utf-8")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=count_tests(files["test_payments.py"]))


def count_tests(module: str) -> int:
    """How many test functions a module defines."""
    return sum(isinstance(n, ast.FunctionDef) and n.name.startswith("test_") for n in ast.parse(module).body)


if __name__ == "__main__":
    HOOKS_MD.write_text(render_hooks_md(), encoding="utf-8")
    print(f"wrote {HOOKS_MD.relative_to(ROOT)}")
