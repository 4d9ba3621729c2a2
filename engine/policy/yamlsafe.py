"""Safe YAML for policy files: plain data (JSON types only) plus where every node was written.

`load_yaml(source, filename)` returns `(data, positions)`. `positions[pointer]` is the 1-based
`(line, column)` of the value at that JSON pointer (`/rules/3/when`); `positions.key(pointer)` is
where its mapping key was written (what an "unknown key" diagnostic should point at).

Why not `yaml.safe_load`: it keeps no positions, lets a duplicate key silently overwrite the first,
turns `2024-05-31` into a `date`, and expands aliases without bound in any later deep walk (the
"billion laughs" document: nine nested lists of aliases is 10^9 nodes). Here the document is first
composed into nodes by PyYAML's `SafeLoader` machinery (no arbitrary tags, no Python objects), then
built by a walker that records positions, refuses duplicate keys, non-string keys, unknown tags and
merge keys, and counts every node produced through an alias. The file is size-checked before it
is read. Every failure is a located `Diagnostic` inside a `PolicyError`, never a traceback or hang.
"""
from __future__ import annotations

import os
from typing import Any

import yaml

from engine.core.problems import Diagnostic
from engine.core.errors import PolicyError

MAX_BYTES = 2 * 1024 * 1024  # a policy file is ~50 KB; 2 MiB leaves room and bounds the parser
MAX_ALIAS_NODES = 10_000  # nodes produced by expanding aliases, summed over the document
MAX_DEPTH = 64  # nesting of mappings/lists; a policy nests ~8 deep

_STR = "tag:yaml.org,2002:str"
_SCALAR_TAGS = {_STR, "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
                "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"}
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"


class Positions(dict[str, Any]):
    """pointer -> (line, column) of the value node; `key_marks` holds the keys' positions."""

    def __init__(self) -> None:
        super().__init__()
        self.key_marks: dict[str, tuple[int, int]] = {}

    def key(self, pointer: str) -> tuple[int, int] | None:
        """Where the mapping key of `pointer` was written (list items: the item itself)."""
        return self.key_marks.get(pointer) or self.get(pointer)

    def nearest(self, pointer: str, at_key: bool = False) -> tuple[int, int]:
        """The position of `pointer`, or of its closest ancestor that exists (a missing key is
        reported where its parent mapping starts)."""
        while True:
            found = self.key(pointer) if at_key else self.get(pointer)
            if found:
                return found
            if not pointer:
                return (1, 1)
            pointer = pointer.rsplit("/", 1)[0]
            at_key = False


def pointer_join(base: str, token: str | int) -> str:
    """Append one JSON-pointer token (RFC 6901 escaping of `~` and `/`)."""
    return f"{base}/{str(token).replace('~', '~0').replace('/', '~1')}"


class _AliasNode:
    """An alias occurrence: the anchored node plus where `*name` was written (PyYAML's composer
    returns the anchored node itself and forgets the alias's own mark)."""

    __slots__ = ("target", "mark")

    def __init__(self, target: yaml.Node, mark: yaml.Mark) -> None:
        self.target = target
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps dates as strings (JSON has no date type) and marks aliases."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def compose_node(self, parent: yaml.Node | None, index: Any) -> Any:  # a Node or our _AliasNode
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
            return _AliasNode(super().compose_node(parent, index), mark)  # type: ignore[arg-type]  # an alias always names a node
        return super().compose_node(parent, index)


def _make_fast_loader() -> type | None:
    """The same loader over libyaml's C scanner and parser when PyYAML was built with it (about
    4x faster: a 2 MiB file in ~2 s instead of ~8 s). Composition stays in Python (PyYAML's
    Composer, our alias marking), so nodes, marks and limits are identical; only the text of a
    syntax error would differ, and for that `load_yaml` re-parses with the pure-Python parser."""
    if not getattr(yaml, "__with_libyaml__", False):
        return None
    from yaml._yaml import CParser
    from yaml.composer import Composer
    from yaml.constructor import SafeConstructor
    from yaml.resolver import Resolver

    class _FastLoader(Composer, CParser, SafeConstructor, Resolver):
        yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

        def compose_node(self, parent: yaml.Node | None, index: Any) -> Any:  # a Node or our _AliasNode
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark  # type: ignore[union-attr]  # an alias event is next
                return _AliasNode(Composer.compose_node(self, parent, index), mark)  # type: ignore[arg-type]
            return Composer.compose_node(self, parent, index)

    return _FastLoader


_FastLoader = _make_fast_loader()


class _Stop(Exception):
    """Abort building: a limit was hit; carries the diagnostic."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic


def _position(mark: yaml.Mark | None) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


class _Builder:
    def __init__(self, loader: _Loader, filename: str, max_alias_nodes: int, max_depth: int) -> None:
        self.loader = loader
        self.filename = filename
        self.max_alias_nodes = max_alias_nodes
        self.max_depth = max_depth
        self.alias_nodes = 0
        self.open_nodes: set[int] = set()  # collections being built: an alias to one is a cycle
        self.positions = Positions()
        self.diagnostics: list[Diagnostic] = []

    def diag(self, code: str, mark: yaml.Mark | None, path: str, message: str,
             hint: str | None = None) -> Diagnostic:
        line, column = _position(mark)
        return Diagnostic(code, message, self.filename, line, column, path, hint)

    def build(self, node: Any, path: str, depth: int = 0, alias_mark: yaml.Mark | None = None) -> Any:
        if isinstance(node, _AliasNode):
            if id(node.target) in self.open_nodes:
                raise _Stop(self.diag("alias_cycle", node.mark, path,
                                      "alias refers to a node that contains it"))
            return self.build(node.target, path, depth, alias_mark or node.mark)
        if alias_mark is not None:
            self.alias_nodes += 1
            if self.alias_nodes > self.max_alias_nodes:
                raise _Stop(self.diag(
                    "alias_limit", alias_mark, path,
                    f"aliases expand to more than {self.max_alias_nodes} nodes",
                    "write the repeated content out, or use fewer nested aliases"))
        if depth > self.max_depth:
            raise _Stop(self.diag("too_deep", node.start_mark, path,
                                  f"nesting is deeper than {self.max_depth} levels"))
        self.positions.setdefault(path, _position(alias_mark or node.start_mark))
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        self.open_nodes.add(id(node))
        try:
            return self.collection(node, path, depth, alias_mark)
        finally:
            self.open_nodes.discard(id(node))

    def collection(self, node: yaml.Node, path: str, depth: int, alias_mark: yaml.Mark | None) -> Any:
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                return self.bad_tag(node, path)
            items = []
            for index, child in enumerate(node.value):
                child_path = pointer_join(path, index)
                self.positions[child_path] = _position(child.mark if isinstance(child, _AliasNode) else child.start_mark)
                items.append(self.build(child, child_path, depth + 1, alias_mark))
            return items
        if node.tag != _MAP:
            return self.bad_tag(node, path)
        assert isinstance(node, yaml.MappingNode)  # the tag says so
        return self.mapping(node, path, depth, alias_mark)

    def mapping(self, node: yaml.MappingNode, path: str, depth: int, alias_mark: yaml.Mark | None) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, yaml.Mark] = {}
        for key_node, value_node in node.value:
            key_mark = key_node.mark if isinstance(key_node, _AliasNode) else key_node.start_mark
            if isinstance(key_node, _AliasNode):
                key_node = key_node.target
            if key_node.tag == _MERGE:
                self.diagnostics.append(self.diag(
                    "merge_key", key_mark, path, "merge keys (`<<`) are not supported",
                    "write the keys out; plain anchors and aliases are fine"))
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR:
                shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "a collection"
                self.diagnostics.append(self.diag(
                    "non_string_key", key_mark, path, f"mapping key `{shown}` is not a string",
                    "quote the key"))
                continue
            key = key_node.value
            child_path = pointer_join(path, key)
            if key in first_seen:
                self.diagnostics.append(self.diag(
                    "duplicate_key", key_mark, child_path,
                    f"duplicate key `{key}` (first defined at line {first_seen[key].line + 1})",
                    "a later key would silently replace the earlier one; keep one"))
                continue
            first_seen[key] = key_mark
            self.positions.key_marks[child_path] = _position(key_mark)
            value_mark = value_node.mark if isinstance(value_node, _AliasNode) else value_node.start_mark
            self.positions[child_path] = _position(value_mark)
            result[key] = self.build(value_node, child_path, depth + 1, alias_mark)
        return result

    def scalar(self, node: yaml.ScalarNode, path: str) -> Any:
        if node.tag not in _SCALAR_TAGS:
            return self.bad_tag(node, path)
        if node.tag == _STR:
            return node.value
        return self.loader.construct_object(node)

    def bad_tag(self, node: yaml.Node, path: str) -> None:
        self.diagnostics.append(self.diag(
            "unsupported_tag", node.start_mark, path, f"tag `{node.tag}` is not allowed",
            "a policy holds plain strings, numbers, booleans, null, lists and mappings"))
        return None


def read_limited(path: str | os.PathLike[str], filename: str | None = None, max_bytes: int = MAX_BYTES) -> bytes:
    """Read a file's bytes, refusing (PolicyError) before reading if it is larger than `max_bytes`."""
    name = filename or str(path)
    try:
        size = os.stat(path).st_size
        if size > max_bytes:
            raise _too_large(name, size, max_bytes)
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)  # the file may have grown since stat
    except OSError as exc:
        raise PolicyError([Diagnostic("unreadable", f"cannot read the file: {exc.strerror or exc}",
                                      name, 1, 1, "")]) from None
    if len(data) > max_bytes:
        raise _too_large(name, None, max_bytes)
    return data


def _too_large(name: str, size: int | None, max_bytes: int) -> PolicyError:
    what = f"{size:,} bytes" if size is not None else f"more than {max_bytes:,} bytes"
    return PolicyError([Diagnostic(
        "file_too_large", f"the file is {what}; the limit is {max_bytes:,} bytes",
        name, 1, 1, "", "a policy file is tens of kilobytes; is this the right file?")])


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        raise PolicyError([Diagnostic("encoding", f"the file is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
                                      name, line, column, "")]) from None


def load_yaml(source: str | bytes | os.PathLike[str], filename: str | None = None, *,
              max_bytes: int = MAX_BYTES, max_alias_nodes: int = MAX_ALIAS_NODES,
              max_depth: int = MAX_DEPTH) -> tuple[Any, Positions]:
    """Parse one YAML document into JSON-typed data and its positions.

    `source`: a path (`os.PathLike`, e.g. `pathlib.Path`) to read, or the document itself as
    `str` / `bytes`. `filename` names it in diagnostics (default: the path, or `<string>`).
    Raises `PolicyError` with located diagnostics (all found in this file; a syntax error stops
    parsing at the first)."""
    if isinstance(source, os.PathLike):
        name = filename or os.fspath(source)
        source = read_limited(source, name, max_bytes)
    else:
        name = filename or "<string>"
    if isinstance(source, str):
        size = len(source.encode("utf-8"))
        if size > max_bytes:
            raise _too_large(name, size, max_bytes)
        text = source
    else:
        if len(source) > max_bytes:
            raise _too_large(name, len(source), max_bytes)
        text = _decode(source, name)

    if _FastLoader is not None:
        try:
            return _parse(_FastLoader, text, name, max_alias_nodes, max_depth)
        except _ParserFailed:
            pass  # re-parse with PyYAML's own parser: its messages carry context, and tests pin them
    try:
        return _parse(_Loader, text, name, max_alias_nodes, max_depth)
    except _ParserFailed as failed:
        raise PolicyError([failed.diagnostic]) from None


class _ParserFailed(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic


def _parse(loader_class: type, text: str, name: str, max_alias_nodes: int, max_depth: int) -> tuple[Any, Positions]:
    """Compose with `loader_class`, build with positions. Raises `_ParserFailed` for text that is
    not YAML, PolicyError for YAML that is not a policy document's kind of data."""
    loader = builder = None
    try:
        loader = loader_class(text)  # the reader checks for forbidden characters here
        builder = _Builder(loader, name, max_alias_nodes, max_depth)
        node = loader.get_single_node()
        data = builder.build(node, "") if node is not None else None
    except yaml.MarkedYAMLError as exc:
        raise _ParserFailed(_syntax_diagnostic(exc, name)) from None
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow
        raise _ParserFailed(_reader_diagnostic(exc, text, name)) from None
    except _Stop as stop:
        raise PolicyError((builder.diagnostics if builder else []) + [stop.diagnostic]) from None
    except RecursionError:  # the composer recurses once per nesting level
        raise PolicyError([Diagnostic("too_deep", f"nesting is deeper than {max_depth} levels",
                                      name, 1, 1, "")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if builder.diagnostics:
        raise PolicyError(builder.diagnostics)
    builder.positions.setdefault("", (1, 1))
    return data, builder.positions


def _syntax_diagnostic(exc: yaml.MarkedYAMLError, name: str) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    line, column = _position(mark)
    message = exc.problem or exc.context or "malformed YAML"
    if exc.problem and exc.context:
        where = ""
        if exc.context_mark is not None and exc.context_mark is not mark:
            where = f" started at line {exc.context_mark.line + 1}"
        message = f"{exc.problem} ({exc.context}{where})"
    hint = next((h for needle, h in _SYNTAX_HINTS if needle in message), None)
    return Diagnostic("yaml_syntax", message, name, line, column, "", hint)


# the parser's wording for the usual slips -> what to do about it
_SYNTAX_HINTS = (
    ("'\\t'", "indent with spaces; YAML does not allow tabs"),
    ("mapping values are not allowed here", "check the indentation, or quote a value that contains `: `"),
    ("found undefined alias", "define the anchor (`&name`) before using `*name`"),
    ("expected a single document", "a policy file holds one document; remove the `---` separator"),
)


def _reader_diagnostic(exc: yaml.YAMLError, text: str, name: str) -> Diagnostic:
    position = getattr(exc, "position", 0) or 0
    before = text[:position]
    line = before.count("\n") + 1
    column = position - (before.rfind("\n") + 1) + 1
    reason = getattr(exc, "reason", None) or "unreadable character"
    character = getattr(exc, "character", None)
    shown = f" (U+{character:04X})" if isinstance(character, int) else ""
    return Diagnostic("yaml_syntax", f"{reason}{shown}", name, line, column, "")
