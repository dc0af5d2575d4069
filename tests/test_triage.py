"""Scope before item (nlp.triage): the danger rules, the fixed held-out split of the real
labels, the seed-only fallback, and a triage model trained here from a slice of the real
labelled messages (../shared/data/tipdm: skipped when absent, failing under
GRIDBOT_REQUIRE_SERVICES=1 as CI sets)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from adapters.testing import TestChannel
from bot.catalogue import load_catalogue
from bot.config import PROJECT_ROOT
from bot.models import Case
from bot.services import Services
from nlp.classifier import TextClassifier
from nlp.message_text import clean_fast, strip_urls_fast
from nlp.model_store import ModelHolder, ModelStore
from nlp.places import Gazetteer, load_gazetteer
from nlp.triage import triage
from nlp.urgency import read_danger
from shell.cli import app as cli
from training.labels import (
    Labelled,
    find_real_data,
    held_out_ids,
    read_dev_topics,
    read_label_rows,
    read_labelled,
    split,
)
from training.triage_model import train_triage_model

CATALOGUE = load_catalogue(PROJECT_ROOT / "data/catalogue.csv")
REQUIRE = os.environ.get("GRIDBOT_REQUIRE_SERVICES") == "1"


def _real_data() -> Path:
    found = find_real_data()
    if found is None:
        message = ("labelled real messages' texts not found (../shared/data/tipdm/"
                   "board_messages.csv next to the repository, or GRIDBOT_TRIAGE_REAL_DATA)")
        if REQUIRE:
            pytest.fail(message + " (GRIDBOT_REQUIRE_SERVICES=1: these tests must run)")
        pytest.skip(message)
    return found


@pytest.mark.parametrize(("text", "reason"), [
    ("楼道里着火了，有人被困", "fire"),
    ("闻到很重的煤气味", "gas"),
    ("隔壁独居老人好几天没见到了", "elderly_alone"),
    ("有人在小区里偷电动车", "crime"),
    ("家里的墙塌了", "collapse"),
    ("小孩掉进河里了", "child"),
])
def test_danger_now_is_an_emergency(text: str, reason: str) -> None:
    danger = read_danger(text)
    assert danger.is_emergency and danger.is_urgent and reason in danger.emergency


@pytest.mark.parametrize("text", [
    "没有着火，只是有点烟味", "小区消防通道被堵，万一着火怎么办", "楼下夜宵摊太吵了",
    "请问办理居住证需要带什么材料", "开发商延期交房三个月了", "有人偷偷在河边烧垃圾",
])
def test_no_emergency_without_danger_now(text: str) -> None:
    assert not read_danger(text).is_emergency


def test_urgent_without_emergency() -> None:
    danger = read_danger("小区门口井盖不见了")
    assert danger.is_urgent and not danger.is_emergency


@pytest.mark.parametrize("text", [
    "小区电梯经常有人被困在里面，物业一直不修",  # a habit: urgent, not 119 now
    "我们小区的物业公司管理混乱，" * 10
    + "上个月保安和业主在小区里打架，有人受伤了，物业却不闻不问。",
    "我家旁边的临时电线到处布满，住户们意见很大，" * 7 + "昨天晚上有人说起火了，幸好扑灭了。",
])
def test_recounted_or_habitual_danger_is_urgent_not_an_emergency(text: str) -> None:
    """A letter recounts danger down its text, or a habit: urgent, not an emergency."""
    danger = read_danger(text)
    assert danger.is_urgent and not danger.is_emergency


def test_danger_now_at_the_head_of_a_letter_is_an_emergency() -> None:
    letter = "我是幸福小区3栋的住户，现在有人在楼下撬车！" + "小区里的监控一直是坏的，" * 12
    assert len(letter) >= 150 and read_danger(letter).emergency == ("crime",)
    assert not read_danger("树长到高压线上，有触电的隐患").is_urgent  # a risk, said as one


def test_no_labelled_board_letter_reads_as_an_emergency() -> None:
    """The danger rules on every labelled board message (one true emergency, which names
    none of the words): no false 110 / 119 / 120 advice to a letter."""
    rows = read_labelled(_real_data(), sources=("board_messages",))
    wrong = [r.msg_id for r in rows if r.scope != "emergency"
             and read_danger(strip_urls_fast(clean_fast(r.text[:4000]))[:2000]).is_emergency]
    assert wrong == []


def test_hashed_char_ngrams_score_as_the_pipeline() -> None:
    """The triage scorer's hashed n-gram path (nlp.char_ngrams) is the dict path, faster:
    same features, and the pipeline's own scores (float32 coefficients: to 1e-4)."""
    from nlp.classifier import LinearTfidfScorer
    from nlp.features import triage_pipeline
    from training.corpus import read_seed_corpus

    texts, codes = read_seed_corpus(PROJECT_ROOT / "data/seed_corpus", CATALOGUE)
    pipe = triage_pipeline().fit(texts[:1200], codes[:1200])
    pipe.steps[1][1].coef_ = pipe.steps[1][1].coef_.astype(np.float32)
    scorer = LinearTfidfScorer.build(pipe)
    assert scorer is not None and scorer.parts[0][-1] is not None, "hashed path expected"
    plain = LinearTfidfScorer([(*p[:-1], None) for p in scorer.parts], scorer.coef_t,
                              scorer.intercept)
    probe = [*texts[1200:1500], "", "  ", "路灯 不亮 了！", "𠀀𠀁 traditional 燈", "ab"]
    for text in probe:
        (i1, v1), (i2, v2) = scorer.features(text), plain.features(text)
        order1, order2 = np.argsort(i1), np.argsort(i2)
        assert (i1[order1] == i2[order2]).all()
        assert np.allclose(v1[order1], v2[order2])
    expected = pipe.decision_function(probe)
    fast = np.vstack([scorer.decision(t) for t in probe])
    assert np.abs(expected - fast).max() < 1e-4


def test_held_out_part_is_fixed_stratified_and_a_fifth() -> None:
    rows = [Labelled(r["row_id"], "", "", r["scope"], r["item"], r["topic"], False)
            for r in read_label_rows()]
    held = held_out_ids(rows)
    assert held == held_out_ids(list(reversed(rows)))  # order-free: ids only
    for scope in ("catalogue", "department", "question"):
        ids = [r.msg_id for r in rows if r.scope == scope]
        share = sum(i in held for i in ids) / len(ids)
        assert abs(share - 0.2) < 0.01, (scope, share)
    assert len(held) == 827  # 20% of the 4,132 by scope (the single emergency stays in training)


def test_correcting_a_training_scope_keeps_the_held_out_part() -> None:
    """The held-out part is frozen: moving a training row to another scope changes the
    per-scope counts the draw depends on, but not the part."""
    from dataclasses import replace

    rows = [Labelled(r["row_id"], "", "", r["scope"], r["item"], r["topic"], False)
            for r in read_label_rows()]
    held = held_out_ids(rows)
    moved = [replace(r, scope="department") if r.msg_id not in held and r.scope == "catalogue"
             else r for r in rows]
    assert held_out_ids(moved) == held
    assert held_out_ids(moved, frozen=None) == held  # the default reads the frozen list


def test_seed_only_model_triages_by_rules(model_dir: Path) -> None:
    from nlp.model_store import ModelStore

    model = TextClassifier.load(ModelStore(model_dir).current_dir())
    result = triage(model, "小区门口的井盖不见了")
    assert result.scope == "catalogue" and result.topic is None
    assert result.suggestions[0].code.startswith("C01") and len(result.suggestions) == 3
    assert result.urgent
    fire = triage(model, "楼道里着火了，有人被困")
    assert fire.scope == "emergency" and fire.urgent and not fire.sure
    assert "119" in fire.as_dict({})["hotlines"]


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[TextClassifier, Path]:
    """A triage model from a slice of the board messages' training part (a quarter, with an
    eighth of the dev topics; a quarter of the held-out part is scored), folds 2: small and
    quick. The behaviour checked below needs a real model, not a good one."""
    data = _real_data()
    train_part, held = split(read_labelled(data, sources=("board_messages",)))
    dev_x, dev_y = read_dev_topics(data)
    gazetteer = Gazetteer(load_gazetteer(PROJECT_ROOT / "data/demo/gazetteer.csv"))
    model, report = train_triage_model(
        PROJECT_ROOT / "data/seed_corpus", CATALOGUE, gazetteer.words(), train_part[::4],
        (dev_x[::8], dev_y[::8]), held[::4], folds=2,
    )
    assert report.cv["item"]["sure_precision"] >= 0.89
    assert report.held_out is not None
    directory = tmp_path_factory.mktemp("triage-model")
    model.save(directory)
    return TextClassifier.load(directory), directory


def test_clear_examples_of_each_scope(small_model: tuple[TextClassifier, Path]) -> None:
    model, _ = small_model
    question = model.triage("请问办理居住证需要带什么材料")
    assert question.scope == "question" and question.topic is not None
    fire = model.triage("楼道里着火了，有人被困")
    assert fire.scope == "emergency" and fire.urgent
    assert model.triage("隔壁独居老人好几天没见到了").urgent
    late = model.triage("开发商延期交房三个月了")
    assert late.scope == "department" and late.topic == "城乡建设"
    assert late.department == "区住房城乡建设和水利局"
    cover = model.triage("小区门口井盖不见了")
    assert cover.scope == "catalogue" and cover.suggestions[0].code.startswith("C01")
    assert len(cover.suggestions) == 3 and cover.urgent


def test_config_departments_override_and_the_card_records_the_data(
        small_model: tuple[TextClassifier, Path]) -> None:
    model, directory = small_model
    other = {"城乡建设": "某某局"}
    assert model.triage("开发商延期交房三个月了", other).department == "某某局"
    card = json.loads((directory / "card.json").read_text(encoding="utf-8"))
    assert card["data_seen"]["real_catalogue"] > 0 and card["data_seen"]["held_out_rows"] > 0
    held = card["metrics"]["held_out"]
    assert {"top1", "top3", "grid_keep", "nongrid_away", "sure_share"} <= set(held)
    assert held["top3"] >= 0.8


def test_long_letters_take_the_stacked_scope_decision(
        small_model: tuple[TextClassifier, Path]) -> None:
    """Texts of short_chars or more are decided by the stacked regression (scope odds, item
    confidence, the detailed scope model's odds), whose weights and cut the training chose
    and the card records."""
    from nlp.triage import detail_class, parts_of, scope_mass, stack_features, stack_probability

    model, directory = small_model
    parts = parts_of(model)
    assert parts.stack is not None and len(parts.stack) == 7 and 0 < parts.stack_cut < 1
    assert parts.scope_detail is not None
    card = json.loads((directory / "card.json").read_text(encoding="utf-8"))
    assert card["params"]["stack_cut"] == parts.stack_cut
    assert card["params"]["scope_detail_classes"] == len(parts.scope_detail.labels)
    # The detailed classes: items, and scope:topic for the non-grid scopes; their masses.
    assert detail_class("catalogue", "C0102", "") == "C0102"
    assert detail_class("department", "", "教育文体") == "department:教育文体"
    labels = parts.scope_detail.labels
    assert "department:城乡建设" in labels and any(":" not in c for c in labels)
    mass = scope_mass(["C0102", "E0101", "department:教育文体", "question:交通运输"],
                      np.array([0.2, 0.3, 0.4, 0.1]))
    assert mass == pytest.approx({"catalogue": 0.5, "department": 0.4, "question": 0.1})
    # A confident single item and catalogue-leaning scope odds push towards catalogue.
    scope = {"catalogue": 0.4, "department": 0.4, "question": 0.2}
    detail = {"catalogue": 0.5, "department": 0.25, "question": 0.25}
    sure_item, vague_item = np.array([0.9, 0.05, 0.05]), np.array([0.34, 0.33, 0.33])
    assert stack_features(scope, sure_item) == pytest.approx([0.0, np.log(2), 0.9, 0.85])
    assert stack_features(scope, sure_item, detail)[4:] == pytest.approx([np.log(2)] * 2)
    assert (stack_probability(parts.stack, stack_features(scope, sure_item, detail))
            > stack_probability(parts.stack, stack_features(scope, vague_item, detail)))
    letter = ("我是某小区的业主，小区门口的井盖不见了已经一个星期，晚上很黑，行人和骑车的人经过"
              "都很危险，已经有老人差点摔进去，物业说不归他们管，请有关部门尽快处理，谢谢！")
    assert len(letter) >= parts.short_chars and parts.scope is not None
    scope_probs = dict(zip(parts.scope.labels, parts.scope.scores([letter])[0], strict=True))
    detail = scope_mass(labels, parts.scope_detail.scores([letter])[0])
    p_stack = stack_probability(parts.stack, stack_features(
        scope_probs, model.scores([letter])[0], detail))
    assert (model.triage(letter).scope == "catalogue") == (p_stack >= parts.stack_cut)
    assert model.triage(letter).scope == "catalogue"
    # Without the regression a letter falls back to the scope model's own cut.
    saved = parts.stack
    parts.stack = None
    try:
        late = ("我是某楼盘的业主，开发商承诺的交房时间已经过去三个月了，至今没有交房，"
                "也没有任何说法和补偿，我们还要每月还房贷，请有关部门督促开发商尽快交房。")
        for text in (letter, late):
            probs = dict(zip(parts.scope.labels, parts.scope.scores([text])[0], strict=True))
            kept = model.triage(text).scope == "catalogue"
            assert kept == (probs["catalogue"] >= parts.catalogue_cut)
    finally:
        parts.stack = saved


def test_suggest_cli_with_the_triage_model(small_model: tuple[TextClassifier, Path],
                                           tmp_path: Path) -> None:
    _, directory = small_model
    path = tmp_path / "calls.jsonl"
    path.write_text("\n".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) for i, t in [
        (1, "请问办理居住证需要带什么材料"), (2, "开发商延期交房三个月了"),
        (3, "小区门口井盖不见了")]) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["suggest", "--data", str(path), "--text-col", "text",
                                      "--id-col", "id", "--model", str(directory), "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    assert [x["scope"] for x in lines] == ["question", "department", "catalogue"]
    assert lines[1]["department"] == "区住房城乡建设和水利局"
    assert lines[2]["suggestions"][0]["code"].startswith("C01")


async def test_the_chat_answers_each_scope(small_model: tuple[TextClassifier, Path],
                                           services: Services) -> None:
    """The dialog acts on scope: a question is answered (and filed only if the citizen
    insists), a department matter goes to the topic's department, danger comes first."""
    _, directory = small_model
    store = ModelStore(Path(services.config.nlp.model_dir))
    version = store.new_version_dir("triage")
    shutil.copytree(directory, version)
    store.use(version.name)
    services.models = ModelHolder(store, services.config.nlp.confidence_threshold,
                                  check_every_s=0)
    chat = TestChannel(services)

    asked = await chat.send("q", "请问办理居住证需要带什么材料")
    assert "咨询" in asked.replies[0].text and "仍要反映" in asked.replies[0].text
    assert "好的" in await chat.say("q", "不用了")
    assert await services.dialogs.load("test", "q") == {}

    late = await chat.send("d", "开发商延期交房三个月了，一直不给说法")
    assert "区住房城乡建设和水利局" in late.replies[0].text
    await chat.say("d", location=(23.0215, 113.1214))
    assert "已受理" in await chat.say("d", "确认")
    async with services.db.session() as session:
        case = (await session.execute(select(Case))).scalar_one()
    assert case.big_class == "部门诉求" and case.department == "区住房城乡建设和水利局"
    assert case.assignee == "department:区住房城乡建设和水利局"

    fire = await chat.send("f", "楼道里着火了，有人被困")
    assert "119" in fire.replies[0].text


def test_the_joint_scorer_gives_each_models_own_scores(
        small_model: tuple[TextClassifier, Path]) -> None:
    """nlp.triage.JointScorer scores the item, scope, detailed scope and topic models in one
    product: the same decision scores each model's own scorer gives, model by model."""
    from nlp.triage import JointScorer, parts_of

    model, _ = small_model
    joint = JointScorer.of(model)
    assert joint is not None
    parts = parts_of(model)
    members = [model, parts.scope, parts.scope_detail, parts.topic]
    assert [clf for clf, _ in joint.columns] == members
    for text in ("小区门口的井盖不见了", "开发商延期交房三个月了，请问何时能交房？" * 8, "", "ab"):
        prepared = model.prepare(text)
        features = joint.scorer.features(prepared)
        together = joint.score(*features)
        for clf in members:
            assert clf is not None
            own = clf._scorer()
            assert own is not None
            cols = joint.slice_of(clf)
            assert cols is not None and np.allclose(together[cols], own.score(*features),
                                                    atol=1e-5)
