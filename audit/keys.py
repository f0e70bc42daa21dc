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
    return HKDF(
        algorithm=hashes.SHA256(),
        length=length,
        salt=b"d2r-audit-log/v1",
        info=f"{purpose}:{schema}".encode(),
    ).derive(secret.encode("utf-8"))


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
    """The ECDSA P-256 key that signs a workspace's PDFs, its certificate and issuing CA.

    ``cert_pem`` is the end-entity certificate (what ``LogKey`` records and auditors
    pin); ``ca_cert_pem`` is the workspace's PDF CA that issued it, which also signs
    the CRL embedded in PAdES B-LT/B-LTA reports (:func:`pdf_crl`).
    """

    key_pem: bytes
    cert_pem: bytes
    ca_cert_pem: bytes
    fingerprint: str  # SHA-256 of the end-entity certificate (DER), hex
    ca_fingerprint: str  # SHA-256 of the CA certificate (DER), hex


# Fixed validity and issue date: the same secret always yields byte-identical certificates.
_PDF_NOT_BEFORE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
_PDF_VALIDITY = dt.timedelta(days=365 * 30)
# A CRL is issued fresh for every B-LT/B-LTA report; a week covers validation right after.
_PDF_CRL_VALIDITY = dt.timedelta(days=7)


def pdf_identity(schema: str | None = None) -> PdfSigningIdentity:
    """The workspace's PDF signing identity (deterministic keys and certificates).

    P-256 rather than Ed25519 so that Adobe Reader and other PAdES validators accept it.
    The end-entity certificate is issued by a per-workspace CA (derived the same way)
    so that its revocation status can be stated in a CRL, which PAdES B-LT needs.
    """
    schema = schema or connection.schema_name
    return _pdf_identity(_root_secrets()[0], schema)


def pdf_crl(schema: str | None = None, *, now: dt.datetime | None = None) -> bytes:
    """A CRL (DER) of the workspace's PDF CA, issued now, listing no revoked certificate.

    Made offline, with no distribution point to fetch from: it is given to pyHanko's
    validation context and embedded in the report's DSS. No PDF certificate is ever
    revoked — a compromised root secret is replaced (rotation), which changes the CA.
    """
    schema = schema or connection.schema_name
    ca_key, ca_cert = _pdf_ca(_root_secrets()[0], schema)
    now = now or dt.datetime.now(dt.UTC)
    this_update = now.replace(microsecond=0) - dt.timedelta(minutes=1)  # clock skew
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(this_update)
        .next_update(this_update + _PDF_CRL_VALIDITY)
        .add_extension(x509.CRLNumber(int(this_update.timestamp())), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return crl.public_bytes(serialization.Encoding.DER)


def _p256_key(secret: str, purpose: str, schema: str) -> ec.EllipticCurvePrivateKey:
    scalar = int.from_bytes(_derive(secret, purpose, schema, 48), "big") % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def _serial(public_key: ec.EllipticCurvePublicKey) -> int:
    public_der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return int.from_bytes(hashlib.sha256(public_der).digest()[:16], "big") >> 1


def _key_usage(*, sign: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=sign,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@lru_cache(maxsize=64)
def _pdf_ca(secret: str, schema: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _p256_key(secret, "pdf-ca", schema)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"D2R Cloud audit report CA ({schema})"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "D2R Cloud"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_serial(key.public_key()))
        .not_valid_before(_PDF_NOT_BEFORE)
        .not_valid_after(_PDF_NOT_BEFORE + _PDF_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(sign=False, ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


@lru_cache(maxsize=64)
def _pdf_identity(secret: str, schema: str) -> PdfSigningIdentity:
    ca_key, ca_cert = _pdf_ca(secret, schema)
    key = _p256_key(secret, "pdf", schema)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"D2R Cloud audit reports ({schema})"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "D2R Cloud"),
        ]
    )
    # A deterministic certificate: same key, same serial and validity, same bytes.
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(_serial(key.public_key()))
        .not_valid_before(_PDF_NOT_BEFORE)
        .not_valid_after(_PDF_NOT_BEFORE + _PDF_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(sign=True, ca=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return PdfSigningIdentity(
        key_pem=key_pem,
        cert_pem=cert_pem,
        ca_cert_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
        ca_fingerprint=ca_cert.fingerprint(hashes.SHA256()).hex(),
    )
