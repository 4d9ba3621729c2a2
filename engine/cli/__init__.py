"""Command-line interface: see engine/cli/main.py."""
