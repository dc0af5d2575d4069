"""Awkward input: traditional characters, full-width, emoji, URLs, phone numbers, very long
text and text with no Chinese — for the catalogue model, a message model and the suggest API."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from bot.models import TrainingExample
from bot.services import Services
from nlp.classifier import TextClassifier
from nlp.message_text import compact
from nlp.model_store import ModelStore
from shell.app import create_app
from tests.conftest import needs_shared_data
from tests.test_training import read_tipdm
from training.message_model import train_message_model

LOCAL = {"client": ("127.0.0.1", 5000)}
TIPDM = ("tipdm/train_seg.csv", "tipdm/dev_raw.csv")  # what read_tipdm reads
# (awkward, plain): each pair must read the same to a model.
SAME = [
    ("路燈壞了，晚上很黑，請儘快處理", "路灯坏了，晚上很黑，请尽快处理"),
    ("季华五路１８号门口路灯不亮，ＬＥＤ灯全黑", "季华五路18号门口路灯不亮，LED灯全黑"),
    ("路灯不亮😡😡😡晚上很黑🌃", "路灯不亮晚上很黑"),
    ("路灯不亮 https://t.cn/A6xYz?from=wx 晚上很黑 www.example.com/a", "路灯不亮 晚上很黑"),
    ("路灯\u200b不亮\u202e，晚上\u00ad很黑", "路灯不亮，晚上很黑"),
]


@pytest.fixture(scope="module")
def catalogue_model(model_dir: Path) -> TextClassifier:
    return TextClassifier.load(ModelStore(model_dir).current_dir())


@pytest.fixture(scope="module")
def message_model() -> TextClassifier:
    """A message model on a slice of the real data: enough to see what it does with noise."""
    needs_shared_data(*TIPDM)
    x_train, y_train, _, _ = read_tipdm()
    some = np.random.default_rng(3).choice(len(x_train), 1500, replace=False)
    return train_message_model([x_train[i] for i in some], [y_train[i] for i in some],
                               folds=0).model


@pytest.mark.parametrize(("awkward", "plain"), SAME)
def test_catalogue_model_reads_awkward_text_as_plain(catalogue_model: TextClassifier,
                                                     awkward: str, plain: str) -> None:
    got, want = catalogue_model.rank(awkward), catalogue_model.rank(plain)
    # The catalogue model keeps emoji as characters, so lower ranks may shift a little;
    # the answer and its confidence must not.
    assert got[0].code == want[0].code == "C0118"
    assert got[0].confidence == pytest.approx(want[0].confidence, abs=0.05)


@pytest.mark.parametrize(("awkward", "plain"), [
    *SAME,
    ("市民反映幼儿园收费太高，联系电话13812345678", "市民反映幼儿园收费太高，联系电话13999990000"),
    ("学校收费问题 身份证440104199001011234", "学校收费问题 身份证440104198512125678"),
    ("学校收费问题，座机020-87654321", "学校收费问题，座机0757-12345678"),
])
def test_message_model_features_ignore_noise_and_personal_numbers(
    message_model: TextClassifier, awkward: str, plain: str
) -> None:
    """Numbers are masked inside the model, so which number was written changes nothing."""
    scores = message_model.scores([awkward, plain])
    assert np.allclose(scores[0], scores[1])


def test_fast_clean_up_equals_the_classifier_interface(message_model: TextClassifier) -> None:
    """MessageClassifier.prepare is a faster TextClassifier.prepare, not a different one."""
    needs_shared_data(*TIPDM)
    _, _, x_dev, _ = read_tipdm()
    texts = [*x_dev[:800], *(a for a, _ in SAME), "覆蓋瞭解乾隆", "\x00\x07ab\ufeffc", ""]
    reference = TextClassifier(message_model.pipeline, message_model.labels)
    assert [message_model.prepare(t) for t in texts] == [reference.prepare(t) for t in texts]


def test_masking_happens_before_features() -> None:
    text = compact("电话 138-1234-5678，身份证440104199001011234")
    assert "12345678" not in text and "19900101" not in text and "1234" not in text


@pytest.mark.parametrize("text", ["", "   ", "hello, the light is broken", "12345 ??? !!!",
                                  "😀😀😀", "https://example.com/only-a-link"])
def test_no_chinese_gives_a_low_confidence_answer_not_an_error(
    catalogue_model: TextClassifier, message_model: TextClassifier, text: str
) -> None:
    for model in (catalogue_model, message_model):
        ranked = model.rank(text)
        assert len(ranked) == 3
        assert not model.is_sure(ranked)
        probs = model.scores([text])[0]
        assert probs.sum() == pytest.approx(1.0) and np.isfinite(probs).all()


def test_very_long_text_costs_no_more_than_the_limit(catalogue_model: TextClassifier,
                                                     message_model: TextClassifier) -> None:
    head = "小区门口的路灯坏了好几天，晚上一片漆黑，老人小孩出行很不安全。"
    long_text = head * 20_000  # 620,000 characters
    for model in (catalogue_model, message_model):
        started = time.perf_counter()
        ranked = model.rank(long_text)
        assert time.perf_counter() - started < 3.0
        # Only the first max_chars characters are read.
        assert [s.code for s in ranked] == [s.code for s in model.rank(
            long_text[: model.max_chars])]


async def test_suggest_api_with_awkward_text(services: Services) -> None:
    client = create_app(services.config, services).test_client()

    async def suggest(text: str):
        return await client.post("/api/v1/suggest", json={"text": text}, scope_base=LOCAL)

    for awkward, plain in SAME:
        got = await (await suggest(awkward)).get_json()
        want = await (await suggest(plain)).get_json()
        assert got["items"][0]["code"] == want["items"][0]["code"] == "C0118"
    # A long body: answered quickly, from its beginning.
    started = time.perf_counter()
    r = await suggest("季华五路18号门口的路灯不亮了。" + "路灯一直不亮。" * 14_000)  # 98,000 chars
    assert r.status_code == 200 and time.perf_counter() - started < 3.0
    body = await r.get_json()
    assert body["items"][0]["code"] == "C0118"
    assert body["location"]["grid"]["name"] == "澜石社区第1网格"
    for text in ("hello world", "😀😀", "13812345678", "https://example.com"):
        r = await suggest(text)
        assert r.status_code == 422 and "中文" in (await r.get_json())["error"]


async def test_stored_examples_never_hold_phone_or_id_numbers(services: Services) -> None:
    client = create_app(services.config, services).test_client()
    text = "我叫王某，電話：１３８-１２３４-５６７８，身份证440104199001011234，门口井盖丢了"
    r = await client.post("/api/v1/suggest/confirm", json={"text": text, "item_code": "C0102"},
                          scope_base=LOCAL)
    assert r.status_code == 201
    async with services.db.session() as session:
        stored = (await session.execute(select(TrainingExample.text))).scalar_one()
    assert "12345678" not in stored and "19900101" not in stored
    assert "138****5678" in stored and "电话" in stored
