"""handlers/intents.py: the fixed commands people type, in the forms they type them."""

from __future__ import annotations

import pytest

from handlers import intents


@pytest.mark.parametrize("text,expected", [
    ("查询 20261122-0001", "20261122-0001"),
    ("查进度CC20261122-0012", "CC20261122-0012"),
    ("/status 20261122-0001", "20261122-0001"),
    ("查询", ""),
    ("cc20261122-0001", "CC20261122-0001"),  # a bare number, typed in lower case
    ("路灯坏了", None),
    ("20261122", None),
])
def test_status_queries(text: str, expected: str | None) -> None:
    assert intents.status_query(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("评价 20261122-0001 5", ("20261122-0001", 5, "")),
    ("评价 20261122-0001 5 修得很快", ("20261122-0001", 5, "修得很快")),
    ("评分 20261122-0001 3分，一般般", ("20261122-0001", 3, "一般般")),
    ("评价 20261122-0001 6", ""),  # scores are 1–5
    ("评价 很好", ""),
    ("我想评价一下", None),
])
def test_ratings_with_an_optional_comment(text: str, expected: object) -> None:
    assert intents.rating(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("2", 2), ("第二个", 2), ("3.", 3), ("一", 1), ("第5项", 5), ("二十", None), ("", None),
])
def test_choices(text: str, expected: int | None) -> None:
    assert intents.choice(text) == expected


def test_words_are_read_loosely_but_not_inside_sentences() -> None:
    assert intents.is_help("帮助。") and intents.is_help("HELP")
    assert intents.is_cancel("算了！") and not intents.is_cancel("算了吧我再想想")
    assert intents.is_wrong_category("类别不对") and intents.is_wrong_category("换一个")
    assert intents.is_yes("好的") and not intents.is_yes("好的路灯坏了")
    assert intents.is_submit("确认提交") and not intents.is_submit("好")
    assert intents.is_my_cases("我的案件") and intents.is_greeting("你好")
    assert intents.is_file_anyway("仍要反映") and intents.is_no("不用了")
