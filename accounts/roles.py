"""The roles of a workspace and what each may do (the role matrix).

Roles are ordered by reach only for display; permissions are explicit sets, because
auditor and finance are not "less than admin" but different.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    QC_MANAGER = "qc_manager"
    OPERATOR = "operator"
    AUDITOR = "auditor"
    FINANCE = "finance"
    VIEWER = "viewer"


class Capability(StrEnum):
    """What an endpoint needs; each view declares one for reads and one for writes."""

    MANAGE_WORKSPACE = "manage_workspace"  # users, roles, SSO, API keys, settings
    MANAGE_ASSETS = "manage_assets"  # sites, assets, CAD revisions, tolerance contracts
    VIEW_INSPECTIONS = "view_inspections"  # scans, results, twins
    INGEST = "ingest"  # upload scans, telemetry (operators, devices)
    REVIEW = "review"  # accept / override QC results
    VIEW_AUDIT = "view_audit"  # audit log, receipts, proofs
    EXPORT_AUDIT = "export_audit"  # evidence bundles, signed reports
    VIEW_USAGE = "view_usage"  # usage and billing
    MANAGE_DEVICES = "manage_devices"  # registry, credentials, commands, OTA


_ALL = frozenset(Capability)
ROLE_CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.OWNER: _ALL,
    Role.ADMIN: _ALL,
    Role.QC_MANAGER: frozenset({Capability.MANAGE_ASSETS, Capability.VIEW_INSPECTIONS,
                                Capability.INGEST, Capability.REVIEW, Capability.VIEW_AUDIT}),
    Role.OPERATOR: frozenset({Capability.VIEW_INSPECTIONS, Capability.INGEST}),
    Role.AUDITOR: frozenset({Capability.VIEW_INSPECTIONS, Capability.VIEW_AUDIT,
                             Capability.EXPORT_AUDIT}),
    Role.FINANCE: frozenset({Capability.VIEW_USAGE}),
    Role.VIEWER: frozenset({Capability.VIEW_INSPECTIONS}),
}


def role_can(role: Role | str | None, capability: Capability) -> bool:
    if role is None:
        return False
    return capability in ROLE_CAPABILITIES.get(Role(role), frozenset())
