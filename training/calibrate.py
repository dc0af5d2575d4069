"""Temperature scaling: one number that turns linear-model scores into honest probabilities."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from nlp.classifier import softmax


def fit_temperature(scores: np.ndarray, truth: np.ndarray) -> float:
    """The temperature minimising the validation negative log-likelihood.

    `scores`: decision scores (n × classes); `truth`: the index of the right class per row."""

    def nll(log_t: float) -> float:
        probs = softmax(scores, float(np.exp(log_t)))
        return float(-np.mean(np.log(probs[np.arange(len(truth)), truth] + 1e-12)))

    result = minimize_scalar(nll, bounds=(-6.0, 3.0), method="bounded")
    return float(np.exp(result.x))
