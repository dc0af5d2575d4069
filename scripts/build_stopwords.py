"""Reconstruct the stopword list the TIPDM publisher removed from its segmented text.

The training file (train_seg.csv) is word-segmented with stopwords removed; real messages
are raw. Character n-grams spanning 的/了/我们 … then exist only at prediction time. This
script rebuilds the removed list from two things the publisher left behind, without labels
and without the held-out (dev) rows:

1. segment raw messages of the same source (unlabelled.csv: title + detail) with jieba;
2. keep each token that (a) occurs in at least MIN_DOCS (20) raw messages (rarer tokens are
   topic words as often as stopwords: 茶树, 挖沙), (b) never occurs as a token of the
   segmented training rows, (c) is CJK or letters (not a number) of at most 4 characters,
   and (d) as a substring of the compacted text is at least 1/RATIO times rarer in the
   segmented rows than in the raw messages (its occurrences inside kept words are the rest:
   的 in 目的).

(d) is fixed at 0.5 a priori: at least half of a token's occurrences must be the removed,
stand-alone kind, so deleting it everywhere (both training and incoming text) mostly removes
what the publisher removed. The model deletes the listed strings from both sides
(nlp.stopwords), so training and real messages give the same n-grams.

    .venv/bin/python scripts/build_stopwords.py \\
        --segmented ../shared/data/tipdm/train_seg.csv \\
        --exclude ../shared/data/tipdm/dev_raw.csv \\
        --raw ../shared/data/tipdm/unlabelled.csv --out data/stopwords/tipdm.txt

Deterministic for a given jieba version (recorded in the file's header).
"""

from __future__ import annotations

import argparse
import csv
import logging
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

import jieba  # noqa: E402

from nlp.message_text import compact  # noqa: E402
from nlp.stopwords import MAX_LENGTH  # noqa: E402

MIN_DOCS = 20
RATIO = 0.5
_WORDLIKE = re.compile(r"^[\u4e00-\u9fffa-z]+$")


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def build(segmented: list[str], raw: list[str]) -> list[tuple[str, int, float]]:
    """(token, raw messages it occurs in, segmented/raw substring rate) per stopword."""
    # Token identity as the publisher's list had it: case-sensitive (it removed "A", as in
    # A市, and kept "a"); the word deleted is the token as the model sees it (compacted).
    vocabulary = {w for text in segmented for w in text.split()}
    # A tokenizer of its own, with jieba's dictionary only: words other code added to the
    # global one (nlp.segment.add_words) would change the result.
    tokenizer = jieba.Tokenizer()
    docs: Counter[str] = Counter()
    for text in raw:
        docs.update(set(tokenizer.lcut(text)))
    seg_text = "\n".join(compact(t) for t in segmented)
    raw_text = "\n".join(compact(t) for t in raw)
    found: dict[str, tuple[str, int, float]] = {}
    for original, n_docs in docs.items():
        token = compact(original)
        if n_docs < MIN_DOCS or original in vocabulary or token != original.lower():
            continue
        if not _WORDLIKE.match(token) or len(token) > MAX_LENGTH or token in found:
            continue  # the model's deleter matches words of up to MAX_LENGTH characters
        raw_rate = raw_text.count(token) / len(raw_text)
        seg_rate = seg_text.count(token) / len(seg_text)
        if raw_rate and seg_rate / raw_rate < RATIO:
            found[token] = (token, n_docs, seg_rate / raw_rate)
    # Longest first, as the model matches them (我们 before 我).
    return sorted(found.values(), key=lambda f: (-len(f[0]), f[0]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segmented", type=Path, required=True,
                        help="CSV with a segmented 'text' column (train_seg.csv)")
    parser.add_argument("--exclude", type=Path,
                        help="CSV whose row_idx values are left out of --segmented (dev rows)")
    parser.add_argument("--raw", type=Path, required=True,
                        help="CSV of raw messages with 'title' and 'detail' (unlabelled.csv)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    jieba.setLogLevel(logging.WARNING)
    held_out = {r["row_idx"] for r in _read(args.exclude)} if args.exclude else set()
    segmented = [r["text"] for r in _read(args.segmented) if r.get("row_idx") not in held_out]
    raw = [(r.get("title") or "") + (r.get("detail") or "") for r in _read(args.raw)]
    words = build(segmented, raw)
    header = [
        "# Stopwords the TIPDM publisher removed from train_seg.csv, reconstructed by",
        "# scripts/build_stopwords.py (see its docstring for the rule): jieba "
        f"{jieba.__version__} tokens",
        f"# of {len(raw)} raw messages ({args.raw.name}) in >= {MIN_DOCS} of them, never a "
        f"token of {len(segmented)}",
        f"# segmented rows ({args.segmented.name}"
        + (f" minus the rows of {args.exclude.name}" if args.exclude else "")
        + f"), substring rate segmented/raw < {RATIO}.",
        "# Columns: token, raw messages containing it, segmented/raw rate. Longest first.",
    ]
    lines = [f"{w}\t{n}\t{r:.3f}" for w, n, r in words]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(header + lines) + "\n", encoding="utf-8")
    print(f"{len(words)} stopwords written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
