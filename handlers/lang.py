"""The reader's language for the conversation steps.

`handle` sets it from InboundMessage.language for the duration of one turn, so the steps
write `t(key)` and still answer an English speaker in English. Only handlers use it: texts
the core stores or sends to teams (events, cards) stay in the default language.
"""

from __future__ import annotations

from contextvars import ContextVar

from bot import texts

language: ContextVar[str] = ContextVar("language", default=texts.DEFAULT_LANGUAGE)


def t(key: str, **values: object) -> str:
    return texts.t(key, language.get(), **values)
