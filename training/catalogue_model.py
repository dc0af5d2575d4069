"""Train the default catalogue model from the seed corpus, with a validated threshold."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from bot.catalogue import Catalogue
from nlp.classifier import TextClassifier
from nlp.features import catalogue_pipeline
from nlp.segment import add_words
from training.calibrate import fit_temperature
from training.card import model_card
from training.corpus import read_seed_corpus

TARGET_PRECISION = 0.9  # when the bot is "sure", it should be right at least this often


@dataclass
class ValidationReport:
    n_train: int
    n_valid: int
    top1_accuracy: float
    top3_accuracy: float
    big_class_accuracy: float
    threshold: float
    sure_share: float
    sure_precision: float


def choose_threshold(confidences: np.ndarray, correct: np.ndarray,
                     target: float = TARGET_PRECISION) -> tuple[float, float, float]:
    """The lowest confidence cut at which answers above it are right ≥ TARGET_PRECISION.

    Returns (threshold, share of answers above it, their precision)."""
    order = np.argsort(-confidences)
    hits = np.cumsum(correct[order])
    precision = hits / np.arange(1, len(order) + 1)
    ok = np.nonzero(precision >= target)[0]
    if len(ok) == 0:
        return 1.0, 0.0, 0.0
    last = ok[-1]
    return float(confidences[order][last]), (last + 1) / len(order), float(precision[last])


def train_catalogue_model(
    corpus_dir: Path, catalogue: Catalogue, extra_words: set[str], seed: int = 7
) -> tuple[TextClassifier, ValidationReport]:
    texts, codes = read_seed_corpus(corpus_dir, catalogue)
    words = sorted(catalogue.vocabulary() | extra_words)
    add_words(words)
    x_train, x_valid, y_train, y_valid = train_test_split(
        texts, codes, test_size=0.2, stratify=codes, random_state=seed
    )
    pipeline = catalogue_pipeline().fit(x_train, y_train)
    labels = list(pipeline.classes_)
    index = {code: i for i, code in enumerate(labels)}
    probe = TextClassifier(pipeline, labels, user_words=words)
    probe.temperature = fit_temperature(
        pipeline.decision_function([probe.prepare(x) for x in x_valid]),
        np.array([index[y] for y in y_valid]),
    )
    ranked = probe.rank_many(x_valid, k=3)
    top1 = np.array([r[0].code == y for r, y in zip(ranked, y_valid, strict=True)])
    top3 = np.mean([y in {s.code for s in r} for r, y in zip(ranked, y_valid, strict=True)])
    big = np.mean([
        catalogue.get(r[0].code).big_class == catalogue.get(y).big_class
        for r, y in zip(ranked, y_valid, strict=True)
    ])
    conf = np.array([r[0].confidence for r in ranked])
    threshold, share, precision = choose_threshold(conf, top1)
    report = ValidationReport(
        len(x_train), len(x_valid), float(top1.mean()), float(top3), float(big),
        threshold, share, precision,
    )
    started = time.perf_counter()
    pipeline = catalogue_pipeline().fit(texts, codes)
    model = TextClassifier(pipeline, list(pipeline.classes_), threshold, words,
                           temperature=probe.temperature)
    model.card = model_card(
        kind="catalogue",
        texts=texts,
        labels=codes,
        params={"pipeline": "catalogue_pipeline", "target_precision": TARGET_PRECISION,
                "temperature": probe.temperature},
        metrics={"validation": report.__dict__},
        train_seconds=time.perf_counter() - started,
    )
    return model, report
