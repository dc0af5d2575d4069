"""shell/cli/patrol.py: `gridbot patrol plan|plans` — lists typed with any Chinese or Latin
comma, refusals with exit 1, and a removal that says there was no plan. (Kinds of places
and removing a plan: tests/test_patrol_duty.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shell.cli.patrol import _split
from tests.cli_env import sqlite_env
from tests.gridbot_cli import gridbot
from tests.templates import DatabaseTemplates

GRID = "440604001030103"  # 同济社区第3网格


@pytest.mark.parametrize(("typed", "parts"), [
    ("祖庙,梁园", ["祖庙", "梁园"]),
    ("祖庙，梁园、 岭南天地 ,", ["祖庙", "梁园", "岭南天地"]),
    ("", []),
    (" , ，", []),
])
def test_lists_split_on_every_kind_of_comma(typed: str, parts: list[str]) -> None:
    assert _split(typed) == parts


def test_plans_are_set_listed_and_refused(tmp_path: Path,
                                                  db_templates: DatabaseTemplates) -> None:
    env = sqlite_env(tmp_path, db_templates)
    nothing = gridbot("patrol", "plan", GRID, "--off", env=env)
    assert nothing.returncode == 0 and nothing.stdout.strip() == f"{GRID} had no plan"
    for args, why in (([GRID, "--every", "fortnight"], "'fortnight' is not one of"),
                      ([GRID, "--places", "祖庙，火星基地"], "no place named '火星基地'")):
        refused = gridbot("patrol", "plan", *args, env=env)
        assert refused.returncode == 1 and why in refused.stderr, refused.stderr
    done = gridbot("patrol", "plan", GRID, "--every", "week", "--places", "祖庙、梁园", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{GRID}: every week, 2 places: 祖庙、梁园"
    listed = json.loads(gridbot("patrol", "plans", "--json", env=env).stdout)
    assert listed == [{"grid": GRID, "name": "同济社区第3网格", "every": "week",
                       "places": ["祖庙", "梁园"]}]
