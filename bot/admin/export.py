"""The console's exports: logged messages (`ConversationLog.export_rows`) as JSON Lines or CSV,
streamed in chunks. CSV cells that a spreadsheet would run as a formula are neutralized."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from storage.log import EXPORT_FIELDS

#: The formats the console offers, with their media types.
EXPORT_FORMATS = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def jsonl_lines(rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    for row in rows:
        yield (json.dumps(row, ensure_ascii=False) + "\n").encode()


def _csv_cell(value: Any) -> Any:
    """Neutralize spreadsheet formulas: a cell starting with = + - @ gets a leading quote."""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return "" if value is None else value


def csv_lines(rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    yield "\ufeff".encode()  # Excel reads UTF-8 (Thai, Vietnamese...) only with a BOM
    writer.writerow(EXPORT_FIELDS)
    for n, row in enumerate(rows, 1):
        writer.writerow([_csv_cell(row[name]) for name in EXPORT_FIELDS])
        if n % 200 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def export_lines(rows: Iterable[dict[str, Any]], fmt: str) -> Iterator[bytes]:
    """The rows in `fmt` (a key of `EXPORT_FORMATS`)."""
    return jsonl_lines(rows) if fmt == "jsonl" else csv_lines(rows)
