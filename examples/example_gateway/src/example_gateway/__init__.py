"""A minimal example provider plugin for gateway-core."""
