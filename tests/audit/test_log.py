"""The audit log in the database: appends, tree heads, proofs, receipts, the API, roles."""

from __future__ import annotations

import itertools
import json

import pytest
from django.db import ProgrammingError, connection, transaction
from django_tenants.utils import schema_context

from audit import keys, selectors, services
from audit.ledger.checkpoint import VerifierKey, open_checkpoint
from audit.ledger.entry import GENESIS_HASH
from audit.ledger.merkle import verify_consistency, verify_inclusion
from audit.models import Entry, LogKey, TreeHead
from tests.audit.factories import receipt_data
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def _append(n: int) -> list[Entry]:
    return [services.audit_append(action="qc.decision", actor="user:qc@alpha.test",
                                  object_type="inspections.QcResult", object_id=i,
                                  payload={"decision": "accept", "n": i}) for i in range(n)]


def test_entries_are_dense_and_chained() -> None:
    with schema_context("alpha"):
        entries = _append(4)
    assert [e.seq for e in entries] == [0, 1, 2, 3]
    assert entries[0].prev_hash == GENESIS_HASH
    assert [e.prev_hash for e in entries[1:]] == [e.entry_hash for e in entries[:-1]]
    assert json.loads(entries[2].payload) == {"decision": "accept", "n": 2}
    assert all(e.time <= f.time for e, f in itertools.pairwise(entries))


def test_tree_head_is_a_signed_c2sp_checkpoint_and_proofs_verify() -> None:
    with schema_context("alpha"):
        _append(5)
        first = services.tree_head_issue()
        assert services.tree_head_issue().pk == first.pk  # unchanged log: same head
        _append(3)
        second = services.tree_head_issue()
        vkeys = [VerifierKey.parse(k.public) for k in LogKey.objects.filter(kind="note")]
        checkpoint = open_checkpoint(second.note, vkeys, origin=keys.log_origin("alpha"))
        assert (checkpoint.size, checkpoint.root_hash.hex()) == (8, second.root_hash)
        proof = selectors.inclusion_proof_get(seq=6)
        assert proof is not None and proof.tree_head.pk == second.pk
        verify_inclusion(bytes.fromhex(proof.leaf_hash), 6, 8,
                         [bytes.fromhex(h) for h in proof.proof], checkpoint.root_hash)
        consistency = selectors.consistency_proof_get(old_size=5, new_size=8)
        verify_consistency(5, 8, bytes.fromhex(first.root_hash), checkpoint.root_hash,
                           [bytes.fromhex(h) for h in consistency])
        assert selectors.log_verify().ok


@pytest.mark.parametrize("statement", [
    "UPDATE audit_entry SET actor = 'mallory'",
    "DELETE FROM audit_entry",
    "TRUNCATE audit_entry",
    "UPDATE audit_treehead SET root_hash = 'x'",
    "DELETE FROM audit_receipt",
    "DELETE FROM audit_logkey",
])
def test_tenant_role_cannot_alter_the_log(statement: str) -> None:
    with schema_context("alpha"):
        _append(1)
        services.tree_head_issue()
        with pytest.raises(ProgrammingError, match="permission denied"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(statement)
        assert Entry.objects.count() == 1


def test_receipt_is_logged_and_served_with_its_inclusion_proof() -> None:
    auditor = make_user("alpha", role="auditor", name="auditor")
    with schema_context("alpha"):
        _append(2)
        receipt = services.receipt_create(data=receipt_data(), actor="system:processing")
        services.tree_head_issue()
    assert receipt.entry.seq == 2
    assert json.loads(receipt.entry.payload)["receipt_id"] == str(receipt.id)
    body = auditor.client.get(f"/api/v1/audit/receipts/{receipt.id}").json()
    assert body["outcome"] == "borderline"
    assert body["document"]["gate_scores"] == {"overlap": 0.93, "fitness": 0.88, "rmse_mm": 0.31}
    inclusion = body["inclusion"]
    assert (inclusion["leaf_index"], inclusion["tree_size"]) == (2, 3)
    verify_inclusion(bytes.fromhex(inclusion["leaf_hash"]), 2, 3,
                     [bytes.fromhex(h) for h in inclusion["proof"]],
                     bytes.fromhex(inclusion["tree_head"]["root_hash"]))


def test_receipt_contract_is_validated() -> None:
    with pytest.raises(ValueError, match="scan_sha256"):
        receipt_data(scan_sha256="nothex").validate()
    with pytest.raises(ValueError, match="outcome"):
        receipt_data(outcome="maybe").validate()


def test_auditor_lists_proves_exports_and_verifies() -> None:
    auditor = make_user("alpha", role="auditor", name="auditor")
    with schema_context("alpha"):
        _append(3)
    client = auditor.client
    issued = client.post("/api/v1/audit/tree-heads")
    assert issued.status_code == 201 and issued.json()["size"] == 3
    listing = client.get("/api/v1/audit/entries").json()
    assert [e["seq"] for e in listing["results"]] == [0, 1, 2]
    proof = client.get("/api/v1/audit/entries/1/proof").json()
    assert proof["tree_size"] == 3 and len(proof["proof"]) == 2
    assert client.get("/api/v1/audit/tree-heads/latest").json()["size"] == 3
    assert client.get("/api/v1/audit/keys").json()[0]["kind"] == "note"
    verification = client.get("/api/v1/audit/verify").json()
    assert verification["ok"] is True and verification["failure"] is None
    consistency = client.get("/api/v1/audit/tree-heads/consistency?old_size=3&new_size=3")
    assert consistency.json()["proof"] == []
    export = client.post("/api/v1/audit/exports", {"kind": "json"},
                         content_type="application/json")
    assert export.status_code == 202 and export.json()["status"] == "pending"
    assert client.get(f"/api/v1/audit/exports/{export.json()['id']}").json()["kind"] == "json"
    # ... and nothing else: no writes outside the audit log.
    denied = client.post("/api/v1/sites", {"name": "x"}, content_type="application/json")
    assert denied.status_code == 403


@pytest.mark.parametrize("role", ["operator", "viewer", "finance"])
def test_roles_without_audit_capability_are_refused(role: str) -> None:
    user = make_user("alpha", role=role, name=role)
    for response in (user.client.get("/api/v1/audit/entries"),
                     user.client.get("/api/v1/audit/verify"),
                     user.client.post("/api/v1/audit/exports", {"kind": "json"},
                                      content_type="application/json")):
        assert response.status_code == 403
        assert response["Content-Type"] == "application/problem+json"


def test_qc_manager_reads_but_cannot_export() -> None:
    user = make_user("alpha", role="qc_manager", name="qc")
    assert user.client.get("/api/v1/audit/entries").status_code == 200
    assert user.client.post("/api/v1/audit/exports", {"kind": "pdf"},
                            content_type="application/json").status_code == 403


def test_tree_head_refuses_to_sign_a_log_that_does_not_extend_the_last_head() -> None:
    with schema_context("alpha"):
        _append(2)
        head = services.tree_head_issue()
        _append(1)
        forged = TreeHead(size=head.size, root_hash="00" * 32, note=head.note, key_id="x")
        forged.save()  # a later head with the same size but another root
        with pytest.raises(services.LogIntegrityError, match="no longer matches"):
            services.tree_head_issue()


def test_admin_shows_the_log_read_only_to_audit_roles() -> None:
    with schema_context("alpha"):
        _append(2)
    auditor = make_user("alpha", role="auditor", name="auditor")
    assert auditor.client.get("/admin/audit/entry/").status_code == 200
    assert auditor.client.get("/admin/audit/entry/add/").status_code == 403
    operator = make_user("alpha", role="operator", name="operator")
    assert operator.client.get("/admin/audit/entry/").status_code in (302, 403)


def test_tree_head_task_signs_the_current_workspace_log() -> None:
    from audit.tasks import tree_head_issue_task

    with schema_context("alpha"):
        _append(3)
        assert tree_head_issue_task.apply().get() == 3  # the task resets to public after
    with schema_context("alpha"):
        head = selectors.tree_head_latest()
        assert head is not None and head.size == 3


def test_export_run_is_idempotent() -> None:
    with schema_context("alpha"):
        _append(1)
        job = services.export_request(kind="json", requested_by="user:auditor@alpha.test")
        done = services.export_run(job_id=job.pk)
        again = services.export_run(job_id=job.pk)  # a redelivered task
        assert (again.status, again.sha256, again.finished_at) == (
            done.status, done.sha256, done.finished_at)
        assert Entry.objects.filter(action="audit.export.completed").count() == 1
