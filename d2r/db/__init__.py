"""PostgreSQL backend that runs every statement under the current tenant's role.

See `d2r.db.base` and ADR 0001.
"""
