"""Reads of the twins app; `cad_geometry_get` is what other apps use to judge a scan."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from typing import Any

from django.core.files.storage import default_storage
from django.db.models import QuerySet

from twins.models import CadRevision


def cad_revision_list(*, asset_id: int | None = None) -> QuerySet[CadRevision]:
    qs = CadRevision.objects.select_related("asset")
    return qs.filter(asset_id=asset_id) if asset_id is not None else qs


def cad_revision_get(*, revision_id: uuid.UUID | str) -> CadRevision | None:
    return CadRevision.objects.select_related("asset").filter(pk=revision_id).first()


def cad_revision_latest(*, asset_id: int) -> CadRevision | None:
    return CadRevision.objects.filter(asset_id=asset_id).order_by("-number").first()


@dataclass(frozen=True)
class CadGeometry:
    """A revision's validated mesh (metres) and its region label per triangle."""

    revision_id: str
    asset_id: int
    number: int
    sha256: str
    mesh: Any  # inspections.geometry.mesh.CadMesh
    regions: Any  # int32 (F,)

    @property
    def n_regions(self) -> int:
        return int(self.regions.max()) + 1


def _read(key: str) -> bytes:
    with default_storage.open(key, "rb") as handle:
        return bytes(handle.read())


def cad_geometry_get(*, revision_id: uuid.UUID | str) -> CadGeometry:
    """Load the stored mesh and regions of a revision (worker side; imports numpy)."""
    import numpy as np  # not at module level: the web process imports this module

    from inspections.geometry.mesh import mesh_from_arrays

    revision = CadRevision.objects.get(pk=revision_id)
    arrays = np.load(io.BytesIO(_read(revision.mesh_key)))
    mesh = mesh_from_arrays(arrays["vertices"], arrays["triangles"], source=revision.filename)
    regions = np.load(io.BytesIO(_read(revision.regions_key))).astype(np.int32)
    if regions.shape[0] != mesh.n_triangles:
        raise ValueError(f"regions of revision {revision.pk} do not match its mesh")
    return CadGeometry(revision_id=str(revision.pk), asset_id=revision.asset_id,
                       number=revision.number, sha256=revision.sha256, mesh=mesh,
                       regions=regions)
