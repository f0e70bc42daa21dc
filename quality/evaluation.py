"""Tolerance contracts, validity gates and the conformance decision (Django-free).

Vocabulary (docs/adr/0005-tolerance-decisions.md):

- *excess* of a point: how far its signed deviation ``d`` goes in the direction the
  contract constrains — ``|d|`` (two-sided), ``max(d, 0)`` (``plus``: material may not
  stand proud), ``max(-d, 0)`` (``minus``: material may not be missing).
- *tolerance* ``T``: excess up to ``T`` conforms; *fail limit* ``F >= T``: excess between
  ``T`` and ``F`` is the warning band (a contract's own "borderline"), beyond ``F`` fails.
- *criteria* per region: the fraction of points with excess > ``T`` at most
  ``max_fraction_out``; the fraction with excess > ``F`` at most ``max_fraction_fail``;
  optionally the ``percentile``-th percentile of excess at most ``percentile_limit_mm``.
- *expanded uncertainty* ``U = k * sqrt(u_device^2 + u_alignment^2)`` (mm), ``k`` the
  coverage factor (2: ~95 %). Decision rule ``iso14253-1``: a criterion is proven met
  when it holds with every limit reduced by ``U``, proven violated when it fails with
  every limit widened by ``U``, otherwise the evidence cannot decide (borderline).
  ``simple`` (ILAC-G8 simple acceptance) uses the limits as they are.
- *gates*: alignment RMSE and fitness, coverage of the model surface in scope, point
  density, calibration age, device health. Any failing gate makes the outcome
  ``abstain`` — a verdict is never computed on untrustworthy data.

Per-point work is streaming: :class:`RegionAccumulator` takes deviations chunk by chunk
and keeps, per region, exact threshold counts and a fixed-bin histogram (percentiles are
read from it with a resolution stated in the result); memory is O(regions x bins).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

# numpy is imported where it is used: the web process imports this module (contracts are
# validated there) and must not pay ~9 MB of RSS for numpy (issue 4).
if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "ALGORITHM_NAME",
    "ALGORITHM_VERSION",
    "ContractError",
    "ContractSpec",
    "Criteria",
    "Evaluation",
    "GateInputs",
    "GateResult",
    "Gates",
    "Reason",
    "RegionAccumulator",
    "RegionSummary",
    "evaluate",
    "expanded_uncertainty_mm",
    "gates_check",
]

ALGORITHM_NAME = "d2r.qc"
ALGORITHM_VERSION = "1.0.0"

Side = Literal["both", "plus", "minus"]
Decision = Literal["pass", "borderline", "fail", "abstain"]
DecisionRule = Literal["iso14253-1", "simple"]
_RANK = {"pass": 0, "borderline": 1, "fail": 2}
#: regions with fewer points than this are reported but not judged (unless in scope).
MIN_POINTS_PER_REGION = 30
#: histogram: bins of at most 1/200 of the tolerance (and 10 um), over +-HIST_SPAN * F.
HIST_MAX_BIN_MM = 0.01
HIST_BINS_PER_TOLERANCE = 200
HIST_SPAN = 20.0
HIST_MAX_BINS = 20_001


class ContractError(ValueError):
    """A contract specification is inconsistent; ``field`` names the offending entry."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class Criteria:
    """Acceptance criteria of one region (or the default for every region), in mm."""

    tolerance_mm: float = 1.0
    fail_mm: float = 3.0
    side: Side = "both"
    max_fraction_out: float = 0.05
    max_fraction_fail: float = 0.0
    percentile: float | None = 95.0
    percentile_limit_mm: float | None = None

    def validate(self, where: str = "criteria") -> None:
        if not (math.isfinite(self.tolerance_mm) and self.tolerance_mm > 0):
            raise ContractError(f"{where}.tolerance_mm", "must be a positive number")
        if not (math.isfinite(self.fail_mm) and self.fail_mm >= self.tolerance_mm):
            raise ContractError(f"{where}.fail_mm", "must be at least tolerance_mm")
        if self.side not in ("both", "plus", "minus"):
            raise ContractError(f"{where}.side", "must be both, plus or minus")
        for name in ("max_fraction_out", "max_fraction_fail"):
            value = getattr(self, name)
            if not (0.0 <= value <= 1.0):
                raise ContractError(f"{where}.{name}", "must be within [0, 1]")
        if self.percentile is not None and not (0 < self.percentile < 100):
            raise ContractError(f"{where}.percentile", "must be within (0, 100)")
        if self.percentile_limit_mm is not None and not self.percentile_limit_mm > 0:
            raise ContractError(f"{where}.percentile_limit_mm", "must be positive")


@dataclass(frozen=True)
class Gates:
    """Validity gates; ``None`` switches a gate off. Lengths in mm."""

    max_alignment_rmse_mm: float | None = 0.5
    min_fitness: float | None = 0.9
    min_coverage: float | None = 0.7
    min_density_per_cm2: float | None = 1.0
    max_calibration_age_days: float | None = None
    require_device_health: bool = False

    def validate(self) -> None:
        for name in ("max_alignment_rmse_mm", "min_density_per_cm2", "max_calibration_age_days"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ContractError(f"gates.{name}", "must be positive (or null: off)")
        for name in ("min_fitness", "min_coverage"):
            value = getattr(self, name)
            if value is not None and not (0.0 <= value <= 1.0):
                raise ContractError(f"gates.{name}", "must be within [0, 1] (or null: off)")


@dataclass(frozen=True)
class ContractSpec:
    """The judged part of a tolerance contract (versioned by the caller)."""

    criteria: Criteria = field(default_factory=Criteria)
    gates: Gates = field(default_factory=Gates)
    decision_rule: DecisionRule = "iso14253-1"
    coverage_factor: float = 2.0
    #: standard uncertainty of one point, when the scan's calibration does not say.
    device_accuracy_mm: float = 0.05
    #: regions in scope (labels of the CAD revision); ``None``: every region with points.
    regions: tuple[int, ...] | None = None
    #: per-region overrides of ``criteria`` (partial), keyed by region label.
    region_criteria: Mapping[int, Criteria] = field(default_factory=dict)

    def validate(self) -> None:
        self.criteria.validate()
        self.gates.validate()
        if self.decision_rule not in ("iso14253-1", "simple"):
            raise ContractError("decision_rule", "must be iso14253-1 or simple")
        if not (math.isfinite(self.coverage_factor) and 1.0 <= self.coverage_factor <= 3.0):
            raise ContractError("coverage_factor", "must be within [1, 3]")
        if not (math.isfinite(self.device_accuracy_mm) and self.device_accuracy_mm >= 0):
            raise ContractError("device_accuracy_mm", "must be a non-negative number")
        if self.regions is not None and (not self.regions or min(self.regions) < 0):
            raise ContractError("regions", "must be a non-empty list of region labels")
        for label, criteria in self.region_criteria.items():
            criteria.validate(f"region_criteria.{label}")

    def criteria_for(self, region: int) -> Criteria:
        return self.region_criteria.get(region, self.criteria)

    @property
    def widest_fail_mm(self) -> float:
        return max([self.criteria.fail_mm, *(c.fail_mm for c in self.region_criteria.values())])

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["regions"] = list(self.regions) if self.regions is not None else None
        data["region_criteria"] = {str(k): asdict(v) for k, v in self.region_criteria.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContractSpec:
        """Parse and validate; unknown keys are refused (a typo must not switch a gate off)."""
        known = {"criteria", "gates", "decision_rule", "coverage_factor", "device_accuracy_mm",
                 "regions", "region_criteria"}
        unknown = set(data) - known
        if unknown:
            raise ContractError(sorted(unknown)[0], "unknown field")
        base = _build(Criteria, data.get("criteria") or {}, "criteria")
        overrides: dict[int, Criteria] = {}
        for key, partial in (data.get("region_criteria") or {}).items():
            try:
                label = int(key)
            except (TypeError, ValueError) as exc:
                raise ContractError("region_criteria", f"{key!r} is not a region label") from exc
            overrides[label] = _build(Criteria, {**asdict(base), **partial},
                                      f"region_criteria.{key}")
        regions = data.get("regions")
        spec = cls(
            criteria=base,
            gates=_build(Gates, data.get("gates") or {}, "gates"),
            decision_rule=data.get("decision_rule", "iso14253-1"),
            coverage_factor=float(data.get("coverage_factor", 2.0)),
            device_accuracy_mm=float(data.get("device_accuracy_mm", 0.05)),
            regions=tuple(int(r) for r in regions) if regions is not None else None,
            region_criteria=overrides,
        )
        spec.validate()
        return spec


def _build(kind: type[Any], data: Mapping[str, Any], where: str) -> Any:
    names = set(kind.__dataclass_fields__)
    unknown = set(data) - names
    if unknown:
        raise ContractError(f"{where}.{sorted(unknown)[0]}", "unknown field")
    try:
        return kind(**data)
    except TypeError as exc:  # pragma: no cover - guarded by the check above
        raise ContractError(where, str(exc)) from exc


# --------------------------------------------------------------------------- gates


@dataclass(frozen=True)
class GateInputs:
    """Measured quantities the gates judge (lengths in mm, areas in cm^2)."""

    alignment_rmse_mm: float
    alignment_fitness: float
    coverage: float
    density_per_cm2: float
    calibration_age_days: float | None = None
    device_healthy: bool | None = None
    #: scope regions with fewer than MIN_POINTS_PER_REGION points.
    uncovered_regions: tuple[int, ...] = ()


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    value: float | None
    limit: float | None
    detail: str


def gates_check(gates: Gates, inputs: GateInputs) -> list[GateResult]:
    """Every enabled gate with its value, limit and verdict (unknown inputs fail closed)."""
    out: list[GateResult] = []

    def upper(name: str, value: float, limit: float | None, unit: str) -> None:
        if limit is not None:
            ok = math.isfinite(value) and value <= limit
            out.append(GateResult(name, ok, _num(value), limit,
                                  f"{name} {value:.4g} {unit} {'<=' if ok else '>'} {limit:g}"))

    def lower(name: str, value: float, limit: float | None, unit: str) -> None:
        if limit is not None:
            ok = math.isfinite(value) and value >= limit
            out.append(GateResult(name, ok, _num(value), limit,
                                  f"{name} {value:.4g}{unit} {'>=' if ok else '<'} {limit:g}"))

    upper("alignment_rmse", inputs.alignment_rmse_mm, gates.max_alignment_rmse_mm, "mm")
    lower("alignment_fitness", inputs.alignment_fitness, gates.min_fitness, "")
    lower("coverage", inputs.coverage, gates.min_coverage, "")
    lower("point_density", inputs.density_per_cm2, gates.min_density_per_cm2, " pts/cm2")
    if inputs.uncovered_regions:
        out.append(GateResult("region_coverage", False, float(len(inputs.uncovered_regions)), 0,
                              "regions in scope without enough points: "
                              + ", ".join(map(str, inputs.uncovered_regions))))
    if gates.max_calibration_age_days is not None:
        age = inputs.calibration_age_days
        if age is None:
            out.append(GateResult("calibration_age", False, None, gates.max_calibration_age_days,
                                  "calibration date unknown"))
        else:
            upper("calibration_age", age, gates.max_calibration_age_days, "days")
    if inputs.device_healthy is not None or gates.require_device_health:
        healthy = inputs.device_healthy
        out.append(GateResult("device_health", bool(healthy), None, None,
                              "device health ok" if healthy else
                              "device health unknown" if healthy is None
                              else "device reported unhealthy"))
    return out


def expanded_uncertainty_mm(spec: ContractSpec, *, device_accuracy_mm: float | None,
                            alignment_rmse_mm: float) -> float:
    """``U = k * sqrt(u_device^2 + u_alignment^2)``; 0 under simple acceptance.

    The alignment's inlier RMSE stands for the registration's contribution. It also
    contains the device noise and genuine form deviation, so ``U`` is conservative: it
    widens the borderline zone rather than risk a false pass.
    """
    if spec.decision_rule == "simple":
        return 0.0
    u_dev = spec.device_accuracy_mm if device_accuracy_mm is None else device_accuracy_mm
    rmse = alignment_rmse_mm if math.isfinite(alignment_rmse_mm) else 0.0
    return float(spec.coverage_factor * math.hypot(u_dev, rmse))


# --------------------------------------------------------------------------- accumulation


class RegionAccumulator:
    """Streams per-point deviations (metres) into per-region counts and histograms.

    For each region: count, sum, sum of squares, min, max of ``d``; exact counts of
    points whose excess exceeds each threshold (``T - U``, ``T``, ``T + U``, and the
    same for ``F``; thresholds are fixed before the first chunk, since ``U`` is known
    once the scan is aligned); a histogram of signed ``d`` for percentiles; and the
    points per triangle (coverage).
    """

    def __init__(self, spec: ContractSpec, *, n_regions: int, n_triangles: int,
                 uncertainty_mm: float) -> None:
        import numpy as np

        self.spec = spec
        self.n_regions = int(n_regions)
        self.uncertainty_mm = float(uncertainty_mm)
        u = self.uncertainty_mm
        crit = [spec.criteria_for(r) for r in range(self.n_regions)]
        #: thresholds (mm) per region: T-U, T, T+U, F-U, F, F+U
        self.thresholds = np.array(
            [[c.tolerance_mm - u, c.tolerance_mm, c.tolerance_mm + u,
              c.fail_mm - u, c.fail_mm, c.fail_mm + u] for c in crit], dtype=np.float64,
        ).reshape(self.n_regions, 6)
        self.side = np.array([{"both": 0, "plus": 1, "minus": 2}[c.side] for c in crit],
                             dtype=np.int8)
        tol = min([spec.criteria.tolerance_mm,
                   *(c.tolerance_mm for c in spec.region_criteria.values())])
        span = HIST_SPAN * spec.widest_fail_mm
        width = min(HIST_MAX_BIN_MM, tol / HIST_BINS_PER_TOLERANCE)
        width = max(width, 2 * span / (HIST_MAX_BINS - 1))
        self.bin_mm = float(width)
        self.n_bins = math.ceil(2 * span / width) + 1
        self.hist_lo_mm = -width * (self.n_bins // 2) - width / 2
        self.hist = np.zeros((self.n_regions, self.n_bins), dtype=np.int64)
        self.count = np.zeros(self.n_regions, dtype=np.int64)
        self.total = np.zeros(self.n_regions)
        self.total_sq = np.zeros(self.n_regions)
        self.lo = np.full(self.n_regions, np.inf)
        self.hi = np.full(self.n_regions, -np.inf)
        self.max_abs = np.zeros(self.n_regions)
        self.beyond = np.zeros((self.n_regions, 6), dtype=np.int64)
        self.triangle_hits = np.zeros(int(n_triangles), dtype=np.int64)

    def add(self, distances_m: npt.ArrayLike, triangle_ids: npt.ArrayLike,
            regions_of_triangles: npt.NDArray[np.int32], *,
            inlier_distance_m: float | None = None) -> None:
        """Add one chunk: signed distances (metres) and nearest triangles."""
        import numpy as np

        d = np.asarray(distances_m, dtype=np.float64) * 1000.0
        tri = np.asarray(triangle_ids, dtype=np.int64)
        reg = regions_of_triangles[tri].astype(np.int64)
        n = self.n_regions
        self.count += np.bincount(reg, minlength=n)
        self.total += np.bincount(reg, weights=d, minlength=n)
        self.total_sq += np.bincount(reg, weights=d * d, minlength=n)
        np.minimum.at(self.lo, reg, d)
        np.maximum.at(self.hi, reg, d)
        np.maximum.at(self.max_abs, reg, np.abs(d))
        side = self.side[reg]
        excess = np.where(side == 0, np.abs(d), np.where(side == 1, d, -d))
        over = excess[:, None] > self.thresholds[reg]
        for j in range(6):
            self.beyond[:, j] += np.bincount(reg, weights=over[:, j], minlength=n).astype(np.int64)
        bins = np.clip(((d - self.hist_lo_mm) / self.bin_mm).astype(np.int64), 0, self.n_bins - 1)
        np.add.at(self.hist, (reg, bins), 1)
        hit = tri if inlier_distance_m is None else tri[np.abs(d) <= inlier_distance_m * 1000]
        self.triangle_hits += np.bincount(hit, minlength=self.triangle_hits.shape[0])

    def percentile_mm(self, region: int, q: float, *, of: Literal["signed", "excess"] = "signed",
                      side: Side = "both") -> float:
        """The q-th percentile of signed ``d`` or of the excess, from the histogram."""
        import numpy as np

        counts = self.hist[region]
        total = int(counts.sum())
        if total == 0:
            return float("nan")
        centres = self.hist_lo_mm + self.bin_mm * (np.arange(self.n_bins) + 0.5)
        if of == "excess":
            values = np.abs(centres) if side == "both" else np.maximum(
                centres if side == "plus" else -centres, 0.0)
            order = np.argsort(values, kind="stable")
            values, counts = values[order], counts[order]
        else:
            values = centres
        cum = np.cumsum(counts)
        k = int(np.searchsorted(cum, q / 100.0 * total, side="left"))
        return float(values[min(k, len(values) - 1)])


# --------------------------------------------------------------------------- decision


@dataclass(frozen=True)
class Reason:
    """One statement behind a decision: what, where, measured value and limit."""

    code: str
    message: str
    region: int | None = None
    value: float | None = None
    limit: float | None = None
    decisive: bool = True


@dataclass(frozen=True)
class RegionSummary:
    region: int
    count: int
    area_cm2: float
    covered_fraction: float
    mean_mm: float
    std_mm: float
    min_mm: float
    max_mm: float
    max_abs_mm: float
    p5_mm: float
    p50_mm: float
    p95_mm: float
    fraction_out: float  # excess > T
    fraction_fail: float  # excess > F
    decision: str  # pass | borderline | fail | not-judged
    criteria: dict[str, Any]


@dataclass(frozen=True)
class Evaluation:
    decision: Decision
    reasons: tuple[Reason, ...]
    gates: tuple[GateResult, ...]
    regions: tuple[RegionSummary, ...]
    uncertainty_mm: float
    histogram_bin_mm: float
    point_count: int
    coverage: float
    density_per_cm2: float

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))


def _num(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _state(proven_ok: bool, proven_bad: bool) -> Literal["ok", "bad", "undecided"]:
    """ISO 14253-1: conformance proven against the limits reduced by U, nonconformance
    proven against the limits widened by U; anything else is undecided."""
    if proven_bad:
        return "bad"
    if proven_ok:
        return "ok"
    return "undecided"


def evaluate(spec: ContractSpec, acc: RegionAccumulator, *, triangle_areas_m2: npt.ArrayLike,
             regions_of_triangles: npt.ArrayLike, gate_inputs: GateInputs) -> Evaluation:
    """Gates first, then each region's criteria under the contract's decision rule."""
    import numpy as np

    areas = np.asarray(triangle_areas_m2, dtype=np.float64) * 1e4  # cm^2
    labels = np.asarray(regions_of_triangles, dtype=np.int64)
    region_area = np.bincount(labels, weights=areas, minlength=acc.n_regions)
    covered_area = np.bincount(labels, weights=areas * (acc.triangle_hits > 0),
                               minlength=acc.n_regions)
    u = acc.uncertainty_mm
    gates = gates_check(spec.gates, gate_inputs)
    failed = [g for g in gates if not g.passed]

    scope = spec.regions if spec.regions is not None else tuple(range(acc.n_regions))
    summaries: list[RegionSummary] = []
    reasons: list[Reason] = []
    worst = "pass"
    judged = 0
    for r in range(acc.n_regions):
        n = int(acc.count[r])
        crit = spec.criteria_for(r)
        in_scope = r in scope
        if n == 0 and not in_scope:
            continue
        mean = acc.total[r] / n if n else float("nan")
        std = math.sqrt(max(acc.total_sq[r] / n - mean * mean, 0.0)) if n else float("nan")
        beyond = acc.beyond[r] / n if n else np.full(6, np.nan)
        decision = "not-judged"
        if in_scope and n >= MIN_POINTS_PER_REGION:
            judged += 1
            decision, region_reasons = _judge_region(r, crit, acc, beyond, u, spec)
            reasons.extend(region_reasons)
            if _RANK[decision] > _RANK[worst]:
                worst = decision
        summaries.append(RegionSummary(
            region=r, count=n, area_cm2=float(region_area[r]),
            covered_fraction=float(covered_area[r] / region_area[r]) if region_area[r] else 0.0,
            mean_mm=mean, std_mm=std, min_mm=float(acc.lo[r]) if n else float("nan"),
            max_mm=float(acc.hi[r]) if n else float("nan"),
            max_abs_mm=float(acc.max_abs[r]) if n else float("nan"),
            p5_mm=acc.percentile_mm(r, 5), p50_mm=acc.percentile_mm(r, 50),
            p95_mm=acc.percentile_mm(r, 95), fraction_out=float(beyond[1]),
            fraction_fail=float(beyond[4]), decision=decision, criteria=asdict(crit),
        ))

    if failed:
        outcome: Decision = "abstain"
        reasons = [Reason(f"gate:{g.name}", g.detail, value=g.value, limit=g.limit)
                   for g in failed] + [replace(x, decisive=False) for x in reasons]
    elif judged == 0:
        outcome = "abstain"
        reasons.insert(0, Reason("no-region-judged", "no region in scope has at least "
                                 f"{MIN_POINTS_PER_REGION} points"))
    else:
        outcome = worst  # type: ignore[assignment]
        if outcome == "pass":
            reasons.insert(0, Reason("all-regions-conform",
                                     f"{judged} regions conform with U = {u:.3f} mm"))
    order = {"gate": 0, "fail": 1, "borderline": 2}
    reasons.sort(key=lambda x: (not x.decisive, order.get(x.code.split(":")[0], 3)))
    total = int(acc.count.sum())
    return Evaluation(
        decision=outcome, reasons=tuple(reasons), gates=tuple(gates),
        regions=tuple(summaries), uncertainty_mm=u, histogram_bin_mm=acc.bin_mm,
        point_count=total, coverage=gate_inputs.coverage,
        density_per_cm2=gate_inputs.density_per_cm2,
    )


def _judge_region(r: int, crit: Criteria, acc: RegionAccumulator, beyond: npt.NDArray[Any],
                  u: float, spec: ContractSpec) -> tuple[str, list[Reason]]:
    """One region: fail > warning band / undecidable (borderline) > pass."""
    reasons: list[Reason] = []
    # beyond = fractions with excess > [T-U, T, T+U, F-U, F, F+U]
    fail_state = _state(bool(beyond[3] <= crit.max_fraction_fail),
                        bool(beyond[5] > crit.max_fraction_fail))
    out_state = _state(bool(beyond[0] <= crit.max_fraction_out),
                       bool(beyond[2] > crit.max_fraction_out))
    pct_state: str = "ok"
    pct_value = float("nan")
    if crit.percentile is not None and crit.percentile_limit_mm is not None:
        pct_value = acc.percentile_mm(r, crit.percentile, of="excess", side=crit.side)
        lim = crit.percentile_limit_mm
        pct_state = "bad" if pct_value > lim + u else "ok" if pct_value <= lim - u else "undecided"
    decision = "pass"
    if fail_state == "bad":
        decision = "fail"
        reasons.append(Reason(
            "fail:beyond-fail-limit",
            f"region {r}: {beyond[5]:.2%} of points exceed F + U = {crit.fail_mm + u:.3f} mm "
            f"(allowed {crit.max_fraction_fail:.2%})", r, float(beyond[4]),
            crit.max_fraction_fail))
    if pct_state == "bad":
        decision = "fail"
        reasons.append(Reason(
            "fail:percentile", f"region {r}: p{crit.percentile:g} excess {pct_value:.3f} mm > "
            f"limit + U = {crit.percentile_limit_mm + u:.3f} mm", r, pct_value,  # type: ignore[operator]
            crit.percentile_limit_mm))
    if decision != "fail":
        if out_state == "bad":
            decision = "borderline"
            reasons.append(Reason(
                "borderline:warning-band",
                f"region {r}: {beyond[2]:.2%} of points are beyond T + U = "
                f"{crit.tolerance_mm + u:.3f} mm but within the fail limit "
                f"(allowed out of tolerance {crit.max_fraction_out:.2%})", r,
                float(beyond[1]), crit.max_fraction_out))
        undecided = [name for name, state in (("fail limit", fail_state),
                                              ("tolerance", out_state),
                                              ("percentile", pct_state)) if state == "undecided"]
        if undecided:
            decision = "borderline"
            reasons.append(Reason(
                "borderline:uncertainty",
                f"region {r}: the measurement uncertainty U = {u:.3f} mm cannot decide the "
                f"{', '.join(undecided)} criteria ({spec.decision_rule})", r,
                float(beyond[1]), crit.max_fraction_out))
    return decision, reasons


def worst_decision(decisions: Sequence[str]) -> str:
    """Worst of pass / borderline / fail (for summaries of several results)."""
    return max(decisions, key=lambda d: _RANK.get(d, -1), default="pass")


def coverage_and_density(spec: ContractSpec, acc: RegionAccumulator, *,
                         triangle_areas_m2: npt.ArrayLike, regions_of_triangles: npt.ArrayLike
                         ) -> tuple[float, float, tuple[int, ...]]:
    """(coverage, density per cm^2, scope regions lacking points) over the contract's scope.

    Coverage is the area fraction of the scope's triangles that are the nearest triangle
    of at least one inlier point; density is inlier points per covered cm^2.
    """
    import numpy as np

    areas = np.asarray(triangle_areas_m2, dtype=np.float64) * 1e4
    labels = np.asarray(regions_of_triangles, dtype=np.int64)
    if spec.regions is None:
        in_scope = np.ones(labels.shape[0], dtype=bool)
        missing: tuple[int, ...] = ()
    else:
        wanted = np.array(spec.regions, dtype=np.int64)
        in_scope = np.isin(labels, wanted)
        missing = tuple(int(r) for r in wanted
                        if r >= acc.n_regions or acc.count[r] < MIN_POINTS_PER_REGION)
    hit = acc.triangle_hits > 0
    scope_area = float(areas[in_scope].sum())
    covered = float(areas[in_scope & hit].sum())
    inliers = float(acc.triangle_hits[in_scope].sum())
    coverage = covered / scope_area if scope_area > 0 else 0.0
    density = inliers / covered if covered > 0 else 0.0
    return coverage, density, missing
