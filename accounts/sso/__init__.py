"""Enterprise single sign-on per workspace: SAML 2.0 (djangosaml2) and OIDC
(mozilla-django-oidc), both configured from the workspace's `SsoConfiguration` row on
every request instead of from settings. See ADR 0002, section "SSO"."""
