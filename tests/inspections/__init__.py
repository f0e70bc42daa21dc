"""Tests of the inspections app."""
