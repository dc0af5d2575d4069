"""Compare the blind second pass (B2) with the labels in data/labels/board_part*.csv.

    python scripts/relabel_compare.py [--list]

Prints, separately for the held-out and the training part (held_out_ids.txt decides),
agreement and Cohen's kappa for scope (catalogue vs not, and 4-way) and for the item among
rows both passes call catalogue; --list prints every disagreement with the message title.
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


def main() -> None:
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
        binary = [(old[i]["scope"] == "catalogue", second[i]["scope"] == "catalogue") for i in ids]
        binary_s = [(str(a), str(b)) for a, b in binary]
        four = [(old[i]["scope"], second[i]["scope"]) for i in ids]
        both = [i for i in ids if old[i]["scope"] == second[i]["scope"] == "catalogue"]
        items = [(old[i]["item"], second[i]["item"]) for i in both]
        print(f"== {part}: {len(ids)} rows")
        for name, pairs in (("scope catalogue/not", binary_s), ("scope 4-way", four),
                            (f"item (both catalogue, n={len(both)})", items)):
            agree, k = kappa(pairs)
            print(f"  {name:32s} agreement {agree:.3f}  kappa {k:.3f}")
        print("  old → B2 scope:", dict(Counter(f"{a}→{b}" for a, b in four if a != b)))
        if listing:
            for i in ids:
                o, s = old[i], second[i]
                if (o["scope"], o["item"]) != (s["scope"], s["item"]):
                    title = sample[i]["text"].split("｜", 1)[0]
                    print(f"  {i} old {o['scope']}/{o['item']}/{o['topic']}"
                          f"  B2 {s['scope']}/{s['item']}/{s['topic']}  {title}")


if __name__ == "__main__":
    main()
