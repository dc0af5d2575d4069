"""The reader's language for the conversation steps.

`handle` sets it from InboundMessage.language for the duration of one turn. The steps write
`say(key)`: `bot.texts.t` (the one message lookup) in the language of the person whose turn
it is. Texts the core stores or sends to teams (events, cards) are rendered by the core with
`bot.texts.t` in the default language, whoever's turn caused them.
"""

from __future__ import annotations

from contextvars import ContextVar

from bot import texts

language: ContextVar[str] = ContextVar("language", default=texts.DEFAULT_LANGUAGE)


def say(key: str, **values: object) -> str:
    """The catalogue's text for `key` in the reader's language."""
    return texts.t(key, language.get(), **values)
