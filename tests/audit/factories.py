"""Test data for the audit app: run receipts as the processing pipeline will send them."""

from __future__ import annotations

import hashlib
from typing import Any

from audit.services import RunReceiptData


def receipt_data(**overrides: Any) -> RunReceiptData:
    values: dict[str, Any] = {
        "subject_type": "inspections.QcResult", "subject_id": "42",
        "scan_sha256": hashlib.sha256(b"scan").hexdigest(),
        "cad_revision_sha256": hashlib.sha256(b"cad rev 3").hexdigest(),
        "device": "EDGE-0007", "firmware": "2.4.1",
        "calibration": {"range_bias_mm": 0.4, "temperature_c": 21.5},
        "edge_transform": [[1.0, 0.0, 0.0, 0.1], [0.0, 1.0, 0.0, 0.0],
                           [0.0, 0.0, 1.0, -0.2], [0.0, 0.0, 0.0, 1.0]],
        "configuration": {"tolerance_spec": "TS-9", "bands_mm": [0.5, 1.0]},
        "algorithm_name": "icp-deviation", "algorithm_version": "1.3.0",
        "parameters": {"max_iterations": 50, "voxel_mm": 2.0},
        "gate_scores": {"overlap": 0.93, "fitness": 0.88, "rmse_mm": 0.31},
        "outcome": "borderline", "reasons": ["region R3 at 0.92 mm, band 1.0 mm"],
        "abstentions": [], "failures": [], "operator": "qc@alpha.test",
    }
    values.update(overrides)
    return RunReceiptData(**values)
