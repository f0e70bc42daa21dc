"""A real SAML 2.0 identity provider for the tests: pysaml2's `Server` with a throwaway
key pair, answering the AuthnRequests our SP sends with signed responses."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import (
    AUTHN_PASSWORD_PROTECTED,
    NAME_FORMAT_URI,
    NAMEID_FORMAT_PERSISTENT,
    NameID,
)
from saml2.server import Server

IDP_ENTITY_ID = "https://idp.example.test/saml/metadata"
IDP_SSO_URL = "https://idp.example.test/saml/sso"


def make_key_pair(common_name: str, directory: Path) -> tuple[Path, Path]:
    """A self-signed RSA certificate and its key, written as PEM files."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    key_path, cert_path = directory / f"{common_name}.key", directory / f"{common_name}.crt"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


class SamlIdp:
    """One IdP. Its metadata (with its signing certificate) is what a workspace trusts."""

    def __init__(self, key_pair: tuple[Path, Path], entity_id: str = IDP_ENTITY_ID) -> None:
        key_path, cert_path = key_pair
        config = IdPConfig()
        config.load({
            "entityid": entity_id,
            "xmlsec_binary": "/usr/bin/xmlsec1",
            "key_file": str(key_path),
            "cert_file": str(cert_path),
            "metadata": {},
            "service": {"idp": {
                "endpoints": {"single_sign_on_service": [
                    (IDP_SSO_URL, BINDING_HTTP_REDIRECT), (IDP_SSO_URL, BINDING_HTTP_POST)]},
                "policy": {"default": {"lifetime": {"minutes": 5},
                                       "attribute_restrictions": None,
                                       "name_form": NAME_FORMAT_URI}},
                "name_id_format": [NAMEID_FORMAT_PERSISTENT],
            }},
        })
        self.server = Server(config=config)

    def metadata_xml(self) -> str:
        return str(entity_descriptor(self.server.config))

    def trust_sp(self, sp_metadata_xml: str) -> None:
        self.server.metadata.load("inline", sp_metadata_xml)

    def read_request(self, location: str) -> tuple[Any, str]:
        """Parse the AuthnRequest our SP put in its redirect (HTTP-Redirect binding)."""
        query = parse_qs(urlparse(location).query)
        request = self.server.parse_authn_request(query["SAMLRequest"][0],
                                                  BINDING_HTTP_REDIRECT)
        return request.message, query.get("RelayState", [""])[0]

    def response(self, *, destination: str, audience: str, in_response_to: str | None,
                 subject: str = "ada-0001", identity: dict[str, list[str]] | None = None,
                 sign_assertion: bool = True, sign_response: bool = True) -> str:
        """A base64 SAMLResponse as the IdP would POST it to `destination`."""
        xml = self.server.create_authn_response(
            identity if identity is not None else {},
            in_response_to=in_response_to, destination=destination, sp_entity_id=audience,
            name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=subject),
            authn={"class_ref": AUTHN_PASSWORD_PROTECTED},
            sign_assertion=sign_assertion, sign_response=sign_response)
        return base64.b64encode(str(xml).encode()).decode()
