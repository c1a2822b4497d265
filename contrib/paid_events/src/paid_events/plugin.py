"""gateway-core plugin module of paid_events (CLI commands)."""
