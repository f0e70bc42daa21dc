"""A test RFC 3161 timestamp authority: a real HTTP service on a local socket.

pyHanko's HTTPTimeStamper talks to it exactly as it talks to a production TSA: a
``POST`` of an ``application/timestamp-query`` answered with an
``application/timestamp-reply``. The tokens are made by pyHanko's DummyTimeStamper
with the TSA's own key (RSA, which that class requires) and certificate, issued by a
test root. The TSA certificate names a CRL distribution point on the same server
(``GET /root.crl``, the root's CRL, issued fresh on each request), so B-LT/B-LTA
signing fetches the TSA chain's revocation data over HTTP, as it would in production.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


@dataclass
class TestTimestampAuthority:
    """A running TSA: ``url`` to give pyHanko, ``root_pem`` to trust, request log."""

    __test__ = False  # not a pytest test class

    name: str
    directory: Path
    validity: dt.timedelta = dt.timedelta(days=365)  # of the TSA certificate, from now
    root_key: ec.EllipticCurvePrivateKey = field(init=False)
    root: x509.Certificate = field(init=False)
    cert: x509.Certificate = field(init=False)
    queries: list[str] = field(default_factory=list)  # Content-Type of each POST
    crl_fetches: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    @property
    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)

    @property
    def root_file(self) -> Path:
        return self.directory / f"{self.name}-root.pem"

    def crl_der(self) -> bytes:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        return (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.root.subject)
            .last_update(now - dt.timedelta(minutes=1))
            .next_update(now + dt.timedelta(days=1))
            .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.root_key.public_key()),
                critical=False,
            )
            .sign(self.root_key, hashes.SHA256())
            .public_bytes(serialization.Encoding.DER)
        )

    def start(self) -> TestTimestampAuthority:
        """Bind a free port, issue the certificates (the CRL URL names the port), serve."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        now = dt.datetime.now(dt.UTC)
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        root_name = _name(f"{self.name} root")
        self.root = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(self.root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(ca=True), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.root_key.public_key()),
                critical=False,
            )
            .sign(self.root_key, hashes.SHA256())
        )
        tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(self.name))
            .issuer_name(root_name)
            .public_key(tsa_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + self.validity)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(ca=False), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.root_key.public_key()),
                critical=False,
            )
            .add_extension(
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            [x509.UniformResourceIdentifier(self.url + "root.crl")],
                            None,
                            None,
                            None,
                        )
                    ]
                ),
                critical=False,
            )
            .sign(self.root_key, hashes.SHA256())
        )
        key_der = tsa_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.stamper = DummyTimeStamper(
            tsa_cert=_asn1(self.cert),
            tsa_key=asn1_keys.PrivateKeyInfo.load(key_der),
            certs_to_embed=[_asn1(self.root)],
        )
        self.root_file.write_bytes(self.root_pem)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving: later validation must do without the TSA and its CRL."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _handler(tsa: TestTimestampAuthority) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            content_type = self.headers.get("Content-Type", "")
            tsa.queries.append(content_type)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if content_type != QUERY_TYPE:
                self._reply(415, "text/plain", b"expected application/timestamp-query")
                return
            try:
                request = tsp.TimeStampReq.load(body)
                reply = tsa.stamper.request_tsa_response(request).dump()
            except ValueError:
                self._reply(400, "text/plain", b"malformed TimeStampReq")
                return
            self._reply(200, REPLY_TYPE, reply)

        def do_GET(self) -> None:
            if self.path != "/root.crl":
                self._reply(404, "text/plain", b"not found")
                return
            tsa.crl_fetches += 1
            self._reply(200, "application/pkix-crl", tsa.crl_der())

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
