"""C2SP ``tlog-checkpoint`` bodies in C2SP ``signed-note`` envelopes, signed with Ed25519.

Django-free; needs only :mod:`cryptography`. Specifications:

* https://c2sp.org/signed-note — a note is a UTF-8 text ending in a newline, a
  blank line, then one or more lines ``"— <key name> <base64(key ID || sig)>"``
  (em dash U+2014). The Ed25519 key ID is
  ``SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4]`` read big-endian.
  A verifier key is written ``"<name>+<8 hex key ID>+<base64(0x01 || pubkey)>"``
  and a signer key ``"PRIVATE+KEY+<name>+<8 hex key ID>+<base64(0x01 || seed)>"``
  (golang.org/x/mod/sumdb/note formats).
* https://c2sp.org/tlog-checkpoint — the note text is the origin line, the tree
  size in decimal without leading zeros, the base64 root hash, then optional
  non-empty extension lines.

Invariants:

* :func:`open_note` returns only if at least one signature by a trusted key
  (name *and* key ID match) verifies; signatures by unknown keys are ignored
  (that is what makes key rotation and witness cosigning work), but a signature
  line naming a trusted key that fails to verify rejects the whole note;
* every parsing or verification failure raises a :class:`NoteError` subclass;
  nothing is ever silently accepted (trailing bytes, missing blank line, control
  characters, non-canonical base64, empty lines in a checkpoint...);
* :func:`sign_note` and :func:`open_note` are inverse: what one writes the
  other accepts byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

__all__ = [
    "ED25519_ALGORITHM",
    "Checkpoint",
    "CheckpointError",
    "InvalidKeyError",
    "InvalidSignatureError",
    "MalformedNoteError",
    "Note",
    "NoteError",
    "NoteSignature",
    "SignerKey",
    "UnverifiedNoteError",
    "VerifierKey",
    "ed25519_key_id",
    "open_checkpoint",
    "open_note",
    "sign_checkpoint",
    "sign_note",
]

ED25519_ALGORITHM = 0x01
"""signed-note signature type byte of Ed25519."""

SIGNATURE_PREFIX = "\u2014 "
"""Every signature line starts with an em dash and a space."""

MAX_SIGNATURES = 100
"""Upper bound on signature lines in a note (the spec asks to accept at least 16)."""

MAX_NOTE_BYTES = 1 << 20
"""Upper bound on the size of a note, so that parsing cost stays bounded."""

_HASH_SIZE = 32
_ED25519_SIGNATURE_SIZE = 64
_MAX_TREE_SIZE = (1 << 64) - 1
_TREE_SIZE_RE = re.compile(r"0|[1-9][0-9]*")
_KEY_ID_RE = re.compile(r"[0-9a-f]{8}")


class NoteError(ValueError):
    """Base class of every note, key and checkpoint error."""


class MalformedNoteError(NoteError):
    """The note is not a syntactically valid signed note."""


class InvalidSignatureError(NoteError):
    """A signature by a trusted key (name and key ID match) does not verify."""


class UnverifiedNoteError(NoteError):
    """No signature by a trusted key: the note text must not be used."""


class InvalidKeyError(NoteError):
    """A verifier or signer key string, name or key material is invalid."""


class CheckpointError(NoteError):
    """The note verified but its text is not a valid checkpoint (or not the expected one)."""


def _strict_b64decode(text: str, what: str, error: type[NoteError]) -> bytes:
    """Decode standard padded base64, refusing any non-canonical form."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise error(f"{what} is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise error(f"{what} is not canonical base64")
    return raw


def _check_key_name(name: str) -> str:
    """Return ``name`` if it is a valid key name (non-empty, no space, no ``+``)."""
    if not isinstance(name, str) or not name:
        raise InvalidKeyError("key name must be a non-empty string")
    if "+" in name or any(ch.isspace() for ch in name) or not name.isprintable():
        raise InvalidKeyError(f"key name {name!r} contains a space, '+' or a control character")
    return name


def _raw_public_key(public_key: Ed25519PublicKey | bytes) -> bytes:
    """Return the 32-byte RFC 8032 encoding of an Ed25519 public key."""
    if isinstance(public_key, Ed25519PublicKey):
        return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    raw = bytes(public_key)
    if len(raw) != 32:
        raise InvalidKeyError(f"Ed25519 public key has {len(raw)} bytes, expected 32")
    return raw


def ed25519_key_id(name: str, public_key: Ed25519PublicKey | bytes) -> int:
    """Return the signed-note key ID ``SHA-256(name || 0x0A || 0x01 || pubkey)[:4]``, big-endian."""
    material = _check_key_name(name).encode("utf-8") + b"\n" + bytes([ED25519_ALGORITHM])
    digest = hashlib.sha256(material + _raw_public_key(public_key)).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A trusted Ed25519 note verifier: key name, key ID and public key.

    Invariant: ``key_id == ed25519_key_id(name, public_key)`` (checked on creation).
    """

    name: str
    public_key: Ed25519PublicKey
    key_id: int = field(init=False)

    def __post_init__(self) -> None:
        """Validate the name and derive the key ID."""
        object.__setattr__(self, "key_id", ed25519_key_id(self.name, self.public_key))

    @classmethod
    def parse(cls, vkey: str) -> VerifierKey:
        """Parse ``"<name>+<hex key ID>+<base64(0x01 || pubkey)>"``."""
        if not isinstance(vkey, str):
            raise InvalidKeyError("verifier key must be a string")
        parts = vkey.split("+", 2)  # the base64 part may itself contain '+'
        if len(parts) != 3:
            raise InvalidKeyError("verifier key must be <name>+<key id>+<base64 key>")
        name, key_id_hex, material_b64 = parts
        if not _KEY_ID_RE.fullmatch(key_id_hex):
            raise InvalidKeyError(f"key ID {key_id_hex!r} is not 8 lowercase hex digits")
        material = _strict_b64decode(material_b64, "verifier key material", InvalidKeyError)
        if len(material) != 33 or material[0] != ED25519_ALGORITHM:
            raise InvalidKeyError("verifier key material must be 0x01 || 32-byte Ed25519 key")
        try:
            public_key = Ed25519PublicKey.from_public_bytes(material[1:])
        except ValueError as exc:
            raise InvalidKeyError("invalid Ed25519 public key") from exc
        verifier = cls(name=_check_key_name(name), public_key=public_key)
        if verifier.key_id != int(key_id_hex, 16):
            raise InvalidKeyError(
                f"key ID {key_id_hex} does not match {verifier.key_id:08x} for {name!r}"
            )
        return verifier

    def encode(self) -> str:
        """Return the ``vkey`` text form."""
        material = bytes([ED25519_ALGORITHM]) + _raw_public_key(self.public_key)
        return f"{self.name}+{self.key_id:08x}+{base64.b64encode(material).decode('ascii')}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Return whether ``signature`` is a valid Ed25519 signature of ``message``."""
        if len(signature) != _ED25519_SIGNATURE_SIZE:
            return False
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class SignerKey:
    """An Ed25519 note signer: key name and private key. Never log or serialise carelessly."""

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        """Validate the key name."""
        _check_key_name(self.name)

    @property
    def key_id(self) -> int:
        """The signed-note key ID of the matching public key."""
        return ed25519_key_id(self.name, self.private_key.public_key())

    def verifier(self) -> VerifierKey:
        """Return the matching :class:`VerifierKey`."""
        return VerifierKey(name=self.name, public_key=self.private_key.public_key())

    @classmethod
    def generate(cls, name: str) -> SignerKey:
        """Return a signer with a fresh random Ed25519 key."""
        return cls(name=name, private_key=Ed25519PrivateKey.generate())

    @classmethod
    def parse(cls, skey: str) -> SignerKey:
        """Parse ``"PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || 32-byte seed)>"``."""
        if not isinstance(skey, str) or not skey.startswith("PRIVATE+KEY+"):
            raise InvalidKeyError("signer key must start with PRIVATE+KEY+")
        parts = skey[len("PRIVATE+KEY+") :].split("+", 2)
        if len(parts) != 3:
            raise InvalidKeyError("signer key must be PRIVATE+KEY+<name>+<key id>+<base64 key>")
        name, key_id_hex, material_b64 = parts
        if not _KEY_ID_RE.fullmatch(key_id_hex):
            raise InvalidKeyError("signer key ID is not 8 lowercase hex digits")
        material = _strict_b64decode(material_b64, "signer key material", InvalidKeyError)
        if len(material) != 33 or material[0] != ED25519_ALGORITHM:
            raise InvalidKeyError("signer key material must be 0x01 || 32-byte Ed25519 seed")
        signer = cls(name=name, private_key=Ed25519PrivateKey.from_private_bytes(material[1:]))
        if signer.key_id != int(key_id_hex, 16):
            raise InvalidKeyError("signer key ID does not match its key")
        return signer

    def encode(self) -> str:
        """Return the ``PRIVATE+KEY+...`` text form (a secret)."""
        seed = self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        material = base64.b64encode(bytes([ED25519_ALGORITHM]) + seed).decode("ascii")
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{material}"

    def sign(self, message: bytes) -> bytes:
        """Return the raw 64-byte Ed25519 signature of ``message``."""
        return self.private_key.sign(message)


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, key ID and the raw signature bytes."""

    name: str
    key_id: int
    signature: bytes


@dataclass(frozen=True, slots=True)
class Note:
    """An opened note: its text, the verified signatures and the ignored unknown ones.

    Invariant: ``verified`` is non-empty (an unverified note is never returned).
    """

    text: str
    verified: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...]


def _check_text(text: str, what: str) -> None:
    """Check the signed-note charset rules: no control character other than newline."""
    for ch in text:
        if ch < " " and ch != "\n":
            raise MalformedNoteError(f"{what} contains control character {ch!r}")


def sign_note(text: str, signers: SignerKey | Sequence[SignerKey]) -> str:
    """Return ``text`` signed by every signer, as a signed note.

    ``text`` must be non-empty, end with a newline and respect the charset rules.
    Several signers (e.g. old and new key during a rotation) give several lines,
    in the order given.
    """
    signer_list = [signers] if isinstance(signers, SignerKey) else list(signers)
    if not signer_list:
        raise ValueError("at least one signer is required")
    if not isinstance(text, str) or not text.endswith("\n"):
        raise MalformedNoteError("note text must be a string ending with a newline")
    _check_text(text, "note text")
    message = text.encode("utf-8")
    lines = []
    for signer in signer_list:
        blob = signer.key_id.to_bytes(4, "big") + signer.sign(message)
        lines.append(f"{SIGNATURE_PREFIX}{signer.name} {base64.b64encode(blob).decode('ascii')}\n")
    return text + "\n" + "".join(lines)


def _parse_signature_line(line: str) -> NoteSignature:
    """Parse ``"— <name> <base64>"`` (without the newline)."""
    if not line.startswith(SIGNATURE_PREFIX):
        raise MalformedNoteError("signature line does not start with an em dash and a space")
    name, sep, blob_b64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not sep or not blob_b64:
        raise MalformedNoteError("signature line must be '— <name> <base64>'")
    try:
        _check_key_name(name)
    except InvalidKeyError as exc:
        raise MalformedNoteError(f"invalid key name in signature line: {exc}") from exc
    blob = _strict_b64decode(blob_b64, "signature", MalformedNoteError)
    if len(blob) < 5:
        raise MalformedNoteError("signature is shorter than a key ID plus one byte")
    return NoteSignature(name=name, key_id=int.from_bytes(blob[:4], "big"), signature=blob[4:])


def open_note(note: str | bytes, verifiers: VerifierKey | Iterable[VerifierKey]) -> Note:
    """Parse a signed note and verify it against the trusted ``verifiers``.

    Raises :class:`MalformedNoteError` (syntax), :class:`InvalidSignatureError` (a
    trusted key's signature does not verify) or :class:`UnverifiedNoteError` (no
    trusted key signed it). Signatures by keys not in ``verifiers`` are returned
    in ``Note.unverified`` and otherwise ignored.
    """
    if isinstance(verifiers, str):
        raise TypeError("pass VerifierKey objects (see VerifierKey.parse), not a string")
    trusted_list = [verifiers] if isinstance(verifiers, VerifierKey) else list(verifiers)
    trusted = {(v.name, v.key_id): v for v in trusted_list}
    if isinstance(note, bytes | bytearray | memoryview):
        raw = bytes(note)
        if len(raw) > MAX_NOTE_BYTES:
            raise MalformedNoteError(f"note is larger than {MAX_NOTE_BYTES} bytes")
        try:
            note = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedNoteError("note is not valid UTF-8") from exc
    elif not isinstance(note, str):
        raise MalformedNoteError("note must be str or bytes")
    elif len(note) > MAX_NOTE_BYTES:
        raise MalformedNoteError(f"note is larger than {MAX_NOTE_BYTES} characters")
    if any("\ud800" <= ch <= "\udfff" for ch in note):
        raise MalformedNoteError("note contains a lone surrogate")
    _check_text(note, "note")

    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("note has no blank line before its signatures")
    text, signature_block = note[: split + 1], note[split + 2 :]
    if text == "\n" or not text:
        raise MalformedNoteError("note text is empty")
    if not signature_block or not signature_block.endswith("\n"):
        raise MalformedNoteError("signature block is empty or does not end with a newline")
    lines = signature_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError(f"note has more than {MAX_SIGNATURES} signatures")

    message = text.encode("utf-8")
    verified: dict[tuple[str, int], NoteSignature] = {}
    unverified: dict[tuple[str, int, bytes], NoteSignature] = {}
    for line in lines:
        sig = _parse_signature_line(line)
        verifier = trusted.get((sig.name, sig.key_id))
        if verifier is None:
            unverified.setdefault((sig.name, sig.key_id, sig.signature), sig)
            continue
        if not verifier.verify(message, sig.signature):
            raise InvalidSignatureError(
                f"signature by trusted key {sig.name}+{sig.key_id:08x} does not verify"
            )
        verified.setdefault((sig.name, sig.key_id), sig)
    if not verified:
        raise UnverifiedNoteError("note is not signed by any trusted key")
    return Note(text=text, verified=tuple(verified.values()), unverified=tuple(unverified.values()))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A C2SP tlog checkpoint: origin, tree size, root hash and extension lines.

    Invariants (checked on creation): origin non-empty without control
    characters; ``0 <= size <= 2**64 - 1``; ``root_hash`` is 32 bytes; every
    extension line is non-empty without control characters.
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Validate every field."""
        if not isinstance(self.origin, str) or not self.origin:
            raise CheckpointError("checkpoint origin must be a non-empty string")
        if any(ch < " " for ch in self.origin):
            raise CheckpointError("checkpoint origin contains a control character")
        if not isinstance(self.size, int) or isinstance(self.size, bool):
            raise CheckpointError("checkpoint tree size must be an int")
        if not 0 <= self.size <= _MAX_TREE_SIZE:
            raise CheckpointError(f"checkpoint tree size {self.size} is outside [0, 2**64 - 1]")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != _HASH_SIZE:
            raise CheckpointError(f"checkpoint root hash must be {_HASH_SIZE} bytes")
        object.__setattr__(self, "extensions", tuple(self.extensions))
        for line in self.extensions:
            if not isinstance(line, str) or not line or any(ch < " " for ch in line):
                raise CheckpointError("checkpoint extension lines must be non-empty text lines")

    def body(self) -> str:
        """Return the note text: one line per field, each ending with a newline."""
        root_b64 = base64.b64encode(self.root_hash).decode("ascii")
        lines = [self.origin, str(self.size), root_b64, *self.extensions]
        return "".join(f"{line}\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint note text (as returned in ``Note.text``)."""
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("checkpoint needs origin, tree size and root hash lines")
        if any(not line for line in lines):
            raise CheckpointError("checkpoint lines must be non-empty")
        origin, size_text, root_b64, *extensions = lines
        if not _TREE_SIZE_RE.fullmatch(size_text):
            raise CheckpointError(f"tree size {size_text!r} is not a decimal without leading zeros")
        size = int(size_text)
        if size > _MAX_TREE_SIZE:
            raise CheckpointError("tree size does not fit in 64 bits")
        root_hash = _strict_b64decode(root_b64, "root hash", CheckpointError)
        if len(root_hash) != _HASH_SIZE:
            raise CheckpointError(f"root hash has {len(root_hash)} bytes, expected {_HASH_SIZE}")
        return cls(origin=origin, size=size, root_hash=root_hash, extensions=tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signers: SignerKey | Sequence[SignerKey]) -> str:
    """Return the checkpoint as a signed note, signed by every signer in order."""
    return sign_note(checkpoint.body(), signers)


def open_checkpoint(
    note: str | bytes,
    verifiers: VerifierKey | Iterable[VerifierKey],
    *,
    origin: str | None = None,
) -> Checkpoint:
    """Verify a signed checkpoint note and return the parsed checkpoint.

    ``origin``, when given, must equal the checkpoint's origin line (a verifier
    should always pin the log it expects). Raises :class:`NoteError` subclasses.
    """
    opened = open_note(note, verifiers)
    checkpoint = Checkpoint.parse(opened.text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint origin {checkpoint.origin!r} is not {origin!r}")
    return checkpoint
