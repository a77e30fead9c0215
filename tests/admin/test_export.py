"""The console's export formats on rows of a real log: JSON Lines keeps the text as written, CSV
opens in a spreadsheet (BOM, every script) without running a formula someone wrote."""

from __future__ import annotations

import csv
import io
import json

from bot.admin.export import EXPORT_FORMATS, csv_lines, export_lines, jsonl_lines
from storage.log import EXPORT_FIELDS, ConversationLog
from tests.helpers.conversation_log import days_ago, fill, key_of, photo, turn
from workers.images import make_thumbnail


def test_jsonl_and_csv(conversation_log: ConversationLog):
    ids = fill(conversation_log)
    turn(conversation_log, key_of("telegram", "1"), "=HYPERLINK(\"http://x\")", "-1+1",
         images=[make_thumbnail(photo())], at=days_ago(9))
    rows = list(conversation_log.export_rows(conversation_id=ids["1"]))
    everything = list(conversation_log.export_rows())

    lines = b"".join(jsonl_lines(rows)).decode().splitlines()
    assert [json.loads(line)["text"] for line in lines][2] == '=HYPERLINK("http://x")'
    assert list(json.loads(lines[0])) == list(EXPORT_FIELDS)
    text = b"".join(csv_lines(everything)).decode("utf-8")
    assert text.startswith("\ufeff")
    table = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(table) == 12
    assert any(r["text"] == "ขอสูตรต้มยำกุ้งหน่อย" for r in table)
    # A spreadsheet must not run what a user wrote.
    assert any(r["text"] == "'=HYPERLINK(\"http://x\")" for r in table)
    assert any(r["text"] == "'-1+1" for r in table)


def test_csv_is_written_in_chunks():
    rows = [dict.fromkeys(EXPORT_FIELDS, "x") for _ in range(450)]
    chunks = list(csv_lines(rows))
    assert len(chunks) == 4  # the BOM, two chunks of 200 rows, the rest
    assert sum(chunk.count(b"\n") for chunk in chunks) == 451


def test_export_lines_follows_the_format():
    rows = [dict.fromkeys(EXPORT_FIELDS, "a")]
    assert set(EXPORT_FORMATS) == {"jsonl", "csv"}
    assert b"".join(export_lines(rows, "jsonl")) == b"".join(jsonl_lines(rows))
    assert b"".join(export_lines(rows, "csv")) == b"".join(csv_lines(rows))
