"""Tenants: workspaces (one PostgreSQL schema each), domains, plans, DB roles."""
