"""Device X.509 certificates: issued from the device's CSR by the workspace CA."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.test import Client
from django.utils import timezone

from tests.conftest import make_user

pytestmark = pytest.mark.django_db
HEADER = "X-Client-Certificate"


@pytest.fixture(autouse=True)
def _trust_proxy_header(settings) -> None:  # type: ignore[no-untyped-def]
    settings.DEVICE_CERT_HEADER = HEADER


def _csr(key: ec.EllipticCurvePrivateKey) -> str:
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edge")]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _as_device(cert_pem: str, host: str = "api.localhost") -> object:
    return Client(HTTP_HOST=host).get("/api/v1/me",
                                      **{"HTTP_X_CLIENT_CERTIFICATE": quote(cert_pem)})


@pytest.fixture
def admin_and_device():  # type: ignore[no-untyped-def]
    admin = make_user("alpha", role="admin", name="pki")
    device = admin.client.post("/api/v1/devices", {"serial": "PKI-1", "model": "Edge"},
                               content_type="application/json").json()
    admin.client.post(f"/api/v1/devices/{device['id']}/activate")
    return admin, device


def test_certificate_from_csr_authenticates_until_revoked(admin_and_device) -> None:  # type: ignore[no-untyped-def]
    admin, device = admin_and_device
    key = ec.generate_private_key(ec.SECP256R1())
    issued = admin.client.post(f"/api/v1/devices/{device['id']}/certificates",
                               {"csr": _csr(key)}, content_type="application/json")
    assert issued.status_code == 201, issued.content
    cert_pem = issued.json()["certificate_pem"]
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    me = _as_device(cert_pem)
    assert me.status_code == 200 and me.json()["name"] == "device:PKI-1"
    ca = Client(HTTP_HOST="alpha.localhost").get("/api/v1/devices/ca").content
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca))
    revoked = admin.client.post(
        f"/api/v1/devices/{device['id']}/certificates/{issued.json()['id']}/revoke")
    assert revoked.json()["revoked_at"]
    refused = _as_device(cert_pem)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    crl = x509.load_pem_x509_crl(
        Client(HTTP_HOST="alpha.localhost").get("/api/v1/devices/ca/crl").content)
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None


def test_certificate_of_a_decommissioned_device_is_refused(admin_and_device) -> None:  # type: ignore[no-untyped-def]
    admin, device = admin_and_device
    cert_pem = admin.client.post(
        f"/api/v1/devices/{device['id']}/certificates",
        {"csr": _csr(ec.generate_private_key(ec.SECP256R1()))},
        content_type="application/json").json()["certificate_pem"]
    admin.client.post(f"/api/v1/devices/{device['id']}/decommission")
    refused = _as_device(cert_pem)
    assert refused.status_code == 403 and "decommissioned" in refused.json()["detail"]


def test_forged_certificate_naming_the_device_is_refused(admin_and_device) -> None:  # type: ignore[no-untyped-def]
    _, device = admin_and_device
    from django_tenants.utils import schema_context

    from devices.models import Device

    with schema_context("alpha"):
        uid = Device.objects.get(pk=device["id"]).uid
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "D2R device CA alpha")])
    now = timezone.now()
    forged = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
              .public_key(key.public_key()).serial_number(1)
              .not_valid_before(now - timedelta(minutes=1))
              .not_valid_after(now + timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName(
                  [x509.UniformResourceIdentifier(f"urn:d2r:device:alpha:{uid}")]),
                  critical=False)
              .sign(key, hashes.SHA256()))
    refused = _as_device(forged.public_bytes(serialization.Encoding.PEM).decode())
    assert refused.status_code == 401 and "not issued by" in refused.json()["detail"]


def test_bad_csr_is_refused(admin_and_device) -> None:  # type: ignore[no-untyped-def]
    admin, device = admin_and_device
    response = admin.client.post(f"/api/v1/devices/{device['id']}/certificates",
                                 {"csr": "-----BEGIN CERTIFICATE REQUEST-----\nxx"},
                                 content_type="application/json")
    assert response.status_code == 400 and response.json()["detail"].startswith("csr:")


def test_header_is_ignored_unless_a_proxy_is_configured(settings, admin_and_device) -> None:  # type: ignore[no-untyped-def]
    settings.DEVICE_CERT_HEADER = ""
    response = Client(HTTP_HOST="alpha.localhost").get(
        "/api/v1/me", HTTP_X_CLIENT_CERTIFICATE="anything")
    assert response.status_code == 401
    assert response.json()["type"].endswith("/not-authenticated")
