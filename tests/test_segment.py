"""nlp/segment.py: jieba set up once per process, the project's domain words kept whole,
and a tokenizer that pickles with the models that use it."""

from __future__ import annotations

import pickle

from nlp import segment
from nlp.segment import add_words, tokenize


def test_tokens_are_words_without_punctuation_or_spaces() -> None:
    tokens = tokenize("路灯不亮了！！ 请尽快处理。")
    assert "".join(tokens) == "路灯不亮了请尽快处理" and "尽快" in tokens
    assert tokenize("  ，。！？") == []
    assert "5G" in tokenize("5G 基站") and "基站" in tokenize("5G 基站")


def test_domain_words_stay_whole_once_added() -> None:
    word = "祖庙喵喵站"  # a name jieba cannot know
    assert word not in tokenize(f"{word}门口有垃圾")
    add_words([f" {word} ", "猫"])  # trimmed; one character is no word to add
    assert tokenize(f"{word}门口有垃圾")[0] == word
    assert word in segment._added and "猫" not in segment._added


def test_the_tokenizer_pickles_by_reference() -> None:
    assert pickle.loads(pickle.dumps(tokenize)) is tokenize
