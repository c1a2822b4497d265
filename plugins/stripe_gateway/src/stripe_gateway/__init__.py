"""Stripe provider plugin for gateway-core (Checkout Sessions, PaymentIntents, refunds, webhooks)."""
