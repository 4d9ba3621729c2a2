"""Checks over policy documents and bundles, each a small generator of `Diagnostic`s.

Two kinds, two registries:

- document checks, `fn(document) -> Iterable[Diagnostic]`, run on one `engine.bundle.PolicyDocument`
  after it passed the JSON-Schema check (`engine/checks/schema.py`), so a check may rely on the
  document's shape and only looks at meaning (`engine/checks/semantic.py`);
- bundle checks, `fn(bundle) -> Iterable[Diagnostic]`, run on an `engine.bundle.Bundle` once every
  document in it is valid (`engine/checks/versions.py`; the history engineer's
  `engine/checks/declared_changes.py` plugs in the same way).

A module registers with the decorators below. Every module of this package is imported when the
package is (see the end of this file), so a new check module needs no edit elsewhere; an import
error in one is raised, not hidden.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable, Iterable

from engine.core.problems import Diagnostic

DocumentCheck = Callable[[Any], Iterable[Diagnostic]]
BundleCheck = Callable[[Any], Iterable[Diagnostic]]

_DOCUMENT_CHECKS: list[DocumentCheck] = []
_BUNDLE_CHECKS: list[BundleCheck] = []


def register_document_check(fn: DocumentCheck) -> DocumentCheck:
    """Register `fn(document)` (usable as a decorator). Registering twice is a no-op."""
    if fn not in _DOCUMENT_CHECKS:
        _DOCUMENT_CHECKS.append(fn)
    return fn


def register_bundle_check(fn: BundleCheck) -> BundleCheck:
    """Register `fn(bundle)` (usable as a decorator). Registering twice is a no-op."""
    if fn not in _BUNDLE_CHECKS:
        _BUNDLE_CHECKS.append(fn)
    return fn


def document_checks() -> tuple[DocumentCheck, ...]:
    return tuple(_DOCUMENT_CHECKS)


def bundle_checks() -> tuple[BundleCheck, ...]:
    return tuple(_BUNDLE_CHECKS)


def check_document(document: Any, fast_schema: bool = False) -> list[Diagnostic]:
    """Every problem in one document: the schema's if any (then meaning is not checked: the
    semantic checks rely on the shape), else every registered document check's. `fast_schema`:
    the compiled schema validator first (engine/policy/checks/schema.py; same diagnostics)."""
    from engine.policy.checks.schema import schema_diagnostics

    problems = list(schema_diagnostics(document, fast=fast_schema))
    if problems:
        return problems
    for check in _DOCUMENT_CHECKS:
        problems.extend(_run(check, document, document.file))
    return problems


def check_bundle(bundle: Any) -> list[Diagnostic]:
    """Every problem the registered bundle checks find (documents assumed valid)."""
    problems: list[Diagnostic] = []
    anchor = bundle.documents[0].file if bundle.documents else ""
    for check in _BUNDLE_CHECKS:
        problems.extend(_run(check, bundle, anchor))
    return problems


def _run(check: Callable[..., Any], subject: Any, file: str) -> list[Diagnostic]:
    # A crashing check is a bug in the checker, not in the policy. It is reported as a diagnostic
    # (the run still lists every other problem, and tests fail on it) rather than a traceback.
    try:
        return list(check(subject))
    except Exception as exc:  # noqa: BLE001 - see above
        name = f"{check.__module__}.{check.__qualname__}"
        return [Diagnostic("check_crashed", f"check `{name}` failed: {type(exc).__name__}: {exc}",
                           file, 1, 1, "", "this is a bug in the checker, not in the policy")]


def _import_check_modules() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_import_check_modules()
