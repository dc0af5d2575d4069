"""Feature pipelines. Each builder returns an unfitted scikit-learn estimator on raw text."""

from __future__ import annotations

from functools import lru_cache

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from nlp.segment import tokenize

# The scope, topic and item models of a triage read the same prepared text: its words are
# segmented once (jieba is most of the cost of one call).
_WORDS_CACHE = 256


@lru_cache(maxsize=_WORDS_CACHE)
def _words(text: str) -> tuple[str, ...]:
    return tuple(tokenize(text))


def cached_tokenize(text: str) -> list[str]:
    """nlp.segment.tokenize with a small cache (module-level: pipelines using it pickle)."""
    return list(_words(text))


# jieba costs ~10 µs a character; the triage models segment only the head of the
# prepared text (the title read twice and the first lines) and use character n-grams for
# the rest (chosen by cross-validation, training/triage_model.py).
HEAD_WORD_CHARS = 100


def head_tokenize(text: str) -> list[str]:
    """cached_tokenize of the first HEAD_WORD_CHARS characters."""
    return list(_words(text[:HEAD_WORD_CHARS]))


def clear_words_cache() -> None:
    """After jieba learns new words (nlp.segment.add_words), old segmentations are stale."""
    _words.cache_clear()

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


def char_ngrams(text: str) -> list[str]:
    """Character 1–3-grams of the text, spaces dropped (a plain list comprehension: several
    times faster than scikit-learn's char_wb analyzer, with the same accuracy here)."""
    t = text.replace(" ", "")
    n = len(t)
    grams = list(t)
    grams += [t[i:i + 2] for i in range(n - 1)]
    grams += [t[i:i + 3] for i in range(n - 2)]
    return grams


# Character n-grams of all triage texts number ~375,000; 160 item columns of float32 each
# would make a 250 MB model. The most frequent TRIAGE_FEATURES (seen in ≥ 2 texts) are kept.
TRIAGE_FEATURES = 80_000


def triage_features(min_df: int = 2, words: str = "none",
                    max_features: int | None = TRIAGE_FEATURES) -> FeatureUnion:
    """Character 1–3-grams, TF-IDF, plus jieba words when asked ("head": of the first
    HEAD_WORD_CHARS characters; "all"). Default "none": in 5-fold cross-validation on the
    real training part, words added ~1 point of item top-1 (0.781 vs 0.774) at 4–5 times
    the cost of a call (jieba is ~3 µs a character), and words of the head only lost
    (0.763); see benchmarks/RESULTS.md, 2026-12-03."""
    chars = TfidfVectorizer(analyzer=char_ngrams, sublinear_tf=True, min_df=min_df,
                            max_features=max_features)
    if words == "none":
        return FeatureUnion([("chars", chars)])
    tokenizer = head_tokenize if words == "head" else cached_tokenize
    word_vec = TfidfVectorizer(tokenizer=tokenizer, token_pattern=None, lowercase=False,
                               sublinear_tf=True, min_df=min_df)
    return FeatureUnion([("words", word_vec), ("chars", chars)])


def triage_pipeline(c: float = 1.0, min_df: int = 2, words: str = "none",
                    max_features: int | None = TRIAGE_FEATURES) -> Pipeline:
    """The scope, topic and item models of nlp.triage: triage_features into a linear SVM.
    Chosen by cross-validation on the training part of the labelled real messages
    (training/triage_model.py); the shape keeps nlp.classifier.LinearTfidfScorer's fast
    path. The shipped models share one fitted `triage_features`, so a text is analysed
    once for all three (nlp.triage)."""
    return Pipeline([("features", triage_features(min_df, words, max_features)),
                     ("model", LinearSVC(C=c))])


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
