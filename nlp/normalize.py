"""Make raw citizen text safe and uniform before anything else sees it.

Order matters: full-width letters and digits to ASCII first (Chinese punctuation stays, people
read it), then traditional → simplified, then invisible characters out, then personal numbers
masked so they are never stored or logged.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from importlib import resources

# Zero-width, bidi controls and other format characters: invisible, and used to smuggle text.
_INVISIBLE = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\u00ad]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\r\n]+")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3})[- ]?(\d{7,8})(?!\d)")
_ID_CARD = re.compile(r"(?<!\d)(\d{6})(?:19|20)\d{2}(?:0[1-9]|1[0-2])\d{2}\d{3}[\dXx](?!\d)")
# Bank cards: 16–19 digits, alone or in groups of four (run after the ID-card pattern).
_BANK_CARD = re.compile(r"(?<!\d)(\d{4})(?:[- ]?\d{4}){2}[- ]?\d{4}(?:[- ]?\d{1,3})?(?!\d)")
# A name after the words that introduce a person (来电人陈女士, 联系人：王小明), and a
# surname with a courtesy title (陈女士, 王先生): names are identity, never shown.
_NAME_MARKERS = "来电人|联系人|报案人|反映人|举报人|投诉人|当事人|姓名|户主|本人叫|我叫|我是"
_TITLES = "女士|先生|小姐|阿姨|大姐|大哥|师傅|老师|同志"
_NAMED = re.compile(
    rf"({_NAME_MARKERS})[:：\s]*([\u4e00-\u9fff]{{1,2}}(?:{_TITLES})|[\u4e00-\u9fff]{{2,3}}"
    rf"(?<![路街巷号栋村区园苑口])(?=[\s,，。;；:：、()（）\d]|$|电话|手机|联系|来电))")
# A name right before a mobile number (王小明 13800138000): the pair is a contact.
_NAME_BEFORE_PHONE = re.compile(
    r"(?<![\u4e00-\u9fff])(?!电话|手机|联系|号码|来电|热线|拨打)([\u4e00-\u9fff]{2,3})"
    r"(?<![路街巷号栋村区园苑口店场楼室])"
    r"(?=\s*(?:电话|手机|手机号)?[:：]?\s*(?:\+?86[- ]?)?1[3-9]\d)")
_TITLED = re.compile(r"[\u4e00-\u9fff](女士|先生|小姐)")
# Mainland plates: province, city letter, five or six characters (new-energy plates: six).
_PLATE = re.compile(r"([京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼使领])"
                    r"([A-Z])[·•\s]?([A-Z0-9]{5,6})(?![A-Z0-9])")
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_CJK = re.compile(r"[\u4e00-\u9fff]")
_FULL_WIDTH = {c: c - 0xFEE0 for c in range(0xFF10, 0xFF5F) if chr(c - 0xFEE0).isalnum()}
_FULL_WIDTH[0x3000] = 0x20  # ideographic space
_FULL_WIDTH[0xFF0D] = 0x2D  # full-width hyphen, as in phone numbers


@cache
def _t2s_table() -> dict[int, str]:
    """OpenCC's character table as a str.translate map: one pass, no phrase lookups (fast)."""
    table: dict[int, str] = {}
    path = resources.files("opencc") / "dictionary" / "TSCharacters.txt"
    for line in path.read_text(encoding="utf-8").splitlines():
        trad, _, simp = line.partition("\t")
        if len(trad) == 1 and simp:
            table[ord(trad)] = simp.split()[0]
    return table


def to_simplified(text: str) -> str:
    return text.translate(_t2s_table())


def clean(text: str) -> str:
    """ASCII letters and digits, simplified characters, no invisible characters, single spaces."""
    text = unicodedata.normalize("NFC", text).translate(_FULL_WIDTH)
    text = to_simplified(text)
    text = _INVISIBLE.sub("", text)
    text = _CONTROL.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def mask_personal(text: str, plates: bool = False) -> str:
    """Hide phone, ID and bank-card numbers and introduced names: 13812345678 → 138****5678,
    来电人陈女士 → 来电人*女士. Plates (粤E12345 → 粤E***45) only with `plates`: a team
    needs the plate of an illegally parked car, the public never does."""
    text = _ID_CARD.sub(lambda m: m.group(1) + "********" + m.group(0)[-4:], text)
    text = _BANK_CARD.sub(_hide_card, text)
    text = _NAME_BEFORE_PHONE.sub("**", text)
    text = _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    text = _LANDLINE.sub(lambda m: f"{m.group(1)}-****{m.group(2)[-4:]}", text)
    text = _NAMED.sub(_hide_name, text)
    text = _TITLED.sub(lambda m: "*" + m.group(1), text)
    if plates:
        text = _PLATE.sub(lambda m: f"{m.group(1)}{m.group(2)}***{m.group(3)[-2:]}", text)
    return text


def _hide_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return f"{digits[:4]} **** **** {digits[-4:]}"


def _hide_name(match: re.Match[str]) -> str:
    name = match.group(2)
    for title in _TITLES.split("|"):
        if name.endswith(title):
            return match.group(1) + "*" + title
    return match.group(1) + "**"


def public_text(text: str) -> str:
    """Free text for public and team-facing surfaces: cleaned (no bidi or zero-width
    tricks), personal numbers, names and plates masked."""
    return mask_personal(clean(text), plates=True)


def strip_urls(text: str) -> str:
    return _URL.sub(" ", text)


def has_chinese(text: str) -> bool:
    return bool(_CJK.search(text))


def prepare(text: str, max_chars: int = 2000) -> str:
    """What gets stored and classified: cleaned, masked, bounded in length."""
    return mask_personal(clean(text))[:max_chars]
