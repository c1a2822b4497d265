"""Documented hooks are tested hooks (the idea of datasette's ``tests/test_docs.py``).

* ``docs/hooks.md`` is generated from :mod:`gateway_core.hookspecs` (a hook is any function there
  carrying the ``gateway_core_spec`` attribute pluggy's spec marker sets). A hook without its
  section fails, and so does a stale page. Regenerate with ``uv run python -m tests.test_docs``.
* Every hook is called by some test -- observed, not inferred from names. ``tests/conftest.py``
  loads :mod:`tests.testing.hookcalls`, which puts pluggy's hook-call monitoring on every
  gateway-core plugin manager built during the run; ``test_every_hook_is_called_by_some_test``
  runs last and fails for a hook spec no implementation was called for. A test named after a hook,
  or a helper that defines a function with a hook's name, proves nothing and counts for nothing.
  Only a run of the whole suite can tell; a narrower run skips the check.
* The guides' code blocks marked ``# file: PATH`` are verbatim parts of that file, so the example
  plugin is built exactly as docs/plugin-authors.md says.
* docs/host-guide.md's blocks marked ``# NAME`` (``# payments.py``, ``# conftest.py``,
  ``# test_payments.py``, ``# gateway.test.toml``) are put together into those files and run as
  a host's test suite, so the guide's code works as written.
"""

from __future__ import annotations

import ast
import enum
import inspect
import re
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from gateway_core import hookspecs, models
from gateway_core.capabilities import FEATURE_HOOKS
from gateway_core.manager import GatewayManager
from gateway_core.testing import recording
from tests.testing.hookcalls import CALLED, WHOLE_SUITE

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HOOKS_MD = DOCS / "hooks.md"
pytest_plugins = ["pytester"]


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
    if name in hookspecs.LIFECYCLE_HOOKS:
        return "lifecycle hook, implemented by gateway objects, called once when the manager closes"
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


# -- the model tables in the plugin guide are generated from gateway_core/models.py ----------------

PLUGIN_GUIDE = DOCS / "plugin-authors.md"
MODELS_BEGIN = (
    "<!-- models: generated from gateway_core/models.py by `uv run python -m tests.test_docs`; do not edit -->"
)
MODELS_END = "<!-- /models -->"


def _cell(text: str) -> str:
    """Text for a Markdown table cell: a pipe (``str | None``) would end the cell."""
    return text.replace("|", "\\|")


def _summary(cls: type) -> str:
    """The first paragraph of the class's own docstring (not one it inherits), as Markdown."""
    doc = inspect.cleandoc(vars(cls).get("__doc__") or "")
    return _markdown(doc.split("\n\n")[0].replace("\n", " "))


def _used_by(names: list[str]) -> str:
    everywhere = set(hookspecs.OPERATION_HOOKS) | set(hookspecs.METADATA_HOOKS) | set(hookspecs.LIFECYCLE_HOOKS)
    if set(names) == everywhere:
        return "every operation, metadata and lifecycle hook"
    return ", ".join(f"`{n}`" for n in names)


def _field(field: attrs.Attribute[Any]) -> str:
    text = f"{field.name}: {field.type}"
    default: Any = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        text += " = {}" if default.factory is dict else f" = {default.factory.__name__}()"
    elif default is not attrs.NOTHING:
        text += f" = {default!r}"
    if not field.repr:
        text += " (not in repr or ==)" if not field.eq else " (not in repr)"
    return f"`{text}`"


def _extras(cls: type) -> list[str]:
    """The public properties and methods a model adds to its fields."""
    out = []
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            out.append(f"`.{name}`")
        elif isinstance(member, classmethod):
            out.append(f"`{cls.__name__}.{name}(...)`")
        elif inspect.isfunction(member):
            out.append(f"`.{name}(...)`")
    return out


def _enum_values(cls: type[enum.Enum]) -> str:
    """``NAME = "value"`` for each member, with the comment models.py gives it."""
    comments = dict(re.findall(r'^\s+(\w+) = "[^"]*"\s+#\s*(.+)$', inspect.getsource(cls), flags=re.MULTILINE))
    values = []
    for member in cls:
        note = f" ({comments[member.name]})" if member.name in comments else ""
        values.append(f'`{member.name} = "{member.value}"`{note}')
    return "<br>".join(values)


def render_model_tables() -> str:
    """The guide's tables of the request, result and enum types, from the models and the hook specs."""
    received: dict[str, list[str]] = {}
    returned: dict[str, list[str]] = {}
    for name, spec in hook_specs().items():
        sig = inspect.signature(spec)
        for parameter in sig.parameters.values():
            for word in re.findall(r"\w+", str(parameter.annotation)):
                received.setdefault(word, []).append(name)
        for word in re.findall(r"\w+", str(sig.return_annotation)):
            returned.setdefault(word, []).append(name)
    classes = [getattr(models, name) for name in models.__all__]
    values = [c for c in classes if attrs.has(c)]
    tables: dict[str, list[str]] = {"receive": [], "return": []}
    for cls in values:
        name = cls.__name__
        if name in received or name in returned:
            table = "receive" if name in received else "return"
            used = _used_by(received.get(name) or returned[name])
        else:  # a part of another model (a checkout's line items)
            owners = [(o, f) for o in values for f in attrs.fields(o) if re.search(rf"\b{name}\b", str(f.type))]
            assert owners, f"models.{name} is neither received, returned nor part of a model"
            table = "receive" if owners[0][0].__name__ in received else "return"
            used = "a field of " + ", ".join(f"`{o.__name__}.{f.name}`" for o, f in owners)
        fields = "<br>".join(_cell(_field(f)) for f in attrs.fields(cls) if f.init)
        doc = _summary(cls)
        notes = " ".join(part for part in (doc, ", ".join(_extras(cls))) if part)
        tables[table].append(f"| `{name}` | {used} | {fields} | {_cell(notes)} |")
    out = [MODELS_BEGIN, ""]
    for table, title, by in (
        ("receive", "What your hooks receive", "Received by"),
        ("return", "What your hooks return", "Returned by"),
    ):
        out += [
            f"**{title}** (frozen attrs values):",
            "",
            f"| Type | {by} | Fields | Notes |",
            "| --- | --- | --- | --- |",
        ]
        out += [*tables[table], ""]
    out += [
        "**Their enumerations** (`enum.StrEnum`: each member is its string value):",
        "",
        "| Enum | Members |",
        "| --- | --- |",
    ]
    for cls in classes:
        if isinstance(cls, type) and issubclass(cls, enum.Enum):
            doc = _summary(cls)
            out.append(f"| `{cls.__name__}` | {(doc + '<br>') if doc else ''}{_enum_values(cls)} |")
    aliases = [name for name, obj in zip(models.__all__, classes, strict=True) if not isinstance(obj, type)]
    if aliases:
        out += ["", "**Type aliases:**", "", "| Alias | Means | Notes |", "| --- | --- | --- |"]
        source = inspect.getsource(models)
        for name in aliases:
            found = re.search(rf"^((?:#:.*\n)*){name} = (.+)$", source, flags=re.MULTILINE)
            assert found, f"models.{name} is not assigned at the top level"
            note = " ".join(line.removeprefix("#:").strip() for line in found.group(1).splitlines())
            out.append(f"| `{name}` | {_cell(f'`{found.group(2)}`')} | {_cell(_markdown(note))} |")
    out += ["", MODELS_END]
    return "\n".join(out)


def guide_model_tables(text: str) -> str:
    start, end = text.index(MODELS_BEGIN), text.index(MODELS_END) + len(MODELS_END)
    return text[start:end]


def test_the_guides_model_tables_are_generated_from_the_models() -> None:
    text = PLUGIN_GUIDE.read_text(encoding="utf-8")
    assert guide_model_tables(text) == render_model_tables(), (
        "docs/plugin-authors.md's tables of request and result types are stale: run `uv run python -m tests.test_docs`"
    )


def test_the_model_tables_name_every_model_and_field() -> None:
    rendered = render_model_tables()
    for name in models.__all__:
        assert f"| `{name}` |" in rendered, f"{name} has no row"
        cls = getattr(models, name)
        if not isinstance(cls, type):
            continue  # a type alias: its row is checked above
        if attrs.has(cls):
            for field in attrs.fields(cls):
                assert not field.init or f"`{field.name}: " in rendered, f"{name}.{field.name} is not listed"
        else:
            assert issubclass(cls, enum.Enum), f"models.{name} is neither an attrs class nor an enum"
            for member in cls:
                assert f'`{member.name} = "{member.value}"`' in rendered


# -- every hook is called by some test -----------------------------------------------------------


def uncalled(called: set[str]) -> list[str]:
    """The hook specs no test called (by :mod:`tests.testing.hookcalls`'s record)."""
    return sorted(set(hook_specs()) - called)


def test_every_hook_is_called_by_some_test(request: pytest.FixtureRequest) -> None:
    """Runs last (tests/testing/hookcalls.py moves it there), over what the whole run called."""
    if not request.config.stash.get(WHOLE_SUITE, False):
        pytest.skip("only a run of the whole suite can tell which hooks no test calls")
    missing = uncalled(request.config.stash[CALLED])
    assert not missing, f"no test called these hooks (an implementation had to run): {', '.join(missing)}"


HOOK_SUITE_CONFTEST = 'pytest_plugins = ["tests.testing.hookcalls"]\n'
HOOK_SUITE = """
from gateway_core import CheckoutRequest, GatewayManager, Money, RefundRequest
from gateway_core.testing.pytest_plugin import fake_config, fake_gateways
from tests.test_docs import test_every_hook_is_called_by_some_test  # noqa: F401 (collected here)


def test_pays_and_refunds():
    manager = GatewayManager(fake_config())
    request = CheckoutRequest.single("Pin", Money.of("5.00", "EUR"), "https://s.test/a", "https://s.test/b")
    session = manager.create_checkout("fake", request, idempotency_key="k1")
    payment = fake_gateways(manager)["fake"].complete_checkout(session.id)
    manager.refund("fake", RefundRequest(payment.payment_id), idempotency_key="k2")


def test_named_after_hooks_it_never_calls():
    def gateway_void():  # a function named like a hook, called: still not the hook
        return None

    gateway_void()
"""


def test_the_hook_check_fails_for_a_hook_only_named_in_a_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(HOOK_SUITE_CONFTEST)
    pytester.makepyfile(test_hooks=HOOK_SUITE)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*no test called these hooks*gateway_authorize*gateway_void*"])
    failure = "\n".join(line for line in result.outlines if "no test called these hooks" in line)
    for called in ("gateway_providers", "gateway_create_checkout", "gateway_refund", "gateway_minimum_amount"):
        assert called not in failure, f"{called} was called, yet reported as not"


def test_the_hook_check_skips_on_a_narrower_run(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(HOOK_SUITE_CONFTEST)
    pytester.makepyfile(test_hooks=HOOK_SUITE)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", "pays or every_hook", "-rs")
    result.assert_outcomes(passed=1, skipped=1, deselected=1)
    result.stdout.fnmatch_lines(["*only a run of the whole suite can tell*"])


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


def test_what_the_guides_say_about_the_network_is_what_the_suite_runs() -> None:
    """The suite's network guard lives in pyproject's addopts; the guides must not tell another story."""
    addopts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"][
        "addopts"
    ]
    flags = [option for option in addopts if option.startswith(("--block-network", "--allowed-hosts"))]
    assert flags == ["--block-network", "--allowed-hosts=127.0.0.1,localhost,::1"]
    for name, text in (("plugin-authors.md", (DOCS / "plugin-authors.md").read_text(encoding="utf-8")),
                       ("recording.py", recording.__doc__ or "")):  # fmt: skip
        flat = " ".join(text.replace("`", " ").split())
        assert " ".join(flags) in flat, f"{name} does not give the suite's network flags"
        assert "record-mode=none --block-network" not in flat, f"{name} still says CI passes the flags itself"
        assert "pyproject" in flat, f"{name} does not say where the flags are set"


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
    guide = PLUGIN_GUIDE.read_text(encoding="utf-8")
    PLUGIN_GUIDE.write_text(guide.replace(guide_model_tables(guide), render_model_tables()), encoding="utf-8")
    print(f"wrote the model tables in {PLUGIN_GUIDE.relative_to(ROOT)}")
