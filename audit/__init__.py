"""Audit: append-only hash-chained log, Merkle checkpoints, receipts, exports."""
