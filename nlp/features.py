"""Feature pipelines. Each builder returns an unfitted scikit-learn estimator on raw text."""

from __future__ import annotations

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from nlp.segment import tokenize


def catalogue_pipeline(c: float = 0.5) -> Pipeline:
    """Words (jieba + domain dictionary) and character n-grams into a linear SVM.

    Measured on the seed corpus: as accurate as logistic regression at a twentieth of the
    training time; its scores become probabilities by temperature scaling (see training)."""
    words = TfidfVectorizer(
        tokenizer=tokenize, token_pattern=None, lowercase=False, ngram_range=(1, 1),
        sublinear_tf=True,
    )
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
    return Pipeline([
        ("features", FeatureUnion([("words", words), ("chars", chars)])),
        ("model", LinearSVC(C=c)),
    ])
