"""Encryption of SSO secrets at rest: AES-256-GCM, bound to the workspace and field.

The key is `SSO_SECRET_KEY` (or, when empty, derived from SECRET_KEY with HKDF); keys in
`SSO_SECRET_KEYS_PREVIOUS` still decrypt, so a rotation re-encrypts on the next save.
The associated data names the schema and the field, so a ciphertext copied into another
workspace's row, or into another field, does not decrypt.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

PREFIX = "v1."


class SecretUnreadable(Exception):
    """The stored secret does not decrypt with any configured key."""


def _derive(material: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"d2r-sso-secret-v1").derive(material.encode())


def _keys() -> list[bytes]:
    current = settings.SSO_SECRET_KEY or settings.SECRET_KEY
    return [_derive(k) for k in [current, *settings.SSO_SECRET_KEYS_PREVIOUS] if k]


def secret_encrypt(plaintext: str, *, context: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_keys()[0]).encrypt(nonce, plaintext.encode(), context.encode())
    return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def secret_decrypt(token: str, *, context: str) -> str:
    if not token.startswith(PREFIX):
        raise SecretUnreadable("unknown format")
    raw = base64.urlsafe_b64decode(token[len(PREFIX):])
    for key in _keys():
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag:
            continue
    raise SecretUnreadable("no configured key decrypts this secret")
