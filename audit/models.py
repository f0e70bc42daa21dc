"""The tamper-evident audit log of a workspace (ADR 0004).

Entries, tree heads, receipts and log keys are append-only: the tenant role has no
UPDATE, DELETE or TRUNCATE on their tables (tenants.dbroles.APPEND_ONLY_TABLES) and a
trigger refuses those statements for everyone else (migration 0002). Rows are only
ever written by audit.services.
"""

from __future__ import annotations

import uuid

from django.db import models


class Entry(models.Model):
    """One log entry; its primary key is its sequence number and Merkle leaf index.

    Invariants (enforced by audit.services.audit_append under one lock per schema):
    sequence numbers are 0, 1, 2 … without gaps; ``prev_hash`` is the previous
    entry's ``entry_hash`` (``GENESIS_HASH`` for 0); ``payload`` is canonical JSON
    text whose SHA-256 is ``payload_sha256``; ``entry_hash``/``leaf_hash`` are
    derived from the fields (audit.ledger.entry), stored only to serve proofs fast.
    """

    seq = models.BigIntegerField(primary_key=True)
    time = models.DateTimeField()
    actor = models.CharField(max_length=200)
    action = models.CharField(max_length=100)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=200)
    payload = models.TextField()
    payload_sha256 = models.CharField(max_length=64)
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64, unique=True)
    leaf_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_entry_object"),
                   models.Index(fields=["time"], name="audit_entry_time")]
        constraints = [models.CheckConstraint(condition=models.Q(seq__gte=0),
                                              name="audit_entry_seq_non_negative")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"


class MerkleNode(models.Model):
    """A stored Merkle tree node: the root of a complete aligned subtree (a tile hash).

    Only the levels 8, 16, 24 … are kept (``audit.ledger.merkle.STRIDE``): node
    ``index`` of ``level`` is the RFC 6962 hash of entries ``index * 2**level`` to
    ``(index + 1) * 2**level - 1``. Written when a tree head is signed, from the
    entries' leaf hashes; derived, append-only, and read so that roots and proofs
    cost O(log n) rows instead of every leaf (ADR 0004).
    """

    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["level", "index"],
                                               name="audit_merklenode_level_index")]

    def __str__(self) -> str:
        return f"node {self.level}/{self.index}"


class LogKey(models.Model):
    """A public key this workspace's log has signed with (kept forever, for old heads).

    ``kind`` ``note``: an Ed25519 signed-note verifier key (``name+keyid+base64``), used
    for tree heads and evidence bundles. ``kind`` ``pdf``: the X.509 certificate (PEM)
    that signs PDF reports; ``pdf_ca``: the workspace's PDF CA certificate that issued it
    (what auditors pin to trust every report, whatever its certificate). Private keys are
    never stored here (ADR 0004).
    """

    class Kind(models.TextChoices):
        NOTE = "note"
        PDF = "pdf"
        PDF_CA = "pdf_ca"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    key_id = models.CharField(max_length=64)
    public = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "key_id"],
                                               name="audit_logkey_kind_key_id")]

    def __str__(self) -> str:
        return f"{self.kind} {self.key_id}"


class TreeHead(models.Model):
    """A signed tree head: a C2SP checkpoint (origin, size, root) in a signed note.

    Invariant: ``root_hash`` is the RFC 6962 root of entries ``0 .. size-1``, and each
    head is consistent with every earlier one (checked before signing).
    """

    size = models.BigIntegerField()
    root_hash = models.CharField(max_length=64)
    note = models.TextField()
    key_id = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-size", "-id"]
        indexes = [models.Index(fields=["size"], name="audit_treehead_size")]

    def __str__(self) -> str:
        return f"tree head {self.size} {self.root_hash[:12]}"


class Receipt(models.Model):
    """A run receipt: what a QC result was computed from, frozen and logged.

    ``document`` is the canonical JSON of the receipt (audit.services.RunReceiptData);
    it is also the payload of ``entry``, so the entry's inclusion proof proves it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    entry = models.OneToOneField(Entry, on_delete=models.PROTECT, related_name="receipt")
    subject_type = models.CharField(max_length=100)
    subject_id = models.CharField(max_length=200)
    scan_sha256 = models.CharField(max_length=64)
    cad_revision_sha256 = models.CharField(max_length=64)
    algorithm_version = models.CharField(max_length=100)
    outcome = models.CharField(max_length=20)
    document = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["subject_type", "subject_id"],
                                name="audit_receipt_subject")]

    def __str__(self) -> str:
        return f"receipt {self.id} ({self.outcome})"


class ExportJob(models.Model):
    """A JSON evidence bundle or signed PDF report being built (a long job is a row).

    Mutable on purpose (status, progress, and a PDF's file when its archival timestamps
    are renewed); the export itself and each renewal are logged as entries.
    """

    class Kind(models.TextChoices):
        JSON = "json"
        PDF = "pdf"

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    receipt = models.ForeignKey(Receipt, null=True, blank=True, on_delete=models.PROTECT)
    # The scope (audit.exports.bundle_build): a period [from_time, to_time) of the log, the
    # receipt's own entry when only a receipt is given, else the whole log.
    from_time = models.DateTimeField(null=True, blank=True)
    to_time = models.DateTimeField(null=True, blank=True)
    requested_by = models.CharField(max_length=200)
    file_name = models.CharField(max_length=300, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    # PDF reports: the PAdES level reached ("" until read, for reports made before it
    # was recorded) and, for B-LTA, when the TSA certificate of the latest document
    # timestamp expires; the archival timestamp chain is renewed before then
    # (audit.services.export_renew_archival), which changes file_name and sha256.
    pades_level = models.CharField(max_length=5, blank=True)
    archival_expires_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"export {self.pk} {self.kind} {self.status}"
