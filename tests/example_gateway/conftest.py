"""The Example Payments stand-in on 127.0.0.1 (a free port, stopped at teardown) and a manager for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from example_gateway.stand_in import ExamplePaymentsAPI

from gateway_core import DeploymentConfig, GatewayManager

API_KEY = "sk_example_test_4f1c2a9b7e"
WEBHOOK_SECRET = "whsec_example_test_8d3e6f0a"
ENVIRON = {"EXAMPLE_API_KEY": API_KEY, "EXAMPLE_WEBHOOK_SECRET": WEBHOOK_SECRET}


@pytest.fixture
def example_api() -> Iterator[ExamplePaymentsAPI]:
    with ExamplePaymentsAPI(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET) as api:
        yield api


def example_manager(base_url: str, environ: dict[str, str] | None = None, *, timeout: float = 5) -> GatewayManager:
    """A manager with one Example Payments gateway, configured as docs/host-guide.md shows.

    The plugin is found through its entry point, exactly as a host application would find it.
    """
    env = ENVIRON if environ is None else environ
    config = DeploymentConfig.from_mapping(
        {
            "core": {"strict_plugins": True},
            "gateways": {
                "example": {
                    "provider": "example",
                    "settings": {
                        "base_url": base_url,
                        "api_key": {"env": "EXAMPLE_API_KEY"},
                        "webhook_secret": {"env": "EXAMPLE_WEBHOOK_SECRET"},
                        "timeout": timeout,
                    },
                }
            },
        },
        env,
    )
    return GatewayManager(config, environ={"GATEWAY_CORE_DISABLE_PLUGINS": "stripe,paypal"} | env)


@pytest.fixture
def manager(example_api: ExamplePaymentsAPI) -> GatewayManager:
    return example_manager(example_api.base_url)
