"""training/labelled_data.py: labelled messages from CSV, JSONL and XLSX, and the errors
that name the file and what is wrong with it."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from training.labelled_data import LabelledDataError, read_columns, read_labelled, read_texts


def _csv(tmp_path: Path, text: str, name: str = "rows.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8-sig")  # as Excel saves it: with a BOM
    return path


def test_csv_joins_text_columns_and_skips_rows_missing_text_or_label(tmp_path: Path) -> None:
    path = _csv(tmp_path, "title,body,label\n路灯,不亮了,C0118\n,井盖丢了,C0101\n"
                          "没有标签,,\n,,C0118\n 树倒了 , ,C0120 \n")
    texts, labels = read_labelled(path, ["title", "body"], "label")
    assert texts == ["路灯\n不亮了", "井盖丢了", "树倒了"]
    assert labels == ["C0118", "C0101", "C0120"]


def test_jsonl_skips_blank_lines_and_reads_numbers_as_text(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "路灯不亮", "label": 7}\n\n{"text": null, "label": "x"}\n'
                    '{"text": "井盖丢了", "label": "C0101"}\n', encoding="utf-8")
    assert read_labelled(path, ["text"], "label") == (["路灯不亮", "井盖丢了"], ["7", "C0101"])
    # .ndjson is the same format under another name.
    other = tmp_path / "rows.ndjson"
    other.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    assert read_labelled(other, ["text"], "label")[1] == ["7", "C0101"]


@pytest.mark.parametrize(("line", "problem"), [
    ('{"text": "a", "label": ', "line 2: not JSON"),
    ('["a", "b"]', "line 2: not a JSON object"),
])
def test_a_bad_jsonl_line_is_named(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "路灯", "label": "C0118"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(LabelledDataError, match=problem) as raised:
        read_labelled(path, ["text"], "label")
    assert str(path) in str(raised.value)


def test_xlsx_reads_the_first_sheet_by_its_header(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["留言主题", " 留言详情 ", "一级分类", "留言时间"])
    sheet.append(["路灯", "晚上不亮", "城乡建设", datetime(2026, 11, 23, 9, 0)])
    sheet.append([None, "噪音扰民", "环境保护", None])
    path = tmp_path / "board.xlsx"
    book.save(path)
    texts, labels = read_labelled(path, ["留言主题", "留言详情"], "一级分类")
    assert texts == ["路灯\n晚上不亮", "噪音扰民"] and labels == ["城乡建设", "环境保护"]
    # read_columns keeps the raw cell values: a date stays a datetime.
    rows = read_columns(path, ["留言时间", "一级分类"])
    assert rows[0] == {"留言时间": datetime(2026, 11, 23, 9, 0), "一级分类": "城乡建设"}
    assert rows[1]["留言时间"] is None


def test_a_file_that_is_not_xlsx_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "fake.xlsx"
    path.write_bytes(b"text,label\n")
    with pytest.raises(LabelledDataError, match=r"not a readable \.xlsx file"):
        read_labelled(path, ["text"], "label")


def test_read_texts_keeps_every_row_in_place_with_its_id(tmp_path: Path) -> None:
    path = _csv(tmp_path, "id,text,extra\n1,路灯不亮,x\n2,,y\n3,井盖丢了,z\n")
    assert read_texts(path, ["text"], "id") == [("1", "路灯不亮"), ("2", ""), ("3", "井盖丢了")]
    assert read_texts(path, ["text"]) == [(None, "路灯不亮"), (None, ""), (None, "井盖丢了")]


@pytest.mark.parametrize("reader", ["labelled", "texts", "columns"])
def test_unknown_columns_are_named_with_the_ones_the_file_has(tmp_path: Path,
                                                               reader: str) -> None:
    path = _csv(tmp_path, "text,label\n路灯不亮,C0118\n")
    with pytest.raises(LabelledDataError) as raised:
        if reader == "labelled":
            read_labelled(path, ["text"], "category")
        elif reader == "texts":
            read_texts(path, ["text"], "message_id")
        else:
            read_columns(path, ["text", "when"])
    message = str(raised.value)
    assert "no column(s)" in message and "it has text, label" in message


def test_bad_requests_say_what_is_wrong(tmp_path: Path) -> None:
    missing = tmp_path / "absent.csv"
    for call in (lambda: read_labelled(missing, ["text"], "label"),
                 lambda: read_texts(missing, ["text"]),
                 lambda: read_columns(missing, ["text"])):
        with pytest.raises(LabelledDataError, match="data file not found"):
            call()
    path = _csv(tmp_path, "text,label\n路灯不亮,C0118\n")
    with pytest.raises(LabelledDataError, match="at least one text column"):
        read_labelled(path, [], "label")
    with pytest.raises(LabelledDataError, match="at least one text column"):
        read_texts(path, [])
    with pytest.raises(LabelledDataError, match=r"unknown format '\.txt'"):
        read_labelled(_csv(tmp_path, "text,label\n", "rows.txt"), ["text"], "label")
    with pytest.raises(LabelledDataError, match="no rows with both text and a label"):
        read_labelled(_csv(tmp_path, "text,label\n路灯不亮,\n", "empty.csv"), ["text"], "label")


def test_an_empty_jsonl_file_reads_as_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    assert read_texts(path, ["text"]) == [] and read_columns(path, ["text"]) == []
    path.write_text(json.dumps({"text": "路灯"}) + "\n", encoding="utf-8")
    with pytest.raises(LabelledDataError, match="no column"):
        read_labelled(path, ["text"], "label")
