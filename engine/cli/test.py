"""`aftersale test [PATH ...]`: run the policy test cases (default: the rules directory's `tests/`).

Exit 0 when every case passes, 1 when one fails (or a case file is malformed: located problems
on stderr). A case marked `known_issue` that still fails is reported (XFAIL) but does not fail the
run; one that now passes (XPASS) does. `--coverage` adds, per version, the rules no case fired.

Then the regression across versions (engine/regression.py): every case's ticket is decided under
each pair of adjacent versions, and every decision that differs must be explained by a declared
change of the newer version naming that action in `affects_actions`; an unexplained one fails the
run and is printed with the ticket and both answers (`--no-regression` skips it; it does not run
with `--http`: it is a property of the local rules, not of a deployment).

`--http URL` asks a running decision service (`aftersale serve`, e.g. a staging deployment) instead
of an in-process engine (engine/policytest_http.py). Rule ids (for `covers`, `fired`, coverage)
still come from the local rules (`--rules`); a warning says when the service serves other rules.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import argparse
import json
import sys
from pathlib import Path

from engine.cli.output import diagnostic_annotation, emit_json, github_annotation

if TYPE_CHECKING:
    from engine.core.problems import Diagnostic
    from engine.policytests.http import HttpEngine
    from engine.policytests.runner import CaseResult


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "test", help="run the policy test cases (rules/tests/*.yaml)",
        description="Run policy test cases against the policy versions; print each failure with "
                    "its file:line, expected and actual.")
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="case files or directories (default: RULES/tests)")
    parser.add_argument("--rules", metavar="DIR", help="policy directory (default: the bundled rules/)")
    parser.add_argument("--format", choices=("text", "json", "github"), default="text",
                        help="github: each failure as a GitHub Actions annotation at its case file's line")
    parser.add_argument("--coverage", action="store_true",
                        help="report, per version, the rules no case fired")
    parser.add_argument("-k", metavar="TEXT", dest="keyword",
                        help="run only the cases whose name contains TEXT")
    parser.add_argument("-v", "--verbose", action="store_true", help="list passing cases too (text)")
    parser.add_argument("--no-regression", dest="regression", action="store_false",
                        help="skip the check that decisions differing between adjacent versions are declared")
    parser.add_argument("--http", metavar="URL",
                        help="ask the decision service at URL (e.g. http://127.0.0.1:8080) instead of "
                             "an in-process engine; rule ids still come from --rules")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.api import Engine
    from engine.core.resources import default_rules_dir
    from engine.policytests.runner import coverage, format_coverage, run_cases
    from engine.history.regression import run_regression
    from engine.policytests.files import load_cases

    from engine.core.errors import PolicyError
    from engine.policytests.files import CaseFileError

    rules_dir = Path(args.rules) if args.rules else default_rules_dir()
    try:
        cases = load_cases(args.paths or [rules_dir / "tests"])
    except CaseFileError as exc:
        if args.format != "github":
            raise
        return _annotate_problems(exc.diagnostics)
    if args.keyword:
        cases = [c for c in cases if args.keyword in c.name]
    engine: Engine | HttpEngine
    if args.http:
        remote = _service(args.http, rules_dir)
        if remote is None:
            return 1
        engine = remote
    else:
        try:
            engine = Engine.from_directory(rules_dir)
        except PolicyError as exc:
            if args.format != "github":
                raise
            return _annotate_problems(exc.diagnostics)
    try:
        results = run_cases(engine, cases)
        report = coverage(engine, results) if args.coverage else None
        # The regression compares the local versions with their declared changes: a property of the
        # rules, not of a deployment, so it runs in process only.
        regression = run_regression(engine, cases) if args.regression and isinstance(engine, Engine) else None
    finally:
        engine.close()
    unexplained = regression.unexplained if regression else []
    failed = [r for r in results if not r.passed]
    known = sum(1 for r in results if r.outcome == "xfail")  # declared known issues, still failing
    if args.format == "json":
        out = {"passed": len(results) - len(failed) - known, "failed": len(failed), "known_issues": known,
               "cases": [r.to_json() for r in results]}
        if args.http:
            out["service"] = args.http
        if report is not None:
            out["coverage"] = report
        if regression is not None:
            out["regression"] = {"compared": regression.compared, "differing": len(regression.divergences),
                                 "unexplained": [d.format() for d in unexplained]}
        emit_json(out)
    elif args.format == "github":
        for r in results:
            if not r.passed:
                print(_case_annotations(r))
        for divergence in unexplained:
            print(github_annotation("error", divergence.format(full=False), divergence.case.file,
                                    divergence.case.line(), title="unexplained regression"))
        print(f"{len(results) - len(failed) - known} passed, {len(failed)} failed, {known} known issues"
              f" ({len(results)} cases)" + (f", {len(unexplained)} unexplained regression(s)" if regression else ""))
    else:
        for r in results:
            if args.verbose or r.outcome != "pass":
                print(r.format())
        if report is not None:
            print(format_coverage(report))
        if regression is not None:
            for divergence in unexplained:
                print(divergence.format())
            print(f"regression: {regression.compared} version-pair comparisons, {len(regression.divergences)} "
                  f"differing decisions, {len(unexplained)} unexplained by a declared change")
        print(f"{len(results) - len(failed) - known} passed, {len(failed)} failed, {known} known issues"
              f" ({len(results)} cases)")
    if not cases:
        print("aftersale test: no cases found", file=sys.stderr)
        return 1
    return 1 if failed or unexplained else 0


def _annotate_problems(diagnostics: list[Diagnostic]) -> int:
    for problem in diagnostics:
        print(diagnostic_annotation(problem))
    print(f"aftersale test: {len(diagnostics)} problem(s)", file=sys.stderr)
    return 1


def _case_annotations(result: CaseResult) -> str:
    """A failed case: one annotation per mismatch, at the line of the expectation that failed."""
    case = result.case
    if result.outcome == "xpass":
        return github_annotation("error", f"{case.name}: the case now passes: remove its `known_issue`",
                                 case.file, case.line(), title="known issue now passes")
    lines: list[str] = []
    if result.error:
        lines.append(github_annotation("error", f"{case.name}: error: {result.error}", case.file, case.line(),
                                       title="policy case"))
    for m in result.mismatches:
        lines.append(github_annotation(
            "error", f"{case.name}: {m.where}: expected {json.dumps(m.expected, ensure_ascii=False)}, "
                     f"got {json.dumps(m.actual, ensure_ascii=False)}", case.file, m.line, title="policy case"))
    return "\n".join(lines)


def _service(url: str, rules_dir: Path) -> HttpEngine | None:
    """An HttpEngine on `url`, once the service answered; None (after saying why) when it did not.
    The local rules give the rule ids only: if the service serves other rules, say so up front,
    since `covers`/`fired` problems and coverage would then describe the local rules."""
    from engine.policytests.http import HttpEngine, ServiceError

    engine = HttpEngine(url, rules_dir=rules_dir)
    try:
        served = engine.bundle_hash
    except ServiceError as exc:
        engine.close()
        print(f"aftersale test: cannot use the service: {exc}", file=sys.stderr)
        return None
    try:
        local = engine.local.bundle_hash
    except BaseException:  # the local rules do not load (PolicyError): main() prints it
        engine.close()
        raise
    if served != local:
        print(f"aftersale test: warning: {url} serves bundle {served[:12]}, the local rules {rules_dir} are "
              f"{local[:12]}: rule ids (covers, fired, --coverage) come from the local rules", file=sys.stderr)
    return engine
