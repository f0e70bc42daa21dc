"""Every model, classified by how its rows are kept apart (the isolation suite reads this).

Adding a model without adding it here fails `test_every_model_is_covered`.

- TENANT: table in every workspace schema; a factory makes a row in the current one.
- SHARED_RLS: table in `public` carrying tenant rows, behind FORCE ROW LEVEL SECURITY.
- PLATFORM: table in `public` only for the platform; tenant roles have no access.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone


@dataclass(frozen=True)
class TenantCase:
    factory: Callable[[], Any]
    api_path: str | None = None  # list endpoint, when the model has one
    patch: dict[str, Any] | None = None


def _site() -> Any:
    from inspections.models import Site

    return Site.objects.create(name=f"Site {timezone.now().timestamp()}")


def _asset() -> Any:
    from inspections.models import Asset

    return Asset.objects.create(site=_site(), tag="A-1", name="Pump")


def _user() -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username=f"u{timezone.now().timestamp()}")


def _session() -> Any:
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore()
    store["k"] = "v"
    store.save()
    from django.contrib.sessions.models import Session

    return Session.objects.get(session_key=store.session_key)


def _log_entry() -> Any:
    from django.contrib.admin.models import ADDITION, LogEntry

    user = _user()
    return LogEntry.objects.create(user=user, action_flag=ADDITION, object_repr="x",
                                   change_message="")


def _membership() -> Any:
    from accounts.models import Membership

    return Membership.objects.create(user=_user(), role="viewer")


def _api_key() -> Any:
    from accounts.models import ApiKey

    return ApiKey.objects.create(name=f"k{timezone.now().timestamp()}",
                                 prefix=f"{int(timezone.now().timestamp() * 1e6) % 10**12:012d}",
                                 key_hash="0" * 64, role="viewer")


def _refresh_token() -> Any:
    import uuid

    from accounts.models import RefreshToken

    return RefreshToken.objects.create(user=_user(), token_hash=uuid.uuid4().hex * 2,
                                       family=uuid.uuid4(), expires_at=timezone.now())


def _device() -> Any:
    from devices.models import Device

    return Device.objects.create(serial=f"SN{timezone.now().timestamp()}", model="Edge")


def _audit_entry() -> Any:
    from audit import services

    return services.audit_append(action="test", actor="isolation", object_type="x",
                                 object_id=timezone.now().timestamp(), payload={})


def _audit_tree_head() -> Any:
    from audit import services

    _audit_entry()
    return services.tree_head_issue()


def _audit_merkle_node() -> Any:
    from django.db import transaction

    from audit import services
    from audit.models import MerkleNode

    with transaction.atomic():  # one stored tile needs 256 entries under a tree head
        for _ in range(256):
            _audit_entry()
    services.tree_head_issue()
    return MerkleNode.objects.first()


def _audit_log_key() -> Any:
    from audit.models import LogKey

    _audit_tree_head()
    return LogKey.objects.first()


def _audit_receipt() -> Any:
    from audit import services
    from tests.audit.factories import receipt_data

    return services.receipt_create(data=receipt_data(), actor="isolation")


def _audit_export() -> Any:
    from audit.models import ExportJob

    return ExportJob.objects.create(kind="json", requested_by="isolation")



def _scan() -> Any:
    import uuid

    from inspections.models import Scan

    return Scan.objects.create(asset=_asset(), sha256=uuid.uuid4().hex * 2, size_bytes=1,
                               encoding="laz", raw_key="x", received_at=timezone.now())


def _upload() -> Any:
    from datetime import timedelta

    from inspections.models import Upload

    return Upload.objects.create(asset=_asset(), encoding="laz", declared_size=1,
                                 declared_sha256="0" * 64, object_key="x",
                                 expires_at=timezone.now() + timedelta(days=1))


def _outbox_message() -> Any:
    from inspections.models import OutboxMessage

    return OutboxMessage.objects.create(topic="scan.process", scan=_scan())

def _email_address() -> Any:
    from allauth.account.models import EmailAddress

    user = _user()
    return EmailAddress.objects.create(user=user, email=f"{user.username}@x.test")


def _email_confirmation() -> Any:
    from allauth.account.models import EmailConfirmation

    return EmailConfirmation.objects.create(email_address=_email_address(),
                                            key=f"k{timezone.now().timestamp()}")


def _authenticator() -> Any:
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.create(user=_user(), type=Authenticator.Type.TOTP,
                                        data={"secret": "x"})


def _workspace_policy() -> Any:
    from accounts.models import WorkspacePolicy

    return WorkspacePolicy.objects.create(pk=int(timezone.now().timestamp() * 1000) % 10**9)


def _device_ca() -> Any:
    from devices.pki import ca_get_or_create

    ca_get_or_create()
    from devices.models import DeviceCA

    return DeviceCA.objects.get()


def _device_certificate() -> Any:
    from devices.models import DeviceCertificate

    stamp = f"{int(timezone.now().timestamp() * 1e6):x}"
    return DeviceCertificate.objects.create(
        device=_device(), serial_number=stamp, fingerprint_sha256=stamp, certificate_pem="x",
        not_before=timezone.now(), not_after=timezone.now())


def _sso_configuration() -> Any:
    from accounts.models import SsoConfiguration

    return SsoConfiguration.objects.create(pk=1, oidc_client_id="isolation")


def _sso_identity() -> Any:
    from accounts.models import SsoIdentity

    return SsoIdentity.objects.create(user=_user(), protocol="oidc", issuer="https://idp.test",
                                      subject=f"s{timezone.now().timestamp()}")


def _cad_revision() -> Any:
    import uuid

    from twins.models import CadRevision

    return CadRevision.objects.create(
        asset=_asset(), number=1, filename="part.stl", source_format="stl", units="mm",
        scale_to_m=1e-3, sha256=uuid.uuid4().hex * 2, size_bytes=1, source_key="x",
        mesh_key="x", regions_key="x", vertex_count=3, triangle_count=1, region_count=1,
        area_m2=1.0, bbox_min=[0, 0, 0], bbox_max=[1, 1, 0], watertight=False)


def _tolerance_contract() -> Any:
    from quality.models import ToleranceContract

    return ToleranceContract.objects.create(asset=_asset(), version=1, spec={})


def _qc_run() -> Any:
    from quality.models import QcRun

    revision = _cad_revision()
    from quality.models import ToleranceContract

    contract = ToleranceContract.objects.create(asset=revision.asset, version=1, spec={})
    scan = _scan()
    return QcRun.objects.create(scan=scan, cad_revision=revision, contract=contract)


def _qc_result() -> Any:
    from quality.models import QcResult

    return QcResult.objects.create(run=_qc_run(), decision="pass", uncertainty_mm=0.1,
                                   algorithm_version="test")


def _qc_review() -> Any:
    from quality.models import QcReview

    return QcReview.objects.create(result=_qc_result(), action="accept", decision="pass",
                                   machine_decision="pass", reason="isolation")


def _history(label: str, make: Callable[[], Any]) -> Callable[[], Any]:
    """A pghistory event row: change a tracked model, return the event its trigger wrote."""

    def factory() -> Any:
        from django.apps import apps

        make()
        return apps.get_model(label).objects.order_by("-pgh_id").first()

    return factory


def _context() -> Any:
    import pghistory
    from pghistory.models import Context

    with pghistory.context(actor="registry"):
        _device()
    return Context.objects.order_by("-created_at").first()


TENANT: dict[str, TenantCase] = {
    "accounts.MembershipEvent": TenantCase(
        _history("accounts.MembershipEvent", lambda: _membership())),
    "accounts.ApiKeyEvent": TenantCase(_history("accounts.ApiKeyEvent", lambda: _api_key())),
    "accounts.WorkspacePolicyEvent": TenantCase(
        _history("accounts.WorkspacePolicyEvent", lambda: _workspace_policy())),
    "devices.DeviceEvent": TenantCase(_history("devices.DeviceEvent", lambda: _device())),
    "inspections.AssetEvent": TenantCase(_history("inspections.AssetEvent", lambda: _asset())),
    "pghistory.Context": TenantCase(_context),
    "devices.DeviceCA": TenantCase(_device_ca),
    "devices.DeviceCertificate": TenantCase(_device_certificate),
    "account.EmailAddress": TenantCase(_email_address),
    "account.EmailConfirmation": TenantCase(_email_confirmation),
    "mfa.Authenticator": TenantCase(_authenticator),
    "accounts.WorkspacePolicy": TenantCase(_workspace_policy),
    "audit.Entry": TenantCase(_audit_entry),
    "audit.TreeHead": TenantCase(_audit_tree_head),
    "audit.LogKey": TenantCase(_audit_log_key),
    "audit.MerkleNode": TenantCase(_audit_merkle_node),
    "audit.Receipt": TenantCase(_audit_receipt),
    "audit.ExportJob": TenantCase(_audit_export),
    "accounts.ApiKey": TenantCase(_api_key),
    "accounts.RefreshToken": TenantCase(_refresh_token),
    "devices.Device": TenantCase(_device),
    "accounts.Membership": TenantCase(_membership),
    "accounts.SsoConfiguration": TenantCase(_sso_configuration),
    "accounts.SsoIdentity": TenantCase(_sso_identity),
    "inspections.Site": TenantCase(_site, "/api/v1/sites", {"location": "moved"}),
    "inspections.Asset": TenantCase(_asset, "/api/v1/assets", {"name": "renamed"}),
    # Scans and uploads have no list+PATCH endpoint; tests/inspections covers their API.
    "inspections.Scan": TenantCase(_scan),
    "inspections.Upload": TenantCase(_upload),
    "inspections.OutboxMessage": TenantCase(_outbox_message),
    # CAD revisions and QC (issue 5): tests/quality covers their API across workspaces.
    "twins.CadRevision": TenantCase(_cad_revision),
    "quality.ToleranceContract": TenantCase(_tolerance_contract),
    "quality.QcRun": TenantCase(_qc_run),
    "quality.QcResult": TenantCase(_qc_result),
    "quality.QcReview": TenantCase(_qc_review),
    "auth.User": TenantCase(_user),
    "auth.Group": TenantCase(lambda: Group.objects.create(name=f"g{timezone.now().timestamp()}")),
    "auth.Permission": TenantCase(lambda: Permission.objects.create(
        name="x", codename=f"x{timezone.now().timestamp()}",
        content_type=ContentType.objects.get_for_model(Group))),
    "contenttypes.ContentType": TenantCase(
        lambda: ContentType.objects.create(app_label="x", model=f"m{timezone.now().timestamp()}")
    ),
    "sessions.Session": TenantCase(_session),
    "admin.LogEntry": TenantCase(_log_entry),
}

SHARED_RLS = {"billing.UsageRecord"}

# Read-only aggregations over the current schema's event tables (no table of their own).
DERIVED = {"pghistory.Events", "pghistory.MiddlewareEvents"}

PLATFORM = {"tenants.Plan", "tenants.Tenant", "tenants.Domain"}
