"""One entry point for every channel: a message in, the replies out, state kept in Redis."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

from bot.cases import MAX_MEDIA_REF
from bot.media_store import is_video_ref
from bot.messages import InboundMessage, Outcome, Reply
from bot.services import Services
from handlers import alerts, intents, my_cases, patrol, report, team
from handlers.lang import language, say
from handlers.steps import Draft, Step, clear, step_of
from nlp.normalize import has_chinese, prepare

MAX_MEDIA_PER_REPORT = 9
StepHandler = Callable[[InboundMessage, Draft, Services], Awaitable[Outcome]]
# At each step of a report under way, who answers (commands such as 取消, 帮助, 我的案件,
# 评价 and 查询 are answered first, at any step).
STEPS: dict[Step, StepHandler] = {
    Step.CHOOSE_ITEM: report.choose_item,
    Step.CHOOSE_BIG_CLASS: report.choose_big_class,
    Step.CHOOSE_PLACE: report.choose_place,
    Step.AWAIT_LOCATION: report.got_location,
    Step.CONFIRM: report.confirm,
    Step.OFFER_FILE: report.offer_file,
}


async def handle(msg: InboundMessage, s: Services) -> Outcome:
    token = language.set(msg.language)  # the steps' say() answers in the person's language
    try:
        state = cast(Draft, await s.dialogs.load(msg.channel, msg.user))
        had_state = bool(state)
        outcome = await _route(msg, state, s)
        if state or had_state:  # a stateless turn (help, my cases, a query) writes nothing
            await s.dialogs.save(msg.channel, msg.user, state)
    finally:
        language.reset(token)
    return outcome


async def _route(msg: InboundMessage, state: Draft, s: Services) -> Outcome:
    msg.text = prepare(msg.text, s.config.nlp.max_text_chars)
    step = step_of(state)
    if msg.media:
        media = state.setdefault("media", [])
        # A reference longer than a file id or link could be is dropped here, not at 确认.
        usable = [ref for ref in msg.media if 0 < len(ref) <= MAX_MEDIA_REF]
        media.extend(usable[: MAX_MEDIA_PER_REPORT - len(media)])
        if not msg.text and msg.location is None:
            kind = "video" if all(is_video_ref(ref) for ref in usable) and usable else "photo"
            return Outcome([Reply(say(f"{kind}_received" if step else f"{kind}_first"))])
    text = msg.text
    if (text or msg.live) and (walked := await patrol.from_worker(msg, s)) is not None:
        return walked
    if msg.live == "update":
        return Outcome([])  # a citizen's live location moving: its first position counted
    if text and (done := await team.from_worker(msg, s, state)) is not None:
        return done
    if text:
        if intents.is_cancel(text):
            had = bool(state)
            clear(state)
            return Outcome([Reply(say("cancelled" if had else "nothing_to_cancel"))])
        if intents.is_help(text):
            return Outcome([Reply(say("help"))])
        if intents.is_my_cases(text):
            return await my_cases.list_mine(msg, s)
        if (followed := await alerts.from_text(msg, s)) is not None:
            return followed
        rating = intents.rating(text)
        if rating is not None:
            return await my_cases.rate(msg, rating, s)
        number = intents.status_query(text)
        if number is not None:
            return await my_cases.show(msg, number, s)
    if step is not None:
        return await STEPS[step](msg, state, s)
    # No report under way.
    if msg.location is not None:
        located = s.locator.from_point(msg.location.lat, msg.location.lon, msg.location.coord,
                                       msg.location.label)
        if located.status != "found" or located.spot is None:
            return Outcome([Reply(say("report.location_outside"))])
        state["spot"] = report.spot_dict(located.spot)
        return Outcome([Reply(say("location_first"))])
    if not text:
        return Outcome([Reply(say("fallback"))])
    if intents.is_greeting(text):
        return Outcome([Reply(say("greeting"))])
    if intents.is_submit(text) or intents.choice(text) is not None:
        # A confirmation or a choice with no draft: it expired, or Redis lost it.
        return Outcome([Reply(say("draft_lost"))])
    if not has_chinese(text):
        return Outcome([Reply(say("no_chinese"))])
    return await report.start(msg, text, state, s)
