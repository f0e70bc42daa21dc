"""Django-free cryptographic core of the tamper-evident audit log.

``merkle``: RFC 6962 / 9162 tree hashing, inclusion and consistency proofs.
``checkpoint``: C2SP tlog checkpoints in Ed25519-signed C2SP notes.
"""
