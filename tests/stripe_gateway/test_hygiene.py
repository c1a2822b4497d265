"""No secret-shaped string in anything recorded: the cassettes and the copied test data.

Every file under ``cassettes/`` and ``data/`` is read the way a reader (or a leak) would: YAML and
JSON are parsed and every key and string value is scanned (a cassette's body is one long string),
anything else is scanned as text. What counts as secret-shaped is :data:`SECRET_SHAPES`; a value
already replaced by ``REDACTED`` is not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

HERE = Path(__file__).parent
SCANNED = (HERE / "cassettes", HERE / "data")

SECRET_SHAPES: dict[str, re.Pattern[str]] = {
    "Stripe secret or restricted key": re.compile(r"\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9]{4,}"),
    "webhook signing secret": re.compile(r"\bwhsec_[A-Za-z0-9]{4,}"),
    "bearer token": re.compile(r"\bBearer\s+(?!REDACTED\b)[A-Za-z0-9._~+/=-]{8,}"),
    "client secret": re.compile(r"[A-Za-z0-9]_secret_(?!REDACTED\b)[A-Za-z0-9]{4,}"),
}


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def texts(path: Path) -> Iterator[str]:
    raw = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        yield from _strings(yaml.safe_load(raw))
    elif path.suffix == ".json":
        yield from _strings(json.loads(raw))
    else:
        yield raw


def findings(path: Path) -> list[str]:
    found: list[str] = []
    for text in texts(path):
        for what, shape in SECRET_SHAPES.items():
            found.extend(f"{path.name}: {what} {m.group(0)[:12]}..." for m in shape.finditer(text))
    return found


def recorded_files() -> list[Path]:
    return sorted(p for root in SCANNED for p in root.rglob("*") if p.is_file())


def test_the_scan_covers_the_cassettes_and_the_recorded_data() -> None:
    names = {p.name for p in recorded_files()}
    assert "test_partial_capture.yaml" in names
    assert "omnipay_Charges_PurchaseFailure.txt" in names
    assert "saleor_test_capture.yaml" in names
    assert "payment_intent_succeeded.signed.json" in names


def test_no_recorded_file_holds_a_secret_shaped_string() -> None:
    problems = [f"{path.parent.name}/{finding}" for path in recorded_files() for finding in findings(path)]
    assert problems == []


@pytest.mark.parametrize(
    ("planted", "caught"),
    [
        ("key sk_test_51AbcDef0000", True),
        ("key rk_live_51AbcDef0000", True),
        ("whsec_abcdef123456", True),
        ("Authorization: Bearer sk_test_51AbcDef0000", True),
        ("Bearer eyJhbGciOiJIUzI1NiJ9.payload", True),
        ('"client_secret": "pi_3Abc_secret_XyZ123456"', True),
        ("https://hooks.stripe.com/redirect?src_client_secret_FPr4a6wAiVNi6Y", True),
        ('"client_secret": "pi_3Abc_secret_REDACTED"', False),
        ("Authorization: Bearer REDACTED", False),
        ("a whsec_... placeholder, an sk_ prefix, a pk_test_ key", False),
    ],
)
def test_the_scan_catches_what_it_should(planted: str, caught: bool, tmp_path: Path) -> None:
    as_yaml = yaml.safe_dump({"interactions": [{"response": {"body": {"string": planted}}}]})
    for suffix, content in ((".txt", planted), (".json", json.dumps({"v": planted})), (".yaml", as_yaml)):
        path = tmp_path / f"planted{suffix}"
        path.write_text(content, encoding="utf-8")
        assert bool(findings(path)) is caught, (suffix, planted)
