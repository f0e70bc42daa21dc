"""Billing: the usage-metering ledger, quotas and plan enforcement, finance views."""
