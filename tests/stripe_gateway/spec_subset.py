"""Cut the part of Stripe's OpenAPI spec that the request checks use out of the full ``spec3.yaml``.

The full spec is 4 MB of YAML; the tests need only the operations the plugin calls, and of those
only what validates a request: the form-encoded request body, the query parameters, and every
component schema they reference (transitively). Responses are dropped. The result is written as
``data/stripe_spec3_subset.json`` beside this module, with the spec's ``info`` block (its API
version) and a note of where it came from.

When the plugin starts calling another endpoint, add its prefix to :data:`PREFIXES` and run::

    uv run python -m tests.stripe_gateway.spec_subset path/to/stripe/spec3.yaml

(the spec is stripe/openapi ``openapi/spec3.yaml``, MIT; see ``data/SOURCES.md``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

SUBSET_PATH = Path(__file__).resolve().parent / "data" / "stripe_spec3_subset.json"

#: Path templates whose operations the plugin (or `gateway check`) calls.
PREFIXES = (
    "/v1/checkout/sessions",
    "/v1/charges",
    "/v1/payment_intents",
    "/v1/refunds",
    "/v1/products",
    "/v1/prices",
)

_KEPT_OPERATION_KEYS = ("operationId", "parameters", "requestBody")


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def subset(document: dict[str, Any]) -> dict[str, Any]:
    """The request-validating part of ``document`` for the paths under :data:`PREFIXES`."""
    paths: dict[str, Any] = {}
    for template, item in document["paths"].items():
        if not template.startswith(PREFIXES):
            continue
        paths[template] = {
            method: {k: op[k] for k in _KEPT_OPERATION_KEYS if k in op}
            for method, op in item.items()
            if method in {"get", "post", "delete"}
        }
    components: dict[str, dict[str, Any]] = {}
    pending = list(_refs(paths))
    while pending:
        ref = pending.pop()
        section, name = ref.removeprefix("#/components/").split("/", 1)
        if name in components.get(section, {}):
            continue
        schema = document["components"][section][name]
        components.setdefault(section, {})[name] = schema
        pending.extend(_refs(schema))
    return {
        "openapi": document["openapi"],
        "info": document["info"],
        "x-subset-of": "stripe/openapi openapi/spec3.yaml (MIT): request bodies, query parameters and the "
        "component schemas they reference, for the paths under " + ", ".join(PREFIXES),
        "paths": paths,
        "components": {section: dict(sorted(items.items())) for section, items in sorted(components.items())},
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with Path(argv[0]).open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=yaml.CSafeLoader)
    cut = subset(document)
    SUBSET_PATH.write_text(json.dumps(cut, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {SUBSET_PATH} ({len(cut['paths'])} paths, {SUBSET_PATH.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
