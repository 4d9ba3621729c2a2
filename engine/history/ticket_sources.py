"""Where impact's tickets come from: JSONL and Parquet files, globs and directories, cut into
partitions.

A partition says where its tickets are: a byte range of a JSONL file (with the number of its first
line), or a run of rows in one row group of a Parquet file. When the workers can read the client's
files (the same size and modification time seen from every worker: the machine's own LocalCluster,
or a shared filesystem), a task carries only that address and the worker reads the bytes itself:
the client neither reads nor ships the corpus. Otherwise (no shared filesystem, or `--ship-tickets`)
the client reads each partition's bytes (JSONL lines, or a Parquet `ticket` column through pyarrow)
and ships them with the task. A worker that finds the file different from what the client saw
returns the partition unread and the client ships it instead (engine/history/dask_run.py).
Decoding and validation happen on the worker, one row at a time, so a bad line or row costs one
located problem (file + line, or file + row), never the partition.

Parquet layout: one ticket per row, as JSON text in a column named `ticket` (other columns, such as
`ticket_id` or `scenario` written by `aftersale corpus`, are there for querying and are ignored
here). JSON text keeps a ticket byte-for-byte what the JSONL line holds: nested Parquet structs
would turn absent fields into nulls, which the ticket schema treats differently.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

from engine.core.errors import InputError

Kind = Literal["jsonl", "parquet"]
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
PARQUET_SUFFIXES = (".parquet", ".pq")
TICKET_COLUMN = "ticket"


@dataclass(frozen=True)
class Source:
    path: str  # as given or found; shown in problems
    kind: Kind


Fingerprint = tuple[int, int]  # (size in bytes, modification time in ns) of a file as the client saw it


@dataclass(frozen=True)
class Partition:
    """A run of consecutive lines (JSONL) or rows (Parquet) of one source."""

    index: int  # position in the run: partitions are numbered in reading order
    source: int  # index into the run's sources
    path: str
    kind: Kind
    first: int  # 1-based number of the payload's first line (JSONL) or row (Parquet)
    rows: int  # lines (blank ones included) or rows in the payload
    payload: Any = None  # shipped: JSONL raw bytes, Parquet a pyarrow Table with the `ticket` column; None: read by path
    # where the tickets are in the file: JSONL (byte offset, byte length); Parquet (row group, row in it)
    span: tuple[int, int] = (0, 0)
    fingerprint: Fingerprint = (0, 0)  # the file as the client saw it: a worker reads it only if it matches
    absolute: str = ""  # the file's absolute path, to read it by (`path` is how problems name it)


class NotReadableHere(Exception):
    """This process cannot read a partition's file as the client saw it (missing, or another size or
    modification time): the client must ship the partition's bytes."""


def fingerprint(path: str) -> Fingerprint | None:
    """(size, mtime in ns) of a file, None if this process cannot read it."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns) if os.access(path, os.R_OK) else None


def readable_here(files: dict[str, Fingerprint]) -> bool:
    """Whether this process sees every file (by absolute path) as the client did: run on each worker
    before a run."""
    return all(fingerprint(path) == seen for path, seen in files.items())


def fingerprints(sources: list[Source]) -> dict[str, Fingerprint]:
    """Absolute path -> fingerprint of every source, as this process (the client) sees them."""
    out = {}
    for source in sources:
        seen = fingerprint(source.path)
        if seen is None:
            raise _problem("unreadable", f"cannot read corpus `{source.path}`")
        out[os.path.abspath(source.path)] = seen
    return out


def _problem(code: str, message: str, path: str = "--tickets") -> InputError:
    return InputError([{"path": path, "code": code, "message": message}], message)


def _kind(path: Path) -> Kind:
    return "parquet" if path.suffix.lower() in PARQUET_SUFFIXES else "jsonl"


def _in_directory(directory: Path) -> list[Path]:
    found = [p for p in directory.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))
             and p.suffix.lower() in JSONL_SUFFIXES + PARQUET_SUFFIXES]
    return sorted(found)


def discover(specs: list[str]) -> list[Source]:
    """Files named, matched by a glob, or found (recursively, *.jsonl/*.ndjson/*.json/*.parquet)
    in a directory; in the order given, each directory or glob sorted, duplicates dropped."""
    sources: list[Source] = []
    seen: set[str] = set()
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found = _in_directory(path)
            if not found:
                raise _problem("empty_corpus", f"directory `{spec}` holds no .jsonl or .parquet files")
        elif glob.has_magic(spec):
            found = sorted(Path(p) for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
            if not found:
                raise _problem("no_match", f"no file matches `{spec}`")
        elif path.is_file():
            found = [path]
        else:
            raise _problem("unreadable", f"cannot read corpus `{spec}`: no such file or directory")
        for item in found:
            key = str(item.resolve())
            if key not in seen:
                seen.add(key)
                sources.append(Source(str(item), _kind(item)))
    return sources


def _open(source: Source) -> Any:
    try:
        return open(source.path, "rb")  # bytes: an undecodable line is that line's problem
    except OSError as exc:
        raise _problem("unreadable", f"cannot read corpus `{source.path}`: {exc.strerror or exc}") from None


def _parquet(source: Source) -> Any:
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(source.path)
    except (OSError, ValueError) as exc:  # pyarrow.ArrowInvalid is a ValueError
        raise _problem("unreadable", f"cannot read Parquet file `{source.path}`: {exc}") from None
    names = handle.schema_arrow.names
    if TICKET_COLUMN not in names:
        raise _problem("no_ticket_column", f"Parquet file `{source.path}` has no `{TICKET_COLUMN}` column "
                                           f"(JSON text of one ticket per row); its columns: {', '.join(names)}")
    return handle


def count_rows(sources: list[Source]) -> int:
    """Tickets to expect (non-blank JSONL lines + Parquet rows), for the progress bar; fails
    early, on the client, on an unreadable file, a Parquet file without tickets or no ticket at all."""
    total = 0
    for source in sources:
        if source.kind == "parquet":
            total += _parquet(source).metadata.num_rows
        else:
            with _open(source) as handle:
                total += sum(1 for raw in handle if raw.strip())
    if not total:
        names = ", ".join(f"`{s.path}`" for s in sources)
        raise _problem("empty_corpus", f"corpus {names} holds no tickets (one JSON ticket per line or row expected)")
    return total


def partitions(sources: list[Source], size: int, ship: bool = True) -> Iterator[Partition]:
    """Every source cut into partitions of about `size` tickets, read lazily (a corpus may be larger
    than the client's memory: only the partitions in flight are held). `ship`: with each partition's
    bytes (read here); otherwise only its address, for workers that read the files themselves."""
    index = 0
    for number, source in enumerate(sources):
        seen = fingerprint(source.path)
        if seen is None:
            raise _problem("unreadable", f"cannot read corpus `{source.path}`")
        absolute = os.path.abspath(source.path)  # a worker's working directory may be another
        reader = _parquet_parts if source.kind == "parquet" else _jsonl_parts
        for first, rows, span, payload in reader(source, size, ship):
            yield Partition(index, number, source.path, source.kind, first, rows, payload, span, seen, absolute)
            index += 1


def _jsonl_parts(source: Source, size: int, ship: bool) -> Iterator[tuple[int, int, tuple[int, int], bytes | None]]:
    block: list[bytes] = []
    first, lines, tickets, offset, length = 1, 0, 0, 0, 0
    with _open(source) as handle:
        for number, raw in enumerate(handle, 1):
            if not lines:
                first = number
            lines += 1
            length += len(raw)
            if ship:
                block.append(raw)
            if raw.strip():
                tickets += 1
                if tickets >= size:
                    yield first, lines, (offset, length), b"".join(block) if ship else None
                    block, lines, tickets, offset, length = [], 0, 0, offset + length, 0
    if tickets:
        yield first, lines, (offset, length), b"".join(block) if ship else None


def _parquet_parts(source: Source, size: int, ship: bool) -> Iterator[tuple[int, int, tuple[int, int], Any]]:
    """Runs of at most `size` rows inside one row group (a worker reading by path decodes that row
    group's `ticket` column and keeps it for the next run of the same group)."""
    handle = _parquet(source)
    first = 1
    for group in range(handle.metadata.num_row_groups):
        rows = handle.metadata.row_group(group).num_rows
        table = handle.read_row_group(group, columns=[TICKET_COLUMN]) if ship and rows else None
        for start in range(0, rows, size):
            count = min(size, rows - start)
            yield first, count, (group, start), table.slice(start, count) if table is not None else None
            first += count


def read_payload(partition: Partition, path: str) -> Any:
    """The partition's bytes (JSONL) or `ticket` column (Parquet), read from `path`: its absolute path
    on a worker, the path as given on the client (for a worker that could not read it). Raises
    NotReadableHere if the file there is not what the client saw when the run started."""
    if fingerprint(path) != partition.fingerprint:
        raise NotReadableHere(partition.path)
    if partition.kind == "parquet":
        group, start = partition.span
        return _row_group(path, partition.fingerprint, group).slice(start, partition.rows)
    offset, length = partition.span
    with open(path, "rb") as handle:
        handle.seek(offset)
        body = handle.read(length)
    if len(body) != length:
        raise NotReadableHere(partition.path)
    return body


_LAST_ROW_GROUP: list[tuple[tuple[str, Fingerprint, int], Any]] = []  # one decoded row group per process


def _row_group(path: str, seen: Fingerprint, group: int) -> Any:
    """A Parquet row group's `ticket` column, the last one kept: consecutive partitions of a group
    cost one read and decode, and a worker holds at most one group (bounded memory)."""
    import pyarrow.parquet as pq

    key = (path, seen, group)
    if _LAST_ROW_GROUP and _LAST_ROW_GROUP[0][0] == key:
        return _LAST_ROW_GROUP[0][1]
    _LAST_ROW_GROUP.clear()
    table = pq.ParquetFile(path).read_row_group(group, columns=[TICKET_COLUMN])
    _LAST_ROW_GROUP.append((key, table))
    return table


def with_payload(partition: Partition) -> Partition:
    """The same partition with its bytes read here (the client), to ship to a worker that could not read it."""
    from dataclasses import replace

    return replace(partition, payload=read_payload(partition, partition.path))


def ticket_texts(partition: Partition) -> Iterator[tuple[int, str | None, str | None]]:
    """(line or row number, JSON text, why it has none) for every ticket of a partition: on the worker,
    which reads the partition from its file when the client did not ship it."""
    payload = partition.payload if partition.payload is not None else read_payload(partition, partition.absolute)
    if partition.kind == "parquet":
        for offset, cell in enumerate(payload.column(TICKET_COLUMN).to_pylist()):
            number = partition.first + offset
            if cell is None:
                yield number, None, f"the `{TICKET_COLUMN}` cell is null"
            elif isinstance(cell, bytes):
                text = _decode(cell)
                yield number, text, None if text is not None else "the cell is not UTF-8"
            else:
                yield number, str(cell), None
        return
    for offset, raw in enumerate(payload.split(b"\n")):
        if not raw.strip():
            continue
        text = _decode(raw)
        yield partition.first + offset, text, None if text is not None else "the line is not UTF-8"


def _decode(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def location(kind: Kind, path: str, number: int) -> str:
    """How a problem or a sample is located: `file:line` for JSONL, `file: row N` for Parquet."""
    return f"{path}: row {number}" if kind == "parquet" else f"{path}:{number}"
