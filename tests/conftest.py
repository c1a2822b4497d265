"""Suite-wide plugins: the record of which gateway-core hooks the tests really call (tests/test_docs.py)."""

pytest_plugins = ["tests.testing.hookcalls"]
