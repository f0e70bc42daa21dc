"""Analytics: rollups, trends, degradation, SPC, dashboards."""
