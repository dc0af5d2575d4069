"""The message model's classifier: a linear SVM averaged with an NB-SVM, as one linear model.

NB-SVM (Wang & Manning 2012): per class, one-vs-rest, each feature is scaled by its
log-count ratio (how much more often it occurs in that class's texts than in the others')
before a binary linear SVM. On TIPDM messages neither model alone beats the other, but
their average of decision scores does, in 5-fold cross-validation on the training rows and
on the held-out messages alike (benchmarks/classify.py). Both are linear in the same
features, so the average folds into one coefficient matrix: classifying costs what a
single LinearSVC costs, and the saved model is no larger.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.svm import LinearSVC


def log_count_ratio(present: sp.csr_matrix, positive: np.ndarray, alpha: float) -> np.ndarray:
    """log(p / |p|₁) − log(q / |q|₁), with p and q the smoothed counts of texts containing
    each feature, in the class (`positive`) and outside it."""
    inside = alpha + np.asarray(present[positive].sum(axis=0)).ravel()
    outside = alpha + np.asarray(present[~positive].sum(axis=0)).ravel()
    return np.log(inside / inside.sum()) - np.log(outside / outside.sum())


class SvmNbsvmAverage(BaseEstimator, ClassifierMixin):
    """Decision scores (1 − nb_weight) · LinearSVC(C=c) + nb_weight · NB-SVM(C=nb_c).

    Fitted, it is a plain linear model: `coef_` (classes × features) and `intercept_`,
    which MessageClassifier.scores multiplies directly."""

    def __init__(self, c: float = 3.0, nb_c: float = 3.0, nb_weight: float = 0.5,
                 alpha: float = 1.0) -> None:
        self.c = c
        self.nb_c = nb_c
        self.nb_weight = nb_weight
        self.alpha = alpha

    def fit(self, features: Any, labels: Any) -> SvmNbsvmAverage:
        features = sp.csr_matrix(features)
        labels = np.asarray(labels)
        self.classes_ = np.unique(labels)
        svm = LinearSVC(C=self.c).fit(features, labels)
        coef, intercept = svm.coef_, svm.intercept_
        if len(self.classes_) == 2:  # one score for the second label: make it one per label
            coef, intercept = np.vstack([-coef, coef]), np.array([-intercept[0], intercept[0]])
        present = features.copy()
        present.data = np.ones_like(present.data)  # NB-SVM counts texts, not occurrences
        nb_coef = np.zeros_like(coef)
        nb_intercept = np.zeros_like(intercept)
        for k, label in enumerate(self.classes_):
            positive = labels == label
            ratio = log_count_ratio(present, positive, self.alpha)
            binary = LinearSVC(C=self.nb_c).fit(features @ sp.diags(ratio),
                                                positive.astype(np.int8))
            nb_coef[k] = binary.coef_[0] * ratio  # scaling the input = scaling the weights
            nb_intercept[k] = binary.intercept_[0]
        weight = self.nb_weight
        self.coef_ = (1 - weight) * coef + weight * nb_coef
        self.intercept_ = (1 - weight) * intercept + weight * nb_intercept
        return self

    def decision_function(self, features: Any) -> np.ndarray:
        return np.asarray(features @ self.coef_.T + self.intercept_)

    def predict(self, features: Any) -> np.ndarray:
        return self.classes_[self.decision_function(features).argmax(axis=1)]
