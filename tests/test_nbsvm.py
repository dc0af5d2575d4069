"""nlp/nbsvm.py: the averaged LinearSVC + NB-SVM classifier, folded into one linear model.
Fitted on a few hand-made rows (milliseconds), not on the corpus."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.svm import LinearSVC

from nlp.nbsvm import SvmNbsvmAverage, log_count_ratio

# Six texts over four features: 0 and 1 mark "lamp", 2 and 3 "water"; 1 and 2 also appear
# once on the other side.
FEATURES = sp.csr_matrix(np.array([
    [2, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0],
    [0, 0, 1, 2], [0, 0, 0, 1], [0, 1, 1, 1],
], dtype=float))
LABELS = np.array(["lamp", "lamp", "lamp", "water", "water", "water"])


def test_log_count_ratio_counts_texts_and_favours_the_class() -> None:
    present = FEATURES.copy()
    present.data = np.ones_like(present.data)
    ratio = log_count_ratio(present, LABELS == "lamp", alpha=1.0)
    # Feature 0: in 3 of 3 lamp texts, none of the others; feature 3 the reverse.
    inside = 1 + np.array([3, 2, 1, 0])
    outside = 1 + np.array([0, 1, 2, 3])
    expected = np.log(inside / inside.sum()) - np.log(outside / outside.sum())
    assert ratio == pytest.approx(expected)
    assert ratio[0] > 0 > ratio[3]


def test_fitted_it_is_one_linear_model_with_a_row_per_class() -> None:
    model = SvmNbsvmAverage().fit(FEATURES, LABELS)
    assert list(model.classes_) == ["lamp", "water"]
    # Two classes still give two rows (LinearSVC alone gives one).
    assert model.coef_.shape == (2, 4) and model.intercept_.shape == (2,)
    scores = model.decision_function(FEATURES)
    assert scores == pytest.approx(FEATURES.toarray() @ model.coef_.T + model.intercept_)
    assert list(model.predict(FEATURES)) == list(LABELS)
    assert list(model.predict(sp.csr_matrix([[3.0, 0, 0, 0], [0, 0, 0, 3.0]]))) == [
        "lamp", "water"]


def test_without_the_nb_half_it_is_the_plain_svm() -> None:
    three = np.array(["lamp", "lamp", "tree", "water", "water", "tree"])
    model = SvmNbsvmAverage(c=1.0, nb_weight=0.0).fit(FEATURES, three)
    svm = LinearSVC(C=1.0).fit(FEATURES, three)
    assert model.coef_ == pytest.approx(svm.coef_)
    assert model.intercept_ == pytest.approx(svm.intercept_)
