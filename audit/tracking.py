"""Configuration changes and deletions as log entries, declared in one table (issue 6).

``TRACKED`` names every model whose rows auditors ask about, which of its row events
(``created``, ``updated``, ``deleted``) become an entry, under which action, and how
each field is shown. ``connect()`` (called from ``AuditConfig.ready``) attaches model
signal receivers that append the entry with ``audit_append`` *inside* the transaction
of the change: a rolled-back change leaves no entry, and nobody can commit one without
the other.

Payload of every entry::

    {"model": "accounts.Membership", "object": "kim@acme (admin)",
     "changes": {"role": {"old": "viewer", "new": "admin"}},
     "history_event": {"model": "accounts.MembershipEvent", "id": 42}}

``changes`` lists every shown field for ``created`` (old ``null``) and ``deleted`` (new
``null``), and only the fields that changed for ``updated`` (no change, no entry).
``history_event`` links the entry to the django-pghistory row event written by the same
statement (for ``deleted``: the row's last recorded state). Field values are made
canonical-JSON safe (datetimes ISO 8601, UUIDs and decimals as text, foreign keys as
the target's primary key). Three ways to hide a field:

- ``exclude``: never compared, never shown (e.g. an API key's hash, ``last_used_at``);
- ``secret``: compared, shown only as ``[redacted sha256:<16 hex>]`` of the stored
  value (encrypted secrets, private keys, password hashes) — a change is visible, the
  value and anything that helps guess it are not;
- ``digest``: public but bulky (certificates, public keys, IdP metadata), shown as
  ``sha256:<hex>`` of the text.

The actor is the request's principal (user name, ``api-key:<prefix>``,
``device:<serial>``) set by ``audit.middleware`` through ``acting_as``; outside a
request, whoever wraps the work in ``acting_as`` (management commands), else
``system``.

One change, one entry: a service that appends its own entry for an action (e.g.
``auth.api_key.create``) runs the write inside ``recorded_by_caller(Model)``; the
receivers then collect the changes for it (``Change.payload``, to put in its entry)
instead of appending a second one. Code that skips signals is covered by hand:
``QuerySet.update()`` is not used on tracked fields of tracked models (the services
that did now save the locked rows), and ``QuerySet.delete()`` sends the signals
because receivers are connected (Django then never takes its fast-delete path).
Writes in raw SQL, ``bulk_create``/``bulk_update`` and fixtures (``raw`` saves) are
not seen here; pghistory's triggers still record inserts and updates of its models.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import hashlib
import math
import uuid
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection, models
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save
from django_tenants.utils import get_public_schema_name

CREATED, UPDATED, DELETED = "created", "updated", "deleted"
ALL_EVENTS = frozenset({CREATED, UPDATED, DELETED})
REDACTED_PREFIX = "[redacted sha256:"
OBJECT_REPR_MAX = 200


@dataclass(frozen=True)
class Tracked:
    """How one model's row changes are logged: action names, events and field display."""

    model: str  # "app_label.ModelName"
    action: str  # prefix: "<prefix>.created|updated|deleted"
    events: frozenset[str] = ALL_EVENTS
    exclude: frozenset[str] = frozenset()
    secret: frozenset[str] = frozenset()
    digest: frozenset[str] = frozenset()
    why: str = ""  # what is left out of `events`, and why (shown in the docs)


def _f(*names: str) -> frozenset[str]:
    return frozenset(names)


TRACKED: tuple[Tracked, ...] = (
    # People and access
    Tracked(
        settings.AUTH_USER_MODEL,
        "config.user",
        exclude=_f("last_login", "date_joined"),
        secret=_f("password"),
    ),
    Tracked("accounts.Membership", "config.membership", exclude=_f("created_at")),
    Tracked(
        "accounts.ApiKey", "config.api_key", exclude=_f("key_hash", "last_used_at", "created_at")
    ),
    Tracked(
        "accounts.WorkspacePolicy",
        "config.security_policy",
        events=_f(UPDATED, DELETED),
        exclude=_f("updated_at"),
        why="created: the default row (nothing required) appears on first read",
    ),
    Tracked(
        "accounts.SsoConfiguration",
        "config.sso",
        exclude=_f("updated_at", "saml_metadata_fetched_at"),
        secret=_f("oidc_client_secret_encrypted"),
        digest=_f("saml_idp_metadata_xml"),
    ),
    # Devices and their credentials
    Tracked(
        "devices.Device",
        "config.device",
        exclude=_f("created_at", "state_changed_at"),
        digest=_f("public_key_pem"),
    ),
    Tracked(
        "devices.DeviceCertificate",
        "config.device_certificate",
        exclude=_f("created_at"),
        digest=_f("certificate_pem"),
    ),
    Tracked(
        "devices.DeviceCA",
        "config.device_ca",
        exclude=_f("created_at"),
        secret=_f("private_key_encrypted"),
        digest=_f("certificate_pem"),
    ),
    # What is inspected and how it is judged
    Tracked("inspections.Site", "config.site", exclude=_f("created_at")),
    Tracked("inspections.Asset", "config.asset", exclude=_f("created_at")),
    Tracked("quality.ToleranceContract", "config.tolerance_contract", exclude=_f("created_at")),
    Tracked("twins.CadRevision", "twins.cad_revision", exclude=_f("created_at", "report")),
    # Records whose deletion auditors must see (their other changes are work, not config)
    Tracked(
        "inspections.Scan",
        "inspections.scan",
        events=_f(DELETED),
        exclude=_f("lease_token", "lease_until", "calibration", "edge_transform", "bounds"),
        why="created/updated: ingestion and processing, logged as scan receipts and QC",
    ),
    Tracked(
        "quality.QcRun",
        "quality.qc_run",
        events=_f(DELETED),
        exclude=_f("lease_token", "lease_until"),
        why="created: qc.run.requested; updated: progress of the worker",
    ),
    Tracked(
        "quality.QcResult",
        "quality.qc_result",
        events=_f(DELETED),
        exclude=_f("reasons", "gates", "regions", "summary", "alignment", "parameters", "offset"),
        why="created: qc.receipt (the run receipt carries the whole verdict)",
    ),
    Tracked(
        "quality.QcReview",
        "quality.qc_review",
        events=_f(DELETED),
        why="created: qc.review.accept|override",
    ),
)


# --- Who ------------------------------------------------------------------------------

_actor: ContextVar[str | None] = ContextVar("d2r_audit_actor", default=None)


@contextlib.contextmanager
def acting_as(actor: str | None) -> Iterator[None]:
    """Name the actor of the tracked changes made inside (a request, a command)."""
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


def current_actor() -> str:
    return _actor.get() or "system"


# --- Services that log the change themselves ---------------------------------------------


@dataclass(frozen=True)
class Change:
    """A tracked row change that the calling service puts into its own entry."""

    action: str
    object_type: str
    object_id: str
    payload: dict[str, Any]


def rows(changes: list[Change]) -> list[dict[str, Any]]:
    """The claimed changes as they go into the caller's entry payload (key ``rows``)."""
    return [
        {"action": c.action, "object_type": c.object_type, "object_id": c.object_id, **c.payload}
        for c in changes
    ]


@dataclass
class _Claim:
    models: frozenset[type[models.Model]]
    changes: list[Change] = field(default_factory=list)


_claims: ContextVar[tuple[_Claim, ...]] = ContextVar("d2r_audit_claims", default=())


@contextlib.contextmanager
def recorded_by_caller(*tracked_models: type[models.Model]) -> Iterator[list[Change]]:
    """Changes of these models made inside are the caller's to log (one entry per action).

    Yields the list the changes are collected into, in order; put what the entry needs
    (``change.payload``) into the caller's own ``audit_append``/``auth_event``.
    """
    claim = _Claim(frozenset(tracked_models))
    token = _claims.set((*_claims.get(), claim))
    try:
        yield claim.changes
    finally:
        _claims.reset(token)


_paused: ContextVar[bool] = ContextVar("d2r_audit_tracking_paused", default=False)


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Write no entries for changes made inside: for test fixtures only.

    Never used by the application: every change it makes is logged or claimed.
    """
    token = _paused.set(True)
    try:
        yield
    finally:
        _paused.reset(token)


# --- Values ------------------------------------------------------------------------------


def fingerprint(value: str | bytes | memoryview) -> str:
    data = bytes(value) if isinstance(value, memoryview) else value
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def _plain(value: Any) -> Any:
    """A canonical-JSON-safe form of a field value."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dt.datetime):
        return (value.astimezone(dt.UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return f"sha256:{fingerprint(value)}"
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return str(value)


@dataclass(frozen=True)
class _Spec:
    tracked: Tracked
    model: type[models.Model]
    fields: tuple[models.Field[Any, Any], ...]
    history_model: type[models.Model] | None

    def shown(self, f: models.Field[Any, Any], raw: Any) -> Any:
        if raw is None or raw in ("", b""):
            return _plain(raw)
        if f.name in self.tracked.secret:
            return f"{REDACTED_PREFIX}{fingerprint(_as_text(raw))[:16]}]"
        if f.name in self.tracked.digest:
            return f"sha256:{fingerprint(_as_text(raw))}"
        return _plain(raw)

    def values_of(
        self, instance: models.Model, only: frozenset[str] | None = None
    ) -> dict[str, Any]:
        return {
            f.name: self.shown(f, getattr(instance, f.attname))
            for f in self.fields
            if only is None or f.name in only or f.attname in only
        }

    def values_in_db(self, pk: Any, only: frozenset[str] | None) -> dict[str, Any] | None:
        chosen = [f for f in self.fields if only is None or f.name in only or f.attname in only]
        row = self.model._base_manager.filter(pk=pk).values(*[f.attname for f in chosen]).first()
        if row is None:
            return None
        return {f.name: self.shown(f, row[f.attname]) for f in chosen}


def _as_text(raw: Any) -> str | bytes | memoryview:
    return raw if isinstance(raw, str | bytes | memoryview) else str(raw)


_specs: dict[type[models.Model], _Spec] = {}


class _TransactionStart(models.Func):
    """PostgreSQL's NOW(): the start of the current transaction, as pghistory stamps it.

    (Django's ``Now()`` is STATEMENT_TIMESTAMP() on PostgreSQL.)
    """

    template = "NOW()"
    output_field = models.DateTimeField()


def _history_model(model: type[models.Model]) -> type[models.Model] | None:
    """The pghistory event model of `model` (None when it has no row history)."""
    for candidate in apps.get_models():
        if getattr(candidate, "pgh_tracked_model", None) is model and any(
            f.name == "pgh_obj" for f in candidate._meta.fields
        ):
            return candidate
    return None


def _history_event(spec: _Spec, pk: Any, *, this_transaction: bool) -> dict[str, Any] | None:
    """The pghistory event of this row: the one this transaction wrote, or its last one."""
    if spec.history_model is None:
        return None
    events = spec.history_model._default_manager.filter(pgh_obj_id=pk)
    if this_transaction:
        events = events.filter(pgh_created_at=_TransactionStart())
    event_id = events.order_by("-pgh_id").values_list("pgh_id", flat=True).first()
    if event_id is None:
        return None
    return {"model": spec.history_model._meta.label, "id": event_id}


# --- Receivers -------------------------------------------------------------------------


def _in_workspace() -> bool:
    return connection.schema_name not in (None, get_public_schema_name())


def _object_repr(instance: models.Model) -> str:
    try:
        return str(instance)[:OBJECT_REPR_MAX]
    except Exception:  # noqa: BLE001 - a broken __str__ must not block the change
        return f"{instance._meta.label} {instance.pk}"


def _record(
    spec: _Spec,
    event: str,
    instance: models.Model,
    changes: dict[str, dict[str, Any]],
    history: dict[str, Any] | None,
    obj: str,
) -> None:
    from audit.services import audit_append

    action = f"{spec.tracked.action}.{event}"
    payload: dict[str, Any] = {"model": spec.tracked.model, "object": obj, "changes": changes}
    if history is not None:
        payload["history_event"] = history
    object_id = str(instance.pk)
    for claim in reversed(_claims.get()):
        if type(instance) in claim.models:
            claim.changes.append(Change(action, spec.tracked.model, object_id, payload))
            return
    audit_append(
        action=action,
        actor=current_actor(),
        object_type=spec.tracked.model,
        object_id=object_id,
        payload=payload,
    )


def _active(sender: type[models.Model], raw: bool = False) -> _Spec | None:
    if raw or _paused.get() or not _in_workspace():
        return None
    return _specs.get(sender)


def _needs_snapshot(instance: models.Model) -> bool:
    """Could this save be an UPDATE of an existing row?"""
    if instance.pk is None:
        return False
    pk_field = instance._meta.pk
    has_default = pk_field is not None and pk_field.has_default()
    return not (instance._state.adding and has_default)  # Django forces the INSERT then


def _on_pre_save(
    sender: type[models.Model],
    instance: models.Model,
    raw: bool = False,
    update_fields: frozenset[str] | None = None,
    **_: Any,
) -> None:
    spec = _active(sender, raw)
    instance.__dict__.pop("_audit_before", None)
    if spec is None or not _needs_snapshot(instance):
        return
    only = frozenset(update_fields) if update_fields is not None else None
    if only is not None and not any(f.name in only or f.attname in only for f in spec.fields):
        return
    instance.__dict__["_audit_before"] = spec.values_in_db(instance.pk, only)


def _on_post_save(
    sender: type[models.Model],
    instance: models.Model,
    created: bool,
    raw: bool = False,
    update_fields: frozenset[str] | None = None,
    **_: Any,
) -> None:
    spec = _active(sender, raw)
    before = instance.__dict__.pop("_audit_before", None)
    if spec is None:
        return
    only = frozenset(update_fields) if update_fields is not None else None
    if created or before is None:
        if CREATED not in spec.tracked.events or not created:
            return
        after = spec.values_of(instance)
        changes = {name: {"old": None, "new": value} for name, value in after.items()}
        event = CREATED
    else:
        if UPDATED not in spec.tracked.events:
            return
        after = spec.values_of(instance, only)
        changes = {
            name: {"old": before[name], "new": value}
            for name, value in after.items()
            if name in before and before[name] != value
        }
        if not changes:
            return
        event = UPDATED
    _record(
        spec,
        event,
        instance,
        changes,
        _history_event(spec, instance.pk, this_transaction=True),
        _object_repr(instance),
    )


def _on_pre_delete(sender: type[models.Model], instance: models.Model, **_: Any) -> None:
    spec = _active(sender)
    if spec is None:
        return
    # Read now: related rows (e.g. a membership's user) may be gone by post_delete.
    instance.__dict__["_audit_deleted"] = (
        spec.values_of(instance),
        _object_repr(instance),
        _history_event(spec, instance.pk, this_transaction=False),
    )


def _on_post_delete(sender: type[models.Model], instance: models.Model, **_: Any) -> None:
    spec = _active(sender)
    snapshot = instance.__dict__.pop("_audit_deleted", None)
    if spec is None or snapshot is None:
        return
    values, obj, history = snapshot
    changes = {name: {"old": value, "new": None} for name, value in values.items()}
    _record(spec, DELETED, instance, changes, history, obj)


def connect() -> None:
    """Attach the receivers for every model of ``TRACKED`` (idempotent)."""
    for tracked in TRACKED:
        model = apps.get_model(tracked.model)
        shown = tuple(f for f in model._meta.concrete_fields if f.name not in tracked.exclude)
        _specs[model] = _Spec(tracked, model, shown, _history_model(model))
        uid = f"audit.tracking.{tracked.model}"
        if tracked.events & {CREATED, UPDATED}:
            pre_save.connect(_on_pre_save, sender=model, dispatch_uid=f"{uid}.pre_save")
            post_save.connect(_on_post_save, sender=model, dispatch_uid=f"{uid}.post_save")
        if DELETED in tracked.events:
            pre_delete.connect(_on_pre_delete, sender=model, dispatch_uid=f"{uid}.pre_delete")
            post_delete.connect(_on_post_delete, sender=model, dispatch_uid=f"{uid}.post_delete")


def logged_actions() -> list[str]:
    """Every action the tracker writes, in declaration order (documented in the README)."""
    return [
        f"{t.action}.{e}" for t in TRACKED for e in (CREATED, UPDATED, DELETED) if e in t.events
    ]
