"""handlers/steps.py: the report dialog's declared steps and its draft."""

from __future__ import annotations

from handlers.router import STEPS
from handlers.steps import Draft, Step, clear, step_of


def test_every_step_has_a_handler() -> None:
    assert set(STEPS) == set(Step)


def test_step_of_reads_a_stored_step_and_forgets_an_unknown_one() -> None:
    assert step_of({}) is None
    assert step_of({"step": Step.CONFIRM}) is Step.CONFIRM
    # A draft read back from Redis holds the plain string.
    assert step_of({"step": "choose_place"}) is Step.CHOOSE_PLACE  # type: ignore[typeddict-item]
    # Written by another version of the server: start afresh instead of being stuck.
    assert step_of({"step": "choose_colour"}) is None  # type: ignore[typeddict-item]
    assert step_of({"step": ""}) is None  # type: ignore[typeddict-item]


def test_clear_empties_the_draft_in_place() -> None:
    draft: Draft = {"step": Step.CONFIRM, "text": "路灯不亮", "media": ["p1"]}
    same = draft
    clear(draft)
    assert same == {} and step_of(same) is None
