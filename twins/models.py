"""Models arrive with the issue that needs them (see docs/adr)."""
