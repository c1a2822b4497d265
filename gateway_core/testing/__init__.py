"""Test kit for plugin authors and host test suites.

* :mod:`gateway_core.testing.conformance` -- the behavioural suite every provider plugin runs
  against itself (``class TestMine(GatewayConformance)`` plus a ``conformance_harness`` fixture).
* :mod:`gateway_core.testing.pytest_plugin` -- opt-in fixtures for host applications
  (``pytest_plugins = ["gateway_core.testing.pytest_plugin"]``).
* :mod:`gateway_core.testing.recording` -- the shared vcrpy / pytest-recording configuration that
  scrubs secrets before a cassette is written.

These modules need pytest (and the recording helpers vcrpy and pytest-recording), which are not
runtime dependencies of gateway-core: install the ``testing`` extra in your test environment
(``gateway-core[testing]``). Importing this package itself imports neither.
"""
