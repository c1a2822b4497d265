"""The public API of paid_events, pinned (a rename or removal must be deliberate)."""

from __future__ import annotations

import paid_events.errors
import paid_events.service


def test_service_exports() -> None:
    assert sorted(paid_events.service.__all__) == [
        "CheckoutResult",
        "EventView",
        "FeeLine",
        "FeeReport",
        "PaidEvents",
        "Participant",
        "PromoView",
        "ReconcileReport",
        "RefundOutcome",
        "SessionView",
        "WebhookOutcome",
    ]
    for name in paid_events.service.__all__:
        assert hasattr(paid_events.service, name)


def test_every_error_is_a_paid_events_error_and_exported() -> None:
    for name in paid_events.errors.__all__:
        cls = getattr(paid_events.errors, name)
        assert issubclass(cls, paid_events.errors.PaidEventsError)
    assert issubclass(paid_events.errors.InvalidEmail, ValueError)
    assert issubclass(paid_events.errors.UnknownEvent, LookupError)
