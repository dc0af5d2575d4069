"""bot/texts.py: the one message lookup — the reader's language, Chinese when it has no
text, values filled in, and a key that does not exist is an error, never a blank.
(The two catalogues hold the same keys and placeholders: tests/test_telegram.py.)"""

from __future__ import annotations

import pytest

from bot.texts import DEFAULT_LANGUAGE, catalogue, t


def test_the_readers_language_then_chinese() -> None:
    assert DEFAULT_LANGUAGE == "zh"
    assert t("cases.not_found", number="N1") == catalogue("zh")["cases.not_found"].format(
        number="N1")
    assert t("cases.not_found", "en", number="N1").startswith("No case N1 was found")
    assert catalogue("fr") == {}  # no catalogue of its own:
    assert t("cancelled", "fr") == t("cancelled")  # read in Chinese
    assert catalogue("zh") is catalogue("zh")  # read once


def test_values_are_filled_and_a_missing_one_or_key_is_an_error() -> None:
    assert "20261123-0001" in t("rate.refused", number="20261123-0001")
    with pytest.raises(KeyError):
        t("rate.refused")  # {number} not given
    with pytest.raises(KeyError):
        t("no.such.key")
