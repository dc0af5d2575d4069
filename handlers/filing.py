"""The one way a report becomes a case, whichever door it came in by: the chat's 确认, a
one-shot report (mini-program form, web API) and the hotline console's intake all file here.

A patrol report the district wants looked at again (核实) is held before it is filed; every
other report is filed at once. A report whose item a person chose or confirmed is kept as a
labelled training example, with the model's pick beside it (a different pick is a
correction, the valuable kind)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.cases import CaseDraft, Filing, ReporterRef
from bot.examples import remember
from bot.services import Services


@dataclass(frozen=True)
class Example:
    """Keep the filed text and item as a training example from `source` (training_examples
    .source: "chat", "hotline" …); `suggested` is what the model offered first."""

    source: str
    suggested: str | None = None


async def submit(draft: CaseDraft, reporter: ReporterRef, s: Services, *,
                 patrol: bool = False, example: Example | None = None) -> Filing:
    """File `draft` for `reporter` (or hold it for 核实 when `patrol` and the item asks for
    it). A report key already filed returns that filing (`replayed`), learning nothing
    twice."""
    if patrol and s.verification.needed(draft.item_code):
        filing = await s.verification.hold(draft, reporter)
    else:
        filing = await s.cases.file(draft, reporter)
    if example is not None and not filing.replayed:
        await remember(s.db, draft.text, draft.item_code, example.source, example.suggested)
    return filing
