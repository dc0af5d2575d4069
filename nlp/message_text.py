"""Text as the message classifier sees it, and the classifier that prepares it fast.

MessageClassifier.prepare cleans like TextClassifier.prepare (full-width → ASCII,
traditional → simplified, invisible characters and URLs out), in bounded time; then, inside
the pipeline, `compact` masks phone and ID numbers and drops spaces and punctuation, so
that pre-segmented training text ("井盖 丢失") and raw messages ("井盖丢失了！") give the same
features; the message model then deletes its stopwords from both (nlp.stopwords).
Module-level functions and classes, so that models pickle.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from nlp.classifier import TextClassifier, softmax
from nlp.normalize import _CONTROL, _FULL_WIDTH, _INVISIBLE, _SPACES, _t2s_table, strip_urls

_NOT_TEXT = re.compile(r"[^\u4e00-\u9fffa-z0-9]+")
# Phone, landline and ID numbers (7+ digits once separators are gone) become one placeholder.
_LONG_NUMBER = re.compile(r"\d{7,}")
_WWW = re.compile(r"www\.", re.IGNORECASE)


def compact(text: str) -> str:
    """'市民王某 138-1234-5678 反映：井盖 丢了！' → '市民王某0反映井盖丢了'.

    Separators go first, so a phone number written 138-1234-5678 or 138 1234 5678 is one
    run of digits; every run of 7 or more digits (mobile, landline with area code, ID card)
    becomes the placeholder 0: no personal number ever reaches the features."""
    return _LONG_NUMBER.sub("0", _NOT_TEXT.sub("", text.lower()))


def compact_all(texts: Iterable[str]) -> list[str]:
    return [compact(text) for text in texts]


# --- fast clean-up: the same result as TextClassifier.prepare, at a multiple of the speed ---
# str.translate with a dict looks each character up in Python, and so does a regex with a
# large character class; most messages need no change at all. A set intersection finds the
# few characters that do, and str.replace (a C scan) changes each.


@cache
def _replacements() -> tuple[dict[str, str], frozenset[str], frozenset[str], dict[int, str]]:
    table = {chr(k): chr(v) for k, v in _FULL_WIDTH.items()}
    # Full-width output is ASCII, never traditional: one pass equals clean()'s two.
    table |= {chr(k): v for k, v in _t2s_table().items()}
    # Characters whose replacement holds another replaceable character: replacing one by
    # one could then differ from translate's single pass, so those texts take translate.
    chained = frozenset(c for c, v in table.items() if any(ch in table for ch in v))
    return table, frozenset(table), chained, {ord(c): v for c, v in table.items()}


def clean_fast(text: str) -> str:
    """Exactly nlp.normalize.clean(text) (tests compare them), faster."""
    text = unicodedata.normalize("NFC", text)
    table, keys, chained, by_ord = _replacements()
    needed = keys.intersection(text)
    if needed:
        if needed & chained:
            text = text.translate(by_ord)
        else:
            for char in needed:
                text = text.replace(char, table[char])
    text = _INVISIBLE.sub("", text)
    text = _CONTROL.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def strip_urls_fast(text: str) -> str:
    """Exactly nlp.normalize.strip_urls(text), skipping the scan when no URL can be there."""
    if "://" in text or _WWW.search(text):
        return strip_urls(text)
    return text


# Raw characters read before cleaning: cleaning only shortens text, so a few times the
# classifier's limit loses nothing it would read, and very long text costs no more.
RAW_FACTOR = 4


@dataclass
class MessageClassifier(TextClassifier):
    """A TextClassifier whose clean-up is bounded in cost and fast enough for thousands of
    messages a second; its result is the same as TextClassifier.prepare's."""

    def prepare(self, text: str) -> str:
        return strip_urls_fast(clean_fast(text[: self.max_chars * RAW_FACTOR]))[: self.max_chars]

    def scores(self, texts: list[str]) -> np.ndarray:
        prepared: Any = [self.prepare(t) for t in texts]
        model = self.pipeline.steps[-1][1]
        if hasattr(model, "coef_") and hasattr(model, "intercept_"):
            # A linear model's decision function, without scikit-learn's per-call input
            # checks: they cost more than the product for one message.
            for _, step in self.pipeline.steps[:-1]:
                prepared = step.transform(prepared)
            scores = np.asarray(prepared @ model.coef_.T + model.intercept_)
            if scores.shape[1] == 1:
                scores = scores[:, 0]
        else:
            scores = self.pipeline.decision_function(prepared)
        if scores.ndim == 1:  # two labels: one score, for the second
            scores = np.column_stack([-scores, scores])
        return softmax(scores, self.temperature)
