"""Word segmentation: jieba with the project's domain words, set up once per process.

`tokenize` is a module-level function so that scikit-learn pipelines using it pickle.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

import jieba

_lock = threading.Lock()
_ready = False
_added: set[str] = set()
_KEEP = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]")


def _ensure_ready() -> None:
    global _ready
    if _ready:
        return
    with _lock:
        if not _ready:
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _ready = True


def add_words(words: Iterable[str], freq: int = 20000) -> None:
    """Teach jieba domain words (井盖, 牛皮癣, 季华五路 …) so they stay whole."""
    _ensure_ready()
    with _lock:
        for word in words:
            word = word.strip()
            if len(word) >= 2 and word not in _added:
                jieba.add_word(word, freq=freq)
                _added.add(word)


def tokenize(text: str) -> list[str]:
    """Words without punctuation or spaces; HMM off (faster, and domain words are known)."""
    _ensure_ready()
    return [w for w in jieba.lcut(text, HMM=False) if _KEEP.search(w)]
