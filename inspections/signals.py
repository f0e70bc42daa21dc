"""Events other apps may react to (they call their own services; no logic here)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent after the commit that marks a scan `processed`; kwargs: scan_id (uuid).
scan_processed = Signal()
