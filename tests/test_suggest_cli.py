"""`gridbot suggest`: batch triage of CSV / JSONL / XLSX files, one JSON line per row (here
with the seed-only model of conftest; tests/test_triage.py runs it with a triage model)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from nlp.model_store import ModelStore
from shell.cli import app as cli

FIELDS = {"scope", "topic", "department", "urgent", "sure", "suggestions"}


def _run(args: list[str]) -> tuple[int, list[dict], str]:
    result = CliRunner().invoke(cli, ["suggest", *args])
    lines = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    return result.exit_code, lines, result.output


def test_csv_with_two_text_columns_and_an_id(model_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "backlog.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["no", "title", "detail"])
        writer.writerow(["a1", "井盖丢了", "小区门口的井盖不见了，晚上很危险"])
        writer.writerow(["a2", "着火", "楼道里着火了，有人被困"])
        writer.writerow(["a3", "", ""])
    version = ModelStore(model_dir).current_dir()
    code, lines, output = _run(["--data", str(path), "--text-col", "title", "--text-col",
                                "detail", "--id-col", "no", "--model", str(version), "--json"])
    assert code == 0, output
    assert [x["id"] for x in lines] == ["a1", "a2", "a3"]
    first = lines[0]
    assert set(first) >= FIELDS and first["scope"] == "catalogue" and first["urgent"]
    assert len(first["suggestions"]) >= 3
    assert first["suggestions"][0]["code"].startswith("C01")
    assert first["suggestions"][0]["name"].endswith("井盖")
    confidences = [s["confidence"] for s in first["suggestions"]]
    assert confidences == sorted(confidences, reverse=True)
    assert lines[1]["scope"] == "emergency" and lines[1]["urgent"]
    assert "119" in lines[1]["hotlines"]
    assert lines[2]["error"] == "no text"


def test_jsonl_without_id(model_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    path.write_text(json.dumps({"text": "路灯坏了好几天"}, ensure_ascii=False) + "\n\n"
                    + json.dumps({"text": "垃圾桶满了没人清"}, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    code, lines, output = _run(["--data", str(path), "--text-col", "text", "--model",
                                str(ModelStore(model_dir).current_dir()), "--json"])
    assert code == 0, output
    assert [x["row"] for x in lines] == [1, 2] and "id" not in lines[0]
    assert all(x["scope"] == "catalogue" and len(x["suggestions"]) == 3 for x in lines)


def test_bad_input_is_a_clear_error(model_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("title\n井盖丢了\n", encoding="utf-8")
    model = str(ModelStore(model_dir).current_dir())
    code, _, output = _run(["--data", str(path), "--text-col", "body", "--model", model])
    assert code == 2 and "body" in output
    code, _, output = _run(["--data", str(path), "--model", model])
    assert code == 2 and "--text-col" in output
    code, _, output = _run(["--data", str(tmp_path / "none.csv"), "--text-col", "title",
                            "--model", model])
    assert code == 2 and "not found" in output
