"""Compare a blind second pass with the first labels.

    python scripts/relabel_compare.py [--list]          # B2 against board_part*.csv
    python scripts/relabel_compare.py --dev [--list]    # B3 against dev_part*.csv

Prints agreement and Cohen's kappa for scope (catalogue vs not, and 4-way) and for the item
among rows both passes call catalogue — for board messages separately for the held-out and
the training part (held_out_ids.txt decides); --list prints every disagreement (board: with
the message title).
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "data" / "labels"


def kappa(pairs: list[tuple[str, str]]) -> tuple[float, float]:
    n = len(pairs)
    if not n:
        return float("nan"), float("nan")
    observed = sum(a == b for a, b in pairs) / n
    left = Counter(a for a, _ in pairs)
    right = Counter(b for _, b in pairs)
    expected = sum(left[c] * right[c] for c in left) / (n * n)
    if expected == 1:
        return observed, 1.0
    return observed, (observed - expected) / (1 - expected)


def load(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["row_id"]: row for row in csv.DictReader(handle)}


def report(name: str, ids: list[str], old: dict[str, dict[str, str]],
           second: dict[str, dict[str, str]]) -> None:
    binary = [(str(old[i]["scope"] == "catalogue"), str(second[i]["scope"] == "catalogue"))
              for i in ids]
    four = [(old[i]["scope"], second[i]["scope"]) for i in ids]
    both = [i for i in ids if old[i]["scope"] == second[i]["scope"] == "catalogue"]
    items = [(old[i]["item"], second[i]["item"]) for i in both]
    print(f"== {name}: {len(ids)} rows")
    for what, pairs in (("scope catalogue/not", binary), ("scope 4-way", four),
                        (f"item (both catalogue, n={len(both)})", items)):
        agree, k = kappa(pairs)
        print(f"  {what:32s} agreement {agree:.3f}  kappa {k:.3f}")
    print("  first → second scope:", dict(Counter(f"{a}→{b}" for a, b in four if a != b)))


def main_dev() -> None:
    old: dict[str, dict[str, str]] = {}
    for path in sorted(LABELS.glob("dev_part*.csv")):
        old.update(load(path))
    second = load(LABELS / "dev_kappa_second.csv")
    report("dev_raw sample", list(second), old, second)
    if "--list" in sys.argv:
        for i, s in second.items():
            o = old[i]
            if (o["scope"], o["item"]) != (s["scope"], s["item"]):
                print(f"  {i} first {o['scope']}/{o['item']} {o['note']}"
                      f"  second {s['scope']}/{s['item']} {s['note']}")


def main() -> None:
    if "--dev" in sys.argv:
        main_dev()
        return
    held = {line.strip() for line in (LABELS / "held_out_ids.txt").open(encoding="utf-8")
            if line.strip() and not line.startswith("#")}
    old: dict[str, dict[str, str]] = {}
    for path in sorted(LABELS.glob("board_part*.csv")):
        old.update(load(path))
    second = load(LABELS / "relabel_second.csv")
    sample = load(LABELS / "relabel_sample.csv")
    listing = "--list" in sys.argv
    for part in ("held_out", "training"):
        ids = [i for i in second if (i in held) == (part == "held_out")]
        report(part, ids, old, second)
        if listing:
            for i in ids:
                o, s = old[i], second[i]
                if (o["scope"], o["item"]) != (s["scope"], s["item"]):
                    title = sample[i]["text"].split("｜", 1)[0]
                    print(f"  {i} old {o['scope']}/{o['item']}/{o['topic']}"
                          f"  B2 {s['scope']}/{s['item']}/{s['topic']}  {title}")


if __name__ == "__main__":
    main()
