"""Checks across the versions of a bundle: one file per version, in time order."""
from __future__ import annotations

from typing import Any, Iterator

from engine.policy.checks import register_bundle_check
from engine.core.problems import Diagnostic


@register_bundle_check
def unique_versions(bundle: Any) -> Iterator[Diagnostic]:
    first: dict[str, Any] = {}
    for document in sorted(bundle.documents, key=lambda d: (d.path.name, d.file)):
        if document.version in first:
            yield document.diagnostic("duplicate_version", "/version",
                                      f"version `{document.version}` is also defined in {first[document.version].file}")
        else:
            first[document.version] = document


@register_bundle_check
def effective_from_increases(bundle: Any) -> Iterator[Diagnostic]:
    """In file-name order, each version starts strictly after the one before: the file names (the
    dates) and the instants must tell the same story, or `version_at` would be ambiguous."""
    ordered = sorted(bundle.documents, key=lambda d: (d.path.name, d.file))
    for before, after in zip(ordered, ordered[1:]):
        if before.effective_from is None or after.effective_from is None:
            continue
        if after.effective_from <= before.effective_from:
            yield after.diagnostic(
                "version_order", "/effective_from",
                f"effective_from `{after.data['effective_from']}` is not after `{before.data['effective_from']}` "
                f"of the previous version ({before.file})")
