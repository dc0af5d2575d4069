"""The citizen conversation, end to end through the in-memory channel, on both back ends."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from adapters.testing import TestChannel
from bot.models import Case, CaseEvent, OutboxMessage
from bot.services import Services
from bot.workflow import Status

DEMO_POINT = (23.0215, 113.1214)  # inside 同济社区第3网格
NUMBER = re.compile(r"案件编号：(\d{8}-\d{4})")


async def _count(services: Services, model: type) -> int:
    async with services.db.session() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def file_manhole_case(chat: TestChannel, user: str,
                            point: tuple[float, float] = DEMO_POINT) -> str:
    """The README's walk-through: describe, (pick), locate, confirm → case number."""
    out = await chat.send(user, "我家小区门口的井盖不见了，晚上很危险")
    text = out.replies[0].text
    if "回复序号" in text:  # unsure: the top 3 are offered; take the first manhole item
        *items, other = out.replies[0].buttons
        assert len(items) == 3 and other.label == "换一个"
        labels = [b.label for b in items]
        assert any("井盖" in label for label in labels), labels
        pick = next(i for i, label in enumerate(labels, 1) if "井盖" in label)
        text = await chat.say(user, str(pick))
    assert "位置" in text or "地址" in text
    text = await chat.say(user, location=point)
    assert "请确认" in text and "井盖" in text
    assert point != DEMO_POINT or "同济社区第3网格" in text
    text = await chat.say(user, "确认")
    match = NUMBER.search(text)
    assert match, text
    assert "网格长" in text and "处理时限" in text
    return match.group(1)


async def test_report_by_location_pin_files_a_case(services: Services) -> None:
    chat = TestChannel(services)
    number = await file_manhole_case(chat, "alice")
    case = await services.cases.get(number)
    assert case is not None
    assert case.status == "dispatched"
    assert case.grid_code == services.grids.locate(*DEMO_POINT).code
    assert "井盖" in case.item_name
    assert case.handling_due is not None and case.handling_due > case.created_at
    actions = [(e.action, e.to_status) for e in case.events]
    assert actions == [("report", "reported"), ("transition", "filed"),
                       ("transition", "dispatched")]
    # The grid team's card went to the outbox in the same transaction, without the reporter.
    async with services.db.session() as session:
        cards = (await session.execute(select(OutboxMessage))).scalars().all()
    assert len(cards) == 1 and cards[0].recipient.startswith("-100")
    assert "alice" not in cards[0].text and number in cards[0].text


async def test_report_by_address_in_the_text(services: Services) -> None:
    chat = TestChannel(services)
    text = await chat.say("bob", "季华五路18号门口的路灯不亮了，晚上黑漆漆的")
    if "回复序号" in text:
        text = await chat.say("bob", "1")
    assert "请确认" in text and "季华五路18号" in text and "澜石社区第1网格" in text
    text = await chat.say("bob", "确认")
    assert NUMBER.search(text)


async def test_address_given_when_asked_and_gcj02_pin(services: Services) -> None:
    from bot.coords import wgs84_to_gcj02

    chat = TestChannel(services)
    await chat.say("carol", "路边有人乱摆摊卖水果，把人行道都占满了")
    text = await chat.say("carol", "1") if "回复序号" in chat.transcript[-1][1] else ""
    text = await chat.say("carol", "季华五路18号")
    assert "澜石社区第1网格" in text
    # A WeChat-style GCJ-02 pin corrects the place at the confirm step.
    lat, lon = wgs84_to_gcj02(*DEMO_POINT)
    text = await chat.say("carol", location=(lat, lon), coord="gcj02")
    assert "同济社区第3网格" in text


async def test_outside_the_district_and_unknown_place_ask_again(services: Services) -> None:
    chat = TestChannel(services)
    await chat.say("dan", "小区垃圾桶满了好几天没人清理，臭气熏天")
    if "回复序号" in chat.transcript[-1][1]:
        await chat.say("dan", "1")
    text = await chat.say("dan", location=(39.9087, 116.3975))  # Beijing
    assert "不在本区的网格范围内" in text
    text = await chat.say("dan", "火星基地")
    assert "没有找到" in text
    text = await chat.say("dan", location=DEMO_POINT)
    assert "请确认" in text


async def test_my_cases_and_status_show_only_my_own(services: Services) -> None:
    chat = TestChannel(services)
    number = await file_manhole_case(chat, "erin")
    text = await chat.say("erin", "我的案件")
    assert number in text
    text = await chat.say("erin", f"查询 {number}")
    assert number in text and "已派遣" in text and "已上报" in text
    # Somebody else can neither list nor read it, even with the number.
    assert number not in await chat.say("frank", "我的案件")
    assert "没有找到" in await chat.say("frank", f"查询 {number}")
    assert "案件编号" in await chat.say("frank", "查询")


async def test_cancel_help_and_greeting(services: Services) -> None:
    chat = TestChannel(services)
    assert "使用说明" in await chat.say("gina", "你好")
    assert "我的案件" in await chat.say("gina", "帮助")
    await chat.say("gina", "楼下的污水井一直往外冒臭水")
    assert "已取消" in await chat.say("gina", "取消")
    assert "没有正在填写" in await chat.say("gina", "取消")
    assert await _count(services, Case) == 0


async def test_garbage_input_gets_a_clear_answer_and_files_nothing(services: Services) -> None:
    chat = TestChannel(services)
    assert "中文" in await chat.say("hank", "😀😀😀🎉")
    assert "中文" in await chat.say("hank", "asdf qwer zxcv")
    assert await chat.say("hank", "   ")  # empty after trimming: still an answer
    assert "具体" in await chat.say("hank", "井盖")
    long_text = "小区门口的路灯坏了" * 1200  # 10,800 characters
    text = await chat.say("hank", long_text)
    assert text
    await chat.say("hank", "取消")
    assert await _count(services, Case) == 0


async def test_long_text_is_stored_bounded(services: Services) -> None:
    chat = TestChannel(services)
    await chat.say("ivy", "小区门口的路灯坏了，" + "晚上很黑" * 3000)
    if "回复序号" in chat.transcript[-1][1]:
        await chat.say("ivy", "1")
    await chat.say("ivy", location=DEMO_POINT)
    text = await chat.say("ivy", "确认")
    number = NUMBER.search(text).group(1)
    case = await services.cases.get(number)
    assert len(case.text) <= services.config.nlp.max_text_chars


async def test_phone_numbers_are_masked_before_storage(services: Services) -> None:
    chat = TestChannel(services)
    await chat.say("jack", "我是业主，电话13812345678，楼道里堆满了杂物堵住了消防通道")
    if "回复序号" in chat.transcript[-1][1]:
        await chat.say("jack", "1")
    await chat.say("jack", location=DEMO_POINT)
    number = NUMBER.search(await chat.say("jack", "确认")).group(1)
    case = await services.cases.get(number)
    assert "13812345678" not in case.text and "138****5678" in case.text
    async with services.db.session() as session:
        texts = (await session.execute(select(OutboxMessage.text))).scalars().all()
    assert texts and all("13812345678" not in t for t in texts)


async def test_photo_is_kept_as_evidence(services: Services) -> None:
    chat = TestChannel(services)
    assert "照片" in await chat.say("kate", media=["photo-ref-1"])
    await chat.say("kate", "人行道上的井盖碎了一块，很容易踩空")
    if "回复序号" in chat.transcript[-1][1]:
        await chat.say("kate", "1")
    await chat.say("kate", location=DEMO_POINT)
    number = NUMBER.search(await chat.say("kate", "确认")).group(1)
    case = await services.cases.get(number)
    assert [m.ref for m in case.media] == ["photo-ref-1"]


async def test_choices_accept_chinese_ordinals_and_rephrase(services: Services) -> None:
    chat = TestChannel(services)
    out = await chat.send("lily", "这边有个东西坏了")
    if "回复序号" not in out.replies[0].text:
        return  # the model was sure; nothing to choose
    assert "重新描述" in await chat.say("lily", "9")
    text = await chat.say("lily", "第二个")
    assert "位置" in text or "请确认" in text


async def test_case_numbers_are_unique_and_sequential(services: Services) -> None:
    chat = TestChannel(services)
    spots = [(23.0215 + 0.005 * i, 113.1214) for i in range(3)]  # ~550 m apart: not duplicates
    numbers = [await file_manhole_case(chat, f"user{i}", spot) for i, spot in enumerate(spots)]
    assert len(set(numbers)) == 3
    sequence = [int(n.split("-")[1]) for n in numbers]
    assert sequence == sorted(sequence)
    assert await _count(services, CaseEvent) == 9


async def _close(services: Services, number: str) -> None:
    for status, note in [("handling", ""), ("handled", "已补装井盖"), ("verified", "现场核查"),
                         ("closed", "")]:
        await services.cases.transition(number, Status(status), "worker:test", note)


async def test_rating_a_closed_case_and_a_bad_rating_reopens_it_once(
    services: Services,
) -> None:
    chat = TestChannel(services)
    number = await file_manhole_case(chat, "mona")
    assert "不能评价" in await chat.say("mona", f"评价 {number} 5")  # not closed yet
    await _close(services, number)
    async with services.db.session() as session:
        texts = (await session.execute(select(OutboxMessage.text))).scalars().all()
    assert any("评价" in t and number in t for t in texts)  # the reporter was asked
    assert "没有找到" in await chat.say("nick", f"评价 {number} 1")  # not nick's case
    assert "重新派单" in await chat.say("mona", f"评价 {number} 1")
    case = await services.cases.get(number)
    # Reopened, and the unhappy rating is kept (it counts in satisfaction).
    assert case.status == "dispatched" and case.reopen_count == 1 and case.rating == 1
    await _close(services, number)
    assert "1 分" in await chat.say("mona", f"评价 {number} 1")  # reopened once only
    case = await services.cases.get(number)
    assert case.status == "closed" and case.rating == 1
    assert "不能评价" in await chat.say("mona", f"评价 {number} 5")  # rated already
    assert "格式" in await chat.say("mona", "评价")


async def test_a_second_report_of_the_same_problem_joins_the_first(services: Services) -> None:
    chat = TestChannel(services)
    number = await file_manhole_case(chat, "olga")
    await chat.say("pete", "我家小区门口的井盖不见了，晚上很危险")
    if "回复序号" in chat.transcript[-1][1]:
        await chat.say("pete", "1")
    await chat.say("pete", location=(23.0216, 113.1215))
    text = await chat.say("pete", "确认")
    assert "已并入" in text and number in text
    assert number in await chat.say("pete", "我的案件")
    assert await _count(services, Case) == 1


async def test_a_lost_draft_is_explained_and_nothing_is_filed(services: Services) -> None:
    """Redis flushed or the draft expired between the question and the answer."""
    chat = TestChannel(services)
    await chat.say("hana", "我家小区门口的井盖不见了，晚上很危险")
    await chat.say("hana", location=DEMO_POINT)
    await services.redis.flushdb()
    answer = await chat.say("hana", "确认")
    assert "没有找到待确认的反映" in answer and "重新" in answer
    assert "没有找到待确认的反映" in await chat.say("hana", "2")
    assert await _count(services, Case) == 0
    # Starting over works as usual.
    number = await file_manhole_case(chat, "hana")
    assert await services.cases.get(number) is not None


async def test_the_citizen_corrects_the_category_and_it_is_learned(services: Services) -> None:
    """「类别不对」 at the confirmation offers the model's next items, then the big classes;
    the citizen's final choice is filed and kept as a training example beside the model's."""
    from bot.models import TrainingExample

    chat = TestChannel(services)
    user = "corrector"
    out = await chat.send(user, "我家小区门口的井盖不见了，晚上很危险")
    if "回复序号" in out.replies[0].text:
        await chat.say(user, "1")
    text = await chat.say(user, location=DEMO_POINT)
    assert "请确认" in text
    first = (await services.dialogs.load("test", user))["item"]

    text = await chat.say(user, "类别不对")
    assert "回复序号" in text and services.catalogue.get(first).name not in text
    # Every 换一个 shows new items, until the big classes are offered.
    for _ in range(6):
        if "大类" in text:
            break
        text = await chat.say(user, "换一个")
    assert "大类" in text, text
    names = services.catalogue.big_classes()
    text = await chat.say(user, str(names.index("市容环境") + 1))
    wanted = next(i for i in services.catalogue.items if i.big_class == "市容环境")
    codes = [i.code for i in services.catalogue.items if i.big_class == "市容环境"]
    text = await chat.say(user, str(codes.index(wanted.code) + 1))
    assert "请确认" in text and wanted.name in text
    text = await chat.say(user, "确认")
    assert NUMBER.search(text), text
    async with services.db.session() as session:
        case = (await session.execute(select(Case))).scalar_one()
        example = (await session.execute(select(TrainingExample))).scalar_one()
    assert case.item_code == wanted.code
    assert (example.item_code, example.source) == (wanted.code, "chat")
    assert example.suggested_code not in (None, wanted.code)


async def test_danger_in_the_words_comes_first_and_files_urgent(services: Services) -> None:
    """A gas smell: 110/119 advice before anything else, and the case is urgent whatever its
    item says (the urgency is read from the text, nlp.urgency)."""
    chat = TestChannel(services)
    user = "gas"
    out = await chat.send(user, "楼道里闻到很重的煤气味，好像燃气管道漏了")
    assert "119" in out.replies[0].text and "紧急" in out.replies[0].text
    text = out.replies[-1].text
    if "回复序号" in text:
        text = await chat.say(user, "1")
    text = await chat.say(user, location=DEMO_POINT)
    assert "请确认" in text
    text = await chat.say(user, "确认")
    assert NUMBER.search(text), text
    async with services.db.session() as session:
        case = (await session.execute(select(Case))).scalar_one()
    assert case.urgent


async def _reporter_texts(services: Services, number: str) -> list[str]:
    async with services.db.session() as session:
        return list((await session.execute(
            select(OutboxMessage.text).join(Case, Case.id == OutboxMessage.case_id)
            .where(Case.number == number, OutboxMessage.recipient.startswith("reporter:"))
            .order_by(OutboxMessage.id))).scalars())


async def test_updates_say_what_happened_and_a_rating_may_carry_a_comment(
    services: Services,
) -> None:
    """The reporter reads the handler's result at 办结, the reason of a failed check, where
    an escalated case went and by when; their rating's comment is kept for staff."""
    from bot.models import CaseRating

    chat = TestChannel(services)
    number = await file_manhole_case(chat, "olga")
    s = services
    await s.cases.transition(number, Status.HANDLING, "worker:test")
    await s.cases.transition(number, Status.HANDLED, "worker:test", "已补装新井盖，电话13800138000")
    texts = await _reporter_texts(s, number)
    assert "已处置：已补装新井盖" in texts[-1] and "13800138000" not in texts[-1]
    await s.cases.transition(number, Status.DISPATCHED, "worker:check", "井盖尺寸不符，仍有缝隙")
    assert "井盖尺寸不符" in (await _reporter_texts(s, number))[-1]
    async with s.db.session() as session, session.begin():
        case = (await session.execute(select(Case).where(Case.number == number))).scalar_one()
        await s.cases.escalate(session, case, s.cases.clock(), "worker:test", "需要街道协调")
    escalated = (await _reporter_texts(s, number))[-1]
    case = await s.cases.get(number)
    assert "已上报上级" in escalated and s.cases.assignee_label(case.assignee) in escalated
    assert s.cases.local(case.handling_due) in escalated
    await _close(s, number)
    assert "感谢" in await chat.say("olga", f"评价 {number} 5 修得很快，态度也好")
    async with s.db.session() as session:
        kept = (await session.execute(select(CaseRating.score, CaseRating.note))).one()
    assert tuple(kept) == (5, "修得很快，态度也好")
    case = await s.cases.get(number)
    assert any("修得很快" in e.note for e in case.events if e.action == "rate")
