"""The offline verifier of D2R evidence bundles and signed PDF reports: ``d2r-verify``.

Needs no server and no database (and no Django): only :mod:`cryptography`, the
ledger core next to it and, for PDFs, pyHanko. Usage::

    d2r-verify BUNDLE_OR_PDF [--key VKEY ...] [--cert CERT.pem ...] [--tsa-cert ROOT.pem ...]
    python -m audit.verify BUNDLE_OR_PDF ...

Exit status 0 only if every check holds; otherwise 1 and the first broken thing
(an entry, a tree head, a receipt, the bundle, the PDF) and why, on one line;
2 for a usage error. ``--key`` pins the log's signed-note key (as published by the
workspace); without it the keys inside the bundle are trusted, which proves
internal consistency but not who signed — the output says so.

Checks, in order: the PDF signature (whole file covered — or followed only by PAdES
validation data and document timestamps —, digest intact, signer's certificate one of
the trusted ones or issued by one), its signature timestamp when present (imprint of
the signature, token intact, TSA chained to a ``--tsa-cert`` root when given), the
DSS and document timestamps (B-LT/B-LTA), the PAdES level reached, and its embedded
``evidence.jws``; the JWS
signature (EdDSA by a trusted key); every entry (dense sequence numbers, payload
hash, recomputed entry hash, chain to the previous one); every signed tree head
(note signature, origin, root recomputed from the entries) and the consistency
proofs between them; that the latest head covers every entry; every receipt (its
document is its entry's payload; its inclusion proof leads to the latest root).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import io
import itertools
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature

from audit.ledger.checkpoint import NoteError, VerifierKey, open_checkpoint
from audit.ledger.entry import GENESIS_HASH, EntryFields, sha256_hex
from audit.ledger.merkle import (
    MerkleTree,
    ProofError,
    RootMismatchError,
    leaf_hashes,
    verify_consistency,
    verify_inclusion,
    verify_range,
)

BUNDLE_FORMAT = "d2r-evidence-bundle/1"
ATTACHMENT_NAME = "evidence.jws"


class VerificationError(Exception):
    """One broken thing: ``where`` (e.g. ``entry 3``) and ``why``."""

    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"{where}: {why}")
        self.where = where
        self.why = why


@dataclass
class Report:
    """What was checked; ``notes`` are caveats that do not fail verification."""

    checks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bundle: dict[str, Any] | None = None


def _b64url(text: str, where: str) -> bytes:
    if not text or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                       "0123456789-_" for c in text):
        raise VerificationError(where, "not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise VerificationError(where, "not base64url") from exc
    if base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") != text:
        raise VerificationError(where, "non-canonical base64url")
    return raw


def _trusted_keys(pinned: Sequence[str], bundle_keys: Sequence[str],
                  report: Report) -> list[VerifierKey]:
    source = pinned or bundle_keys
    if not pinned:
        report.notes.append("log keys taken from the bundle itself; pin the workspace's "
                            "published key with --key for a definitive answer")
    keys = []
    for text in source:
        try:
            keys.append(VerifierKey.parse(text))
        except NoteError as exc:
            raise VerificationError("keys", f"invalid verifier key {text!r}: {exc}") from exc
    if not keys:
        raise VerificationError("keys", "no log key to verify with")
    return keys


def verify_token(token: str | bytes, *, pinned_keys: Sequence[str] = (),
                 report: Report | None = None) -> Report:
    """Verify a JWS evidence bundle; raise :class:`VerificationError` at the first break."""
    report = report or Report()
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError as exc:
            raise VerificationError("bundle", "not a JWS (non-ASCII bytes)") from exc
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise VerificationError("bundle", "not a compact JWS (three dot-separated parts)")
    try:
        header = json.loads(_b64url(parts[0], "bundle header"))
        payload_raw = _b64url(parts[1], "bundle payload")
        bundle = json.loads(payload_raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise VerificationError("bundle", f"unreadable JWS: {exc}") from exc
    signature = _b64url(parts[2], "bundle signature")
    if not isinstance(header, dict) or header.get("alg") != "EdDSA":
        raise VerificationError("bundle", "JWS algorithm must be EdDSA")
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise VerificationError("bundle", f"not a {BUNDLE_FORMAT} document")
    keys = _trusted_keys(pinned_keys, bundle.get("keys", {}).get("note", []), report)
    kid = header.get("kid")
    signer = next((k for k in keys if k.encode() == kid), None)
    if signer is None:
        raise VerificationError("bundle", f"signed by key {kid!r}, which is not trusted")
    try:
        signer.public_key.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"))
    except InvalidSignature as exc:
        raise VerificationError("bundle", "JWS signature does not verify (bundle altered)") from exc
    report.checks.append(f"bundle signature (EdDSA, key {signer.key_id:08x})")
    verify_bundle_dict(bundle, keys, report)
    report.bundle = bundle
    return report


def _verify_entries(entries: list[dict[str, Any]], start: int = 0) -> list[bytes]:
    """Check sequence, payload hashes and chain; return the Merkle leaf hashes.

    ``start`` is the sequence number of the first entry (a scoped bundle): its own
    ``prev_hash`` is then bound by its entry hash and the range proof, not by the chain.
    """
    encoded = []
    prev = GENESIS_HASH if start == 0 else None
    for index, e in enumerate(entries):
        position = start + index
        where = f"entry {position}"
        try:
            seq = e["seq"]
            if seq != position:
                why = "missing" if isinstance(seq, int) and seq > position else "out of order"
                raise VerificationError(where, f"{why}: found sequence number {seq} at position "
                                               f"{position}")
            if sha256_hex(e["payload"]) != e["payload_sha256"]:
                raise VerificationError(where, "payload does not match its payload_sha256")
            data = EntryFields(seq=seq, time=e["time"], actor=e["actor"], action=e["action"],
                               object_type=e["object_type"], object_id=e["object_id"],
                               payload_sha256=e["payload_sha256"],
                               prev_hash=e["prev_hash"]).to_bytes()
        except (KeyError, TypeError) as exc:
            raise VerificationError(where, f"malformed entry ({exc})") from exc
        if prev is not None and e["prev_hash"] != prev:
            raise VerificationError(where, f"does not chain to entry {position - 1} "
                                           "(prev_hash differs from its hash)"
                                    if position else "first entry does not start from genesis")
        if hashlib.sha256(data).hexdigest() != e["entry_hash"]:
            raise VerificationError(where, "fields do not match its entry_hash (entry altered)")
        prev = e["entry_hash"]
        encoded.append(data)
    hashes = leaf_hashes(encoded)
    return [hashes[i : i + 32] for i in range(0, len(hashes), 32)]


def _scope(bundle: dict[str, Any], count: int) -> tuple[int, int] | None:
    """The ``(from_seq, to_seq)`` of a scoped bundle, checked against its entries."""
    scope = bundle.get("scope")
    if scope is None:
        return None
    start, end = (scope.get("from_seq"), scope.get("to_seq")) if isinstance(scope, dict) else (
        None, None)
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end):
        raise VerificationError("bundle", "malformed scope")
    if end - start != count:
        raise VerificationError("bundle", f"scope {start}..{end - 1} but {count} entries "
                                          "(entries removed or added)")
    return start, end


def verify_bundle_dict(bundle: dict[str, Any], keys: list[VerifierKey], report: Report) -> None:
    """Check a decoded bundle against trusted ``keys`` (entries, heads, proofs, receipts).

    A whole-log bundle recomputes every head's root from its entries. A scoped bundle
    (``scope``: entries ``from_seq .. to_seq-1``) proves its entries by a range proof to
    the latest head, and the heads among themselves by their consistency proofs.
    """
    entries = bundle.get("entries")
    heads = bundle.get("tree_heads")
    if not isinstance(entries, list) or not isinstance(heads, list):
        raise VerificationError("bundle", "entries and tree_heads must be lists")
    scope = _scope(bundle, len(entries))
    start = scope[0] if scope else 0
    leaves = _verify_entries(entries, start)
    report.checks.append(
        f"{len(entries)} entries: sequence, payload hashes, hash chain" if scope is None else
        f"{len(entries)} entries ({start}..{start + len(entries) - 1} of the log): sequence, "
        "payload hashes, hash chain")
    tree = MerkleTree(leaves) if scope is None else None
    origin = bundle.get("origin")
    previous_size, previous_ok = 0, 0
    roots: dict[int, bytes] = {}
    for k, head in enumerate(heads):
        where = f"tree head {k} (size {head.get('size')})"
        try:
            checkpoint = open_checkpoint(head["note"], keys, origin=origin)
        except NoteError as exc:
            raise VerificationError(where, f"checkpoint rejected: {exc}") from exc
        except (KeyError, TypeError) as exc:
            raise VerificationError(where, "malformed tree head") from exc
        if checkpoint.size != head.get("size") or checkpoint.root_hash.hex() != head.get("root"):
            raise VerificationError(where, "size or root differ from its signed checkpoint")
        if checkpoint.size < previous_size:
            raise VerificationError(where, f"smaller than the previous head ({previous_size})")
        if roots.get(checkpoint.size, checkpoint.root_hash) != checkpoint.root_hash:
            raise VerificationError(where, "another signed head of the same size has another "
                                           "root (the log forked)")
        if tree is not None:
            if checkpoint.size > tree.size:
                raise VerificationError(where, f"signs {checkpoint.size} entries but the bundle "
                                               f"holds {tree.size} (entries removed)")
            if tree.root(checkpoint.size) != checkpoint.root_hash:
                raise VerificationError(
                    where, f"root does not match entries 0..{checkpoint.size - 1}: an entry "
                           f"between {previous_ok} and {checkpoint.size - 1} was changed, "
                           "removed or inserted")
        roots[checkpoint.size] = checkpoint.root_hash
        previous_size = previous_ok = checkpoint.size
    report.checks.append(f"{len(heads)} signed tree heads: signatures"
                         + (" and roots" if tree is not None else ""))
    proven = set()
    for proof in bundle.get("consistency", []):
        old, new = proof.get("old_size"), proof.get("new_size")
        where = f"consistency proof {old}->{new}"
        if old not in roots or new not in roots:
            raise VerificationError(where, "refers to a tree head not in the bundle")
        try:
            verify_consistency(old, new, roots[old], roots[new],
                               [bytes.fromhex(h) for h in proof.get("proof", [])])
        except (ProofError, ValueError) as exc:
            raise VerificationError(where, str(exc)) from exc
        proven.add((old, new))
    latest = heads[-1]["size"] if heads else 0
    if scope is None:
        if latest != len(entries):
            raise VerificationError(f"entry {latest}", f"entries {latest}..{len(entries) - 1} "
                                                       "are not covered by a signed tree head")
    else:
        sizes = sorted(roots)
        for old, new in itertools.pairwise(sizes):
            if old and (old, new) not in proven:
                raise VerificationError(f"tree head (size {new})", "no consistency proof from "
                                                                   f"the head of size {old}")
        report.checks.append(f"{len(proven)} consistency proofs between the signed heads")
        _verify_range(bundle, leaves, start, latest, roots)
        report.checks.append(f"range proof: entries {start}..{start + len(entries) - 1} are in "
                             f"the signed tree head of size {latest}" if entries else
                             "no entry in the scope")
    for receipt in bundle.get("receipts", []):
        _verify_receipt(receipt, entries, leaves, roots, start)
    report.checks.append(f"{len(bundle.get('receipts', []))} receipts: documents and "
                         "inclusion proofs")


def _verify_range(bundle: dict[str, Any], leaves: list[bytes], start: int, latest: int,
                  roots: dict[int, bytes]) -> None:
    """The scoped entries are leaves ``start ..`` of the latest signed head."""
    if not leaves:
        return
    where = f"entries {start}..{start + len(leaves) - 1}"
    proof = bundle.get("range_proof")
    if not isinstance(proof, dict) or proof.get("tree_size") != latest or latest not in roots:
        raise VerificationError(where, "no range proof to the latest signed tree head")
    try:
        verify_range(leaves, start, latest, [bytes.fromhex(h) for h in proof.get("proof", [])],
                     roots[latest])
    except RootMismatchError as exc:
        raise VerificationError(where, f"do not match the signed tree head of size {latest}: "
                                       "an entry was changed, removed or inserted") from exc
    except (ProofError, ValueError, TypeError) as exc:
        raise VerificationError(where, f"range proof fails: {exc}") from exc


def _verify_receipt(receipt: dict[str, Any], entries: list[dict[str, Any]], leaves: list[bytes],
                    roots: dict[int, bytes], start: int) -> None:
    where = f"receipt {receipt.get('id')}"
    seq = receipt.get("entry_seq")
    if not isinstance(seq, int) or not 0 <= seq - start < len(entries):
        raise VerificationError(where, "refers to no entry of the bundle")
    if receipt.get("document") != entries[seq - start]["payload"]:
        raise VerificationError(where, f"document differs from the payload of entry {seq}")
    document = json.loads(receipt["document"])
    if document.get("receipt_id") != receipt.get("id"):
        raise VerificationError(where, "document names another receipt")
    inclusion = receipt.get("inclusion")
    if inclusion is None:
        raise VerificationError(where, "has no inclusion proof")
    size = inclusion.get("tree_size")
    if size not in roots:
        raise VerificationError(where, f"inclusion proof for a tree of size {size} not signed")
    try:
        verify_inclusion(leaves[seq - start], seq, size,
                         [bytes.fromhex(h) for h in inclusion["proof"]], roots[size])
    except (ProofError, ValueError, KeyError) as exc:
        raise VerificationError(where, f"inclusion proof fails: {exc}") from exc


def _embedded_files(reader: Any) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    try:
        names = reader.root["/Names"]["/EmbeddedFiles"]["/Names"]
    except KeyError:
        return files
    for i in range(0, len(names), 2):
        spec = names[i + 1].get_object()
        files[str(names[i])] = spec["/EF"]["/F"].get_object().data
    return files


def _load_certs(blobs: Sequence[bytes | str], where: str) -> list[Any]:
    """asn1crypto certificates from PEM (one or several per blob) or DER."""
    from asn1crypto import pem, x509

    certs = []
    for blob in blobs:
        raw = blob if isinstance(blob, bytes) else blob.encode("ascii")
        try:
            ders = (
                [der for _, _, der in pem.unarmor(raw, multiple=True)] if pem.detect(raw) else [raw]
            )
            certs.extend(x509.Certificate.load(der) for der in ders)
        except ValueError as exc:
            raise VerificationError(where, f"unreadable certificate: {exc}") from exc
    return certs


def _context(roots: Sequence[Any]) -> Any:
    """An offline validation context: ``roots`` trusted, nothing fetched."""
    from pyhanko_certvalidator import ValidationContext

    return ValidationContext(trust_roots=list(roots), allow_fetching=False)


def _timestamp_token(sig: Any) -> Any | None:
    """The SignedData of the signature's RFC 3161 signature timestamp, if any."""
    attrs = sig.signer_info["unsigned_attrs"]
    if attrs.native is None:
        return None
    for attr in attrs:
        if attr["type"].native == "signature_time_stamp_token":
            return attr["values"][0]["content"]
    return None


def _check_coverage(status: Any, where: str) -> None:
    # After the signed revision only a DSS and document timestamps (PAdES B-LT/B-LTA
    # maintenance) may follow; anything else is content added after signing.
    coverage = getattr(status.coverage, "name", None)
    if coverage == "ENTIRE_FILE":
        return
    level = getattr(status.modification_level, "name", None)
    if coverage == "ENTIRE_REVISION" and level == "LTA_UPDATES":
        return
    raise VerificationError(
        where,
        f"does not cover the whole file (coverage {coverage}, "
        f"later changes {level}): content was added after signing",
    )


def _check_signature_timestamp(
    sig: Any, status: Any, where: str, *, pinned: bool, report: Report
) -> bool:
    """Check the signature timestamp (RFC 3161, PAdES B-T) when there is one."""
    token = _timestamp_token(sig)
    if token is None:
        return False
    where = f"{where} timestamp"
    tst_info = token["encap_content_info"]["content"].parsed
    imprint = tst_info["message_imprint"]
    algorithm = imprint["hash_algorithm"]["algorithm"].native
    try:
        expected = hashlib.new(algorithm, sig.signer_info["signature"].native).digest()
    except ValueError as exc:
        raise VerificationError(where, f"unsupported imprint algorithm {algorithm}") from exc
    if imprint["hashed_message"].native != expected:
        raise VerificationError(
            where, "imprint does not match the signature (timestamp taken over something else)"
        )
    ts = status.timestamp_validity
    if ts is None or not ts.intact or not ts.valid:
        raise VerificationError(where, "timestamp token signature does not verify")
    if pinned and not ts.trusted:
        raise VerificationError(
            where,
            "timestamp authority is not trusted (its certificate does not chain to a --tsa-cert)",
        )
    tsa = ts.signing_cert.subject.human_friendly if ts.signing_cert is not None else "?"
    report.checks.append(
        f"signature timestamp {ts.timestamp.isoformat()} by {tsa}: imprint "
        f"matches the signature, token intact" + (", TSA trusted" if pinned else "")
    )
    return True


def _dss_summary(reader: Any) -> tuple[int, int, int] | None:
    """Certificates, CRLs and OCSP responses in the document security store, if any."""
    try:
        dss = reader.root["/DSS"]
    except KeyError:
        return None
    certs, crls, ocsps = (len(dss.get(k, ())) for k in ("/Certs", "/CRLs", "/OCSPs"))
    return certs, crls, ocsps


def verify_pdf(
    data: bytes,
    *,
    pinned_keys: Sequence[str] = (),
    pinned_certs: Sequence[bytes] = (),
    pinned_tsa_certs: Sequence[bytes] = (),
) -> Report:
    """Verify a signed PDF report and the evidence bundle embedded in it.

    Also checks, when present, the signature timestamp (PAdES B-T), the validation data
    (DSS, B-LT) and document timestamps (B-LTA), and reports the PAdES level reached.
    ``pinned_tsa_certs`` are trusted timestamp-authority roots; without them
    timestamps are only checked for integrity, and the report says so.
    """
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
    from pyhanko.sign.validation.errors import SignatureValidationError

    report = Report()
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        embedded = reader.embedded_signatures
    except Exception as exc:  # any parser failure means a broken file
        raise VerificationError("pdf", f"unreadable PDF: {exc}") from exc
    signatures = [s for s in embedded if s.sig_object_type != "/DocTimeStamp"]
    doc_timestamps = [s for s in embedded if s.sig_object_type == "/DocTimeStamp"]
    if not signatures:
        raise VerificationError("pdf", "has no signature")
    tsa_roots = _load_certs(pinned_tsa_certs, "--tsa-cert")
    timestamped = []
    for sig in signatures:
        # Integrity first, with the signer's own certificate: trust is settled below.
        where = f"pdf signature {sig.field_name}"
        token = _timestamp_token(sig)
        own_tsa = list(token["certificates"]) if token is not None else []
        try:
            status = validate_pdf_signature(
                sig,
                _context([sig.signer_cert]),
                ts_validation_context=_context(tsa_roots or [c.chosen for c in own_tsa]),
            )
        except SignatureValidationError as exc:
            raise VerificationError(where, f"invalid: {exc}") from exc
        if not status.intact:
            raise VerificationError(
                where, "document digest does not match (PDF edited after signing)"
            )
        if not status.valid:
            raise VerificationError(where, "cryptographic signature does not verify")
        _check_coverage(status, where)
        if _check_signature_timestamp(sig, status, where, pinned=bool(tsa_roots), report=report):
            timestamped.append(sig)
    dss = _dss_summary(reader)
    if dss is not None:
        report.checks.append(
            f"validation data (DSS): {dss[0]} certificates, {dss[1]} CRLs, {dss[2]} OCSP responses"
        )
    for ts in doc_timestamps:
        where = f"pdf document timestamp {ts.field_name}"
        try:
            own = [ts.signer_cert, *ts.other_embedded_certs]
            ts_status = validate_pdf_timestamp(ts, _context(tsa_roots or own))
        except SignatureValidationError as exc:
            raise VerificationError(where, f"invalid: {exc}") from exc
        if not ts_status.intact or not ts_status.valid:
            raise VerificationError(
                where, "timestamp token does not verify (PDF edited after timestamping)"
            )
        if tsa_roots and not ts_status.trusted:
            raise VerificationError(
                where,
                "timestamp authority is not trusted (its certificate "
                "does not chain to a --tsa-cert)",
            )
        _check_coverage(ts_status, where)
        report.checks.append(
            f"document timestamp {ts_status.timestamp.isoformat()}: covers the "
            "signature and the validation data before it" + (", TSA trusted" if tsa_roots else "")
        )
    if (timestamped or doc_timestamps) and not tsa_roots:
        report.notes.append(
            "timestamps checked for integrity only; pin the timestamp "
            "authority's root with --tsa-cert to trust their time"
        )
    token = _embedded_files(reader).get(ATTACHMENT_NAME)
    if token is None:
        raise VerificationError("pdf", f"has no embedded {ATTACHMENT_NAME}")
    verify_token(token, pinned_keys=pinned_keys, report=report)
    assert report.bundle is not None
    trusted = _load_certs(
        list(pinned_certs) or report.bundle["keys"].get("pdf_certificates", []), "pdf certificates"
    )
    fingerprints = {hashlib.sha256(c.dump()).hexdigest() for c in trusted}
    for sig in signatures:
        if hashlib.sha256(sig.signer_cert.dump()).hexdigest() in fingerprints:
            continue
        # A pinned CA (the workspace's PDF CA) also vouches for the certificates it issued.
        chained = validate_pdf_signature(sig, _context(trusted), skip_diff=True)
        if not chained.trusted:
            raise VerificationError(
                f"pdf signature {sig.field_name}", "signed by a certificate that is not trusted"
            )
    report.checks.insert(
        0,
        f"{len(signatures)} PDF signature(s): intact, whole file (PAdES "
        "updates aside), trusted certificate",
    )
    level = "B-B"
    if signatures and len(timestamped) == len(signatures):
        level = "B-T"
        if dss is not None and (dss[1] or dss[2]):
            level = "B-LT"
            if doc_timestamps:
                level = "B-LTA"
    report.checks.insert(1, f"PAdES {level}")
    return report


def verify_path(
    path: Path,
    *,
    pinned_keys: Sequence[str] = (),
    pinned_certs: Sequence[bytes] = (),
    pinned_tsa_certs: Sequence[bytes] = (),
) -> Report:
    """Verify a bundle (``.jws``/``.json``) or a PDF, chosen by its first bytes."""
    data = path.read_bytes()
    if data.startswith(b"%PDF"):
        return verify_pdf(
            data,
            pinned_keys=pinned_keys,
            pinned_certs=pinned_certs,
            pinned_tsa_certs=pinned_tsa_certs,
        )
    return verify_token(data, pinned_keys=pinned_keys)


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: print the checks or the first failure; return the exit code."""
    parser = argparse.ArgumentParser(prog="d2r-verify", description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="evidence bundle (.jws) or signed PDF report")
    parser.add_argument(
        "--key",
        action="append",
        default=[],
        help="trusted log key (signed-note verifier key); repeatable",
    )
    parser.add_argument(
        "--cert",
        action="append",
        default=[],
        type=Path,
        help="trusted PDF signing certificate (PEM); repeatable",
    )
    parser.add_argument(
        "--tsa-cert",
        action="append",
        default=[],
        type=Path,
        help="trusted timestamp authority root (PEM); repeatable",
    )
    args = parser.parse_args(argv)
    try:
        report = verify_path(
            args.path,
            pinned_keys=args.key,
            pinned_certs=[p.read_bytes() for p in args.cert],
            pinned_tsa_certs=[p.read_bytes() for p in args.tsa_cert],
        )
    except VerificationError as exc:
        print(f"FAILED {exc.where}: {exc.why}")
        return 1
    except OSError as exc:
        print(f"FAILED {args.path}: {exc}")
        return 1
    for line in report.checks:
        print(f"ok   {line}")
    for line in report.notes:
        print(f"note {line}")
    print("VERIFIED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
