"""handlers/lang.py: the steps' say() answers in the language of whoever's turn it is."""

from __future__ import annotations

import asyncio

from bot import texts
from handlers.lang import language, say


def test_say_reads_the_turns_language_and_falls_back_to_chinese() -> None:
    assert language.get() == texts.DEFAULT_LANGUAGE == "zh"
    assert say("cases.not_found", number="X1") == texts.t("cases.not_found", "zh", number="X1")
    token = language.set("en")
    try:
        assert say("cases.not_found", number="X1").startswith("No case X1 was found")
        # A language with no catalogue of its own reads Chinese, never a missing key.
        language.set("fr")
        assert say("cancelled") == texts.t("cancelled", "zh")
    finally:
        language.reset(token)
    assert say("cancelled") == texts.t("cancelled", "zh")


async def test_each_turn_keeps_its_own_language() -> None:
    """Two people's turns run side by side: neither sees the other's language."""

    async def turn(lang: str) -> str:
        language.set(lang)
        await asyncio.sleep(0)  # the other turn runs meanwhile
        return say("cancelled")

    zh, en = await asyncio.gather(turn("zh"), turn("en"))
    assert zh == texts.t("cancelled", "zh") and en == texts.t("cancelled", "en") != zh
    assert language.get() == "zh"  # and this task's language is untouched
