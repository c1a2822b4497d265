"""Stripe events signed with the SDK's own signature helper, for the webhook tests."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import stripe

from gateway_core.testing.conformance import SignedWebhook


def event_body(event_type: str, obj: dict[str, Any], event_id: str | None = None) -> bytes:
    payload = {
        "id": event_id or f"evt_test_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": False,
        "type": event_type,
        "data": {"object": obj},
    }
    return json.dumps(payload).encode()


def sign(body: bytes, secret: str, timestamp: int | None = None) -> SignedWebhook:
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp)
    return SignedWebhook({"Stripe-Signature": header, "Content-Type": "application/json"}, body)
