"""bot/examples.py: a person's confirmation or correction of the model's pick, kept as a
labelled example for `gridbot train --from-cases`."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.examples import remember
from bot.models import TrainingExample
from bot.services import Services


@pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)
async def test_each_choice_is_one_row_with_the_models_pick_beside_it(services: Services) -> None:
    await remember(services.db, "报刊亭被撞坏了", "C0121", "console", "C0137")  # a correction
    await remember(services.db, "路灯不亮", "C0118", "chat", None)  # no suggestion was made
    async with services.db.session() as session:
        rows = list((await session.execute(
            select(TrainingExample).order_by(TrainingExample.id))).scalars())
    assert [(r.text, r.item_code, r.source, r.suggested_code) for r in rows] == [
        ("报刊亭被撞坏了", "C0121", "console", "C0137"), ("路灯不亮", "C0118", "chat", None)]
    assert all(r.created_at is not None for r in rows)
