"""Writes for the device registry: register, change state, issue credentials."""

from __future__ import annotations

from django.db import connection, transaction
from django.utils import timezone

from accounts import events
from accounts.credentials import IssuedKey, api_key_issue
from accounts.roles import Role
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
    with transaction.atomic():
        device = Device.objects.create(
            serial=serial, model=model, firmware=firmware, public_key_pem=public_key_pem
        )
        events.auth_event("device.register", actor=actor, subject_id=str(device.uid))
    return device


def device_transition(*, device_id: int, to: str, actor: str) -> Device:
    """Move a device through its lifecycle; refused at once for credentials in flight.

    Row-locked so two concurrent moves cannot both pass the check.
    """
    with transaction.atomic():
        device = Device.objects.select_for_update().get(pk=device_id)
        if to not in TRANSITIONS[device.state]:
            raise TransitionError(f"A {device.state} device cannot become {to}.")
        Device.objects.filter(pk=device.pk).update(state=to, state_changed_at=timezone.now())
        if to == Device.State.DECOMMISSIONED:
            device.api_keys.filter(revoked_at=None).update(revoked_at=timezone.now())
        events.auth_event(f"device.{to}", actor=actor, subject_id=str(device.uid))
        device.refresh_from_db()
    return device


def device_api_key_issue(*, device_id: int, actor: str) -> IssuedKey:
    """An API key that authenticates as this device (operator rights, ingest scope)."""
    with transaction.atomic():
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
            "api_key.create", actor=actor, subject_id=issued.api_key_id, device=str(device.uid)
        )
    return issued
