"""The SAML authentication backend, light to import.

Django imports every configured backend on each `authenticate()` call (any password or
token login). This one imports the SAML stack only when a verified SAML response is
being turned into a user, which happens inside the SAML endpoints anyway.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend


class WorkspaceSaml2Backend(ModelBackend):
    """Authenticates the person of a verified SAML response into this workspace (JIT)."""

    def authenticate(self, request: Any, session_info: Any = None, attribute_mapping: Any = None,
                     create_unknown_user: Any = True, assertion_info: Any = None,
                     **kwargs: Any) -> Any:
        if request is None or session_info is None:
            return None
        from accounts.sso.saml import WorkspaceSaml2Backend as Saml2Implementation

        return Saml2Implementation().authenticate(
            request, session_info=session_info, attribute_mapping=attribute_mapping,
            create_unknown_user=create_unknown_user, assertion_info=assertion_info, **kwargs)
