"""Devices: the fleet registry, credentials, lifecycle (telemetry, shadow, OTA later)."""
