"""PayPal provider plugin for gateway-core (Orders v2, authorizations, captures, refunds, webhooks)."""
