"""training/calibrate.py: the temperature that makes decision scores honest probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from nlp.classifier import softmax
from training.calibrate import fit_temperature


def _nll(scores: np.ndarray, truth: np.ndarray, temperature: float) -> float:
    probs = softmax(scores, temperature)
    return float(-np.mean(np.log(probs[np.arange(len(truth)), truth])))


def _scores(rng: np.random.Generator, n: int, margin: float, right: float) -> tuple[
        np.ndarray, np.ndarray]:
    """Three classes; the top score is `margin` above the rest and on the truth for a
    `right` share of the rows."""
    truth = rng.integers(0, 3, n)
    top = np.where(rng.random(n) < right, truth, (truth + 1) % 3)
    scores = rng.normal(0, 0.01, (n, 3))
    scores[np.arange(n), top] += margin
    return scores, truth


def test_overconfident_scores_are_cooled_and_underconfident_ones_sharpened() -> None:
    rng = np.random.default_rng(7)
    # Right 70% of the time with a huge margin: probabilities near 1 are a lie (T > 1).
    loud, truth = _scores(rng, 400, margin=20.0, right=0.7)
    cooled = fit_temperature(loud, truth)
    assert cooled > 1.0
    assert _nll(loud, truth, cooled) < _nll(loud, truth, 1.0)
    # Always right with a tiny margin: a probability near 1/3 undersells it (T < 1).
    quiet, truth = _scores(rng, 400, margin=0.2, right=1.0)
    sharpened = fit_temperature(quiet, truth)
    assert sharpened < 1.0
    assert _nll(quiet, truth, sharpened) < _nll(quiet, truth, 1.0)


def test_the_temperature_stays_within_its_bounds() -> None:
    rng = np.random.default_rng(11)
    # Perfect, well separated scores: any small temperature fits; it never goes below e^-6.
    perfect = np.array([[5.0, 0.0], [0.0, 5.0]] * 10)
    sharp = fit_temperature(perfect, np.array([0, 1] * 10))
    assert np.exp(-6.0) <= sharp < 0.2
    # Scores that say nothing about the truth: the flattest allowed, e^3, not infinity.
    noise, truth = _scores(rng, 300, margin=10.0, right=0.0)
    truth = rng.integers(0, 3, 300)
    assert fit_temperature(noise, truth) == pytest.approx(np.exp(3.0), rel=0.02)
