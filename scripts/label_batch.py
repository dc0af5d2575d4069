"""Print real messages for hand labelling (data/labelling.md), one part and batch at a time.

    python scripts/label_batch.py --part 3 --of 6 --batch 0 --size 40
    python scripts/label_batch.py --ids data/labels/kappa_sample.txt --batch 0

Parts are contiguous slices of board_messages.csv in file order; long details are cut to
--chars characters (the title and the opening carry what the writer wants).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

BOARD = Path(__file__).resolve().parents[1].parent / "shared/data/tipdm/board_messages.csv"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", type=int, default=0)
    parser.add_argument("--of", type=int, default=1)
    parser.add_argument("--ids", type=Path, help="a file of msg_ids, one a line")
    parser.add_argument("--batch", type=int, default=0)
    parser.add_argument("--size", type=int, default=40)
    parser.add_argument("--chars", type=int, default=360)
    args = parser.parse_args()
    with BOARD.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if args.ids:
        wanted = [line.strip() for line in args.ids.read_text().splitlines() if line.strip()]
        by_id = {row["msg_id"]: row for row in rows}
        rows = [by_id[i] for i in wanted]
    else:
        per = -(-len(rows) // args.of)
        rows = rows[args.part * per:(args.part + 1) * per]
    batch = rows[args.batch * args.size:(args.batch + 1) * args.size]
    batches = -(-len(rows) // args.size)
    print(f"# {len(rows)} messages in this part, batch {args.batch} of 0..{batches - 1}")
    for row in batch:
        detail = " ".join(row["detail"].split())[: args.chars]
        print(f"[{row['msg_id']}] {row['title'].strip()} ｜ {detail}")


if __name__ == "__main__":
    main()
