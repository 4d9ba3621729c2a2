"""What the draft child process does (engine/workbench/drafts.py runs these, never the server).

Each job gets the draft's text, the name to show for it and the served rules directory (read
only). The draft is written to a private temporary directory and loaded with the served versions
beside it (a draft of an existing version replaces it), through the same loader and checks as
`aftersale validate` (size, alias, depth limits; schema; meaning; declared changes; compile and
cross-check), so its problems are the same located errors, reported under the draft's own name.
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Iterator

from engine.api import Engine, engine_builds
from engine.core.errors import EngineError, PolicyError
from engine.core.problems import Diagnostic, sort_diagnostics
from engine.core.timeutil import now as wall_clock, parse_aware
from engine.policy.bundle import load_files, policy_files
from engine.policy.diff import render as diffrender
from engine.policy.diff.grouped import group_changes, spanned_rows
from engine.policy.diff.semantic import diff_documents
from engine.policy.yamlsafe import MAX_BYTES, load_yaml
from engine.workbench import sample

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_SERVED: dict[tuple[Any, ...], Engine] = {}  # the served rules as this child last saw them


DEFAULT_NAME = "draft.yaml"


def display_name(name: str) -> str:
    base = _SAFE_NAME.sub("_", Path(name or DEFAULT_NAME).name) or DEFAULT_NAME
    return base if base.endswith((".yaml", ".yml")) else base + ".yaml"


def file_name(text: str, name: str) -> str:
    """The name a pasted draft is checked under: as given, or, for the default name, the file
    its `version` asks for (`version` must match the file name, as in rules/)."""
    if name and name != DEFAULT_NAME:
        return display_name(name)
    match = re.search(r"""^version:\s*["']?([0-9A-Za-z._-]+)["']?\s*$""", text[:4096], re.MULTILINE)
    return display_name(f"{match.group(1)}.yaml" if match else DEFAULT_NAME)


@contextmanager
def _draft_file(text: str, name: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="aftersale-draft-") as directory:
        path = Path(directory) / display_name(name)
        path.write_bytes(text.encode("utf-8"))
        yield path


def _draft_version(path: Path, shown: str) -> str | None:
    """The draft's `version`, None when it does not parse (the bundle load then reports why)."""
    try:
        data, _ = load_yaml(path.read_bytes() if path.stat().st_size <= MAX_BYTES else b"", shown)
    except PolicyError:
        return None
    version = data.get("version") if isinstance(data, dict) else None
    return str(version) if version is not None else None


def _bundle_paths(path: Path, shown: str, rules_dir: str) -> list[Path]:
    """The served policy files with the draft in place of the version it redefines."""
    version = _draft_version(path, shown)
    served = []
    for other in policy_files(rules_dir):
        try:
            data, _ = load_yaml(other.read_bytes(), str(other))
        except PolicyError:
            continue
        if not (isinstance(data, dict) and str(data.get("version")) == version) and other.stem != version:
            served.append(other)
    return served + [path]


def _shown(diagnostics: list[Diagnostic], path: Path, shown: str) -> list[dict[str, Any]]:
    out = []
    for d in sort_diagnostics(diagnostics):
        item = d.to_json()
        item["file"] = shown if d.file == str(path) else Path(d.file).name
        item["draft"] = d.file == str(path)
        out.append(item)
    return out


def validate(text: str, name: str, rules_dir: str) -> dict[str, Any]:
    name = file_name(text, name)
    shown = display_name(name)
    with _draft_file(text, name) as path:
        try:
            bundle = load_files(_bundle_paths(path, shown, rules_dir))
        except PolicyError as exc:
            return {"valid": False, "file": shown, "problems": _shown(exc.diagnostics, path, shown)}
        problems = engine_builds(bundle) + list(bundle.warnings)
        errors = [p for p in problems if p.severity == "error"]
        draft = next(d for d in bundle.documents if d.path == path)
        return {"valid": not errors, "file": shown, "version": draft.version,
                "effective_from": draft.data.get("effective_from"), "problems": _shown(problems, path, shown)}


def _draft_engine(text: str, name: str, rules_dir: str) -> tuple[Engine, str, dict[str, Any]]:
    shown = display_name(name)
    with _draft_file(text, name) as path:
        bundle = load_files(_bundle_paths(path, shown, rules_dir))  # PolicyError: the caller says "fix it first"
        draft = next(d for d in bundle.documents if d.path == path)
        return Engine(bundle), draft.version, draft.data


def _served(rules_dir: str) -> Engine:
    files = policy_files(rules_dir)
    key = (rules_dir,) + tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    if key not in _SERVED:
        for old in _SERVED.values():
            old.close()
        _SERVED.clear()
        _SERVED[key] = Engine.from_directory(rules_dir)
    return _SERVED[key]


def _refused(exc: EngineError, name: str) -> dict[str, Any]:
    shown = display_name(name)
    problems = [dict(d.to_json(), file=shown if "aftersale-draft-" in d.file else Path(d.file).name)
                for d in getattr(exc, "diagnostics", [])][:20]
    return {"ok": False, "message": f"草稿未通过校验，请先修正（{len(problems)} 个问题）", "problems": problems,
            "file": shown}


def cases(text: str, name: str, rules_dir: str) -> dict[str, Any]:
    name = file_name(text, name)
    from engine.policytests.files import load_cases
    from engine.policytests.runner import run_cases

    try:
        engine, version, _data = _draft_engine(text, name, rules_dir)
    except PolicyError as exc:
        return _refused(exc, name)
    try:
        results = run_cases(engine, load_cases([Path(rules_dir) / "tests"]))
    finally:
        engine.close()
    rows = [r.to_json() for r in results]
    failed = [r for r in results if not r.passed]
    return {"ok": True, "version": version, "total": len(rows), "failed": len(failed),
            "passed": len(rows) - len(failed),
            "cases": [dict(row, text=r.format()) for row, r in zip(rows, results)]}


def _in_force(served: Engine) -> str:
    try:
        return served.version_at(wall_clock())
    except EngineError:
        return served.versions()[0].version


def impact(text: str, name: str, rules_dir: str) -> dict[str, Any]:
    name = file_name(text, name)
    served = _served(rules_dir)
    against = _in_force(served)
    try:
        engine, version, _data = _draft_engine(text, name, rules_dir)
    except PolicyError as exc:
        return _refused(exc, name)
    try:
        tickets = sample.corpus(served.document(against))
        return dict(sample.replay(served, against, engine, version, tickets), ok=True)
    finally:
        engine.close()


def diff(text: str, name: str, rules_dir: str) -> dict[str, Any]:
    """The draft against the version in force now: grouped JSON and the Markdown for the review."""
    name = file_name(text, name)
    served = _served(rules_dir)
    against = _in_force(served)
    shown = display_name(name)
    with _draft_file(text, name) as path:
        try:
            data, _ = load_yaml(path.read_bytes(), shown)
        except PolicyError as exc:
            return _refused(exc, name)
    if not isinstance(data, dict):
        return {"ok": False, "message": "草稿不是一个 YAML 映射（mapping）", "problems": []}
    old = served.document(against)
    changes = diff_documents(old, data)
    known = [(v.version, v.effective_from.timestamp(), served.document(v.version)) for v in served.versions()]
    start = served.policy(against).effective_from.timestamp()
    try:
        new_start: float | None = parse_aware(str(data.get("effective_from"))).timestamp()
    except (TypeError, ValueError):
        new_start = None
    rows = spanned_rows(known, start, (str(data.get("version", shown)), new_start, data))
    groups = group_changes(changes, rows)
    return {"ok": True, "from": against, "to": str(data.get("version", shown)),
            "groups": [g.to_json() for g in groups],
            "markdown": diffrender.to_markdown(changes, against, f"{data.get('version', shown)}（草稿）", rows=rows)}
