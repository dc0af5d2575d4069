"""Print real messages for hand labelling (data/labelling.md), one part and batch at a time.

    python scripts/label_batch.py --part 3 --of 6 --batch 0 --size 40
    python scripts/label_batch.py --ids data/labels/kappa_sample.txt --batch 0
    python scripts/label_batch.py --source dev_raw --part 1 --of 4 --batch 0
    python scripts/label_batch.py --source train_seg --part 2 --of 5 --batch 0

Parts are contiguous slices of the source file (board_messages.csv, or dev_raw.csv whose
rows are title and detail run together, or train_seg.csv's rows not in dev_raw — segmented,
stopwords removed — with the publisher's topic shown) in file order;
long details are cut to --chars characters (the title and the opening carry what the writer wants).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

TIPDM = Path(__file__).resolve().parents[1].parent / "shared/data/tipdm"


def read_rows(source: str) -> list[dict[str, str]]:
    """The source's rows as msg_id / title / detail (/ topic for dev_raw)."""
    with (TIPDM / f"{source}.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if source == "board_messages":
        return rows
    if source == "train_seg":  # its dev_raw rows are labelled from their raw text instead
        with (TIPDM / "dev_raw.csv").open(encoding="utf-8") as handle:
            raw = {r["row_idx"] for r in csv.DictReader(handle)}
        rows = [r for r in rows if r["row_idx"] not in raw]
    return [{"msg_id": r["row_idx"], "title": "", "detail": r["text"], "topic": r["label"]}
            for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", choices=["board_messages", "dev_raw", "train_seg"],
                        default="board_messages")
    parser.add_argument("--part", type=int, default=0)
    parser.add_argument("--of", type=int, default=1)
    parser.add_argument("--ids", type=Path, help="a file of msg_ids, one a line")
    parser.add_argument("--batch", type=int, default=0)
    parser.add_argument("--size", type=int, default=40)
    parser.add_argument("--chars", type=int, default=360)
    args = parser.parse_args()
    rows = read_rows(args.source)
    if args.ids:
        wanted = [line.strip() for line in args.ids.read_text().splitlines()
                  if line.strip() and not line.startswith("#")]
        by_id = {row["msg_id"]: row for row in rows}
        rows = [by_id[i] for i in wanted]
    else:
        per = -(-len(rows) // args.of)
        rows = rows[args.part * per:(args.part + 1) * per]
    batch = rows[args.batch * args.size:(args.batch + 1) * args.size]
    batches = -(-len(rows) // args.size)
    print(f"# {len(rows)} messages in this part, batch {args.batch} of 0..{batches - 1}")
    for row in batch:
        detail = " ".join(row["detail"].split())[: args.chars * (2 if args.source == "train_seg"
                                                                  else 1)]
        topic = f" 〔{row['topic']}〕" if row.get("topic") else ""
        print(f"[{row['msg_id']}]{topic} {row['title'].strip()} ｜ {detail}")


if __name__ == "__main__":
    main()
