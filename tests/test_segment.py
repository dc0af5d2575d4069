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


def test_the_dictionary_copy_is_jiebas_own_and_a_damaged_one_is_made_again(tmp_path) -> None:
    import jieba

    def fresh() -> jieba.Tokenizer:
        tokenizer = jieba.Tokenizer()
        tokenizer.tmp_dir = str(tmp_path)
        return tokenizer

    reference = fresh()
    segment._initialize(reference)  # no copy yet: jieba's own way, then the copy is written
    first = reference
    stem = segment._copy_stem(first)
    assert stem is not None and stem.with_suffix(".words").exists()
    second = fresh()
    segment._initialize(second)  # from the copy
    assert second.initialized and second.total == reference.total
    assert second.FREQ == reference.FREQ
    assert second.lcut("小区门口的井盖不见了") == reference.lcut("小区门口的井盖不见了")

    words = stem.with_suffix(".words")
    words.write_bytes(words.read_bytes()[: len(words.read_bytes()) // 2])  # a torn write
    assert segment._read_copy(stem) is None
    third = fresh()
    segment._initialize(third)  # falls back to jieba, and writes the copy whole again
    assert third.FREQ == reference.FREQ and segment._read_copy(stem) is not None
