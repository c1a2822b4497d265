"""Paid events for a webinar platform, built on gateway-core (contrib add-on)."""
