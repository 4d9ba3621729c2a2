"""Per-ticket differences as Parquet (`aftersale impact --out DIR`).

One row per (ticket, actor, action, kind of change). Workers build the rows of their partition as
a pyarrow Table and send it back with the tally; the client writes them (no shared filesystem
assumed) into DIR as a hive-partitioned dataset, `kind=<kind of change>/part-<n>-<i>.parquet`:

    duckdb:  SELECT action, count(*) FROM read_parquet('DIR/**/*.parquet', hive_partitioning=true) GROUP BY 1
    pandas:  pandas.read_parquet('DIR')

The run writes into a fresh directory beside DIR and renames it into place at the end, so an
interrupted run leaves no half-written DIR. `_summary.json` (ignored by Parquet readers, its name
starts with `_`) holds the JSON report.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from engine.core.errors import InputError

FLUSH_ROWS = 100_000  # rows buffered on the client before a file is written: bounds its memory (~40 MB)


def _schema() -> Any:
    import pyarrow as pa

    codes = pa.list_(pa.string())
    return pa.schema([
        ("file", pa.string()), ("number", pa.int64()),  # line (JSONL) or row (Parquet) in the file
        ("ticket_id", pa.string()), ("scenario", pa.string()), ("type", pa.string()),
        ("actor", pa.string()), ("action", pa.string()), ("kind", pa.string()),
        ("explained_by", codes),  # `version/id` of the declared changes explaining it; empty: unexplained
        ("allowed_before", pa.bool_()), ("allowed_after", pa.bool_()),
        ("denials_before", codes), ("denials_after", codes),
        ("advice_before", codes), ("advice_after", codes),
        ("max_refund_before", pa.int64()), ("max_refund_after", pa.int64()),
    ])


def _codes(items: Any) -> list[str]:
    return sorted({str(i.get("code", "")) for i in items or () if isinstance(i, dict)})


def _amount(entry: dict[str, Any]) -> int | None:
    value = (entry.get("constraints") or {}).get("max_refund_amount")
    return value if isinstance(value, int) else None


class DifferenceRows:
    """Rows of one partition, kept column by column (cheap to turn into a Table)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.columns: dict[str, list[Any]] = {name: [] for name in _schema().names}

    def add(self, number: int, ticket_id: str, scenario: str, ticket_type: str, actor: str, action: str,
            kind: str, explained: tuple[str, ...], before: dict[str, Any], after: dict[str, Any]) -> None:
        values = (self.path, number, ticket_id, scenario, ticket_type, actor, action, kind, list(explained),
                  before.get("allowed"), after.get("allowed"), _codes(before.get("denials")),
                  _codes(after.get("denials")), _codes(before.get("advice")), _codes(after.get("advice")),
                  _amount(before), _amount(after))
        for column, value in zip(self.columns.values(), values):
            column.append(value)

    def table(self) -> Any:
        import pyarrow as pa

        return pa.Table.from_pydict(self.columns, schema=_schema())


class DifferenceWriter:
    """Collects the partitions' tables on the client and writes them under a staging directory."""

    def __init__(self, out: str) -> None:
        self.final = Path(out)
        if self.final.exists() and (not self.final.is_dir() or any(self.final.iterdir())):
            raise InputError([{"path": "--out", "code": "output_exists",
                               "message": f"`{out}` exists and is not an empty directory: choose a new one"}],
                             "--out exists")
        self.staging = self.final.with_name(f".{self.final.name}.partial")
        shutil.rmtree(self.staging, ignore_errors=True)
        try:
            self.staging.mkdir(parents=True)
        except OSError as exc:
            raise InputError([{"path": "--out", "code": "unwritable",
                               "message": f"cannot write `{out}`: {exc.strerror or exc}"}], "cannot write --out") from None
        self.pending: list[Any] = []
        self.buffered = 0
        self.files = 0
        self.rows = 0

    def add(self, table: Any) -> None:
        if table is None or table.num_rows == 0:
            return
        self.pending.append(table)
        self.buffered += table.num_rows
        if self.buffered >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        import pyarrow as pa
        import pyarrow.dataset as ds

        table = pa.concat_tables(self.pending)
        ds.write_dataset(table, self.staging, format="parquet", partitioning=["kind"], partitioning_flavor="hive",
                         basename_template=f"part-{self.files:05d}-{{i}}.parquet",
                         existing_data_behavior="overwrite_or_ignore",
                         file_options=ds.ParquetFileFormat().make_write_options(compression="zstd"))
        self.files += 1
        self.rows += table.num_rows
        self.pending, self.buffered = [], 0

    def finish(self, report: dict[str, Any]) -> None:
        self.flush()
        (self.staging / "_summary.json").write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n",
                                                    encoding="utf-8")
        if self.final.exists():
            self.final.rmdir()  # empty (checked at the start)
        self.staging.rename(self.final)

    def abandon(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    def size_bytes(self) -> int:
        base = self.final if self.final.exists() else self.staging
        return sum(p.stat().st_size for p in base.rglob("*.parquet"))
