"""shell/cli/report.py: `gridbot report --month … --out …` — what it refuses before any
work (exit 2) and the self-contained HTML it writes."""

from __future__ import annotations

from pathlib import Path

from bot.texts import t
from tests.cli_env import sqlite_env
from tests.gridbot_cli import gridbot
from tests.templates import DatabaseTemplates


def test_the_report_is_refused_or_written(tmp_path: Path,
                                          db_templates: DatabaseTemplates) -> None:
    env = sqlite_env(tmp_path, db_templates)
    docx = gridbot("report", "--month", "2026-11", "--out", str(tmp_path / "r.docx"), env=env)
    assert docx.returncode == 2
    assert t("dashboard.report.bad_out", path=tmp_path / "r.docx") in docx.stderr
    nowhere = tmp_path / "missing" / "r.html"
    gone = gridbot("report", "--month", "2026-11", "--out", str(nowhere), env=env)
    assert gone.returncode == 2 and "no such folder" in gone.stderr
    for month in ("2026-13", "november"):
        bad = gridbot("report", "--month", month, "--out", str(tmp_path / "r.html"), env=env)
        assert bad.returncode == 2 and f"month '{month}'" in bad.stderr
    assert not (tmp_path / "r.html").exists()
    out = tmp_path / "r.html"
    done = gridbot("report", "--month", "2026-11", "--out", str(out), env=env)
    assert done.returncode == 0, done.stderr
    assert t("dashboard.report.written", path=out) in done.stdout
    page = out.read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html") and "2026" in page
    assert "<script src=" not in page  # self-contained: nothing fetched from elsewhere
