"""quality.evaluation alone: bands, one-sided tolerances, percentiles, gates, the rule."""

from __future__ import annotations

import numpy as np
import pytest

from quality.evaluation import (
    ContractError,
    ContractSpec,
    GateInputs,
    RegionAccumulator,
    evaluate,
    expanded_uncertainty_mm,
)

GOOD_GATES = GateInputs(alignment_rmse_mm=0.05, alignment_fitness=0.99, coverage=0.95,
                        density_per_cm2=50.0)


def judge(d_mm: np.ndarray, spec: ContractSpec, *, u: float = 0.0,
          gates: GateInputs = GOOD_GATES, regions: np.ndarray | None = None):
    n_tri = 2
    tri = np.zeros(d_mm.shape[0], dtype=np.int32) if regions is None else regions
    labels = np.arange(n_tri, dtype=np.int32)
    acc = RegionAccumulator(spec, n_regions=n_tri, n_triangles=n_tri, uncertainty_mm=u)
    half = d_mm.shape[0] // 2
    for part in (slice(0, half), slice(half, None)):  # streamed in two chunks
        acc.add(d_mm[part] / 1000.0, tri[part], labels)
    return evaluate(spec, acc, triangle_areas_m2=np.ones(n_tri) * 1e-3,
                    regions_of_triangles=labels, gate_inputs=gates)


def spec(**criteria: object) -> ContractSpec:
    base = {"tolerance_mm": 1.0, "fail_mm": 3.0, "max_fraction_out": 0.05,
            "max_fraction_fail": 0.0}
    return ContractSpec.from_dict({"criteria": {**base, **criteria}})


def test_inside_the_band_passes_and_the_statistics_are_exact() -> None:
    d = np.random.default_rng(0).normal(0.1, 0.2, 10_000)
    result = judge(d, spec(), u=0.1)
    assert result.decision == "pass"
    region = result.regions[0]
    assert region.count == 10_000
    assert region.mean_mm == pytest.approx(d.mean(), abs=1e-9)
    assert region.std_mm == pytest.approx(d.std(), abs=1e-9)
    assert region.max_abs_mm == pytest.approx(np.abs(d).max(), abs=1e-9)
    for q, value in ((5, region.p5_mm), (50, region.p50_mm), (95, region.p95_mm)):
        assert value == pytest.approx(np.percentile(d, q), abs=result.histogram_bin_mm)


def test_points_beyond_the_fail_limit_fail_and_the_warning_band_is_borderline() -> None:
    d = np.zeros(1000)
    d[:10] = 5.0  # 1 % beyond F with none allowed
    assert judge(d, spec(), u=0.1).decision == "fail"
    d = np.zeros(1000)
    d[:100] = 2.0  # 10 % in the warning band (T..F), 5 % allowed out of tolerance
    result = judge(d, spec(), u=0.1)
    assert result.decision == "borderline"
    assert result.reasons[0].code == "borderline:warning-band"


def test_the_uncertainty_makes_a_result_near_the_limit_undecidable() -> None:
    d = np.zeros(1000)
    d[:100] = 0.95  # 10 % at 0.95 mm: within T = 1, but not by U = 0.1
    assert judge(d, spec(), u=0.0).decision == "pass"
    result = judge(d, spec(), u=0.1)
    assert result.decision == "borderline"
    assert result.reasons[0].code == "borderline:uncertainty"
    d[:100] = 3.05  # beyond F but not by U: cannot prove a failure either
    assert judge(d, spec(), u=0.1).decision == "borderline"
    assert judge(d, spec(), u=0.01).decision == "fail"


def test_one_sided_tolerances_ignore_the_unconstrained_side() -> None:
    d = np.zeros(1000)
    d[:200] = -5.0  # material missing
    assert judge(d, spec(side="plus")).decision == "pass"
    assert judge(d, spec(side="minus")).decision == "fail"
    assert judge(d, spec(side="both")).decision == "fail"


def test_the_percentile_criterion() -> None:
    d = np.random.default_rng(1).uniform(-0.8, 0.8, 10_000)  # p95 |d| = 0.76
    assert judge(d, spec(percentile=95, percentile_limit_mm=0.9), u=0.05).decision == "pass"
    failing = judge(d, spec(percentile=95, percentile_limit_mm=0.6), u=0.05)
    assert failing.decision == "fail"
    assert failing.reasons[0].code == "fail:percentile"
    assert failing.reasons[0].value == pytest.approx(0.76, abs=0.01)


def test_a_failing_gate_abstains_even_with_a_clear_fail_and_names_the_gates() -> None:
    d = np.full(1000, 10.0)
    bad = GateInputs(alignment_rmse_mm=0.9, alignment_fitness=0.5, coverage=0.95,
                     density_per_cm2=50.0)
    result = judge(d, spec(), gates=bad)
    assert result.decision == "abstain"
    decisive = [r.code for r in result.reasons if r.decisive]
    assert decisive == ["gate:alignment_rmse", "gate:alignment_fitness"]
    assert any(r.code.startswith("fail:") and not r.decisive for r in result.reasons)


def test_unknown_calibration_and_device_health_fail_closed_when_required() -> None:
    strict = ContractSpec.from_dict({"gates": {"max_calibration_age_days": 30,
                                               "require_device_health": True}})
    result = judge(np.zeros(100), strict)
    assert result.decision == "abstain"
    assert {g.name for g in result.gates if not g.passed} == {"calibration_age", "device_health"}


def test_regions_are_judged_separately_and_the_worst_decides() -> None:
    d = np.zeros(2000)
    regions = np.repeat(np.array([0, 1], dtype=np.int32), 1000)
    d[1000:1100] = 5.0
    result = judge(d, ContractSpec.from_dict({"regions": [0, 1]}), regions=regions)
    assert result.decision == "fail"
    assert [r.decision for r in result.regions] == ["pass", "fail"]
    relaxed = ContractSpec.from_dict({"region_criteria": {"1": {"fail_mm": 6.0,
                                                                "max_fraction_out": 0.2}}})
    assert judge(d, relaxed, regions=regions).decision == "pass"


def test_the_expanded_uncertainty_and_the_simple_rule() -> None:
    iso = ContractSpec.from_dict({"device_accuracy_mm": 0.03})
    assert expanded_uncertainty_mm(iso, device_accuracy_mm=None, alignment_rmse_mm=0.04) == \
        pytest.approx(2 * 0.05)
    simple = ContractSpec.from_dict({"decision_rule": "simple"})
    assert expanded_uncertainty_mm(simple, device_accuracy_mm=0.1, alignment_rmse_mm=1) == 0


@pytest.mark.parametrize("bad", [
    {"criteria": {"tolerance_mm": -1}},
    {"criteria": {"tolerance_mm": 2, "fail_mm": 1}},
    {"criteria": {"side": "up"}},
    {"gates": {"min_fitness": 2}},
    {"gates": {"max_rmse": 1}},  # a typo must not switch a gate off
    {"coverage_factor": 10},
    {"tolerance": 1},
])
def test_inconsistent_contracts_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ContractError):
        ContractSpec.from_dict(bad)
