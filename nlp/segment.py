"""Word segmentation: jieba with the project's domain words, set up once per process.

`tokenize` is a module-level function so that scikit-learn pipelines using it pickle.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

import jieba
import numpy as np

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
            _initialize(jieba.dt)
            _ready = True


def _initialize(tokenizer: jieba.Tokenizer) -> None:
    """jieba.initialize, from a faster copy of its prefix dictionary. jieba keeps its ~500,000
    words and counts as a marshal file that takes ~1.1 s to read here, paid by every server
    process, worker and command at start; the same as one text of the words and an array of
    the counts reads in ~0.4 s. The copy is made from jieba's own on first use and holds only
    words and numbers (nothing a load could run)."""
    with tokenizer.lock:
        if tokenizer.initialized:
            return
        stem = _copy_stem(tokenizer)
        loaded = _read_copy(stem) if stem is not None else None
        if loaded is None:
            tokenizer.initialize()
            if stem is not None:
                _write_copy(stem, tokenizer.FREQ, tokenizer.total)
            return
        tokenizer.FREQ, tokenizer.total = loaded
        tokenizer.initialized = True


def _copy_stem(tokenizer: jieba.Tokenizer) -> Path | None:
    """Where the copy of jieba's default dictionary goes, named after jieba's version and the
    dictionary file; None for another dictionary (left to jieba)."""
    if tokenizer.dictionary != jieba.DEFAULT_DICT:
        return None
    source = Path(jieba.__file__).with_name(jieba.DEFAULT_DICT_NAME)
    try:
        st = source.stat()
    except OSError:
        return None
    key = f"{jieba.__version__} {source} {st.st_size} {st.st_mtime_ns}".encode()
    name = f"gridbot-jieba-{hashlib.sha256(key).hexdigest()[:16]}"
    return Path(tokenizer.tmp_dir or tempfile.gettempdir()) / name


def _read_copy(stem: Path) -> tuple[dict[str, int], int] | None:
    try:
        counts = np.load(stem.with_suffix(".counts.npy"), allow_pickle=False)
        words = stem.with_suffix(".words").read_bytes().decode("utf-8").split("\n")
    except (OSError, ValueError):
        return None
    if counts.ndim != 1 or len(counts) != len(words) + 1:
        return None  # half written or not ours: jieba builds it again
    return dict(zip(words, counts[1:].tolist(), strict=True)), int(counts[0])


def _write_copy(stem: Path, freq: dict[str, int], total: int) -> None:
    """Best effort, each file written whole or not at all (several processes may race)."""
    counts = np.fromiter((total, *freq.values()), dtype=np.int64, count=len(freq) + 1)
    for suffix, write in ((".words", lambda fh: fh.write("\n".join(freq).encode("utf-8"))),
                          (".counts.npy", lambda fh: np.save(fh, counts, allow_pickle=False))):
        target = stem.with_suffix(suffix)
        try:
            fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=target.name)
            with os.fdopen(fd, "wb") as fh:
                write(fh)
            os.replace(temporary, target)
        except OSError:
            logging.getLogger(__name__).warning("could not keep jieba's dictionary at %s",
                                                target, exc_info=True)
            return


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
