"""Versions side by side: loading single versions, the changelog, the cross-version regression, impact replay and the synthetic corpus."""
