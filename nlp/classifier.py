"""The classifier interface: raw text in, ranked catalogue codes with confidences out."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nlp import segment
from nlp.normalize import clean, strip_urls

MODEL_FILE = "model.pkl"
CARD_FILE = "card.json"


def softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scores = np.atleast_2d(scores) / temperature
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


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
    """

    pipeline: Any
    labels: list[str]
    threshold: float = 0.5
    user_words: list[str] = field(default_factory=list)
    card: dict[str, Any] = field(default_factory=dict)
    max_chars: int = 2000
    temperature: float = 1.0

    def prepare(self, text: str) -> str:
        return strip_urls(clean(text))[: self.max_chars]

    def scores(self, texts: list[str]) -> np.ndarray:
        """Class probabilities (rows sum to 1), columns in `labels` order."""
        prepared = [self.prepare(t) for t in texts]
        if hasattr(self.pipeline, "predict_proba"):
            return self.pipeline.predict_proba(prepared)
        return softmax(self.pipeline.decision_function(prepared), self.temperature)

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
