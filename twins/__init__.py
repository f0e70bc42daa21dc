"""Digital twins: CAD revisions, twin versions per asset, comparisons, MR sessions."""
