"""Shared vocabulary and plumbing every stage uses: errors, located problems, times, the fact catalogue, bundled resources."""
