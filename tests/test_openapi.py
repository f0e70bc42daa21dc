"""The committed OpenAPI document matches the code, so API changes are deliberate."""

from __future__ import annotations

from tools.openapi import TARGET, render


def test_committed_openapi_document_is_current() -> None:
    assert TARGET.read_text() == render(), (
        "The API changed: review the difference, then run `make openapi` and commit "
        "docs/api/openapi.yaml."
    )
