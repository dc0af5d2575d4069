"""The message catalogue: every sentence a citizen or worker reads lives in locales/*.toml."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

LOCALES = Path(__file__).resolve().parent / "locales"
DEFAULT_LANGUAGE = "zh"


@cache
def catalogue(language: str) -> dict[str, str]:
    path = LOCALES / f"{language}.toml"
    if not path.exists():
        return {}
    return tomllib.loads(path.read_text(encoding="utf-8"))


def t(key: str, language: str = DEFAULT_LANGUAGE, **values: object) -> str:
    """The text for `key` in `language` (falling back to Chinese), filled with `values`."""
    template = catalogue(language).get(key) or catalogue(DEFAULT_LANGUAGE)[key]
    return template.format(**values)
