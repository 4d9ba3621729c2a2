"""`aftersale corpus` at scale: slices of the synthetic corpus made on Dask workers, written by
the client as one JSONL file or a Parquet directory.

A ticket depends only on (seed, its number) (engine/history/corpus.py), so the output is the same
whatever the slice size or the number of workers. JSONL slices are written in order (a slice that
finishes early waits, at most the tasks in flight); Parquet slices go to `part-<n>.parquet` as they
come, one file per slice, with the ticket as JSON text (the column impact reads) beside flat
columns for querying.
"""
from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from engine.history.corpus import Vocabulary, generate
from engine.history.ticket_sources import TICKET_COLUMN


def _line(ticket: dict[str, Any]) -> str:
    return json.dumps(ticket, ensure_ascii=False, separators=(",", ":"))


def corpus_slice(first: int, count: int, seed: int, vocab: Vocabulary, start: datetime, end: datetime,
                 fmt: str) -> tuple[int, Any]:
    """Tickets `first` .. `first + count - 1` as JSONL bytes or a pyarrow Table: one task."""
    tickets = list(generate(count, seed, vocab, start, end, first=first))
    if fmt == "jsonl":
        return first, "".join(_line(t) + "\n" for t in tickets).encode("utf-8")
    import pyarrow as pa

    return first, pa.table({
        TICKET_COLUMN: [_line(t) for t in tickets],
        "ticket_id": [t["ticket_id"] for t in tickets], "type": [t["type"] for t in tickets],
        "status": [t["status"] for t in tickets], "scenario": [t["scenario"] for t in tickets],
        "category": [t["order"]["category"] for t in tickets], "created_at": [t["created_at"] for t in tickets],
    })


def slices(count: int, size: int) -> list[tuple[int, int]]:
    """(first ticket number, how many) covering 1..count."""
    return [(first, min(size, count - first + 1)) for first in range(1, count + 1, size)]


class JsonlSink:
    """Writes slices in ticket order to a file (or stdout) as they arrive out of order."""

    def __init__(self, handle: Any) -> None:
        self.handle, self.next = handle, 1
        self.waiting: dict[int, bytes] = {}

    def __call__(self, result: tuple[int, bytes]) -> None:
        first, body = result
        self.waiting[first] = body
        while self.next in self.waiting:
            body = self.waiting.pop(self.next)
            self.handle.write(body)
            self.next += body.count(b"\n")


class ParquetSink:
    """Writes each slice to `<dir>/part-<first>.parquet` (staged, renamed into place at the end)."""

    def __init__(self, out: str) -> None:
        self.final = Path(out)
        self.staging = self.final.with_name(f".{self.final.name}.partial")
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir(parents=True)

    def __call__(self, result: tuple[int, Any]) -> None:
        import pyarrow.parquet as pq

        first, table = result
        pq.write_table(table, self.staging / f"part-{first:012d}.parquet", compression="zstd")

    def finish(self) -> None:
        if self.final.exists():
            self.final.rmdir()
        self.staging.rename(self.final)

    def abandon(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


Sink = Callable[[tuple[int, Any]], None]
