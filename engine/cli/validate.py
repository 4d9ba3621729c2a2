"""`aftersale validate [PATH ...] [--format text|json]`: is the policy valid?

PATH: policy directories (their top-level `*.yaml`) and/or policy files, checked together as one
bundle; default the bundled `rules/` directory. Exit 0 and a one-line summary when valid; exit 1
and one line per problem (`file:line:column: path: message`) when not. `--format github` prints
each problem as a GitHub Actions annotation (`::error file=…,line=…,col=…::…`) so it shows at its
line in a pull request.

Hook for steps past loading (the lead's compile + cross-check): append a callable
`fn(bundle) -> Iterable[Diagnostic]` to `EXTRA_CHECKS` (or raise PolicyError from it); it runs only
on a bundle that loaded cleanly, and its diagnostics are reported like the loader's. A check that
belongs to loading itself (every caller of `engine.bundle.load_directory` wants it) should instead
be registered with `engine.checks.register_bundle_check`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

from engine.policy.bundle import Bundle, load_files, policy_files
from engine.cli.output import diagnostic_annotation, emit_json
from engine.core.problems import Diagnostic, sort_diagnostics
from engine.core.errors import PolicyError
from engine.core.resources import default_rules_dir
from engine.api import engine_builds
from engine.pipeline.stages import CROSSCHECK_FACTS

EXTRA_CHECKS: list[Callable[[Bundle], Iterable[Diagnostic]]] = [engine_builds]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser("validate", help="check policy files (schema, references, versions)",
                                   description=__doc__.split("\n\n")[1])
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="policy directory or file (default: the bundled rules/ directory)")
    parser.add_argument("--format", choices=("text", "json", "github"), default="text",
                        help="output format (default text; github: annotations for GitHub Actions)")
    parser.set_defaults(func=run)


def default_paths() -> list[Path]:
    """The bundled rules/ (beside the engine package, or $AFTERSALE_RULES), else ./rules."""
    bundled = default_rules_dir()
    if not bundled.is_dir():
        return [Path("rules")]
    try:  # show `rules/2024-05-31.yaml`, not an absolute path, when run from the checkout
        return [bundled.resolve().relative_to(Path.cwd().resolve())]
    except ValueError:
        return [bundled]


def collect_files(paths: list[Path]) -> tuple[list[Path], list[Diagnostic]]:
    files: list[Path] = []
    problems: list[Diagnostic] = []
    for path in paths:
        if path.is_dir():
            found = policy_files(path)
            if not found:
                problems.append(Diagnostic("no_policy_files", "no `*.yaml` policy files in the directory",
                                           str(path), 1, 1, ""))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Diagnostic("not_found", "no such file or directory", str(path), 1, 1, ""))
    return files, problems


def validate(paths: list[Path]) -> tuple[Bundle | None, list[Diagnostic]]:
    """Load the paths as one bundle and run EXTRA_CHECKS; (bundle or None, sorted problems)."""
    files, problems = collect_files(paths)
    if not files:
        return None, sort_diagnostics(problems)
    try:
        bundle = load_files(files, root=paths[0] if len(paths) == 1 and paths[0].is_dir() else None)
    except PolicyError as exc:
        return None, sort_diagnostics(problems + exc.diagnostics)
    if problems:  # a missing PATH: the files that exist were still checked, above
        return None, sort_diagnostics(problems)
    for check in EXTRA_CHECKS:
        try:
            problems.extend(check(bundle))
        except PolicyError as exc:
            problems.extend(exc.diagnostics)
    return bundle, sort_diagnostics(problems + list(bundle.warnings))


def run(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths] or default_paths()
    bundle, problems = validate(paths)
    errors = [p for p in problems if p.severity == "error"]
    if args.format == "json":
        emit_json({
            "valid": not errors,
            "versions": [{"version": d.version, "file": d.file, "effective_from": d.data["effective_from"]}
                         for d in bundle.documents] if bundle else [],
            "content_hash": bundle.content_hash if bundle else None,
            "problems": [p.to_json() for p in problems],
        })
    elif args.format == "github":
        for problem in problems:
            print(diagnostic_annotation(problem))
        print(_summary(bundle, problems, errors))
    else:
        for problem in problems:
            print(problem.format())
        if errors:
            files = len({p.file for p in errors})
            print(f"aftersale validate: {len(errors)} problem(s) in {files} file(s)", file=sys.stderr)
        else:
            assert bundle is not None
            versions = bundle.versions
            span = f"{versions[0]} .. {versions[-1]}" if len(versions) > 1 else versions[0]
            print(f"ok: {len(versions)} version(s) ({span}), compiled, cross-checked on "
                  f"{CROSSCHECK_FACTS} facts each, outcomes complete, content hash {bundle.content_hash}")
    return 1 if errors else 0


def _summary(bundle: Bundle | None, problems: list[Diagnostic], errors: list[Diagnostic]) -> str:
    if errors:
        return f"aftersale validate: {len(errors)} problem(s) in {len({p.file for p in errors})} file(s)"
    assert bundle is not None
    return f"ok: {len(bundle.versions)} version(s), content hash {bundle.content_hash}"
