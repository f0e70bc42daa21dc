"""Evidence bundles (JSON, signed as a JWS) and signed PDF reports (PAdES with pyHanko).

Called by audit.services.export_run only. The bundle format is what audit.verify
checks offline; see docs/adr/0004-audit-log.md.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
import itertools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from django.conf import settings
from django.db import connection
from django.template.loader import render_to_string
from django.utils import timezone

from audit import keys, selectors
from audit.ledger.entry import canonical_json
from audit.models import Receipt
from audit.services import entry_time_text

BUNDLE_FORMAT = "d2r-evidence-bundle/1"
JWS_TYPE = "d2r-evidence+jws"
SIGNATURE_FIELD = "D2RAuditSignature"
DOCUMENT_TIMESTAMP_FIELD = "D2RAuditDocumentTimestamp"


def bundle_build(
    *,
    receipt: Receipt | None = None,
    seq_range: tuple[int, int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """The evidence bundle of the log up to its latest signed tree head.

    Holds the entries (with their payloads), every signed tree head and the consistency
    proofs between consecutive heads, the receipts of those entries with their inclusion
    proofs in the latest head, and every public key the log has used. ``receipt`` marks
    the subject.

    ``seq_range`` ``(start, end)`` scopes it to entries ``start .. end-1`` (clipped to
    the latest head), proven by a compact range proof to the latest head instead of by
    the whole log: a period's or one inspection's evidence stays small however long the
    log grows. Without it the bundle holds every entry.
    """
    heads = list(selectors.tree_head_list())
    latest = heads[-1] if heads else None
    entries_query = selectors.entry_list()
    scope = None
    if seq_range is not None:
        start, end = seq_range[0], min(seq_range[1], latest.size if latest else 0)
        end = max(start, end)
        entries_query = entries_query.filter(seq__gte=start, seq__lt=end)
        scope = {"from_seq": start, "to_seq": end}
    entries = []
    total = max(1, entries_query.count())
    for i, entry in enumerate(entries_query.iterator(chunk_size=5000)):
        entries.append(
            {
                "seq": entry.seq,
                "time": entry_time_text(entry.time),
                "actor": entry.actor,
                "action": entry.action,
                "object_type": entry.object_type,
                "object_id": entry.object_id,
                "payload": entry.payload,
                "payload_sha256": entry.payload_sha256,
                "prev_hash": entry.prev_hash,
                "entry_hash": entry.entry_hash,
            }
        )
        if progress and i % 5000 == 4999:
            progress(i * 80 // total)
    if latest is None:
        tree = None
    elif scope is None:
        # Not strict: an export of a damaged log still carries what is there, as evidence.
        tree = selectors.log_tree(latest.size, strict=False)
    else:
        tree = selectors.stored_tree(latest.size)  # O(log n) rows per proof
    consistency = []
    for old, new in itertools.pairwise(heads):
        if tree is not None and old.size <= new.size <= tree.size:
            try:
                proof = [h.hex() for h in tree.consistency_proof(old.size, new.size)]
            except (ValueError, LookupError):
                proof = []
            consistency.append({"old_size": old.size, "new_size": new.size, "proof": proof})
    range_proof = None
    if scope is not None and tree is not None and scope["from_seq"] < scope["to_seq"]:
        range_proof = {
            "tree_size": tree.size,
            "proof": [h.hex() for h in tree.range_proof(scope["from_seq"], scope["to_seq"])],
        }
    receipts = []
    in_scope = selectors.receipt_list().order_by("entry__seq")
    if scope is not None:
        in_scope = in_scope.filter(entry__seq__gte=scope["from_seq"],
                                   entry__seq__lt=scope["to_seq"])
    for item in in_scope:
        inclusion = None
        if tree is not None and latest is not None and item.entry.seq < tree.size == latest.size:
            inclusion = {
                "tree_size": tree.size,
                "leaf_index": item.entry.seq,
                "proof": [h.hex() for h in tree.inclusion_proof(item.entry.seq)],
            }
        receipts.append(
            {
                "id": str(item.id),
                "entry_seq": item.entry.seq,
                "document": item.document,
                "inclusion": inclusion,
            }
        )
    public_keys = list(selectors.log_key_list())
    if progress:
        progress(100)
    bundle = {
        "format": BUNDLE_FORMAT,
        "workspace": connection.schema_name,
        "origin": keys.log_origin(),
        "generated_at": timezone.now().isoformat(),
        "subject_receipt": str(receipt.id) if receipt else None,
        "keys": {
            "note": [k.public for k in public_keys if k.kind == "note"],
            "pdf_certificates": [k.public for k in public_keys if k.kind == "pdf"],
        },
        "tree_heads": [{"size": h.size, "root": h.root_hash, "note": h.note} for h in heads],
        "consistency": consistency,
        "entries": entries,
        "receipts": receipts,
    }
    if scope is not None:
        bundle["scope"] = scope
        bundle["range_proof"] = range_proof
    return bundle


def bundle_sign(bundle: dict[str, Any]) -> str:
    """The bundle as a compact JWS (EdDSA), signed by the log's current note key.

    The payload is the bundle's canonical JSON; ``kid`` is the signed-note verifier
    key, so the same pinned key checks tree heads and bundles.
    """
    signer = keys.note_signers()[0]
    return jwt.PyJWS().encode(
        canonical_json(bundle).encode("utf-8"),
        signer.private_key,
        algorithm="EdDSA",
        headers={"typ": JWS_TYPE, "kid": signer.verifier().encode()},
    )


def report_pdf(
    *,
    bundle: dict[str, Any],
    token: str,
    receipt: Receipt | None,
    identity: keys.PdfSigningIdentity,
) -> bytes:
    """Render the report with WeasyPrint, embed the signed bundle, sign with PAdES.

    The level is ``AUDIT_PDF_PADES_LEVEL`` (see :func:`_sign_pdf`): B-B without a
    timestamp authority, B-LTA by default with one.
    """
    from weasyprint import HTML, Attachment

    document = json.loads(receipt.document) if receipt else None
    head = bundle["tree_heads"][-1] if bundle["tree_heads"] else None
    configuration = (document or {}).get("configuration") or {}
    artifacts = configuration.get("artifacts") or {}
    html = render_to_string(
        "audit/report.html",
        {
            "bundle": bundle,
            "receipt": receipt,
            "document": document,
            "head": head,
            "heatmap": _png_data_uri(artifacts.get("heatmap_key")),
            "histogram": _png_data_uri(artifacts.get("histogram_key")),
            "regions": configuration.get("regions") or [],
            # The regions have their own table; printed once, not again as raw JSON.
            "configuration_text": json.dumps(
                {k: v for k, v in configuration.items() if k != "regions"}, sort_keys=True
            ),
            "entries": bundle["entries"][-50:],
            "entry_count": len(bundle["entries"]),
            "inclusion": next(
                (
                    r["inclusion"]
                    for r in bundle["receipts"]
                    if receipt and r["id"] == str(receipt.id)
                ),
                None,
            ),
            "pdf_fingerprint": identity.fingerprint,
        },
    )
    attachment = Attachment(
        string=token,
        name="evidence.jws",
        description="D2R evidence bundle (JWS, verify with d2r-verify)",
    )
    pdf = HTML(string=html).write_pdf(attachments=[attachment])
    return _sign_pdf(pdf, identity)


def _png_data_uri(key: str | None) -> str | None:
    """A stored picture of the run (heatmap, histogram) for the report, or None.

    Only keys under the current workspace's storage prefix are read.
    """
    from d2r.storage import tenant_prefix
    from inspections import objectstore

    if not key or not key.startswith(tenant_prefix() + "/"):
        return None
    try:
        data = objectstore.get(key)
    except Exception:  # noqa: BLE001 - a missing picture must not stop the report
        logging.getLogger(__name__).warning("report picture missing", extra={"key": key})
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode()


def _sign_pdf(pdf: bytes, identity: keys.PdfSigningIdentity) -> bytes:
    """Sign ``pdf`` with PAdES at ``AUDIT_PDF_PADES_LEVEL`` (B-B, B-T, B-LT or B-LTA).

    B-T and above ask ``AUDIT_TSA_URL`` (RFC 3161 over HTTP) for a signature timestamp.
    B-LT and B-LTA validate the signer's and the TSA's chains at signing time and embed
    what that took in the DSS: the certificates, the workspace CA's CRL (made here,
    offline) and the TSA chain's CRLs or OCSP responses (fetched from the URLs in the
    TSA's certificates; ours carry none). B-LTA then adds a document timestamp over it
    all. Revocation data is required for every certificate: a TSA whose status cannot
    be established fails the export instead of yielding a weaker report.
    """
    from pyhanko.keys import load_certs_from_pemder_data, load_private_key_from_pemder_data
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.sign.timestamps import HTTPTimeStamper
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    level = settings.AUDIT_PDF_PADES_LEVEL
    cert = next(iter(load_certs_from_pemder_data(identity.cert_pem)))
    ca_cert = next(iter(load_certs_from_pemder_data(identity.ca_cert_pem)))
    signer = signers.SimpleSigner(
        signing_cert=cert,
        signing_key=load_private_key_from_pemder_data(identity.key_pem, None),
        cert_registry=SimpleCertificateStore.from_certs([cert, ca_cert]),
    )
    timestamper = None
    if level != "B-B":
        timestamper = HTTPTimeStamper(
            settings.AUDIT_TSA_URL, timeout=settings.AUDIT_TSA_TIMEOUT_SECONDS
        )
    long_term = level in {"B-LT", "B-LTA"}
    validation_context = _validation_context(ca_cert) if long_term else None
    meta = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason="D2R Cloud audit report",
        embed_validation_info=long_term,
        use_pades_lta=level == "B-LTA",
        timestamp_field_name=DOCUMENT_TIMESTAMP_FIELD,
        validation_context=validation_context,
    )
    out = signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(pdf)), meta, signer=signer, timestamper=timestamper
    )
    return out.getvalue()



def _validation_context(ca_cert: Any) -> Any:
    """What B-LT/B-LTA signing and archival renewal validate against.

    Trusted: the workspace's PDF CA (its CRL made here, offline: nothing of ours is
    fetched) and the TSA roots of ``AUDIT_TSA_ROOTS_FILE``; the TSA chain's revocation
    data is fetched from the URLs in its certificates and required for every one.
    """
    from pyhanko.keys import load_certs_from_pemder
    from pyhanko_certvalidator import ValidationContext

    return ValidationContext(
        trust_roots=[ca_cert, *load_certs_from_pemder([settings.AUDIT_TSA_ROOTS_FILE])],
        crls=[keys.pdf_crl()],
        allow_fetching=True,
        revocation_mode="require",
    )


@dataclass(frozen=True)
class ArchivalState:
    """The PAdES level of a signed report and, for B-LTA, its latest document timestamp.

    ``level`` is read from the structure (signature timestamps, DSS revocation data,
    document timestamps), not validated: ``d2r-verify`` does that. ``expires_at`` is
    when the TSA certificate of the latest document timestamp expires: the report
    needs a new document timestamp before then (:func:`renew_archival`).
    """

    level: str
    document_timestamps: int = 0
    timestamp_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None


def archival_state(pdf: bytes) -> ArchivalState:
    """The :class:`ArchivalState` of a signed PDF report (structure only, no network)."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    embedded = reader.embedded_signatures
    signatures = [s for s in embedded if s.sig_object_type != "/DocTimeStamp"]
    stamps = [s for s in embedded if s.sig_object_type == "/DocTimeStamp"]
    if not signatures or not all(_has_signature_timestamp(s) for s in signatures):
        return ArchivalState(level="B-B")
    try:
        dss = reader.root["/DSS"]
    except KeyError:
        return ArchivalState(level="B-T")
    if not (len(dss.get("/CRLs", ())) or len(dss.get("/OCSPs", ()))):
        return ArchivalState(level="B-T")
    if not stamps:
        return ArchivalState(level="B-LT")
    last = stamps[-1]
    return ArchivalState(
        level="B-LTA",
        document_timestamps=len(stamps),
        timestamp_at=last.signed_data["encap_content_info"]["content"].parsed["gen_time"].native,
        expires_at=_not_after(last.signer_cert),
    )


def _has_signature_timestamp(signature: Any) -> bool:
    attrs = signature.signer_info["unsigned_attrs"]
    return attrs.native is not None and any(
        a["type"].native == "signature_time_stamp_token" for a in attrs
    )


def _not_after(cert: Any) -> dt.datetime:
    return cert["tbs_certificate"]["validity"]["not_after"].native  # type: ignore[no-any-return]


def renew_archival(pdf: bytes, *, identity: keys.PdfSigningIdentity) -> bytes | None:
    """``pdf`` (B-LTA) with a new archival timestamp appended, or None if it cannot help.

    pyHanko's ``update_archival_timestamp_chain``: validates the latest document
    timestamp now (its TSA chain against ``AUDIT_TSA_ROOTS_FILE``, revocation data
    fetched and required), adds what that took to the DSS, then a new document
    timestamp from ``AUDIT_TSA_URL`` over the whole file, all as incremental updates:
    the bytes before are never rewritten. None when the TSA's current certificate
    expires no later than the latest timestamp's (the TSA has not rotated its
    certificate yet): another timestamp would not extend anything.
    """
    from pyhanko.keys import load_certs_from_pemder_data
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.general import extract_certificate_info
    from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
    from pyhanko.sign.timestamps import HTTPTimeStamper

    state = archival_state(pdf)
    if state.level != "B-LTA" or state.expires_at is None:
        raise ValueError(f"not a PAdES B-LTA report ({state.level})")
    timestamper = HTTPTimeStamper(
        settings.AUDIT_TSA_URL, timeout=settings.AUDIT_TSA_TIMEOUT_SECONDS
    )
    # pyHanko sizes the timestamp container with this token; it is cached, not re-asked.
    probe = asyncio.run(timestamper.async_dummy_response("sha256"))
    if _not_after(extract_certificate_info(probe["content"]).signer_cert) <= state.expires_at:
        return None
    ca_cert = next(iter(load_certs_from_pemder_data(identity.ca_cert_pem)))
    stamper = PdfTimeStamper(
        timestamper, field_name=f"{DOCUMENT_TIMESTAMP_FIELD}{state.document_timestamps + 1}"
    )
    out = stamper.update_archival_timestamp_chain(
        PdfFileReader(io.BytesIO(pdf)),
        _validation_context(ca_cert),
        in_place=False,
        output=io.BytesIO(),
    )
    renewed: bytes = out.getvalue()
    if not renewed.startswith(pdf):  # incremental updates only, whatever the library does
        raise RuntimeError("archival renewal rewrote the signed bytes")
    return renewed
