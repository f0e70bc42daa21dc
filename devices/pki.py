"""Per-workspace device CA: issue client certificates from CSRs, revoke, publish a CRL.

Devices generate their key pair and send a CSR; the private key never leaves them.
Certificates are P-256/ECDSA (what mTLS terminators accept everywhere), valid for a
year, with the device's identity in a URI SAN `urn:d2r:device:<schema>:<uid>`. TLS is
terminated by the proxy, which forwards the verified client certificate in a header;
the header is trusted only when DEVICE_CERT_HEADER is configured (ADR 0002).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from devices.models import Device, DeviceCA, DeviceCertificate

CERT_VALIDITY = timedelta(days=365)
SAN_PREFIX = "urn:d2r:device:"


class CertificateError(ValueError):
    """A CSR or certificate that is not acceptable; the message says why."""


def _ca_password(schema: str) -> bytes:
    return (
        hmac.new(settings.SECRET_KEY.encode(), f"device-ca:{schema}".encode(), hashlib.sha256)
        .hexdigest()
        .encode()
    )


@dataclass(frozen=True)
class LoadedCA:
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey


def ca_get_or_create() -> LoadedCA:
    """The current workspace's CA, created on first use (row-locked against races)."""
    schema = connection.schema_name
    with transaction.atomic():
        row = DeviceCA.objects.select_for_update().first()
        if row is None:
            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "D2R Cloud"),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, schema),
                    x509.NameAttribute(NameOID.COMMON_NAME, f"D2R device CA {schema}"),
                ]
            )
            now = timezone.now()
            cert = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(now + timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=False,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        key_cert_sign=True,
                        crl_sign=True,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .sign(key, hashes.SHA256())
            )
            row = DeviceCA.objects.create(
                certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
                private_key_encrypted=key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.BestAvailableEncryption(_ca_password(schema)),
                ),
            )
    key = serialization.load_pem_private_key(
        bytes(row.private_key_encrypted), password=_ca_password(schema)
    )
    return LoadedCA(x509.load_pem_x509_certificate(row.certificate_pem.encode()), key)  # type: ignore[arg-type]


def certificate_issue(*, device_id: int, csr_pem: str) -> DeviceCertificate:
    """Sign the device's CSR. The CSR must be self-consistent (proof of key possession)."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError as exc:
        raise CertificateError("Not a PEM certificate signing request.") from exc
    if not csr.is_signature_valid:
        raise CertificateError("The CSR's signature does not match its key.")
    public_key = csr.public_key()
    if not (
        isinstance(public_key, ed25519.Ed25519PublicKey)
        or (
            isinstance(public_key, ec.EllipticCurvePublicKey)
            and public_key.curve.name == "secp256r1"
        )
    ):
        raise CertificateError("Use an Ed25519 or P-256 key.")
    ca = ca_get_or_create()
    with transaction.atomic():
        device = Device.objects.select_for_update().get(pk=device_id)
        if device.state == Device.State.DECOMMISSIONED:
            raise CertificateError("A decommissioned device gets no certificate.")
        now = timezone.now()
        uri = f"{SAN_PREFIX}{connection.schema_name}:{device.uid}"
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(
                            NameOID.ORGANIZATIONAL_UNIT_NAME, connection.schema_name
                        ),
                        x509.NameAttribute(NameOID.COMMON_NAME, str(device.uid)),
                    ]
                )
            )
            .issuer_name(ca.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + CERT_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False
            )
            .sign(ca.private_key, hashes.SHA256())
        )
        return DeviceCertificate.objects.create(
            device=device,
            serial_number=format(cert.serial_number, "x"),
            fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(),
            certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
        )


def certificate_revoke(*, certificate_id: int) -> None:
    """Revoke a certificate (idempotent); it is in the next CRL.

    The row is saved, not bulk-updated, so the change is logged (audit.tracking).
    """
    with transaction.atomic():
        row = (
            DeviceCertificate.objects.select_for_update()
            .filter(pk=certificate_id, revoked_at=None)
            .first()
        )
        if row is not None:
            row.revoked_at = timezone.now()
            row.save(update_fields=["revoked_at"])


def crl_pem() -> str:
    """The workspace's certificate revocation list, signed by its CA (valid one day)."""
    ca = ca_get_or_create()
    now = timezone.now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(now)
        .next_update(now + timedelta(days=1))
    )
    for row in DeviceCertificate.objects.exclude(revoked_at=None):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(int(row.serial_number, 16))
            .revocation_date(row.revoked_at)
            .build()
        )
    crl = builder.sign(ca.private_key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM).decode()


def parse_forwarded_certificate(value: str) -> tuple[str, str, x509.Certificate]:
    """`(schema, device uid, certificate)` from the proxy's header (URL-escaped PEM)."""
    try:
        cert = x509.load_pem_x509_certificate(unquote(value).encode())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound) as exc:
        raise CertificateError("The client certificate is malformed.") from exc
    uris = [
        u
        for u in san.get_values_for_type(x509.UniformResourceIdentifier)
        if u.startswith(SAN_PREFIX)
    ]
    if len(uris) != 1:
        raise CertificateError("The client certificate names no device.")
    schema, _, uid = uris[0].removeprefix(SAN_PREFIX).partition(":")
    return schema, uid, cert


def certificate_verify(cert: x509.Certificate, uid: str) -> Any:
    """Check the certificate against this workspace's CA and registry; return the device."""
    ca = ca_get_or_create()
    try:
        cert.verify_directly_issued_by(ca.certificate)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise CertificateError(
            "The client certificate was not issued by this workspace's CA."
        ) from exc
    now = timezone.now()
    if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
        raise CertificateError("The client certificate is expired or not yet valid.")
    row = (
        DeviceCertificate.objects.select_related("device")
        .filter(fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex())
        .first()
    )
    if row is None or str(row.device.uid) != uid:
        raise CertificateError("The client certificate is not registered.")
    if row.revoked_at is not None:
        raise CertificateError("The client certificate has been revoked.")
    return row.device
