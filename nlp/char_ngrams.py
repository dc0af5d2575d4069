"""Character n-gram counts, vectorised with numpy: the message model's features.

scikit-learn's char analyzer builds a Python string per n-gram (≈1,300 per message of 430
characters) and is the slowest step of classifying. Here every n-gram is a 64-bit rolling
hash computed over the whole batch at once, and the vocabulary is an exact table of the
hashes seen in training (kept by document frequency). Output: raw counts, for a
TfidfTransformer. Texts come in already compacted (see nlp.message_text).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin

_MIX = np.uint64(0x9E3779B97F4A7C15)
_SLOT = np.uint64(0xC2B2AE3D27D4EB4F)
_DOC = np.uint64(12345)


def _slots(keys: np.ndarray, bits: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        return ((keys * _SLOT) >> np.uint64(64 - bits)).astype(np.int64)


class HashIndex:
    """uint64 key → column, by open addressing in numpy arrays (0 = empty slot).

    Pickled as its sorted keys only; the table is rebuilt on load (smaller files)."""

    def __init__(self, keys: np.ndarray) -> None:
        self.keys = np.asarray(keys, dtype=np.uint64)
        self._build()

    def _build(self) -> None:
        n = len(self.keys)
        self.bits = max(10, int(np.ceil(np.log2(max(n, 1) * 4))))  # load factor ≤ 1/4
        size = 1 << self.bits
        self.mask = size - 1
        table_keys = np.zeros(size, np.uint64)
        table_cols = np.full(size, -1, np.int32)
        slot = _slots(self.keys, self.bits)
        pending = np.arange(n)
        while len(pending):
            free = table_keys[slot[pending]] == 0
            candidates = pending[free]
            # Of several keys wanting one free slot, the first wins; the rest probe on.
            _, first = np.unique(slot[candidates], return_index=True)
            winners = candidates[first]
            table_keys[slot[winners]] = self.keys[winners]
            table_cols[slot[winners]] = winners
            placed = np.zeros(n, bool)
            placed[winners] = True
            pending = pending[~placed[pending]]
            taken = table_keys[slot[pending]] != 0
            slot[pending[taken]] = (slot[pending[taken]] + 1) & self.mask
        self.table_keys, self.table_cols = table_keys, table_cols

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Column of each key, -1 for keys not in the index."""
        # Whole-array gathers first: nearly every key is settled by its first slot, and
        # numpy's per-pass overhead, not memory, is what costs here.
        slot = _slots(keys, self.bits)
        stored = self.table_keys[slot]
        found = np.where(stored == keys, self.table_cols[slot], -1)
        pending = np.flatnonzero((stored != keys) & (stored != 0))  # collided: probe on
        while len(pending):
            slot[pending] = (slot[pending] + 1) & self.mask
            stored = self.table_keys[slot[pending]]
            hit = stored == keys[pending]
            found[pending[hit]] = self.table_cols[slot[pending[hit]]]
            pending = pending[~hit & (stored != 0)]
        return found

    def __getstate__(self) -> dict[str, Any]:
        return {"keys": self.keys}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.keys = state["keys"]
        self._build()


def term_hashes(terms: list[str]) -> np.ndarray:
    """The rolling hash of each whole term (as `text_gram_hashes` hashes its n-grams), for
    turning a string vocabulary of character n-grams into a HashIndex."""
    out = np.zeros(len(terms), np.uint64)
    by_length: dict[int, list[int]] = {}
    for i, term in enumerate(terms):
        by_length.setdefault(len(term), []).append(i)
    with np.errstate(over="ignore"):
        for length, rows in by_length.items():
            if length == 0:
                continue
            joined = "".join(terms[i] for i in rows).encode("utf-32-le", "surrogatepass")
            chars = np.frombuffer(joined, np.uint32).astype(np.uint64).reshape(-1, length)
            h = chars[:, 0] * _MIX + np.uint64(1)
            for n in range(2, length + 1):
                h = (h ^ (h >> np.uint64(29))) * _MIX + chars[:, n - 1] + np.uint64(n)
            out[rows] = h
    out[out == 0] = 1  # as in CharNgramCounter: 0 marks an empty slot
    return out


def text_gram_hashes(text: str, n_max: int = 3) -> np.ndarray:
    """Hashes of every character 1..n_max-gram of one text (all of them, repeats included),
    equal to `term_hashes` of the n-gram strings: nlp.features.char_ngrams without building
    a Python string per n-gram."""
    chars = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)
    chars = chars.astype(np.uint64)
    parts = []
    with np.errstate(over="ignore"):
        rolling = chars * _MIX + np.uint64(1)
        parts.append(rolling)
        for n in range(2, n_max + 1):
            prev = rolling[:-1]
            rolling = (prev ^ (prev >> np.uint64(29))) * _MIX + chars[n - 1:] + np.uint64(n)
            parts.append(rolling)
    hashes = np.concatenate(parts)
    hashes[hashes == 0] = 1
    return hashes


class CharNgramCounter(BaseEstimator, TransformerMixin):
    """Counts of character n-grams (lengths `ngram_range`) in the first `max_chars`
    characters of each text (None: all), for n-grams in at least `min_df` training texts."""

    def __init__(self, ngram_range: tuple[int, int] = (1, 3), min_df: int = 2,
                 max_chars: int | None = None) -> None:
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_chars = max_chars

    def _hashes(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(n-gram hash, document number) for every n-gram of every text."""
        if self.max_chars:
            texts = [t[: self.max_chars] for t in texts]
        lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        chars = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
        chars = chars.astype(np.uint64)
        doc = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        low, high = self.ngram_range
        keys, docs = [], []
        rolling = chars
        with np.errstate(over="ignore"):
            for n in range(1, high + 1):
                if n == 1:
                    rolling = chars * _MIX + np.uint64(1)
                else:
                    prev = rolling[:-1]
                    rolling = (prev ^ (prev >> np.uint64(29))) * _MIX + chars[n - 1:] + \
                        np.uint64(n)
                if n >= low:
                    inside = doc[: len(rolling)] == doc[n - 1:]  # no n-gram across two texts
                    keys.append(rolling[inside])
                    docs.append(doc[: len(rolling)][inside])
        if not keys:
            return np.zeros(0, np.uint64), np.zeros(0, np.int64)
        hashes = np.concatenate(keys)
        hashes[hashes == 0] = 1  # 0 marks an empty slot in the index
        return hashes, np.concatenate(docs)

    def fit(self, texts: list[str], y: Any = None) -> CharNgramCounter:
        hashes, docs = self._hashes(list(texts))
        with np.errstate(over="ignore"):
            pair = hashes ^ (docs.astype(np.uint64) * _SLOT + _DOC)
        _, first = np.unique(pair, return_index=True)  # one per (n-gram, text): df counts
        vocabulary, df = np.unique(hashes[first], return_counts=True)
        self.index_ = HashIndex(vocabulary[df >= self.min_df])
        self.n_features_ = len(self.index_.keys)
        return self

    def transform(self, texts: list[str]) -> sp.csr_matrix:
        texts = list(texts)
        hashes, docs = self._hashes(texts)
        cols = self.index_.lookup(hashes)
        known = cols >= 0
        # One sort of (text, column) pairs gives the CSR rows in order and their counts.
        pairs, counts = np.unique(docs[known] * self.n_features_ + cols[known],
                                  return_counts=True)
        rows = pairs // self.n_features_
        indptr = np.zeros(len(texts) + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=len(texts)), out=indptr[1:])
        counts = sp.csr_matrix(
            (counts.astype(np.float32), (pairs % self.n_features_).astype(np.int32), indptr),
            shape=(len(texts), self.n_features_),
        )
        return counts


class CharNgramTfidf(BaseEstimator, TransformerMixin):
    """TF-IDF of character n-grams: the same numbers as CharNgramCounter followed by
    TfidfTransformer(sublinear_tf=True) (smooth idf, L2-normalised rows), computed directly.

    scikit-learn validates its input on every call, which costs more than the arithmetic
    when a server classifies one message at a time."""

    def __init__(self, ngram_range: tuple[int, int] = (1, 3), min_df: int = 2,
                 max_chars: int | None = None) -> None:
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_chars = max_chars

    def fit(self, texts: list[str], y: Any = None) -> CharNgramTfidf:
        texts = list(texts)
        self.counter_ = CharNgramCounter(self.ngram_range, self.min_df, self.max_chars)
        counts = self.counter_.fit(texts).transform(texts)
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        self.idf_ = np.log((1 + len(texts)) / (1 + df)) + 1.0
        return self

    def transform(self, texts: list[str]) -> sp.csr_matrix:
        matrix = self.counter_.transform(texts)
        data = (1.0 + np.log(matrix.data.astype(np.float64))) * self.idf_[matrix.indices]
        rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
        norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=matrix.shape[0]))
        data /= norms[rows]  # rows with entries have a positive norm
        return sp.csr_matrix((data, matrix.indices, matrix.indptr), shape=matrix.shape)


class MessageFeatures(BaseEstimator, TransformerMixin):
    """The message model's features: TF-IDF of character n-grams of the whole compacted
    text, and of its first `head_chars` characters weighted by `head_weight`.

    `stopwords` are deleted from the compacted text first, in training and in prediction
    alike (nlp.stopwords); the list is a parameter, so it travels inside the saved model."""

    def __init__(self, ngram_max: int = 3, min_df: int = 2, head_chars: int = 20,
                 head_weight: float = 0.5, stopwords: tuple[str, ...] = ()) -> None:
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.head_chars = head_chars
        self.head_weight = head_weight
        self.stopwords = stopwords

    def _prepare(self, texts: list[str]) -> list[str]:
        from nlp.message_text import compact_all

        compacted = compact_all(texts)
        return self.deleter_(compacted) if self.deleter_ is not None else compacted

    def fit(self, texts: list[str], y: Any = None) -> MessageFeatures:
        from nlp.stopwords import StopwordDeleter

        self.deleter_ = StopwordDeleter(tuple(self.stopwords)) if self.stopwords else None
        prepared = self._prepare(texts)
        self.whole_ = CharNgramTfidf((1, self.ngram_max), self.min_df).fit(prepared)
        self.head_ = CharNgramTfidf((1, self.ngram_max), self.min_df,
                                    self.head_chars).fit(prepared)
        return self

    def transform(self, texts: list[str]) -> sp.csr_matrix:
        prepared = self._prepare(texts)
        return sp.hstack([self.whole_.transform(prepared),
                          self.head_.transform(prepared) * self.head_weight], format="csr")

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Models saved before stopwords existed load as models without them.
        state.setdefault("stopwords", ())
        state.setdefault("deleter_", None)
        self.__dict__.update(state)
