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
