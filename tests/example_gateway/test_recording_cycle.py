"""A plugin author's record-then-replay cycle, run as CI runs it: record from the stand-in, replay blocked.

The example plugin's recorded tests (``test_recorded.py``) are run in a fresh directory: once with
``--record-mode=rewrite`` (the stand-in starts, cassettes are written, scrubbed), then with the
network blocked for every host, loopback included, and no record mode (replay). A last run without
the cassettes shows that the replay really came from them.
"""

from __future__ import annotations

import shutil

import pytest

# Imported before pytester snapshots sys.modules: a yaml module imported afresh in each in-process
# run would not match the C loader PyYAML keeps from the first, and the cassette would not load.
import vcr.serializers.yamlserializer  # type: ignore[import-untyped]  # noqa: F401

from tests.example_gateway.conftest import API_KEY

pytest_plugins = ["pytester"]

MODULE = """
from tests.example_gateway.test_recorded import (  # noqa: F401 (collected and used as fixtures here)
    recorded,
    test_authorize_capture_refund_and_status,
    test_checkout_in_jpy_with_an_expiry,
    vcr_config,
)
import pytest

pytestmark = pytest.mark.vcr
"""


def test_record_then_replay_with_the_network_blocked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_cycle=MODULE)
    recording = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--record-mode=rewrite")
    recording.assert_outcomes(passed=2)
    cassettes = sorted(pytester.path.glob("cassettes/test_cycle/*.yaml"))
    assert [c.stem for c in cassettes] == [
        "test_authorize_capture_refund_and_status",
        "test_checkout_in_jpy_with_an_expiry",
    ]
    for cassette in cassettes:
        text = cassette.read_text()
        assert API_KEY not in text
        assert "authorization:\n      - REDACTED" in text  # the whole Authorization header goes

    replay = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--block-network")
    replay.assert_outcomes(passed=2)

    shutil.rmtree(pytester.path / "cassettes")
    without = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--block-network")
    without.assert_outcomes(failed=2)
