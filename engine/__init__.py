"""After-sales negotiation policy engine. Public API: see engine/api.py and docs/design.md."""
