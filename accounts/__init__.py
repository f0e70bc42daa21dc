"""Accounts: a workspace's people and machines — roles, API keys, tokens, SSO (ADR 0002)."""
