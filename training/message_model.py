"""Train a message classifier from any labelled file: cross-validated report, calibrated
probabilities, a validated "unsure" threshold, and a model card."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

from nlp.classifier import TextClassifier, softmax
from nlp.features import message_pipeline
from nlp.message_text import MessageClassifier
from training.calibrate import fit_temperature
from training.card import model_card
from training.catalogue_model import choose_threshold
from training.report import score_metrics

Progress = Callable[[str], None]


class TrainingError(Exception):
    pass


@dataclass
class TrainingResult:
    model: TextClassifier
    cv: dict[str, Any]  # cross-validated metrics (out-of-fold predictions)
    cv_predicted: list[str] = field(default_factory=list)
    cv_truth: list[str] = field(default_factory=list)


def _decision(pipeline: Any, texts: list[str]) -> np.ndarray:
    scores = pipeline.decision_function(texts)
    return scores if scores.ndim == 2 else np.column_stack([-scores, scores])


def train_message_model(
    texts: list[str],
    labels: list[str],
    *,
    folds: int = 5,
    seed: int = 7,
    progress: Progress | None = None,
    **params: Any,
) -> TrainingResult:
    """`params` go to `message_pipeline`. `folds` < 2 skips cross-validation (then the
    temperature stays 1 and the threshold 0.5)."""
    step = progress or (lambda _message: None)
    counts = Counter(labels)
    if len(counts) < 2:
        raise TrainingError("need at least two different labels to train a classifier")
    probe = MessageClassifier(message_pipeline(**params), sorted(counts))
    prepared = [probe.prepare(t) for t in texts]
    folds = min(folds, min(counts.values()))  # every fold needs every class
    y = np.array(labels)
    cv: dict[str, Any] = {"folds": 0}
    temperature, threshold = 1.0, 0.5
    oof_predicted: list[str] = []
    if folds >= 2:
        out_of_fold = np.zeros((len(texts), len(probe.labels)))
        fold_f1: list[float] = []
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
        for number, (train_idx, test_idx) in enumerate(splitter.split(prepared, y), start=1):
            step(f"cross-validation fold {number}/{folds}")
            fitted = clone(probe.pipeline).fit([prepared[i] for i in train_idx], y[train_idx])
            scores = _decision(fitted, [prepared[i] for i in test_idx])
            out_of_fold[test_idx] = scores  # classes_ are sorted, as probe.labels
            fold_f1.append(float(f1_score(y[test_idx], fitted.classes_[scores.argmax(1)],
                                          average="macro")))
        index = {label: i for i, label in enumerate(probe.labels)}
        truth_index = np.array([index[label] for label in labels])
        temperature = fit_temperature(out_of_fold, truth_index)
        probs = softmax(out_of_fold, temperature)
        correct = probs.argmax(1) == truth_index
        threshold, sure_share, sure_precision = choose_threshold(probs.max(1), correct)
        oof_predicted = [probe.labels[i] for i in probs.argmax(1)]
        cv = {
            "folds": folds,
            "fold_macro_f1": [round(f, 4) for f in fold_f1],
            "macro_f1_mean": round(float(np.mean(fold_f1)), 4),
            "macro_f1_std": round(float(np.std(fold_f1)), 4),
            "out_of_fold": score_metrics(probs, probe.labels, labels),
            "threshold": round(threshold, 4),
            "sure_share": round(float(sure_share), 4),
            "sure_precision": round(float(sure_precision), 4),
        }
    step("training on all data")
    started = time.perf_counter()
    pipeline = clone(probe.pipeline).fit(prepared, y)
    seconds = time.perf_counter() - started
    model = MessageClassifier(pipeline, list(pipeline.classes_), threshold=threshold,
                           temperature=temperature)
    model.card = model_card(
        kind="message",
        texts=texts,
        labels=labels,
        params={"pipeline": "message_pipeline",
                **{k: v for k, v in params.items() if k != "stopwords"},
                # How many words are deleted before featurising (the list is in the model).
                "stopwords": len(pipeline.named_steps["features"].stopwords),
                "folds": folds, "seed": seed,
                "temperature": round(temperature, 4), "threshold": round(threshold, 4),
                "max_chars": model.max_chars},
        metrics={"cross_validation": {k: v for k, v in cv.items() if k != "out_of_fold"}},
        train_seconds=seconds,
    )
    return TrainingResult(model, cv, oof_predicted, labels if oof_predicted else [])
