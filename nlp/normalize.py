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


def mask_personal(text: str) -> str:
    """Hide phone and ID numbers: 13812345678 → 138****5678."""
    text = _ID_CARD.sub(lambda m: m.group(1) + "********" + m.group(0)[-4:], text)
    text = _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    return _LANDLINE.sub(lambda m: f"{m.group(1)}-****{m.group(2)[-4:]}", text)


def strip_urls(text: str) -> str:
    return _URL.sub(" ", text)


def has_chinese(text: str) -> bool:
    return bool(_CJK.search(text))


def prepare(text: str, max_chars: int = 2000) -> str:
    """What gets stored and classified: cleaned, masked, bounded in length."""
    return mask_personal(clean(text))[:max_chars]
