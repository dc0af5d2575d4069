"""Recognise the few fixed commands people type, in the forms they type them."""

from __future__ import annotations

import re

CASE_NUMBER = re.compile(r"([A-Z]{0,8}\d{8}-\d{4,})")
_HELP = {"帮助", "help", "/help", "/start", "?", "？", "使用说明", "怎么用", "菜单"}
_CANCEL = {"取消", "cancel", "/cancel", "算了", "不要了", "放弃"}
_MY_CASES = {"我的案件", "我的反映", "我的投诉", "/cases", "/mycases", "案件列表", "我反映的问题"}
_GREETING = {"你好", "您好", "在吗", "hi", "hello", "喂", "你好呀", "早上好", "晚上好"}
_YES = {"确认", "是", "是的", "对", "好", "好的", "提交", "ok", "yes", "y", "确定", "没错", "可以"}
_SUBMIT = {"确认", "提交", "确定", "确认提交"}
_STATUS = re.compile(r"^(?:查询|查|进度|查进度|/status)\s*(.*)$")
_ORDINALS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5}
_CHOICE = re.compile(r"^(?:第)?([0-9]{1,2}|[一二三四五])(?:个|项)?[.。、]?$")
# 「类别不对」 at the confirmation, or while choosing: offer other categories.
_WRONG_CATEGORY = {"类别不对", "分类不对", "类别错了", "分类错了", "换一个", "换个类别",
                   "不是这个", "不是这个类别", "都不对", "其他类别", "wrong category",
                   "other category"}


def _plain(text: str) -> str:
    return text.strip().strip("。.!！~～").lower()


def is_help(text: str) -> bool:
    return _plain(text) in _HELP


def is_cancel(text: str) -> bool:
    return _plain(text) in _CANCEL


def is_my_cases(text: str) -> bool:
    return _plain(text) in _MY_CASES


def is_greeting(text: str) -> bool:
    return _plain(text) in _GREETING


def is_yes(text: str) -> bool:
    return _plain(text) in _YES


def is_wrong_category(text: str) -> bool:
    return _plain(text) in _WRONG_CATEGORY


_FILE_ANYWAY = {"仍要反映", "还是要反映", "要反映", "我要反映", "立案", "帮我反映", "file it"}
_NO = {"不用了", "不用", "不需要", "没事了", "算了", "no", "no thanks"}


def is_file_anyway(text: str) -> bool:
    return _plain(text) in _FILE_ANYWAY


def is_no(text: str) -> bool:
    return _plain(text) in _NO


def is_submit(text: str) -> bool:
    """The words that only make sense as the answer to a confirmation question."""
    return _plain(text) in _SUBMIT


def status_query(text: str) -> str | None:
    """'查询 20261122-0001' → the number; '查询' alone → ''; anything else → None."""
    plain = text.strip()
    match = _STATUS.match(plain)
    if match:
        found = CASE_NUMBER.search(match.group(1).upper())
        return found.group(1) if found else ""
    found = CASE_NUMBER.fullmatch(plain.upper())
    return found.group(1) if found else None


_RATE = re.compile(r"^(?:评价|评分|/rate)\s*(.*)$", re.DOTALL)
# After the case number: the score, then what the person says about it (optional).
_SCORE = re.compile(r"^\s*([1-5])\s*分?(?:[\s，,。:：]+(.*))?$", re.DOTALL)


def rating(text: str) -> tuple[str, int, str] | str | None:
    """'评价 20261122-0001 5 修得很快' → (number, 5, '修得很快'); the comment is optional;
    '评价' with anything unusable → ''; else None."""
    match = _RATE.match(text.strip())
    if not match:
        return None
    rest = match.group(1)
    number = CASE_NUMBER.search(rest.upper())
    if not number:
        return ""
    scored = _SCORE.match(rest[number.end():])
    if not scored:
        return ""
    return number.group(1), int(scored.group(1)), (scored.group(2) or "").strip()


def choice(text: str) -> int | None:
    """'2', '第二个', '2.' → 2."""
    match = _CHOICE.match(text.strip())
    if not match:
        return None
    token = match.group(1)
    return int(token) if token.isdigit() else _ORDINALS[token]
