"""The contract between credential resolvers and the tenants middleware."""

from __future__ import annotations


class CredentialError(Exception):
    """A credential that is present but not acceptable; `detail` says why."""

    def __init__(self, detail: str, *, slug: str = "authentication-failed") -> None:
        super().__init__(detail)
        self.detail = detail
        self.slug = slug
