"""Read labelled messages from CSV, JSONL or XLSX files: text column(s) plus a label column."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FORMATS = (".csv", ".jsonl", ".xlsx")


class LabelledDataError(Exception):
    """The file cannot be read as labelled data; the message names the file and the problem."""


def _csv_rows(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        yield from csv.DictReader(fh)


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8-sig") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise LabelledDataError(f"{path}, line {line_no}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise LabelledDataError(f"{path}, line {line_no}: not a JSON object")
            yield row


def _xlsx_rows(path: Path) -> Iterator[dict[str, Any]]:
    from openpyxl import load_workbook  # only needed for spreadsheets

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several kinds for a file that is not xlsx
        raise LabelledDataError(f"{path}: not a readable .xlsx file ({exc})") from None
    try:
        rows = book.active.iter_rows(values_only=True)
        header = [str(v).strip() if v is not None else "" for v in next(rows, ())]
        for values in rows:
            yield dict(zip(header, values, strict=False))
    finally:
        book.close()


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_rows(path)
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl_rows(path)
    if suffix == ".xlsx":
        return _xlsx_rows(path)
    raise LabelledDataError(f"{path}: unknown format '{suffix}'; use one of {', '.join(FORMATS)}")


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def read_labelled(path: Path, text_cols: list[str], label_col: str) -> tuple[list[str], list[str]]:
    """Texts (the text columns joined by a line break) and labels; rows missing either are
    skipped. Unknown columns are an error naming the columns the file has."""
    if not path.exists():
        raise LabelledDataError(f"data file not found: {path}")
    if not text_cols:
        raise LabelledDataError("give at least one text column")
    texts: list[str] = []
    labels: list[str] = []
    checked = False
    for row in _rows(path):
        if not checked:
            missing = [c for c in (*text_cols, label_col) if c not in row]
            if missing:
                raise LabelledDataError(
                    f"{path}: no column(s) {', '.join(missing)}; it has {', '.join(map(str, row))}"
                )
            checked = True
        text = "\n".join(t for t in (_text(row.get(c)) for c in text_cols) if t)
        label = _text(row.get(label_col))
        if text and label:
            texts.append(text)
            labels.append(label)
    if not texts:
        raise LabelledDataError(f"{path}: no rows with both text and a label")
    return texts, labels


def read_texts(path: Path, text_cols: list[str],
               id_col: str | None = None) -> list[tuple[str | None, str]]:
    """(id, text) of every row, in file order, for triage: the text columns joined by a line
    break (rows without text keep their place with ""); `id_col`'s value, or None."""
    if not path.exists():
        raise LabelledDataError(f"data file not found: {path}")
    if not text_cols:
        raise LabelledDataError("give at least one text column")
    out: list[tuple[str | None, str]] = []
    checked = False
    for row in _rows(path):
        if not checked:
            missing = [c for c in (*text_cols, *([id_col] if id_col else [])) if c not in row]
            if missing:
                raise LabelledDataError(
                    f"{path}: no column(s) {', '.join(missing)}; it has {', '.join(map(str, row))}"
                )
            checked = True
        text = "\n".join(t for t in (_text(row.get(c)) for c in text_cols) if t)
        out.append((_text(row.get(id_col)) if id_col else None, text))
    return out


def read_columns(path: Path, columns: list[str]) -> list[dict[str, Any]]:
    """Every row as {column: value} for the given columns (raw values: an XLSX date stays a
    datetime), in file order; unknown columns are an error naming the ones the file has."""
    if not path.exists():
        raise LabelledDataError(f"data file not found: {path}")
    out: list[dict[str, Any]] = []
    for row in _rows(path):
        if not out:
            missing = [c for c in columns if c not in row]
            if missing:
                raise LabelledDataError(
                    f"{path}: no column(s) {', '.join(missing)}; it has {', '.join(map(str, row))}"
                )
        out.append({c: row.get(c) for c in columns})
    return out
