"""The testing kit's public names are pinned, and importing it costs a host nothing it did not ask for."""

from __future__ import annotations

import subprocess
import sys

from gateway_core.testing import conformance, pytest_plugin, recording


def test_conformance_exports() -> None:
    assert set(conformance.__all__) == {
        "AuthorizeCaptureConformance",
        "CapabilityConformance",
        "CheckoutConformance",
        "ConformanceHarness",
        "ErrorConformance",
        "GatewayConformance",
        "IdempotencyConformance",
        "MetadataConformance",
        "MoneyConformance",
        "ReadRecordedAmount",
        "RecordedAmount",
        "RefundConformance",
        "SecretsConformance",
        "ShortAnswer",
        "SignWebhook",
        "SignedWebhook",
        "StatusConformance",
        "TRANSPORT_FAULTS",
        "TransportFault",
        "VoidConformance",
        "WebhookConformance",
        "LifecycleConformance",
        "new_key",  # a fresh idempotency key, for harnesses (the example's signed_webhook uses it)
    }
    for name in conformance.__all__:
        assert not name.startswith("Test"), "pytest would collect it wherever it is imported"


def test_pytest_plugin_and_recording_exports() -> None:
    assert set(pytest_plugin.__all__) == {
        "DEFAULT_WEBHOOK_SECRET",
        "CheckoutAction",
        "CompleteAction",
        "DeclineAction",
        "WebhookDeliverer",
        "WebhookHandler",
        "fake_config",
        "fake_gateways",
        "post_to",
    }
    assert set(recording.__all__) == {
        "MATCH_ON",
        "REDACTED",
        "SECRET_FIELDS",
        "SECRET_HEADERS",
        "SECRET_PATTERNS",
        "VARIES",
        "VOLATILE_FIELDS",
        "scrub_text",
        "vcr_config",
    }


def test_importing_the_core_and_the_recording_config_imports_neither_pytest_nor_vcrpy() -> None:
    code = (
        "import sys, gateway_core, gateway_core.testing, gateway_core.testing.recording; "
        "print(sorted(m for m in ('pytest', '_pytest', 'vcr') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
