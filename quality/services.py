"""Writes of the quality app: contracts, QC runs (request, execute), reviews.

One service, one transaction (the run's execution commits its progress in small
transactions and its result in one); audit entries are written inside the transaction
of the action they record; tasks and WebSocket events are sent on commit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audit import tracking
from audit.services import RunReceiptData, audit_append, receipt_create
from d2r.realtime import Event, publish
from quality.evaluation import ALGORITHM_NAME, ALGORITHM_VERSION, ContractError, ContractSpec
from quality.models import Decision, QcResult, QcReview, QcRun, ToleranceContract

logger = logging.getLogger(__name__)

RUN_LEASE_SECONDS = 30 * 60
REPORT_REGION_FIELDS = ("region", "count", "mean_mm", "std_mm", "p5_mm", "p50_mm", "p95_mm",
                        "max_abs_mm", "fraction_out", "decision")
MAX_RUN_ATTEMPTS = 3
ALIGN_MAX_POINTS = 200_000
LOD_MAX_POINTS = 100_000
DEVIATION_BATCH = 1 << 20
IDENTITY = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0]]


class QcProblem(Exception):
    """A refused QC operation: `slug` names the problem (d2r.api.problems)."""

    def __init__(self, slug: str, detail: str) -> None:
        super().__init__(detail)
        self.slug = slug
        self.detail = detail


def _event(kind: str, data: dict[str, Any]) -> None:
    """Publish to the workspace's subscribers once the current transaction commits."""
    schema = connection.schema_name
    event: Event = {"kind": kind, "data": data}

    def send() -> None:
        try:
            publish(schema, "events", event)
        except Exception:  # a real-time hiccup must never fail a QC run
            logger.warning("event not published", extra={"kind": kind}, exc_info=True)

    transaction.on_commit(send)


def _run_event(run: QcRun, decision: str | None = None) -> None:
    _event("qc.run", {"run_id": str(run.id), "scan_id": str(run.scan_id),
                      "status": run.status, "stage": run.stage, "progress": run.progress,
                      "decision": decision})


# --- Contracts -----------------------------------------------------------------------


def contract_create(*, asset_id: int, spec: dict[str, Any], name: str = "default",
                    cad_revision_id: uuid.UUID | str | None = None, note: str = "",
                    user: Any = None) -> ToleranceContract:
    """Record the next version of an asset's contract `name` (versions are immutable).

    The spec is validated (ContractSpec.from_dict: unknown keys refused); naming
    regions requires a CAD revision of the same asset whose labels they are.
    """
    from twins.selectors import cad_revision_get

    try:
        parsed = ContractSpec.from_dict(spec)
    except ContractError as exc:
        raise QcProblem("validation-error", str(exc)) from exc
    if cad_revision_id is not None:
        revision = cad_revision_get(revision_id=cad_revision_id)
        if revision is None or revision.asset_id != asset_id:
            raise QcProblem("validation-error", "cad_revision must be a revision of the asset")
        labels = parsed.regions or ()
        bad = [r for r in (*labels, *parsed.region_criteria) if r >= revision.region_count]
        if bad:
            raise QcProblem("validation-error", f"regions {bad} do not exist in revision "
                            f"{revision.number} ({revision.region_count} regions)")
    elif parsed.regions is not None or parsed.region_criteria:
        raise QcProblem("validation-error", "a contract naming regions needs cad_revision")
    for _ in range(3):
        try:
            # One entry, qc.contract.created: the tracker's would repeat it.
            with transaction.atomic(), tracking.recorded_by_caller(ToleranceContract):
                top = ToleranceContract.objects.filter(asset_id=asset_id, name=name).aggregate(
                    v=Max("version"))["v"] or 0
                contract = ToleranceContract.objects.create(
                    asset_id=asset_id, name=name, version=top + 1, spec=parsed.to_dict(),
                    cad_revision_id=cad_revision_id, note=note,
                    created_by=user if getattr(user, "is_authenticated", False) else None)
                audit_append(action="qc.contract.created", actor=str(user or "system"),
                             object_type="quality.ToleranceContract", object_id=str(contract.id),
                             payload={"asset": asset_id, "name": name, "version": top + 1,
                                      "spec": contract.spec})
                return contract
        except IntegrityError:
            continue
    raise QcProblem("conflict", "could not allocate a contract version; try again")


# --- Runs ----------------------------------------------------------------------------


def qc_run_request(*, scan_id: uuid.UUID | str, contract_id: uuid.UUID | str,
                   cad_revision_id: uuid.UUID | str | None = None, user: Any = None) -> QcRun:
    """Create a QC run for a processed scan and enqueue it on commit.

    The CAD revision is, in order: the one given, the contract's, the asset's revision
    whose label the device reported (`scan.cad_revision`), the asset's latest.
    """
    from inspections.selectors import scan_list
    from twins.selectors import cad_revision_get, cad_revision_list

    scan = scan_list().filter(pk=scan_id).first()
    contract = ToleranceContract.objects.filter(pk=contract_id).first()
    if scan is None or contract is None:
        raise QcProblem("not-found", "No such scan or contract in this workspace.")
    if scan.status != "processed" or not scan.canonical_key:
        raise QcProblem("conflict", f"The scan is {scan.status}; only processed scans can be "
                        "judged.")
    if contract.asset_id != scan.asset_id:
        raise QcProblem("validation-error", "The contract belongs to another asset.")
    revision_id = cad_revision_id or contract.cad_revision_id
    if revision_id is None:
        revisions = cad_revision_list(asset_id=scan.asset_id).order_by("-number")
        chosen = (revisions.filter(label=scan.cad_revision).first() if scan.cad_revision
                  else None) or revisions.first()
        if chosen is None:
            raise QcProblem("conflict", "The asset has no CAD revision to judge against.")
        revision_id = chosen.pk
    revision = cad_revision_get(revision_id=revision_id)
    if revision is None or revision.asset_id != scan.asset_id:
        raise QcProblem("validation-error", "The CAD revision belongs to another asset.")
    if contract.cad_revision_id and contract.cad_revision_id != revision.pk:
        raise QcProblem("validation-error", "The contract's regions refer to another CAD "
                        "revision.")
    with transaction.atomic():
        run = QcRun.objects.create(
            scan_id=scan.pk, contract=contract, cad_revision_id=revision.pk, stage="queued",
            requested_by=user if getattr(user, "is_authenticated", False) else None)
        audit_append(action="qc.run.requested", actor=str(user or "system"),
                     object_type="quality.QcRun", object_id=str(run.id),
                     payload={"scan": str(scan.pk), "contract": str(contract.pk),
                              "contract_version": contract.version,
                              "cad_revision": str(revision.pk)})
        _run_event(run)
        run_id = str(run.id)
        transaction.on_commit(lambda: _enqueue(run_id))
    return run


def _enqueue(run_id: str) -> None:
    from quality.tasks import qc_run_execute_task

    try:
        qc_run_execute_task.apply_async(args=[run_id], queue="processing")
    except Exception as exc:  # noqa: BLE001 - broker down: qc_runs_requeue_stale resends
        logger.warning("QC run not enqueued; the sweep will resend it: %s", exc)


def qc_runs_requeue_stale(*, older_than_seconds: int = 600) -> int:
    """Resend runs still queued after a while, or running with an expired lease."""
    now = timezone.now()
    stale = QcRun.objects.filter(
        Q(status=QcRun.Status.QUEUED, created_at__lt=now - timedelta(seconds=older_than_seconds))
        | Q(status=QcRun.Status.RUNNING, lease_until__lt=now))
    ids = [str(pk) for pk in stale.values_list("pk", flat=True)[:500]]
    for run_id in ids:
        _enqueue(run_id)
    return len(ids)


def qc_run_claim(*, run_id: uuid.UUID | str) -> uuid.UUID | None:
    """Take the run's lease by a conditional UPDATE; None when done or held by another."""
    now = timezone.now()
    token = uuid.uuid4()
    with transaction.atomic():
        claimed = QcRun.objects.filter(
            Q(status=QcRun.Status.QUEUED) | Q(status=QcRun.Status.RUNNING, lease_until__lt=now),
            pk=run_id, attempts__lt=MAX_RUN_ATTEMPTS,
        ).update(status=QcRun.Status.RUNNING, lease_token=token, attempts=F("attempts") + 1,
                 lease_until=now + timedelta(seconds=RUN_LEASE_SECONDS), started_at=now,
                 stage="claimed", progress=1)
        if not claimed:
            return None
        _run_event(QcRun.objects.get(pk=run_id))
    return token


def _progress(run_id: uuid.UUID | str, token: uuid.UUID, stage: str, progress: int) -> None:
    with transaction.atomic():
        if QcRun.objects.filter(pk=run_id, lease_token=token).update(stage=stage,
                                                                     progress=progress):
            _run_event(QcRun.objects.get(pk=run_id))


def _matrix(value: Any) -> list[list[float]] | None:
    if value is None:
        return None
    flat = [float(v) for row in value for v in (row if isinstance(row, list) else [row])]
    if len(flat) != 16:
        return None
    return [flat[i * 4:(i + 1) * 4] for i in range(4)]


def _calibration_age_days(calibration: dict[str, Any], captured_at: datetime | None
                          ) -> float | None:
    stamp = calibration.get("calibrated_at") if isinstance(calibration, dict) else None
    when = parse_datetime(stamp) if isinstance(stamp, str) else None
    if when is None:
        return None
    reference = captured_at or timezone.now()
    if timezone.is_naive(when):
        when = timezone.make_aware(when, timezone.get_fixed_timezone(0))
    return (reference - when).total_seconds() / 86400.0


def _device_health(calibration: dict[str, Any]) -> bool | None:
    value = calibration.get("device_health") if isinstance(calibration, dict) else None
    if value is None:
        return None
    return str(value).lower() in ("ok", "healthy", "good", "true")


def qc_run_execute(*, run_id: uuid.UUID | str) -> str:
    """Align, deviate, evaluate, write the artifacts, record the result and its receipt.

    Idempotent: work starts only with the lease (`qc_run_claim`, a conditional UPDATE);
    artifact keys are fixed per run (a rerun overwrites them); the result is recorded
    only by the lease holder and only once (one-to-one with the run). Returns the run's
    final status, or `skipped`.
    """
    token = qc_run_claim(run_id=run_id)
    if token is None:
        return "skipped"
    run = QcRun.objects.select_related("contract", "scan").get(pk=run_id)
    try:
        return _execute(run, token)
    except Exception as exc:
        logger.exception("QC run failed", extra={"run": str(run_id)})
        with transaction.atomic():
            if QcRun.objects.filter(pk=run_id, lease_token=token).update(
                    status=QcRun.Status.FAILED, lease_token=None, lease_until=None,
                    stage="failed", error=f"{type(exc).__name__}: {exc}"[:2000],
                    finished_at=timezone.now()):
                _run_event(QcRun.objects.get(pk=run_id))
        return QcRun.Status.FAILED


def _execute(run: QcRun, token: uuid.UUID) -> str:
    import numpy as np

    from inspections import objectstore
    from inspections.geometry.align import scan_align
    from inspections.geometry.deviation import DeviationIndex
    from quality import artifacts, evaluation, pointsource
    from twins.selectors import cad_geometry_get

    scan = run.scan
    spec = ContractSpec.from_dict(run.contract.spec)
    _progress(run.id, token, "loading", 5)
    scratch = tempfile.mkdtemp(prefix="d2r-qc-")
    canonical = os.path.join(scratch, "scan.parquet")
    deviation_path = os.path.join(scratch, "deviation.parquet")
    try:
        with open(canonical, "wb") as handle:
            for chunk in objectstore.iter_chunks(scan.canonical_key):
                handle.write(chunk)
        meta = pointsource.canonical_meta(canonical)
        geometry = cad_geometry_get(revision_id=run.cad_revision_id)
        mesh, regions = geometry.mesh, geometry.regions
        index = DeviationIndex(mesh)

        _progress(run.id, token, "aligning", 15)
        sample = pointsource.sample_points(canonical, max_points=ALIGN_MAX_POINTS)
        edge = _matrix(scan.edge_transform)
        alignment = scan_align(sample, mesh, init=np.asarray(edge) if edge else None,
                               index=index, max_points=ALIGN_MAX_POINTS)
        rmse_mm = alignment.inlier_rmse * 1000.0
        accuracy = (scan.calibration or {}).get("accuracy_mm")
        u_mm = evaluation.expanded_uncertainty_mm(
            spec, device_accuracy_mm=float(accuracy) if accuracy is not None else None,
            alignment_rmse_mm=rmse_mm)
        acc = evaluation.RegionAccumulator(spec, n_regions=geometry.n_regions,
                                           n_triangles=mesh.n_triangles, uncertainty_mm=u_mm)
        inlier_m = max(alignment.levels[-1].max_correspondence_distance,
                       2 * spec.widest_fail_mm / 1000.0)

        _progress(run.id, token, "deviating", 35)
        writer = pointsource.DeviationMapWriter(deviation_path, canonical=meta,
                                                transform=alignment.transform,
                                                offset=index.offset)
        lod = pointsource.LodSampler(total=meta["num_rows"], max_points=LOD_MAX_POINTS)
        rot, trans = alignment.transform[:3, :3], alignment.transform[:3, 3]
        offset = np.zeros(3)
        done = 0
        for xyz, raw in pointsource.iter_points(canonical, batch_points=DEVIATION_BATCH):
            result = index.query(xyz, transform=alignment.transform)
            offset = result.offset
            point_regions = regions[result.triangle_ids]
            acc.add(result.distances, result.triangle_ids, regions, inlier_distance_m=inlier_m)
            writer.write(raw, result.distances, point_regions, result.triangle_ids)
            lod.add(xyz @ rot.T + trans - offset, result.distances, point_regions)
            done += xyz.shape[0]
            _progress(run.id, token, "deviating",
                      35 + int(40 * done / max(meta["num_rows"], 1)))
        writer.close()

        _progress(run.id, token, "evaluating", 80)
        areas = mesh.face_areas()
        coverage, density, missing = evaluation.coverage_and_density(
            spec, acc, triangle_areas_m2=areas, regions_of_triangles=regions)
        calibration = scan.calibration or {}
        gate_inputs = evaluation.GateInputs(
            alignment_rmse_mm=rmse_mm, alignment_fitness=alignment.fitness, coverage=coverage,
            density_per_cm2=density,
            calibration_age_days=_calibration_age_days(calibration, scan.captured_at),
            device_healthy=_device_health(calibration), uncovered_regions=missing)
        verdict = evaluation.evaluate(spec, acc, triangle_areas_m2=areas,
                                      regions_of_triangles=regions, gate_inputs=gate_inputs)

        _progress(run.id, token, "artifacts", 88)
        base = f"quality/runs/{run.id}"
        crit = spec.criteria
        centres = acc.hist_lo_mm + acc.bin_mm * (np.arange(acc.n_bins) + 0.5)
        keys = {
            "histogram_key": _store(f"{base}/histogram.png", artifacts.histogram_png(
                centres, acc.hist.sum(axis=0), tolerance_mm=crit.tolerance_mm,
                fail_mm=crit.fail_mm, uncertainty_mm=u_mm, side=crit.side)),
        }
        lod_xyz, lod_d, _ = lod.arrays()
        keys["heatmap_key"] = _store(f"{base}/heatmap.png", artifacts.heatmap_png(
            lod_xyz, lod_d * 1000.0, tolerance_mm=crit.tolerance_mm, fail_mm=crit.fail_mm,
            side=crit.side))
        keys["lod_key"] = _store(f"{base}/lod.parquet", lod.parquet_bytes(offset))
        map_key = objectstore.key_for(f"{base}/deviation.parquet")
        objectstore.upload_file(map_key, deviation_path)
        keys["deviation_map_key"] = map_key
        alignment_doc = {
            "transform": np.asarray(alignment.transform).tolist(), "fitness": alignment.fitness,
            "inlier_rmse_mm": rmse_mm, "iterations": alignment.iterations,
            "initial": alignment.initial, "edge_transform": edge,
            "levels": [{"voxel_mm": lv.voxel_size * 1000, "iterations": lv.iterations,
                        "fitness": lv.fitness, "inlier_rmse_mm": lv.inlier_rmse * 1000,
                        "max_correspondence_mm": lv.max_correspondence_distance * 1000}
                       for lv in alignment.levels]}
        parameters = {"align_max_points": ALIGN_MAX_POINTS, "kernel": "tukey",
                      "inlier_distance_mm": inlier_m * 1000, "deviation_batch": DEVIATION_BATCH,
                      "lod_max_points": LOD_MAX_POINTS, "histogram_bin_mm": acc.bin_mm,
                      "min_points_per_region": evaluation.MIN_POINTS_PER_REGION,
                      "region_max_angle_deg": 10.0, "contract": spec.to_dict()}
        return _record(run, token, verdict.to_dict(), alignment_doc, parameters, keys,
                       offset.tolist(), u_mm)
    finally:
        for name in (canonical, deviation_path):
            with contextlib.suppress(OSError):
                os.unlink(name)
        with contextlib.suppress(OSError):
            os.rmdir(scratch)


def _store(name: str, data: bytes) -> str:
    from inspections import objectstore

    key = objectstore.key_for(name)
    objectstore.put(key, data)
    return key


def _record(run: QcRun, token: uuid.UUID, verdict: dict[str, Any], alignment: dict[str, Any],
            parameters: dict[str, Any], keys: dict[str, str], offset: list[float],
            u_mm: float) -> str:
    scan = run.scan
    with transaction.atomic():
        locked = QcRun.objects.select_for_update().filter(pk=run.pk, lease_token=token).first()
        if locked is None or QcResult.objects.filter(run_id=run.pk).exists():
            logger.warning("lease lost or result exists; discarded", extra={"run": str(run.pk)})
            return "skipped"
        reasons = verdict["reasons"]
        summary = {k: verdict[k] for k in ("point_count", "coverage", "density_per_cm2",
                                           "uncertainty_mm", "histogram_bin_mm")}
        result = QcResult.objects.create(
            run=run, decision=verdict["decision"], reasons=reasons, gates=verdict["gates"],
            regions=verdict["regions"], summary=summary, alignment=alignment,
            uncertainty_mm=u_mm, offset=offset, algorithm_version=ALGORITHM_VERSION,
            parameters=parameters, operator=scan.operator, **keys)
        from twins.selectors import cad_revision_get

        revision = cad_revision_get(revision_id=run.cad_revision_id)
        assert revision is not None
        receipt = receipt_create(data=RunReceiptData(
            subject_type="quality.QcResult", subject_id=str(result.id),
            scan_sha256=scan.sha256, cad_revision_sha256=revision.sha256,
            device=scan.device, firmware=scan.firmware, calibration=scan.calibration or {},
            edge_transform=alignment["edge_transform"] or IDENTITY,
            configuration={"contract": str(run.contract_id),
                           "contract_version": run.contract.version,
                           "cad_revision": str(revision.pk), "run": str(run.pk),
                           "alignment": {k: alignment[k] for k in (
                               "transform", "fitness", "inlier_rmse_mm", "iterations",
                               "initial")},
                           "artifacts": keys,
                           # The per-region table of the signed report (issue 6).
                           "regions": [{k: r[k] for k in REPORT_REGION_FIELDS}
                                       for r in verdict["regions"]]},
            algorithm_name=ALGORITHM_NAME, algorithm_version=ALGORITHM_VERSION,
            parameters=parameters,
            gate_scores={g["name"]: g["value"] for g in verdict["gates"]
                         if g["value"] is not None},
            outcome=verdict["decision"],
            reasons=[r["message"] for r in reasons if r["decisive"]],
            abstentions=[g["detail"] for g in verdict["gates"] if not g["passed"]],
            failures=[r["message"] for r in reasons if r["code"].startswith("fail:")],
            operator=scan.operator), actor="system:qc")
        QcResult.objects.filter(pk=result.pk).update(receipt_id=receipt.id)
        QcRun.objects.filter(pk=run.pk).update(
            status=QcRun.Status.DONE, stage="done", progress=100, lease_token=None,
            lease_until=None, finished_at=timezone.now())
        run.refresh_from_db()
        _run_event(run, decision=verdict["decision"])
    return QcRun.Status.DONE


# --- Reviews -------------------------------------------------------------------------


def qc_review_record(*, result_id: uuid.UUID | str, action: str, reason: str,
                     decision: str | None = None, user: Any = None) -> QcReview:
    """Accept or override a machine verdict, with a mandatory reason, and log it.

    Never changes the result: the review is a new row, and the audit entry (same
    transaction) records the machine's and the reviewer's decisions side by side.
    """
    reason = (reason or "").strip()
    if not reason:
        raise QcProblem("validation-error", "A review needs a reason.")
    if action not in QcReview.Action.values:
        raise QcProblem("validation-error", "action must be accept or override.")
    with transaction.atomic():
        result = QcResult.objects.select_for_update().filter(pk=result_id).first()
        if result is None:
            raise QcProblem("not-found", "No such QC result in this workspace.")
        if action == QcReview.Action.ACCEPT:
            decision = result.decision
        elif decision not in Decision.values:
            raise QcProblem("validation-error", "An override needs a decision: "
                            + ", ".join(Decision.values))
        review = QcReview.objects.create(
            result=result, action=action, decision=decision, machine_decision=result.decision,
            reason=reason, reviewer=user if getattr(user, "is_authenticated", False) else None)
        entry = audit_append(action=f"qc.review.{action}", actor=str(user or "system"),
                             object_type="quality.QcResult", object_id=str(result.pk),
                             payload={"review": str(review.pk), "machine_decision":
                                      result.decision, "decision": decision, "reason": reason})
        QcReview.objects.filter(pk=review.pk).update(audit_seq=entry.seq)
        review.audit_seq = entry.seq
        _event("qc.review", {"result_id": str(result.pk), "run_id": str(result.run_id),
                             "action": action, "decision": decision})
    return review


def qc_run_request_for_processed_scan(*, scan_id: uuid.UUID | str) -> QcRun | None:
    """Judge a newly processed scan by its asset's current default contract, if it has one.

    No contract or no CAD revision yet: nothing to judge, nothing queued (logged). A run
    already requested for this scan and contract is not requested again.
    """
    from inspections.selectors import scan_list

    scan = scan_list().filter(pk=scan_id).first()
    if scan is None:
        return None
    contract = (ToleranceContract.objects.filter(asset_id=scan.asset_id, name="default")
                .order_by("-version").first())
    if contract is None:
        return None
    if QcRun.objects.filter(scan_id=scan.pk, contract_id=contract.pk).exists():
        return None
    try:
        return qc_run_request(scan_id=scan.pk, contract_id=contract.pk)
    except QcProblem as exc:
        logger.info("processed scan not judged automatically",
                    extra={"scan": str(scan_id), "reason": str(exc)})
        return None
