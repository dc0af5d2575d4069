"""nlp/place_tags.py: place names jieba's part-of-speech tags find where the gazetteer
knows none — a hint for hotline staff, never a grid. (The examples are outside the demo
gazetteer: its words, added to jieba by every Services, are tagged as plain words.)"""

from __future__ import annotations

from nlp.place_tags import MAX_CHARS, MAX_NAMES, place_names


def test_a_road_and_its_house_number_are_one_name() -> None:
    assert place_names("中山路88号门口垃圾很多") == ["中山路88号"]


def test_no_place_named_gives_nothing() -> None:
    assert place_names("垃圾很多没人清理") == []
    assert place_names("") == []


def test_names_come_in_order_without_repeats_and_at_most_three() -> None:
    names = place_names("广州天河路12号和北京路100号，中山路88号也有，广州天河路12号最严重")
    assert names == ["广州", "天河路12号", "北京路100号"]
    assert len(names) == MAX_NAMES  # 中山路88号 was a fourth


def test_only_the_start_of_a_long_text_is_tagged() -> None:
    assert place_names("很" * MAX_CHARS + "中山路88号") == []
    assert place_names("很" * (MAX_CHARS - 3) + "中山路88号") == ["中山路"]  # cut mid-name
