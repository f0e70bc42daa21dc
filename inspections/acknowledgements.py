"""Signed sync acknowledgements: the receipt a device keeps for each scan it sent.

Ed25519, so a device (or an auditor) verifies a receipt with the public key alone —
`GET /api/v1/uploads/acknowledgement-key` — and the server's private key never
leaves it. The signed message is the canonical JSON (sorted keys, no spaces, UTF-8)
of every field except `signature`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any, TypedDict

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings

ALGORITHM = "Ed25519"


class Acknowledgement(TypedDict):
    scan_id: str
    upload_id: str
    workspace: str
    sha256: str
    size_bytes: int
    received_at: str
    deduplicated: bool
    alg: str
    key_id: str
    signature: str


def _private_key() -> Ed25519PrivateKey:
    seed_b64 = settings.INGEST_ACK_SIGNING_KEY
    if seed_b64:
        seed = base64.b64decode(seed_b64)
    else:  # derived, so every process of one deployment signs with the same key
        seed = hashlib.sha256(b"d2r-ingest-ack-v1:" + settings.SECRET_KEY.encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_bytes() -> bytes:
    return _private_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id() -> str:
    return hashlib.sha256(public_key_bytes()).hexdigest()[:16]


def canonical(fields: dict[str, Any]) -> bytes:
    body = {k: v for k, v in fields.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign(fields: dict[str, Any]) -> Acknowledgement:
    """`fields` completed with alg, key id and signature."""
    unsigned = {**fields, "alg": ALGORITHM, "key_id": key_id()}
    signature = _private_key().sign(canonical(unsigned))
    return {**unsigned, "signature": base64.b64encode(signature).decode()}  # type: ignore[typeddict-item]


def verify(ack: dict[str, Any], public_key: bytes) -> bool:
    """True when `ack` was signed by the holder of `public_key` and is unchanged."""
    from cryptography.exceptions import InvalidSignature

    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            base64.b64decode(ack["signature"]), canonical(ack))
    except (InvalidSignature, KeyError, ValueError):
        return False
    return True
