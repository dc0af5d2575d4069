"""Draw the blind second-pass sample (issue 17): 300 held-out + 300 training board rows.

    python scripts/relabel_sample.py

Uniform random draw with a fixed seed (not chosen by model disagreement). Only the row ids of
data/labels/board_part*.csv are read (never the labels); the text comes from
../shared/data/tipdm/board_messages.csv. Writes data/labels/relabel_sample.csv with
source,row_id,text only (the part is not shown either: it is
read back from held_out_ids.txt when comparing) — no old label, no model output.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "data" / "labels"
BOARD = Path("/work/shared/data/tipdm/board_messages.csv")
SEED = 20261203
PER_PART = 300


def main() -> None:
    held = {line.strip() for line in (LABELS / "held_out_ids.txt").open(encoding="utf-8")
            if line.strip() and not line.startswith("#")}
    ids: list[str] = []
    for path in sorted(LABELS.glob("board_part*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            ids += [row["row_id"] for row in csv.DictReader(handle)
                    if row["source"] == "board_messages"]
    held_ids = sorted((i for i in ids if i in held), key=int)
    train_ids = sorted((i for i in ids if i not in held), key=int)
    rng = random.Random(SEED)
    chosen = [("held_out", i) for i in rng.sample(held_ids, PER_PART)]
    chosen += [("training", i) for i in rng.sample(train_ids, PER_PART)]
    rng.shuffle(chosen)  # blind to the part while labelling
    with BOARD.open(encoding="utf-8", newline="") as handle:
        text = {row["msg_id"]: (row["title"].strip() + "｜" + " ".join(row["detail"].split()))
                for row in csv.DictReader(handle)}
    with (LABELS / "relabel_sample.csv").open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["source", "row_id", "text"])
        for _part, i in chosen:
            out.writerow(["board_messages", i, text[i]])
    print(f"held-out {len(held_ids)} → {PER_PART}; training {len(train_ids)} → {PER_PART}")


if __name__ == "__main__":
    main()
