"""Read labelled text: the project's seed corpus (code,text CSVs) and user files."""

from __future__ import annotations

import csv
from pathlib import Path

from bot.catalogue import Catalogue


class CorpusError(Exception):
    pass


def read_seed_corpus(directory: Path, catalogue: Catalogue) -> tuple[list[str], list[str]]:
    """All `*.csv` files under `directory`, columns code,text; every code must be in the
    catalogue, and every catalogue item (but the department ones) must have examples."""
    texts: list[str] = []
    codes: list[str] = []
    files = sorted(directory.glob("*.csv"))
    if not files:
        raise CorpusError(f"no seed corpus files (*.csv) in {directory}")
    for path in files:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            for line_no, row in enumerate(csv.DictReader(fh), start=2):
                code, text = (row.get("code") or "").strip(), (row.get("text") or "").strip()
                if code not in catalogue:
                    raise CorpusError(f"{path}, line {line_no}: code '{code}' not in catalogue")
                if text:
                    texts.append(text)
                    codes.append(code)
    # Department items (Catalogue.with_departments) are reached by triage, not learned.
    missing = sorted({i.code for i in catalogue.items if i.kind != "department"} - set(codes))
    if missing:
        raise CorpusError(f"catalogue items without examples: {', '.join(missing[:10])}")
    return texts, codes
