"""Request bodies: bytes → JSON → checked against `schemas/requests/*.schema.json`.

The schema files are the contract (the OpenAPI document is generated from them, see openapi.py).
Each envelope is compiled once with fastjsonschema: a valid body costs one call of generated code.
Only a body that fails goes through `jsonschema.iter_errors`, which yields *every* problem with
its location, so a client fixes all of them in one round trip. Problems are
`{path (JSON pointer into the body), code, message}`, the shape `InputError.problems` has.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import fastjsonschema
import orjson
import jsonschema
from referencing import Registry, Resource
from starlette.requests import ClientDisconnect, Request

from engine.core.jsonschema_errors import schema_problems
from engine.core.problems import Problem, unique
from engine.service.errors import ApiError

# Every schema file declares `$id` under this base; references between files are relative to it,
# and are resolved to files under the local schemas directory, never fetched.
ID_BASE = "https://aftersale-policy.local/schemas/"

ENVELOPES = ("decide", "check", "apply", "decide-batch", "wechat-decide", "wechat-check")


def pointer(parts: Iterable[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class SchemaStore:
    """Every `*.schema.json` under a directory, by `$id` (the files reference each other)."""

    def __init__(self, schemas_dir: Path) -> None:
        self.root = Path(schemas_dir)
        self.by_id: dict[str, dict[str, Any]] = {}
        self.file_of: dict[str, Path] = {}  # $id → file, relative to the schemas directory
        for path in sorted(self.root.rglob("*.schema.json")):
            document = json.loads(path.read_text(encoding="utf-8"))
            uri = document.get("$id") or self.id_for(path)
            self.by_id[uri] = document
            self.file_of[uri] = path.relative_to(self.root)

    def id_for(self, path: Path) -> str:
        return ID_BASE + path.relative_to(self.root).as_posix()

    def by_file(self, relative: str) -> dict[str, Any]:
        """The schema in `relative` (e.g. `decision.schema.json`), whatever its `$id`."""
        for uri, path in self.file_of.items():
            if path.as_posix() == relative:
                return self.by_id[uri]
        raise KeyError(relative)

    def envelope(self, name: str) -> dict[str, Any]:
        return self.by_id[f"{ID_BASE}requests/{name}.schema.json"]

    def fetch(self, uri: str) -> dict[str, Any]:
        """fastjsonschema's loader for our own ids (it asks per URI scheme)."""
        base = uri.split("#", 1)[0]
        if base in self.by_id:
            return self.by_id[base]
        raise ApiError(500, "internal_error", f"schema reference `{uri}` names no local schema file")

    def registry(self) -> Registry:
        return Registry().with_resources((uri, Resource.from_contents(doc)) for uri, doc in self.by_id.items())


TICKET_ID = ID_BASE + "ticket.schema.json"


class RequestValidator:
    """One compiled validator per envelope; `validate(name, body)` raises ApiError 422.

    The ticket is checked once per request, by the engine (`Engine.decide` validates it anyway):
    the compiled fast path takes the ticket as any object. When the engine then refuses the ticket,
    `recheck` runs the complete envelope schema, so a body whose ticket breaks the schema is
    answered exactly as if the service had checked it first (`invalid_request`, every problem).
    """

    def __init__(self, schemas_dir: Path) -> None:
        self.store = SchemaStore(schemas_dir)
        handlers = {scheme: self._fetch_without_ticket for scheme in ("https", "http")}
        self._fast: dict[str, Callable[[Any], Any]] = {}
        self._full: dict[str, jsonschema.protocols.Validator] = {}
        registry = self.store.registry()
        for name in ENVELOPES:
            schema = self.store.envelope(name)
            self._fast[name] = fastjsonschema.compile(schema, handlers=handlers, use_default=False)
            self._full[name] = jsonschema.Draft202012Validator(schema, registry=registry)

    def _fetch_without_ticket(self, uri: str) -> dict[str, Any]:
        if uri.split("#", 1)[0] == TICKET_ID:
            return {"type": "object"}  # the engine validates the ticket (see the class doc)
        return self.store.fetch(uri)

    def validate(self, name: str, body: Any) -> None:
        try:
            self._fast[name](body)
            return
        except fastjsonschema.JsonSchemaException:
            pass
        self.recheck(name, body)

    def recheck(self, name: str, body: Any) -> None:
        """Raise the 422 listing every problem of `body` against the complete schema, if any."""
        problems = unique(self.problems(name, body))
        if not problems:  # the two validators disagree: trust the complete one
            return
        raise ApiError(422, "invalid_request", "the request body does not match its schema",
                       [p.to_json() for p in problems])

    def problems(self, name: str, body: Any) -> Iterator[Problem]:
        for error in self._full[name].iter_errors(body):
            yield from schema_problems(error)


async def read_json(request: Request, limit: int) -> Any:
    """The request body as JSON. 413 past `limit` bytes (declared length first, then the bytes as
    they stream, for chunked bodies or a lying Content-Length); 400 for anything not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise ApiError(400, "bad_request", f"Content-Length `{declared[:40]}` is not a number") from None
        if length > limit:
            raise ApiError(413, "body_too_large", f"the body is {length} bytes; the limit is {limit}")
    # straight from the ASGI channel: `request.stream()` is an async generator, measurably dearer
    chunks: list[bytes] = []
    size = 0
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return parse_json(data)


def parse_json(data: bytes) -> Any:
    """orjson: ~10x faster than `json.loads` on a ticket, and stricter where the standard library
    lets through what later breaks an answer: a lone surrogate escape (`"\\ud800"`, which cannot
    be written back as UTF-8), NaN and Infinity (not JSON), nesting past 1,024 levels."""
    if not data.strip():
        raise ApiError(400, "malformed_json", "the body is empty; expected a JSON object")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "malformed_json", f"the body is not JSON: {exc}") from None
