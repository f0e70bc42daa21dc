"""C2SP signed notes and tlog checkpoints with Ed25519. No database, no Django."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from audit.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    InvalidKeyError,
    InvalidSignatureError,
    MalformedNoteError,
    NoteError,
    SignerKey,
    UnverifiedNoteError,
    VerifierKey,
    ed25519_key_id,
    open_checkpoint,
    open_note,
    sign_checkpoint,
    sign_note,
)
from audit.ledger.merkle import EMPTY_ROOT, leaf_hash, root

ORIGIN = "d2r.example/audit/alpha"

# golang.org/x/mod/sumdb/note reference example (package documentation): the key
# pair, the text and the published note. Ed25519 is deterministic, so signing the
# same text with the same key must reproduce the note byte for byte.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n"
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngot"
    "pRZb6KE6RyyBwJnAM=\n"
)


def _signer(name: str = ORIGIN, seed: int = 1) -> SignerKey:
    return SignerKey(
        name=name, private_key=Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    )


def _checkpoint(size: int = 3) -> Checkpoint:
    return Checkpoint(
        origin=ORIGIN, size=size, root_hash=root([leaf_hash(bytes([i])) for i in range(size)])
    )


# --- key IDs and key formats ---------------------------------------------------------


def test_key_id_matches_the_signed_note_formula_by_hand() -> None:
    # Given a key name and an Ed25519 public key
    signer = _signer(name="example.com/log", seed=7)
    public = signer.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    # When the key ID is derived by hand from the spec:
    # key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4], big-endian
    by_hand = hashlib.sha256(b"example.com/log" + b"\x0a" + b"\x01" + public).digest()[:4]
    # Then the library agrees, and the signature lines carry those four bytes first
    assert ed25519_key_id("example.com/log", public) == int.from_bytes(by_hand, "big")
    assert signer.key_id == int.from_bytes(by_hand, "big")
    note = sign_note("hello\n", signer)
    blob = base64.b64decode(note.rsplit(" ", 1)[1])
    assert blob[:4] == by_hand
    assert len(blob) == 4 + 64


def test_go_reference_note_known_answer() -> None:
    verifier = VerifierKey.parse(GO_VKEY)
    signer = SignerKey.parse(GO_SKEY)
    raw_public = base64.b64decode(GO_VKEY.split("+", 2)[2])[1:]
    by_hand = hashlib.sha256(b"PeterNeumann\n\x01" + raw_public).digest()[:4]
    assert by_hand.hex() == "c74f20a3" == f"{verifier.key_id:08x}"
    assert signer.verifier() == verifier
    assert verifier.encode() == GO_VKEY
    assert signer.encode() == GO_SKEY
    assert sign_note(GO_TEXT, signer) == GO_NOTE
    opened = open_note(GO_NOTE, verifier)
    assert opened.text == GO_TEXT
    assert [(s.name, s.key_id) for s in opened.verified] == [("PeterNeumann", 0xC74F20A3)]


def test_vkey_round_trip_and_rejections() -> None:
    verifier = _signer().verifier()
    assert VerifierKey.parse(verifier.encode()) == verifier
    name, key_id, material = verifier.encode().split("+", 2)
    bad_id = f"{(int(key_id, 16) ^ 1):08x}"
    for bad in [
        f"{name}+{bad_id}+{material}",  # key ID does not match the key
        f"{name}+{key_id.upper()}+{material}",  # not lowercase hex
        f"{name}+{key_id}",  # missing key
        f"+{key_id}+{material}",  # empty name
        f"a b+{key_id}+{material}",  # space in name
        f"{name}+{key_id}+{material[:-4]}",  # truncated key
        f"{name}+{key_id}+" + base64.b64encode(b"\x02" + b"k" * 32).decode(),  # wrong type
        f"{name}+{key_id}+{material} ",  # trailing garbage
    ]:
        with pytest.raises(InvalidKeyError):
            VerifierKey.parse(bad)
    with pytest.raises(InvalidKeyError):
        SignerKey(name="has+plus", private_key=Ed25519PrivateKey.generate())
    with pytest.raises(InvalidKeyError):
        SignerKey.parse(GO_SKEY.replace("c74f20a3", "c74f20a4"))


# --- signing and opening --------------------------------------------------------------


def test_checkpoint_round_trip() -> None:
    # Given a checkpoint signed by the log key
    signer = _signer()
    checkpoint = _checkpoint()
    note = sign_checkpoint(checkpoint, signer)
    # Then the note is the C2SP layout, and it opens back to the same checkpoint
    lines = note.split("\n")
    assert lines[:4] == [ORIGIN, "3", base64.b64encode(checkpoint.root_hash).decode(), ""]
    assert lines[4].startswith(f"\u2014 {ORIGIN} ")
    assert note.endswith("\n")
    assert open_checkpoint(note, signer.verifier(), origin=ORIGIN) == checkpoint
    assert open_checkpoint(note.encode("utf-8"), [signer.verifier()]) == checkpoint


def test_checkpoint_with_extensions_and_empty_tree() -> None:
    signer = _signer()
    checkpoint = Checkpoint(origin=ORIGIN, size=0, root_hash=EMPTY_ROOT, extensions=("ext 1",))
    note = sign_checkpoint(checkpoint, signer)
    assert note.startswith(f"{ORIGIN}\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next 1\n\n")
    assert open_checkpoint(note, signer.verifier()) == checkpoint


def test_every_one_byte_edit_of_the_body_fails() -> None:
    signer = _signer()
    note = sign_checkpoint(_checkpoint(), signer)
    body_end = note.index("\n\n") + 1
    for i in range(body_end):
        for replacement in {"0", "x", "\n"} - {note[i]}:
            edited = note[:i] + replacement + note[i + 1 :]
            with pytest.raises(NoteError):
                open_checkpoint(edited, signer.verifier())


def test_one_bit_flip_of_the_signature_fails() -> None:
    signer = _signer()
    note = sign_checkpoint(_checkpoint(), signer)
    head, sig_b64 = note[:-1].rsplit(" ", 1)
    blob = bytearray(base64.b64decode(sig_b64))
    blob[10] ^= 0x01
    tampered = f"{head} {base64.b64encode(bytes(blob)).decode()}\n"
    with pytest.raises(InvalidSignatureError):
        open_checkpoint(tampered, signer.verifier())


def test_wrong_key_fails() -> None:
    # Same name, different key: the key ID differs, so it is an unknown key
    note = sign_checkpoint(_checkpoint(), _signer(seed=1))
    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(note, _signer(seed=2).verifier())


def test_signature_by_trusted_key_id_that_does_not_verify_fails() -> None:
    # A line claiming a trusted name and key ID but signed by another key
    trusted = _signer(seed=1)
    forger = _signer(seed=2)
    text = _checkpoint().body()
    forged = trusted.key_id.to_bytes(4, "big") + forger.sign(text.encode())
    note = f"{text}\n\u2014 {ORIGIN} {base64.b64encode(forged).decode()}\n"
    with pytest.raises(InvalidSignatureError):
        open_checkpoint(note, trusted.verifier())
    # ...even when a valid trusted signature is also present (reject the whole note)
    valid_line = sign_note(text, trusted)[len(text) + 1 :]
    with pytest.raises(InvalidSignatureError):
        open_checkpoint(note + valid_line, trusted.verifier())


def test_unknown_key_id_fails() -> None:
    signer = _signer()
    note = sign_checkpoint(_checkpoint(), signer)
    head, sig_b64 = note[:-1].rsplit(" ", 1)
    blob = bytearray(base64.b64decode(sig_b64))
    blob[0] ^= 0xFF  # same name, other key ID
    unknown = f"{head} {base64.b64encode(bytes(blob)).decode()}\n"
    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(unknown, signer.verifier())
    renamed = note.replace(f"\u2014 {ORIGIN} ", "\u2014 other.example/log ")
    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(renamed, signer.verifier())


def test_rotation_two_signatures_verify_with_either_key() -> None:
    # Given a checkpoint signed by the old and the new log key during a rotation
    old_key = _signer(seed=1)
    new_key = _signer(seed=2)
    checkpoint = _checkpoint(5)
    note = sign_checkpoint(checkpoint, [old_key, new_key])
    assert note.count("\u2014 ") == 2
    # Then a verifier trusting either key (or both) accepts it
    for trusted in ([old_key.verifier()], [new_key.verifier()]):
        opened = open_note(note, trusted)
        assert len(opened.verified) == 1
        assert len(opened.unverified) == 1
        assert open_checkpoint(note, trusted) == checkpoint
    both = open_note(note, [old_key.verifier(), new_key.verifier()])
    assert {s.key_id for s in both.verified} == {old_key.key_id, new_key.key_id}
    # And a verifier trusting neither refuses it
    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(note, [_signer(seed=3).verifier()])
    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(note, [])


def test_origin_is_pinned() -> None:
    signer = _signer()
    note = sign_checkpoint(_checkpoint(), signer)
    with pytest.raises(CheckpointError):
        open_checkpoint(note, signer.verifier(), origin="d2r.example/audit/beta")


# --- malformed notes ------------------------------------------------------------------

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _set_unused_bit(last_char: str) -> str:
    """Flip a padding bit of the last base64 digit: same bytes, non-canonical text."""
    return _B64[_B64.index(last_char) ^ 1]


def test_malformed_notes_are_refused() -> None:
    signer = _signer()
    verifier = signer.verifier()
    note = sign_checkpoint(_checkpoint(), signer)
    text, sig_line = note.split("\n\n")
    cases = {
        "trailing garbage": note + "garbage",
        "trailing garbage line": note + "garbage\n",
        "trailing blank line": note + "\n",
        "no final newline": note[:-1],
        "no blank line": text + "\n" + sig_line,
        "hyphen not em dash": note.replace("\u2014", "-"),
        "no space after dash": note.replace("\u2014 ", "\u2014"),
        "carriage return": note.replace("\n", "\r\n"),
        "tab": note.replace(ORIGIN, ORIGIN + "\t"),
        "nul": note.replace(ORIGIN, ORIGIN + "\x00"),
        "bad base64": note.replace("=\n", "!\n"),
        "non-canonical base64": note[:-3] + _set_unused_bit(note[-3]) + "=\n",
        "short signature": f"{text}\n\n\u2014 {ORIGIN} AAAA\n",
        "empty text": f"\n\n{sig_line}",
        "only signatures": sig_line,
        "missing name": note.replace(f"\u2014 {ORIGIN} ", "\u2014  "),
        "empty": "",
        "too many signatures": text + "\n\n" + sig_line * 101,
    }
    for label, bad in cases.items():
        with pytest.raises(NoteError):
            open_checkpoint(bad, verifier)
            pytest.fail(label)
    with pytest.raises(MalformedNoteError):
        open_note(b"\xff\xfe" + note.encode(), verifier)
    with pytest.raises(MalformedNoteError):
        open_note(note.replace(ORIGIN, ORIGIN + "\ud800"), verifier)


def test_malformed_checkpoint_bodies_are_refused() -> None:
    signer = _signer()
    verifier = signer.verifier()
    good_root = base64.b64encode(_checkpoint().root_hash).decode()
    bodies = [
        f"{ORIGIN}\n3\n",  # missing root hash
        f"{ORIGIN}\n03\n{good_root}\n",  # leading zero
        f"{ORIGIN}\n+3\n{good_root}\n",  # sign
        f"{ORIGIN}\n\u0663\n{good_root}\n",  # non-ASCII digit
        f"{ORIGIN}\n{1 << 64}\n{good_root}\n",  # over 64 bits
        f"{ORIGIN}\n3\n{base64.b64encode(b'x' * 31).decode()}\n",  # short root
        f"{ORIGIN}\n3\n{good_root[:-1]}\n",  # bad base64
        f"{ORIGIN}\n3\n{good_root}\n\next\n",  # empty extension line
        f"\n3\n{good_root}\n",  # empty origin
    ]
    for body in bodies:
        with pytest.raises(CheckpointError):
            open_checkpoint(sign_note(body, signer), verifier)
    with pytest.raises(CheckpointError):
        Checkpoint(origin=ORIGIN, size=-1, root_hash=EMPTY_ROOT)
    with pytest.raises(CheckpointError):
        Checkpoint(origin=ORIGIN, size=0, root_hash=EMPTY_ROOT, extensions=("",))
    with pytest.raises(MalformedNoteError):
        sign_note("no final newline", signer)
