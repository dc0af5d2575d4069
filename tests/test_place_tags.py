"""nlp/place_tags.py: place names jieba's part-of-speech tags find where the gazetteer
knows none — a hint for hotline staff, never a grid."""

from __future__ import annotations

from nlp.place_tags import MAX_CHARS, MAX_NAMES, place_names


def test_a_road_and_its_house_number_are_one_name() -> None:
    assert place_names("南海大道123号门口垃圾很多") == ["南海大道123号"]


def test_no_place_named_gives_nothing() -> None:
    assert place_names("垃圾很多没人清理") == []
    assert place_names("") == []


def test_names_come_in_order_without_repeats_and_at_most_three() -> None:
    names = place_names("南海大道123号和上海路口都有问题，南海大道123号最严重，"
                        "北京、广州、深圳、杭州也有")
    assert names[0] == "南海大道123号"
    assert len(names) == len(set(names)) <= MAX_NAMES


def test_only_the_start_of_a_long_text_is_tagged() -> None:
    assert place_names("很" * MAX_CHARS + "南海大道123号") == []
