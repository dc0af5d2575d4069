"""training/card.py: the model card and the hash of the data a model was trained on."""

from __future__ import annotations

from datetime import datetime

import pytest

from training.card import data_hash, model_card


def test_the_data_hash_changes_with_any_text_label_or_order() -> None:
    base = data_hash(["路灯不亮", "井盖丢了"], ["C0118", "C0101"])
    assert base == data_hash(["路灯不亮", "井盖丢了"], ["C0118", "C0101"])  # deterministic
    assert len(base) == 64 and int(base, 16) >= 0
    assert base != data_hash(["路灯不亮", "井盖丢了"], ["C0118", "C0102"])  # a label
    assert base != data_hash(["路灯不亮了", "井盖丢了"], ["C0118", "C0101"])  # a text
    assert base != data_hash(["井盖丢了", "路灯不亮"], ["C0101", "C0118"])  # the order


def test_texts_and_labels_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError):
        data_hash(["路灯不亮"], [])


def test_the_card_records_data_labels_parameters_and_versions() -> None:
    card = model_card(kind="catalogue", texts=["a", "b", "c"], labels=["y", "x", "y"],
                      params={"c": 3.0}, metrics={"accuracy": 0.9}, train_seconds=1.23456)
    assert card["kind"] == "catalogue" and card["n_examples"] == 3
    assert card["labels"] == {"x": 1, "y": 2} and list(card["labels"]) == ["x", "y"]
    assert card["data_sha256"] == data_hash(["a", "b", "c"], ["y", "x", "y"])
    assert card["params"] == {"c": 3.0} and card["metrics"] == {"accuracy": 0.9}
    assert card["train_seconds"] == 1.23
    assert datetime.fromisoformat(card["trained_at"]).tzinfo is not None
    assert set(card["versions"]) == {"python", "scikit-learn", "jieba", "numpy", "scipy"}
