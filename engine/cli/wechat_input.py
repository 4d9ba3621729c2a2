"""`--input wechat` for the decide / check CLI: a file `{"order": <platform payload>, "context": {...}}`.

`order` is the getaftersaleorder response (or its after_sale_order object), `context` what the
platform does not keep (see docs/wechat.md). Errors point into the file: `/order/after_sale_order/...`,
`/context/...`.
"""
from __future__ import annotations

from typing import Any

from engine.core.errors import InputError
from engine.core.problems import Problem
from engine.wechat.order import ticket_from_platform
from engine.core.jsonschema_errors import json_type

FILE_KEYS = ("order", "context")


def load_platform_ticket(path: str, policy: Any = None) -> dict[str, Any]:
    """Ticket facts from a platform input file (`-` reads stdin). `policy`: as for
    `ticket_from_platform` (a Policy or an Engine; None uses the bundled rules)."""
    from engine.cli.output import read_json_arg

    return platform_ticket_from_document(read_json_arg(path, "platform input"), policy)


def platform_ticket_from_document(document: Any, policy: Any = None,
                                  warnings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise InputError([Problem("wrong_type", f"a platform input file holds an object {{\"order\": ..., \"context\": ...}}, "
                                      f"not {json_type(document)}", "/")], "invalid platform input")
    problems = [Problem("missing_field", f"`{key}` is required", f"/{key}")
                for key in FILE_KEYS if key not in document]
    problems += [Problem("unknown_field", f"unknown field `{key}` (known: {', '.join(FILE_KEYS)})", f"/{key}")
                 for key in document if key not in FILE_KEYS]
    if problems:
        raise InputError(problems, "invalid platform input")
    return ticket_from_platform(document["order"], document["context"], policy=policy,
                                base="/order", context_base="/context", warnings=warnings)
