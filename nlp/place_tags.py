"""Place names the gazetteer does not know, found by jieba's part-of-speech tags (`ns`).

A hint for hotline staff ("南海大道123号" was named, though no grid is known for it), never a
grid by itself: tags are guesses, so the gazetteer stays the only source of grids.
"""

from __future__ import annotations

import re

import jieba.posseg as pseg

from nlp.segment import _ensure_ready

_ROAD_PART = re.compile(
    r"^(?:[东南西北中]?(?:大道|大街|路|街|巷|道|桥|村|镇|区|县|市)|[东南西北中]路)$"
)
_NUMBER = re.compile(r"^(?:\d+|[零一二三四五六七八九十百]+)(?:号|弄|栋|座)?$|^号$")
_NAME_FLAGS = {"n", "nz", "nr", "ns", "nt"}
MAX_CHARS = 300  # tagging is slower than cutting: look at the start, where places are named
MAX_NAMES = 3


def place_names(text: str) -> list[str]:
    """'南海大道123号门口垃圾很多' → ['南海大道123号']; names in the order they appear."""
    _ensure_ready()
    pairs = [(p.word, p.flag) for p in pseg.lcut(text[:MAX_CHARS])]
    names: list[str] = []
    i = 0
    while i < len(pairs):
        word, flag = pairs[i]
        if flag != "ns":
            i += 1
            continue
        parts = [word]
        # jieba often tags only the suffix (文华 + 北路): take the name before it too.
        if _ROAD_PART.match(word) and i > 0 and pairs[i - 1][1] in _NAME_FLAGS:
            parts.insert(0, pairs[i - 1][0])
        j = i + 1
        # Extend over road suffixes and house numbers: 南海 + 大道 + 123 + 号.
        while j < len(pairs) and (_ROAD_PART.match(pairs[j][0]) or _NUMBER.match(pairs[j][0])):
            parts.append(pairs[j][0])
            j += 1
        name = "".join(parts)
        if len(name) >= 2 and name not in names:
            names.append(name)
        i = j
    return names[:MAX_NAMES]
