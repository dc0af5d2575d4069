"""The hand labels of real messages, joined with their texts in ../shared/data/tipdm/: board
messages (data/labels/board_part*.csv → board_messages.csv) and the publisher's labelled
messages (data/labels/dev_part*.csv → dev_raw.csv, title and detail run together;
data/labels/seg_part*.csv → train_seg.csv's other rows, segmented and without stopwords) —
and the fixed held-out part, drawn from the board messages only (the others always train).

The held-out part is 20% of the labelled messages, stratified by scope: within each scope the
messages are ordered by a seeded hash of their msg_id and the first 20% (rounded) are held
out. That draw was made once and frozen in data/labels/held_out_ids.txt (2026-12-03): a
corrected scope on a training row would otherwise change the per-scope counts and move rows
between the parts. Everyone measures on the same rows. Choices (method, thresholds) are made
on the training part only; the held-out part is only for reported figures.

The texts stay in ../shared/data (never copied into the repository): `find_real_data` looks
for them next to the repository, or where `triage.real_data` / GRIDBOT_TRIAGE_REAL_DATA says.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bot.config import PROJECT_ROOT
from nlp.topics import TOPICS

LABELS_DIR = PROJECT_ROOT / "data/labels"
BOARD_FILE = "board_messages.csv"
DEV_FILE = "dev_raw.csv"
SEG_FILE = "train_seg.csv"  # word-segmented by the publisher, stopwords removed
DEFAULT_REAL_DATA = PROJECT_ROOT.parent / "shared/data/tipdm"
ENV_REAL_DATA = "GRIDBOT_TRIAGE_REAL_DATA"
HELD_OUT_SHARE = 0.2
HELD_OUT_SEED = "gridbot-heldout-2026-12"
HELD_OUT_FILE = "held_out_ids.txt"
SCOPES = ("catalogue", "department", "question", "emergency")
# label file pattern → the source file its row ids point into (and the id column there)
LABEL_SOURCES = {"board_messages": ("board_part*.csv", BOARD_FILE, "msg_id"),
                 "dev_raw": ("dev_part*.csv", DEV_FILE, "row_idx"),
                 "train_seg": ("seg_part*.csv", SEG_FILE, "row_idx")}


class LabelsError(Exception):
    pass


@dataclass(frozen=True)
class Labelled:
    msg_id: str
    title: str
    detail: str
    scope: str
    item: str  # catalogue code for scope catalogue (and a city emergency), else ""
    topic: str  # one of TOPICS for department / question, else ""
    urgent: bool
    source: str = "board_messages"  # the file under tipdm/ the text comes from

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.detail}".strip()


def find_real_data(configured: str | Path | None = None) -> Path | None:
    """The folder holding board_messages.csv: $GRIDBOT_TRIAGE_REAL_DATA, else `configured`
    (from config, resolved by the caller), else ../shared/data/tipdm next to the repository.
    None when the file is not there."""
    # The first place named is the only one looked at: pointing elsewhere (a folder without
    # the file) means "no real data", not "fall back to the default".
    chosen = os.environ.get(ENV_REAL_DATA) or configured or DEFAULT_REAL_DATA
    return Path(chosen) if (Path(chosen) / BOARD_FILE).exists() else None


def read_label_rows(labels_dir: Path = LABELS_DIR,
                    sources: tuple[str, ...] = ("board_messages",)) -> list[dict[str, str]]:
    """The label lines of `sources` (board messages only unless asked)."""
    rows: list[dict[str, str]] = []
    for source in sources:
        pattern = LABEL_SOURCES[source][0]
        for path in sorted(labels_dir.glob(pattern)):
            with open(path, encoding="utf-8-sig", newline="") as fh:
                rows.extend(r for r in csv.DictReader(fh) if r.get("source") == source)
    if not rows:
        raise LabelsError(f"no labels ({', '.join(sources)}) in {labels_dir}")
    return rows


def _texts(data_dir: Path, source: str) -> dict[str, tuple[str, str]]:
    """row id → (title, detail) of a source file; empty when the file is absent (dev_raw is
    optional: the board messages alone train a model)."""
    _, name, id_col = LABEL_SOURCES[source]
    path = data_dir / name
    if not path.exists():
        if source == "board_messages":
            raise LabelsError(f"real messages not found: {path}")
        return {}
    with open(path, encoding="utf-8-sig", newline="") as fh:
        if source == "board_messages":
            return {r["msg_id"]: ((r.get("title") or "").strip(), (r.get("detail") or "").strip())
                    for r in csv.DictReader(fh)}
        if source == "train_seg":
            # The publisher's segmentation undone (its removed stopwords stay removed): the
            # models read raw text, character n-grams across the old word gaps included.
            return {r[id_col]: ("", "".join((r.get("text") or "").split()))
                    for r in csv.DictReader(fh)}
        return {r[id_col]: ("", (r.get("text") or "").strip()) for r in csv.DictReader(fh)}


def read_labelled(data_dir: Path, labels_dir: Path = LABELS_DIR,
                  sources: tuple[str, ...] = tuple(LABEL_SOURCES)) -> list[Labelled]:
    """Every labelled message of `sources` with its text: board messages in msg_id order,
    then dev_raw rows in row_idx order."""
    out: list[Labelled] = []
    for source in sources:
        if source != "board_messages" and not any(labels_dir.glob(LABEL_SOURCES[source][0])):
            continue
        texts = _texts(data_dir, source)
        for row in read_label_rows(labels_dir, (source,)):
            msg = texts.get(row["row_id"])
            if msg is None or row["scope"] not in SCOPES:
                continue
            out.append(Labelled(row["row_id"], msg[0], msg[1], row["scope"],
                                (row.get("item") or "").strip(), (row.get("topic") or "").strip(),
                                (row.get("urgent") or "0").strip() == "1", source))
    order = {source: n for n, source in enumerate(LABEL_SOURCES)}
    return sorted(out, key=lambda r: (order[r.source],
                                      int(r.msg_id) if r.msg_id.isdigit() else 0))


def _rank(msg_id: str) -> str:
    return hashlib.sha256(f"{HELD_OUT_SEED}:{msg_id}".encode()).hexdigest()


def read_frozen_held_out(path: Path | None = None) -> set[str] | None:
    """The frozen held-out msg_ids (HELD_OUT_FILE), or None when there is no such file."""
    path = path or LABELS_DIR / HELD_OUT_FILE
    if not path.exists():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def held_out_ids(rows: Iterable[Labelled], share: float = HELD_OUT_SHARE,
                 frozen: set[str] | None = None) -> set[str]:
    """The fixed held-out msg_ids among `rows`: those in the frozen list
    (data/labels/held_out_ids.txt) when it exists — the draw below, made once — so that
    correcting a training row's scope cannot move rows between the parts; else per scope,
    the first round(share·n) by seeded hash."""
    rows = list(rows)
    # Only board messages are ever held out: the held-out part stays what it was when more
    # labelled sources (dev_raw) joined the training part.
    rows = [r for r in rows if r.source == "board_messages"]
    frozen = frozen if frozen is not None else read_frozen_held_out()
    if frozen is not None:
        return {r.msg_id for r in rows if r.msg_id in frozen}
    return draw_held_out_ids(rows, share)


def draw_held_out_ids(rows: Iterable[Labelled], share: float = HELD_OUT_SHARE) -> set[str]:
    """Per scope, the first round(share·n) msg_ids by seeded hash (how the frozen list was
    drawn)."""
    by_scope: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        by_scope[r.scope].append(r.msg_id)
    out: set[str] = set()
    for ids in by_scope.values():
        ids.sort(key=_rank)
        out.update(ids[: round(share * len(ids))])
    return out


def split(rows: list[Labelled]) -> tuple[list[Labelled], list[Labelled]]:
    """(training part, held-out part)."""
    held = held_out_ids(rows)

    def is_held(r: Labelled) -> bool:
        return r.source == "board_messages" and r.msg_id in held

    return [r for r in rows if not is_held(r)], [r for r in rows if is_held(r)]


def read_dev_topics(data_dir: Path) -> tuple[list[str], list[str]]:
    """dev_raw.csv's raw texts and 7-topic labels (for the topic router); empty if absent."""
    path = data_dir / DEV_FILE
    if not path.exists():
        return [], []
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("label") in TOPICS and r.get("text")]
    return [r["text"] for r in rows], [r["label"] for r in rows]
