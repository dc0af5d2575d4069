"""Check label files against data/labelling.md: columns, scopes, codes, topics, duplicates.

    python scripts/check_labels.py data/labels/board_part0.csv [...]
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = ["source", "row_id", "scope", "item", "topic", "urgent", "labeller", "note"]
SCOPES = {"catalogue", "department", "question", "emergency"}
TOPICS = {"城乡建设", "劳动和社会保障", "教育文体", "商贸旅游", "环境保护", "卫生计生", "交通运输"}


def check(path: Path, codes: set[str]) -> list[str]:
    problems: list[str] = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != HEADER:
            return [f"{path}: header must be {','.join(HEADER)}"]
        seen: Counter[str] = Counter()
        for line, row in enumerate(reader, start=2):
            if len(row) != len(HEADER):
                problems.append(f"{path}:{line}: {len(row)} fields, want {len(HEADER)}")
                continue
            rec = dict(zip(HEADER, row, strict=True))
            seen[rec["source"] + ":" + rec["row_id"]] += 1
            if rec["scope"] not in SCOPES:
                problems.append(f"{path}:{line}: scope {rec['scope']!r}")
            if rec["scope"] == "catalogue" and rec["item"] not in codes:
                problems.append(f"{path}:{line}: item {rec['item']!r} not in the catalogue")
            if rec["scope"] == "emergency" and rec["item"] and rec["item"] not in codes:
                problems.append(f"{path}:{line}: item {rec['item']!r} not in the catalogue")
            if rec["scope"] in {"department", "question"} and rec["topic"] not in TOPICS:
                problems.append(f"{path}:{line}: topic {rec['topic']!r}")
            if rec["urgent"] not in {"0", "1"}:
                problems.append(f"{path}:{line}: urgent {rec['urgent']!r}")
        problems += [f"{path}: {key} labelled {n} times" for key, n in seen.items() if n > 1]
        print(f"{path}: {sum(seen.values())} labels")
    return problems


def main() -> None:
    with (ROOT / "data/catalogue.csv").open(encoding="utf-8") as handle:
        codes = {row["code"] for row in csv.DictReader(handle)}
    problems = [p for name in sys.argv[1:] for p in check(Path(name), codes)]
    print("\n".join(problems) or "ok")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
