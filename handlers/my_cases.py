"""My cases and the status of one case: a person sees only what they reported."""

from __future__ import annotations

from bot.cases import CaseNotFound, RatingRefused, ReporterRef
from bot.messages import InboundMessage, Outcome, Reply
from bot.services import Services
from handlers.lang import say

LIST_LIMIT = 10
TIMELINE_LIMIT = 20


async def list_mine(msg: InboundMessage, s: Services) -> Outcome:
    cases = await s.cases.for_reporter(ReporterRef(msg.channel, msg.user), LIST_LIMIT)
    if not cases:
        return Outcome([Reply(say("cases.none"))])
    lines = [say("cases.header")]
    lines += [
        say("cases.line", number=c.number, item=c.item_name, status=say(f"status.{c.status}"),
          date=s.cases.local(c.created_at)[:10])
        for c in cases
    ]
    lines.append(say("cases.footer"))
    return Outcome([Reply("\n".join(lines))])


async def show(msg: InboundMessage, number: str, s: Services) -> Outcome:
    if not number:
        return Outcome([Reply(say("cases.ask_number"))])
    case = await s.cases.get(number, ReporterRef(msg.channel, msg.user))
    if case is None:
        return Outcome([Reply(say("cases.not_found", number=number))])
    grid = s.grids.get(case.grid_code)
    lines = [say("cases.detail", number=case.number, item=s.cases.item_label(case),
               status=say(f"status.{case.status}"), grid=grid.name if grid else case.grid_code,
               deadline=s.cases.local(case.handling_due))]
    for event in case.events[-TIMELINE_LIMIT:]:
        if event.to_status is None:
            continue
        note = f"：{event.note}" if event.note else ""
        lines.append(say("cases.timeline_line", at=s.cases.local(event.at),
                       status=say(f"status.{event.to_status}"), note=note))
    return Outcome([Reply("\n".join(lines))], s.cases.public_view(case))


async def rate(msg: InboundMessage, parsed: tuple[str, int, str] | str,
               s: Services) -> Outcome:
    if isinstance(parsed, str):  # 评价 without a usable number and score
        return Outcome([Reply(say("rate.ask"))])
    number, score, comment = parsed
    try:
        case = await s.cases.rate(number, ReporterRef(msg.channel, msg.user), score,
                                  comment)
    except CaseNotFound:
        return Outcome([Reply(say("cases.not_found", number=number))])
    except RatingRefused:
        return Outcome([Reply(say("rate.refused", number=number))])
    if case.status == "dispatched":
        return Outcome([Reply(say("rate.reopened", number=number))])
    return Outcome([Reply(say("rate.thanks", score=score))])
