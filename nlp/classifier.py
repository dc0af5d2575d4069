"""The classifier interface: raw text in, ranked catalogue codes with confidences out."""

from __future__ import annotations

import json
import math
import pickle
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nlp import segment
from nlp.char_ngrams import text_gram_hashes
from nlp.normalize import clean, strip_urls

MODEL_FILE = "model.pkl"
CARD_FILE = "card.json"


def softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scores = np.atleast_2d(scores) / temperature
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


class LinearTfidfScorer:
    """The decision scores of a fitted `FeatureUnion(TfidfVectorizer…) → linear model`
    pipeline, computed for one text at a time with dicts and a few numpy rows.

    Why: scikit-learn's transform/decision_function cost ~4 ms of validation and sparse
    matrix set-up per call, for a text whose features number in the hundreds. This does the
    same arithmetic (counts over the fitted vocabulary, sublinear tf, idf, l2/l1 norm, dot
    with the coefficients) with the fitted objects' own analyzers, so the scores equal the
    pipeline's up to float rounding (checked in tests/test_scale.py). `build` returns None
    for any other pipeline shape, which then keeps the scikit-learn path."""

    def __init__(self, parts: list[tuple[Callable[[str], list[str]], dict[str, int], Any,
                                          bool, bool, str | None, int, Any]],
                 coef_t: np.ndarray, intercept: np.ndarray) -> None:
        self.parts = parts
        self.coef_t = coef_t  # (features, classes): one contiguous row per feature
        self.intercept = intercept

    @classmethod
    def build(cls, pipeline: Any) -> LinearTfidfScorer | None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import FeatureUnion, Pipeline

        if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
            return None
        union, model = pipeline.steps[0][1], pipeline.steps[1][1]
        if not isinstance(union, FeatureUnion) or union.transformer_weights is not None:
            return None
        coef = getattr(model, "coef_", None)
        intercept = getattr(model, "intercept_", None)
        if coef is None or intercept is None or coef.ndim != 2 or coef.shape[0] < 2:
            return None  # binary models give one column: leave them to scikit-learn
        parts = []
        offset = 0
        for _name, vec in union.transformer_list:
            if type(vec) is not TfidfVectorizer or vec.norm not in ("l1", "l2", None):
                return None
            idf = vec.idf_ if vec.use_idf else None
            parts.append((vec.build_analyzer(), vec.vocabulary_, idf, vec.binary,
                          vec.sublinear_tf, vec.norm, offset, _hashed_vocabulary(vec)))
            offset += len(vec.vocabulary_)
        if offset != coef.shape[1]:
            return None
        dtype = np.float32 if coef.dtype == np.float32 else np.float64  # keep small models small
        return cls(parts, np.ascontiguousarray(np.asarray(coef, dtype=dtype).T),
                   np.asarray(intercept, dtype=np.float64))

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The text's non-zero TF-IDF features: (column indices, values)."""
        all_idx: list[np.ndarray] = []
        all_values: list[np.ndarray] = []
        for analyzer, vocabulary, idf, binary, sublinear, norm, offset, hashed in self.parts:
            if hashed is not None:
                # Character n-grams as numpy hashes looked up in one pass: no Python string
                # or dict lookup per n-gram (those were most of a triage call).
                cols = hashed.lookup(text_gram_hashes(text.replace(" ", ""), 3))
                idx, counts = np.unique(cols[cols >= 0], return_counts=True)
                if not len(idx):
                    continue
                values = counts.astype(np.float64)
            else:
                # Count the terms first (in C), then look up each distinct term once.
                get = vocabulary.get
                found = [(j, n) for term, n in Counter(analyzer(text)).items()
                         if (j := get(term)) is not None]
                if not found:
                    continue
                pairs = np.array(found, dtype=np.intp)
                idx = pairs[:, 0]
                values = pairs[:, 1].astype(np.float64)
            if binary:
                values[:] = 1.0
            elif sublinear:
                values = np.log(values) + 1.0
            if idf is not None:
                values *= idf[idx]
            if norm == "l2":
                values /= math.sqrt(float(values @ values))
            elif norm == "l1":
                values /= float(np.abs(values).sum())
            all_idx.append(idx + offset)
            all_values.append(values)
        if not all_idx:
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        return np.concatenate(all_idx), np.concatenate(all_values)

    def score(self, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Decision scores from `features` (of this scorer or one sharing its vectorisers)."""
        # float32 coefficients take float32 values: a float64 vector would make numpy copy
        # the gathered rows to float64 first (scores then differ by < 1e-5).
        return self.intercept + values.astype(self.coef_t.dtype, copy=False) @ self.coef_t[idx]

    def decision(self, text: str) -> np.ndarray:
        return self.score(*self.features(text))


def _hashed_vocabulary(vec: Any) -> Any:
    """A HashIndex over the vocabulary of a TfidfVectorizer whose analyzer is
    nlp.features.char_ngrams (columns = the vocabulary's), or None for any other analyzer
    or when two terms would share a hash (then the dict path stays)."""
    from nlp.char_ngrams import HashIndex, term_hashes
    from nlp.features import char_ngrams

    if vec.analyzer is not char_ngrams or not vec.vocabulary_:
        return None
    terms = [""] * len(vec.vocabulary_)
    for term, j in vec.vocabulary_.items():
        terms[j] = term
    if any(not 1 <= len(t) <= 3 or " " in t for t in terms):
        return None
    keys = term_hashes(terms)
    if len(np.unique(keys)) != len(keys):
        return None
    return HashIndex(keys)


@dataclass(frozen=True)
class Suggestion:
    code: str
    confidence: float


@dataclass
class TextClassifier:
    """A fitted scikit-learn pipeline plus what is needed to use it honestly.

    `threshold`: top-1 confidence below which the answer counts as unsure (offer the top 3);
    chosen from validation data when the model is trained.
    `user_words`: domain words jieba must know before this pipeline's tokenizer runs.
    `temperature`: decision scores / temperature → softmax gives calibrated probabilities
    (fitted on validation data; 1.0 for pipelines that have predict_proba).
    `focus`: (head, body) characters: the model reads the first `head` characters twice
    (where real letters put the title) and the first `body` once; None: all of it.
    `parts`: the scope model, topic router and item facts for `triage` (nlp.triage).
    """

    pipeline: Any
    labels: list[str]
    threshold: float = 0.5
    user_words: list[str] = field(default_factory=list)
    card: dict[str, Any] = field(default_factory=dict)
    max_chars: int = 2000
    temperature: float = 1.0
    focus: tuple[int, int] | None = None
    parts: Any = None

    def prepare(self, text: str) -> str:
        text = strip_urls(clean(text))[: self.max_chars]
        if self.focus is not None:
            head, body = self.focus
            text = f"{text[:head]} {text[:body]}"
        return text

    def triage(self, text: str, departments: dict[str, str] | None = None) -> Any:
        """Scope, topic, department, urgency, sureness and suggestions (nlp.triage)."""
        from nlp.triage import triage

        return triage(self, text, departments)

    def _scorer(self) -> LinearTfidfScorer | None:
        """Built on first use, never pickled (see __getstate__); False: not applicable."""
        scorer: LinearTfidfScorer | Literal[False] | None = self.__dict__.get("_fast")
        if scorer is None:
            scorer = LinearTfidfScorer.build(self.pipeline) or False
            self.__dict__["_fast"] = scorer
        return scorer or None

    def warm(self) -> None:
        """Build the fast scorers of this model and of its triage parts now. Built lazily, the
        first triage pays ~0.4 s of CPU, and concurrent first requests each build their own
        copy; a server process calls this once, when it loads the model, before it serves."""
        self._scorer()
        for part in vars(self.parts).values() if self.parts is not None else ():
            if isinstance(part, TextClassifier):
                part._scorer()
        from nlp.triage import JointScorer

        JointScorer.of(self)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_fast", None)
        state.pop("_joint", None)
        return state

    def scores(self, texts: list[str]) -> np.ndarray:
        """Class probabilities (rows sum to 1), columns in `labels` order."""
        prepared = [self.prepare(t) for t in texts]
        if hasattr(self.pipeline, "predict_proba"):
            return self.pipeline.predict_proba(prepared)
        scorer = self._scorer() if len(prepared) <= 64 else None  # big batches: vectorised
        if scorer is not None:
            decisions = np.vstack([scorer.decision(t) for t in prepared])
        else:
            decisions = self.pipeline.decision_function(prepared)
        return softmax(decisions, self.temperature)

    def rank(self, text: str, k: int = 3) -> list[Suggestion]:
        return self.rank_many([text], k)[0]

    def rank_many(self, texts: list[str], k: int = 3) -> list[list[Suggestion]]:
        probs = self.scores(texts)
        top = np.argsort(-probs, axis=1)[:, :k]
        return [
            [Suggestion(self.labels[j], float(row[j])) for j in idx]
            for row, idx in zip(probs, top, strict=True)
        ]

    def is_sure(self, suggestions: list[Suggestion]) -> bool:
        return bool(suggestions) and suggestions[0].confidence >= self.threshold

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / MODEL_FILE, "wb") as fh:
            pickle.dump(self, fh, protocol=pickle.HIGHEST_PROTOCOL)
        (directory / CARD_FILE).write_text(
            json.dumps(self.card, ensure_ascii=False, indent=2), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path) -> TextClassifier:
        path = directory / MODEL_FILE
        if not path.exists():
            raise FileNotFoundError(f"no model at {path}; train one with `gridbot train`")
        with open(path, "rb") as fh:
            model = pickle.load(fh)  # our own file, written by `gridbot train`
        if not isinstance(model, cls):
            raise TypeError(f"{path} does not hold a gridbot text classifier")
        segment.add_words(model.user_words)
        return model
