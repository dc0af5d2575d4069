"""training/from_cases.py: the examples people confirmed, read from the database, and the
catalogue model retrained on the seed corpus plus them — here on a three-item catalogue
and fifteen seed rows (milliseconds), not the shipped corpus."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bot.catalogue import Catalogue, load_catalogue
from bot.config import PROJECT_ROOT
from bot.examples import remember
from bot.services import Services
from training.from_cases import confirmed_examples, train_with_examples

SEED = {
    "C0121": ["报刊亭破损", "报亭玻璃碎了", "书报亭门坏了", "报刊亭歪了", "报摊的亭子漏雨"],
    "C0118": ["路灯不亮", "街灯坏了", "路灯白天亮着", "路灯杆倒了", "晚上路灯不亮很黑"],
    "C0201": ["停车场乱收费", "停车位被占", "停车场门口堵", "车位不够用", "停车库积水"],
}


@pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)
async def test_confirmed_examples_are_read_oldest_first(services: Services) -> None:
    assert await confirmed_examples(services.db) == []
    await remember(services.db, "报刊亭被撞", "C0121", "console", "C0137")
    await remember(services.db, "路灯闪", "C0118", "chat", None)
    assert await confirmed_examples(services.db) == [("C0121", "报刊亭被撞"),
                                                     ("C0118", "路灯闪")]


def test_the_model_learns_the_usable_examples_and_counts_them(tmp_path: Path) -> None:
    full = load_catalogue(PROJECT_ROOT / "data/catalogue.csv")
    catalogue = Catalogue([full.get(code) for code in SEED])
    with open(tmp_path / "seed.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["code", "text"])
        writer.writerows((code, text) for code, texts in SEED.items() for text in texts)
    examples = [("C0201", "充电桩车位被油车占了"), ("C0201", "充电车位总被燃油车占着"),
                ("C0201", "新能源车位被占用"),
                ("Z9999", "一个已不在事项清单的事项"),  # its code is gone: left out
                ("C0118", "   ")]  # no words: left out
    model, report, used = train_with_examples(tmp_path, catalogue, set(), examples)
    assert used == 3 and model.card["confirmed_examples"] == 3
    assert model.card["n_examples"] == 15 + 3  # the seed rows and the usable examples
    assert set(model.labels) == set(SEED)
    assert report.n_train + report.n_valid == 18
    assert (tmp_path / "seed.csv").exists() and len(list(tmp_path.iterdir())) == 1  # untouched
