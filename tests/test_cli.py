"""CLI commands that read or load the database, run as a newcomer would."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.gridbot_cli import gridbot


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return gridbot(*args, env={**os.environ, **env})  # in-process


def test_grids_import_replaces_the_grids_and_refuses_bad_files(tmp_path: Path) -> None:
    env = {"GRIDBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/g.db"}
    city = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": "D1", "name": "示例区", "level": "district"},
         "geometry": {"type": "Polygon", "coordinates": [[[113, 23], [113.01, 23],
                                                           [113.01, 23.01], [113, 23.01],
                                                           [113, 23]]]}},
        {"type": "Feature", "properties": {"code": "G1", "name": "示例网格", "level": "grid",
                                           "parent": "D1"},
         "geometry": {"type": "Polygon", "coordinates": [[[113, 23], [113.01, 23],
                                                           [113.01, 23.01], [113, 23.01],
                                                           [113, 23]]]}},
    ]}
    good = tmp_path / "city.geojson"
    good.write_text(json.dumps(city, ensure_ascii=False), encoding="utf-8")
    result = _run("grids", "import", str(good), env=env)
    assert result.returncode == 0, result.stderr
    assert "imported 2 areas" in result.stdout
    import sqlite3

    rows = sqlite3.connect(tmp_path / "g.db").execute(
        "SELECT code, level, parent FROM areas ORDER BY code").fetchall()
    assert rows == [("D1", "district", None), ("G1", "grid", "D1")]
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    result = _run("grids", "import", str(bad), env=env)
    assert result.returncode == 1 and "no feature has level 'grid'" in result.stderr
    assert len(sqlite3.connect(tmp_path / "g.db").execute(
        "SELECT code FROM areas").fetchall()) == 2  # the bad file changed nothing


def test_bad_config_stops_every_command_with_the_key_named(tmp_path: Path) -> None:
    result = _run("cases", "list", env={"GRIDBOT_SERVER_PORT": "eighty"})
    assert result.returncode == 2 and "server.port" in result.stderr
