"""Stopword deletion on compacted text, the same on training text and on incoming messages.

The real-message training data (TIPDM train_seg.csv) had its publisher's stopwords removed;
citizens' messages keep them, so n-grams such as 的问/我们小 appear only at prediction time.
Deleting the same strings from both sides, as substrings and without segmenting (every
character inside an occurrence of a listed word goes), gives the two the same n-grams.
The list is data/stopwords/tipdm.txt, built by scripts/build_stopwords.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

MAX_LENGTH = 4  # longest word, in characters: four fit one 64-bit key
DEFAULT_LIST = Path(__file__).resolve().parents[1] / "data/stopwords/tipdm.txt"


class StopwordError(Exception):
    """The stopword file is missing or malformed; the message names the file and line."""


def read_stopwords(path: Path = DEFAULT_LIST) -> tuple[str, ...]:
    """First column of each non-comment line (the rest is provenance)."""
    if not path.exists():
        raise StopwordError(f"stopword list not found: {path}")
    words: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        word = line.split("\t", 1)[0].strip()
        if not re.fullmatch(r"[\u4e00-\u9fffa-z]+", word):
            # Compacted text holds only CJK, lower-case letters and digits; anything else
            # could never match, and digits would eat numbers.
            raise StopwordError(f"{path}, line {number}: {word!r} is not a CJK/letter word")
        words.append(word)
    return tuple(words)


class StopwordDeleter:
    """Deletes every character covered by an occurrence of a listed word, in compacted
    texts (CJK, a–z, 0–9: no spaces, punctuation or line breaks).

    Vectorised over the whole batch: one-character words by a table of all 65,536 code
    points; longer words only where a table says a listed word may start, by packing the
    next 2…4 characters exactly into one 64-bit key and looking it up among the listed
    words' keys. Python's str.replace and regular expressions cost more than all the rest
    of classifying; this costs a few numpy passes."""

    def __init__(self, words: tuple[str, ...]) -> None:
        self.words = tuple(sorted(set(words)))
        self.single = np.zeros(1 << 16, dtype=bool)
        self.first = np.zeros(1 << 16, dtype=bool)
        by_length: dict[int, list[int]] = {}
        for word in self.words:
            codes = [ord(ch) for ch in word]
            if not 1 <= len(codes) <= MAX_LENGTH or max(codes) > 0xFFFF:
                raise StopwordError(f"stopword {word!r}: 1–{MAX_LENGTH} characters below "
                                    "U+10000 only")
            if len(codes) == 1:
                self.single[codes[0]] = True
                continue
            self.first[codes[0]] = True
            key = 0
            for code in codes:
                key = (key << 16) | code
            by_length.setdefault(len(codes), []).append(key)
        self.keys = {n: np.array(sorted(k), dtype=np.uint64) for n, k in by_length.items()}

    def __call__(self, texts: list[str]) -> list[str]:
        if not texts or not self.words:
            return list(texts)
        joined = "\n".join(texts)
        chars = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
        # Code points above 16 bits are in no listed word: U+FFFF (a non-character) stands
        # in for them; MAX_LENGTH zeros after the end let every start read 4 characters.
        codes = np.zeros(len(chars) + MAX_LENGTH, dtype=np.uint64)
        np.minimum(chars, 0xFFFF, out=codes[: len(chars)], casting="unsafe")
        delete = self.single[codes[: len(chars)]]
        starts = np.flatnonzero(self.first[codes[: len(chars)]])
        if len(starts):
            packed = codes[starts] << np.uint64(48)
            for k in range(1, MAX_LENGTH):
                packed |= codes[starts + k] << np.uint64(48 - 16 * k)
            # The longest listed word at each start (0: none); its characters go.
            longest = np.zeros(len(starts), dtype=np.int8)
            for n, keys in sorted(self.keys.items()):
                prefix = packed >> np.uint64(16 * (MAX_LENGTH - n))
                at = np.minimum(np.searchsorted(keys, prefix), len(keys) - 1)
                longest[keys[at] == prefix] = n
            for k in range(MAX_LENGTH):
                delete[starts[longest > k] + k] = True
        if not delete.any():
            return list(texts)
        return chars[~delete].tobytes().decode("utf-32-le").split("\n")
