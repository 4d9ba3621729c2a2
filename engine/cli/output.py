"""Shared output helpers for CLI commands: JSON pretty on a terminal, compact in a pipe."""
from __future__ import annotations

import json
import sys
from typing import Any, TextIO


def emit_json(data: Any, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    if stream.isatty():
        text = json.dumps(data, ensure_ascii=False, indent=2)
    else:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    stream.write(text + "\n")


def read_json_arg(path: str, what: str) -> Any:
    """Read JSON from a file path or `-` (stdin); raise InputError naming the file on failure."""
    from engine.core.errors import InputError
    from engine.core.problems import Problem

    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    except OSError as exc:
        raise InputError([Problem("unreadable", f"cannot read {what} `{path}`: {exc.strerror}")], f"cannot read {what}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError([Problem("malformed_json", f"{what} `{path}` is not JSON: line {exc.lineno} column {exc.colno}: {exc.msg}")],
                         f"malformed {what}") from None


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(level: str, message: str, file: str | None = None, line: int | None = None,
                      col: int | None = None, title: str | None = None) -> str:
    """One GitHub Actions workflow command (`::error file=...,line=...,col=...::message`): the
    problem shows as an annotation at its line in the pull request's diff. Escaped as the runner
    expects (`%`, CR, LF in the message; also `:` and `,` in the properties)."""
    properties = [f"{name}={_escape_property(str(value))}"
                  for name, value in (("file", file), ("line", line), ("col", col), ("title", title))
                  if value is not None and value != ""]
    head = f"::{level} {','.join(properties)}" if properties else f"::{level}"
    return f"{head}::{_escape_data(message)}"


def diagnostic_annotation(problem: Any) -> str:
    """A located Diagnostic (engine.core.problems) as an annotation."""
    level = "error" if problem.severity == "error" else "warning"
    message = f"{problem.path or '/'}: {problem.message}" + (f" (hint: {problem.hint})" if problem.hint else "")
    return github_annotation(level, message, problem.file, problem.line, problem.column, problem.code)
