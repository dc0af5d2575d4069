"""Feature pipelines. Each builder returns an unfitted scikit-learn estimator on raw text."""

from __future__ import annotations

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from nlp.segment import tokenize

# Share of the NB-SVM in the message model's scores, and its count smoothing: chosen by
# 5-fold cross-validation on the TIPDM training rows only (macro-F1 0.9231 with the SVM
# alone, 0.9320 here; NB-SVM C 1/3/10, alpha 0.5/1, weight 0.5-0.8 tried), never on dev.
NB_WEIGHT = 0.7
NB_ALPHA = 0.5


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


def message_pipeline(c: float = 3.0, ngram_max: int = 3, min_df: int = 2,
                     head_chars: int = 20, head_weight: float = 0.5,
                     stopwords: tuple[str, ...] | None = None,
                     nb_weight: float = NB_WEIGHT, nb_alpha: float = NB_ALPHA) -> Pipeline:
    """Character 1–3-grams of the compacted message, plus those of its first `head_chars`
    characters (where people put the title or the gist), TF-IDF, into a linear SVM averaged
    with an NB-SVM (weight `nb_weight`, 0: the linear SVM alone; smoothing `nb_alpha`;
    nlp.nbsvm).

    For free-form citizen messages of a few hundred characters. No word segmentation: on
    real messages (TIPDM, 7 classes) words added nothing to character n-grams and cost most
    of the time. Spaces and punctuation are dropped first, so pre-segmented training text
    and raw messages give the same features; phone and ID numbers are masked there too
    (nlp.message_text.compact). Then `stopwords` (None: the shipped list reconstructed from
    the TIPDM publisher's, data/stopwords/tipdm.txt; (): none) are deleted from both
    training and incoming text, so that training text whose stopwords were removed and raw
    messages give the same n-grams (nlp.stopwords). Measured in benchmarks/RESULTS.md."""
    from nlp.char_ngrams import MessageFeatures
    from nlp.nbsvm import SvmNbsvmAverage
    from nlp.stopwords import read_stopwords

    words = read_stopwords() if stopwords is None else tuple(stopwords)
    return Pipeline([
        ("features", MessageFeatures(ngram_max, min_df, head_chars, head_weight, words)),
        ("model", SvmNbsvmAverage(c=c, nb_c=c, nb_weight=nb_weight, alpha=nb_alpha)),
    ])
