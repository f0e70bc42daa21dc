"""The platform's JWT signing keys (Ed25519), with rotation (ADR 0002).

Keys live in a JSON file outside the database (`JWT_KEYS_FILE`): tenant roles cannot
read them and a database dump does not contain them. Each key is `active` (signs new
tokens; exactly one), `verifying` (an older key: still accepted until it retires, so
a rotation logs nobody out) or absent (retired: its tokens fail with "unknown kid").
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey
    status: str  # "active" | "verifying"

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def jwk(self) -> dict[str, str]:
        raw = self.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": x,
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        }


def _path() -> Path:
    return Path(settings.JWT_KEYS_FILE)


def _new_entry(status: str) -> dict[str, str]:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {"kid": f"k{secrets.token_hex(6)}", "status": status, "private_pem": pem}


def _write(entries: list[dict[str, str]]) -> None:
    path = _path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(entries, indent=2))
    temporary.chmod(0o600)
    os.replace(temporary, path)
    _load.cache_clear()


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> tuple[SigningKey, ...]:
    entries = json.loads(Path(path).read_text())
    keys = tuple(
        SigningKey(
            e["kid"],
            serialization.load_pem_private_key(  # type: ignore[arg-type]
                e["private_pem"].encode(), password=None
            ),
            e["status"],
        )
        for e in entries
    )
    if sum(k.status == "active" for k in keys) != 1:
        raise ImproperlyConfigured(f"{path} must hold exactly one active JWT key.")
    return keys


def keys() -> tuple[SigningKey, ...]:
    path = _path()
    if not path.exists():
        if not settings.JWT_KEYS_AUTOCREATE:
            raise ImproperlyConfigured(f"JWT_KEYS_FILE {path} does not exist.")
        _write([_new_entry("active")])
    return _load(str(path), path.stat().st_mtime)


def active_key() -> SigningKey:
    return next(k for k in keys() if k.status == "active")


def verification_key(kid: str) -> SigningKey | None:
    return next((k for k in keys() if k.kid == kid), None)


def jwks() -> dict[str, list[dict[str, str]]]:
    return {"keys": [k.jwk() for k in keys()]}


def rotate() -> str:
    """Make a new active key; the previous active one keeps verifying. Returns the kid."""
    entries = json.loads(_path().read_text()) if _path().exists() else []
    for entry in entries:
        entry["status"] = "verifying"
    new = _new_entry("active")
    _write([new, *entries])
    return new["kid"]


def retire(kid: str) -> None:
    """Remove a verifying key: tokens it signed stop being accepted at once."""
    entries = json.loads(_path().read_text())
    if any(e["kid"] == kid and e["status"] == "active" for e in entries):
        raise ValueError("Rotate first: the active key cannot be retired.")
    _write([e for e in entries if e["kid"] != kid])
