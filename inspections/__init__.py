"""Inspections: sites, assets, scans, alignment, deviation, QC."""
