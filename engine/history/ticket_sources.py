"""Where impact's tickets come from: JSONL and Parquet files, globs and directories, cut into
partitions the client reads and ships to the workers.

The client reads the bytes (JSONL lines, or a Parquet `ticket` column through pyarrow) and sends
each partition with the job, so a worker needs no access to the client's files (no shared
filesystem assumed). Decoding and validation happen on the worker, one row at a time, so a bad line
or row costs one located problem (file + line, or file + row), never the partition.

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


@dataclass(frozen=True)
class Partition:
    """A run of consecutive lines (JSONL) or rows (Parquet) of one source."""

    index: int  # position in the run: partitions are numbered in reading order
    source: int  # index into the run's sources
    path: str
    kind: Kind
    first: int  # 1-based number of the payload's first line (JSONL) or row (Parquet)
    rows: int  # lines (blank ones included) or rows in the payload
    payload: Any  # JSONL: the raw bytes of the lines; Parquet: a pyarrow Table with the `ticket` column


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


def partitions(sources: list[Source], size: int) -> Iterator[Partition]:
    """Every source cut into partitions of about `size` tickets, read lazily (a corpus may be larger
    than the client's memory: only the partitions in flight are held)."""
    index = 0
    for number, source in enumerate(sources):
        reader = _parquet_parts if source.kind == "parquet" else _jsonl_parts
        for first, rows, payload in reader(source, size):
            yield Partition(index, number, source.path, source.kind, first, rows, payload)
            index += 1


def _jsonl_parts(source: Source, size: int) -> Iterator[tuple[int, int, bytes]]:
    block: list[bytes] = []
    first, tickets = 1, 0
    with _open(source) as handle:
        for number, raw in enumerate(handle, 1):
            if not block:
                first = number
            block.append(raw)
            if raw.strip():
                tickets += 1
                if tickets >= size:
                    yield first, len(block), b"".join(block)
                    block, tickets = [], 0
    if tickets:
        yield first, len(block), b"".join(block)


def _parquet_parts(source: Source, size: int) -> Iterator[tuple[int, int, Any]]:
    import pyarrow as pa

    first = 1
    for batch in _parquet(source).iter_batches(batch_size=size, columns=[TICKET_COLUMN]):
        yield first, batch.num_rows, pa.Table.from_batches([batch])
        first += batch.num_rows


def ticket_texts(partition: Partition) -> Iterator[tuple[int, str | None, str | None]]:
    """(line or row number, JSON text, why it has none) for every ticket of a partition: on the worker."""
    if partition.kind == "parquet":
        for offset, cell in enumerate(partition.payload.column(TICKET_COLUMN).to_pylist()):
            number = partition.first + offset
            if cell is None:
                yield number, None, f"the `{TICKET_COLUMN}` cell is null"
            elif isinstance(cell, bytes):
                text = _decode(cell)
                yield number, text, None if text is not None else "the cell is not UTF-8"
            else:
                yield number, str(cell), None
        return
    for offset, raw in enumerate(partition.payload.split(b"\n")):
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
