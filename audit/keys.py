"""Signing keys of a workspace's audit log, derived from one platform secret (ADR 0004).

No private key is stored in the database: each workspace's keys are derived with
HKDF-SHA256 from ``AUDIT_SIGNING_KEY`` and the schema name, so the tenant role (which
can read its whole schema) never sees key material, and a database dump is useless
for forging tree heads. Rotation: set a new ``AUDIT_SIGNING_KEY`` and move the old
one to ``AUDIT_SIGNING_KEYS_PREVIOUS``; checkpoints are then co-signed by both, and
every public key ever used stays in ``LogKey`` so old heads keep verifying.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.db import connection

from audit.ledger.checkpoint import SignerKey

_DEV_SECRET_FILE = Path(settings.BASE_DIR) / ".d2r" / "audit_signing_key"
_P256_ORDER = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)


def _root_secrets() -> list[str]:
    """The current root secret first, then former ones (rotation)."""
    current = settings.AUDIT_SIGNING_KEY
    if not current:
        # Development and tests only: production settings require the variable.
        if not _DEV_SECRET_FILE.exists():
            _DEV_SECRET_FILE.parent.mkdir(parents=True, exist_ok=True)
            _DEV_SECRET_FILE.write_text(secrets.token_urlsafe(32))
            _DEV_SECRET_FILE.chmod(0o600)
        current = _DEV_SECRET_FILE.read_text().strip()
    return [current, *settings.AUDIT_SIGNING_KEYS_PREVIOUS]


def _derive(secret: str, purpose: str, schema: str, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=b"d2r-audit-log/v1",
                info=f"{purpose}:{schema}".encode()).derive(secret.encode("utf-8"))


def log_origin(schema: str | None = None) -> str:
    """The checkpoint origin (and key name) of a workspace's log."""
    return f"{settings.AUDIT_ORIGIN_PREFIX}/{schema or connection.schema_name}"


def note_signers(schema: str | None = None) -> list[SignerKey]:
    """Ed25519 signers of the workspace's checkpoints: current key first."""
    schema = schema or connection.schema_name
    return [_note_signer(secret, schema, log_origin(schema)) for secret in _root_secrets()]


@lru_cache(maxsize=256)
def _note_signer(secret: str, schema: str, origin: str) -> SignerKey:
    seed = _derive(secret, "note", schema)
    return SignerKey(name=origin, private_key=Ed25519PrivateKey.from_private_bytes(seed))


@dataclass(frozen=True)
class PdfSigningIdentity:
    """The ECDSA P-256 key and self-signed certificate that sign a workspace's PDFs."""

    key_pem: bytes
    cert_pem: bytes
    fingerprint: str


def pdf_identity(schema: str | None = None) -> PdfSigningIdentity:
    """The workspace's PDF signing identity (deterministic key; certificate per key).

    P-256 rather than Ed25519 so that Adobe Reader and other PAdES validators accept it.
    """
    schema = schema or connection.schema_name
    return _pdf_identity(_root_secrets()[0], schema)


@lru_cache(maxsize=64)
def _pdf_identity(secret: str, schema: str) -> PdfSigningIdentity:
    scalar = int.from_bytes(_derive(secret, "pdf", schema, 48), "big") % (_P256_ORDER - 1) + 1
    key = ec.derive_private_key(scalar, ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, f"D2R Cloud audit reports ({schema})"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "D2R Cloud"),
    ])
    public_der = key.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    # A deterministic certificate: same key, same serial and validity, same bytes.
    not_before = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(int.from_bytes(hashlib.sha256(public_der).digest()[:16], "big") >> 1)
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(days=365 * 30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    return PdfSigningIdentity(key_pem=key_pem, cert_pem=cert_pem, fingerprint=fingerprint)
