"""shell/cli/report.py: `gridbot report --month … --out …` — what it refuses, with exit 2,
before anything is written. (The HTML and PDF it writes, with the month's numbers:
tests/test_dashboard.py.)"""

from __future__ import annotations

from pathlib import Path

from bot.texts import t
from tests.cli_env import sqlite_env
from tests.gridbot_cli import gridbot
from tests.templates import DatabaseTemplates


def test_a_bad_file_folder_or_month_is_refused(tmp_path: Path,
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
