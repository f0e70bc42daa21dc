"""Writes for the device registry: register, change state, issue credentials."""

from __future__ import annotations

from django.db import connection, transaction
from django.utils import timezone

from accounts import events
from accounts.credentials import IssuedKey, api_key_issue
from accounts.models import ApiKey
from accounts.roles import Role
from audit import tracking
from devices.models import Device

# Allowed lifecycle moves; decommissioned is final.
TRANSITIONS: dict[str, set[str]] = {
    Device.State.PROVISIONED: {Device.State.ACTIVE, Device.State.DECOMMISSIONED},
    Device.State.ACTIVE: {Device.State.SUSPENDED, Device.State.DECOMMISSIONED},
    Device.State.SUSPENDED: {Device.State.ACTIVE, Device.State.DECOMMISSIONED},
    Device.State.DECOMMISSIONED: set(),
}


class TransitionError(ValueError):
    """A lifecycle move that is not allowed (e.g. out of decommissioned)."""


def device_register(
    *, serial: str, model: str, firmware: str = "", public_key_pem: str = "", actor: str
) -> Device:
    """Add a device in `provisioned`; it authenticates only once activated."""
    with transaction.atomic(), tracking.recorded_by_caller(Device) as changes:
        device = Device.objects.create(
            serial=serial, model=model, firmware=firmware, public_key_pem=public_key_pem
        )
        events.auth_event(
            "device.register", actor=actor, subject_id=str(device.uid), rows=tracking.rows(changes)
        )
    return device


def device_transition(*, device_id: int, to: str, actor: str) -> Device:
    """Move a device through its lifecycle; refused at once for credentials in flight.

    Row-locked so two concurrent moves cannot both pass the check. Rows are saved, not
    bulk-updated, so the state change and each revoked key go into the event's payload.
    """
    with transaction.atomic(), tracking.recorded_by_caller(Device, ApiKey) as changes:
        device = Device.objects.select_for_update().get(pk=device_id)
        if to not in TRANSITIONS[device.state]:
            raise TransitionError(f"A {device.state} device cannot become {to}.")
        device.state = to
        device.save(update_fields=["state", "state_changed_at"])
        if to == Device.State.DECOMMISSIONED:
            now = timezone.now()
            for key in device.api_keys.select_for_update().filter(revoked_at=None).order_by("pk"):
                key.revoked_at = now
                key.save(update_fields=["revoked_at"])
        events.auth_event(
            f"device.{to}", actor=actor, subject_id=str(device.uid), rows=tracking.rows(changes)
        )
        device.refresh_from_db()
    return device


def device_api_key_issue(*, device_id: int, actor: str) -> IssuedKey:
    """An API key that authenticates as this device (operator rights, ingest scope)."""
    with transaction.atomic(), tracking.recorded_by_caller(ApiKey) as changes:
        device = Device.objects.get(pk=device_id)
        if device.state == Device.State.DECOMMISSIONED:
            raise TransitionError("A decommissioned device gets no credentials.")
        issued = api_key_issue(
            schema=connection.schema_name,
            name=f"device {device.serial}",
            role=Role.OPERATOR,
            scopes=["ingest", "view_inspections"],
            device_id=device.pk,
        )
        events.auth_event(
            "api_key.create",
            actor=actor,
            subject_id=issued.api_key_id,
            device=str(device.uid),
            rows=tracking.rows(changes),
        )
    return issued
