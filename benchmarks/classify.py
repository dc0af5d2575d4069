"""Message classification benchmark on the TIPDM citizen-message data, in one run, one split.

Compares this project's message model (`gridbot train --data`, nlp.features.message_pipeline)
with a plain TF-IDF + LinearSVC baseline and a fastText baseline. Train: rows of
train_seg.csv whose row_idx is not in dev_raw.csv; test: dev_raw.csv's raw text. Measured:
macro-F1, top-3 accuracy, messages/s on one core, training time, model size. Prints a table
and JSON and appends a dated entry to benchmarks/RESULTS.md.

    ./run bench                      # installs the fastText wheel first
    .venv/bin/python benchmarks/classify.py [--data DIR] [--core N] [--no-record]

`--catalogue`: the catalogue / triage table instead, on the fixed held-out part of the
hand-labelled real board messages (training.labels: 20% by scope, seeded hash of msg_id):
the seed-only model, the triage model (training.triage_model) and a plain TF-IDF +
LinearSVC trained on the same data — item top-1 / top-3 / big class among catalogue
matters, scope accuracy, the share of non-grid messages sent away from `catalogue` and of
grid matters kept, sure share and precision, messages/s one by one on one core.

    .venv/bin/python benchmarks/classify.py --catalogue [--data DIR] [--core N] [--no-record]
"""

from __future__ import annotations

import os

# One core means one thread for every numeric library too: set before numpy loads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from nlp.classifier import MODEL_FILE, TextClassifier  # noqa: E402
from nlp.segment import tokenize  # noqa: E402
from training.message_model import train_message_model  # noqa: E402
from training.report import score_metrics  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared/data/tipdm"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
WARM_UP = 50


@dataclass
class Split:
    train_texts: list[str]
    train_labels: list[str]
    test_texts: list[str]
    test_labels: list[str]


@dataclass
class Result:
    name: str
    macro_f1: float
    top3_accuracy: float
    accuracy: float
    msgs_per_s: float  # a batch of all test messages
    msgs_per_s_one_by_one: float  # one call per message, as a server classifies
    train_s: float
    model_mb: float
    note: str = ""
    per_class_f1: dict[str, float] = field(default_factory=dict)


def load_split(data_dir: Path) -> Split:
    train_path, test_path = data_dir / "train_seg.csv", data_dir / "dev_raw.csv"
    for path in (train_path, test_path):
        if not path.exists():
            raise SystemExit(f"benchmark data missing: {path}")
    with open(test_path, encoding="utf-8") as fh:
        test = list(csv.DictReader(fh))
    held_out = {row["row_idx"] for row in test}
    with open(train_path, encoding="utf-8") as fh:
        train = [row for row in csv.DictReader(fh) if row["row_idx"] not in held_out]
    return Split([r["text"] for r in train], [r["label"] for r in train],
                 [r["text"] for r in test], [r["label"] for r in test])


def _speed(predict: Callable[[list[str]], object], texts: list[str]) -> tuple[float, float]:
    predict(texts[:WARM_UP])  # first calls load lazily (jieba's dictionary, caches)
    started = time.perf_counter()
    predict(texts)
    batch = len(texts) / (time.perf_counter() - started)
    sample = texts[:500]
    started = time.perf_counter()
    for text in sample:
        predict([text])
    single = len(sample) / (time.perf_counter() - started)
    return round(batch, 1), round(single, 1)


def _result(name: str, probs: np.ndarray, labels: list[str], split: Split,
            speed: tuple[float, float], train_s: float, size: int, note: str = "") -> Result:
    metrics = score_metrics(probs, labels, split.test_labels)
    return Result(name, metrics["macro_f1"], metrics["top3_accuracy"], metrics["accuracy"],
                  speed[0], speed[1], round(train_s, 2), round(size / 1e6, 2), note,
                  {k: v["f1"] for k, v in metrics["per_class"].items()})


def bench_project(split: Split) -> Result:
    started = time.perf_counter()
    model = train_message_model(split.train_texts, split.train_labels, folds=0).model
    train_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp))
        size = (Path(tmp) / MODEL_FILE).stat().st_size
        model = TextClassifier.load(Path(tmp))  # measure the model as servers load it
    probs = model.scores(split.test_texts)
    return _result("gridbot message model", probs, model.labels, split,
                   _speed(model.scores, split.test_texts), train_s, size,
                   "nlp.features.message_pipeline via TextClassifier (raw text in; deletes the "
                   "reconstructed publisher stopwords, data/stopwords/tipdm.txt)")


def bench_tfidf_svc(split: Split) -> Result:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    started = time.perf_counter()
    pipeline = Pipeline([
        ("words", TfidfVectorizer(tokenizer=tokenize, token_pattern=None, lowercase=False,
                                  sublinear_tf=True)),
        ("model", LinearSVC()),
    ]).fit(split.train_texts, split.train_labels)
    train_s = time.perf_counter() - started
    size = len(pickle.dumps(pipeline, protocol=pickle.HIGHEST_PROTOCOL))
    return _result("TF-IDF (jieba words) + LinearSVC", pipeline.decision_function(
        split.test_texts), list(pipeline.classes_), split,
        _speed(pipeline.decision_function, split.test_texts), train_s, size,
        "sklearn defaults, C=1")


def bench_fasttext(split: Split) -> Result | str:
    try:
        import fasttext
    except ImportError:
        return "fastText not installed (./run bench installs fasttext-wheel): skipped"

    def words(text: str) -> str:
        return " ".join(tokenize(text))

    with tempfile.TemporaryDirectory() as tmp:
        train_file = Path(tmp) / "train.txt"
        started = time.perf_counter()
        lines = [f"__label__{label} {words(text)}\n"
                 for text, label in zip(split.train_texts, split.train_labels, strict=True)]
        # The file is sorted by label; one fastText thread reads it in order and would end
        # up knowing mostly the last label: shuffle, with a fixed seed.
        order = np.random.default_rng(1).permutation(len(lines))
        train_file.write_text("".join(lines[i] for i in order), encoding="utf-8")
        model = fasttext.train_supervised(
            str(train_file), epoch=25, lr=0.5, wordNgrams=2, dim=100, minCount=2,
            bucket=200_000, loss="softmax", thread=1, seed=1, verbose=0,
        )
        train_s = time.perf_counter() - started
        model.save_model(str(Path(tmp) / "model.bin"))
        size = (Path(tmp) / "model.bin").stat().st_size
    labels = [label.removeprefix("__label__") for label in model.labels]
    index = {label: i for i, label in enumerate(labels)}

    def scores(texts: list[str]) -> np.ndarray:
        # fasttext-wheel's predict() breaks on numpy 2 (copy=False) and its multilinePredict
        # returns wrong probabilities there; the per-line core call returns plain floats.
        out = np.zeros((len(texts), len(labels)))
        for row, text in enumerate(texts):
            for value, name in model.f.predict(words(text).replace("\n", " "), len(labels),
                                               0.0, "strict"):
                out[row, index[name.removeprefix("__label__")]] = value
        return out

    return _result("fastText (jieba words, bigrams)", scores(split.test_texts), labels, split,
                   _speed(scores, split.test_texts), train_s, size,
                   "epoch 25, lr 0.5, dim 100, wordNgrams 2, bucket 200k, 1 thread")


def table(results: list[Result]) -> str:
    head = ("| model | macro-F1 | top-3 | accuracy | msgs/s (batch) | msgs/s (1 by 1) "
            "| train s | MB |\n|---|---|---|---|---|---|---|---|\n")
    return head + "".join(
        f"| {r.name} | {r.macro_f1:.4f} | {r.top3_accuracy:.4f} | {r.accuracy:.4f} | "
        f"{r.msgs_per_s:,.0f} | {r.msgs_per_s_one_by_one:,.0f} | {r.train_s:.1f} | "
        f"{r.model_mb:.1f} |\n" for r in results
    )


def _append(path: Path, title: str, command: str, data_note: str, core: int,
            body: list[str]) -> None:
    """One dated section of RESULTS.md: the command, the data, the machine, then `body`."""
    if not path.exists():
        path.write_text(HEADER, encoding="utf-8")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = (f"One core (cpu {core}), Python {platform.python_version()}, "
               f"{platform.machine()}, load average at the end {os.getloadavg()[0]:.1f} on "
               f"{os.cpu_count()} CPUs (other work on the machine slows every row alike).\n")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("".join([f"\n## {title} — {stamp}\n", f"`{command}`\n",
                          f"\n{data_note} {machine}", *body]))


def record(path: Path, command: str, split: Split, results: list[Result],
           notes: list[str], core: int) -> None:
    data_note = (f"Train {len(split.train_texts)} rows of train_seg.csv (dev rows excluded), "
                 f"test {len(split.test_texts)} raw rows of dev_raw.csv.")
    _append(path, "classify", command, data_note, core,
            ["\n" + table(results), *(f"\n- {n}" for n in notes), "\n"])


HEADER = """# Benchmark results

Entries are appended, newest last (classify.py appends its own). Each entry gives the date,
the command, the data and the machine.

- `benchmarks/classify.py` — message classification on the TIPDM citizen messages (7 labels):
  train on `train_seg.csv` rows not in `dev_raw.csv`, test on `dev_raw.csv` raw text. For
  this project's model (what `gridbot train --data` builds), a plain TF-IDF + LinearSVC and
  fastText: macro-F1 and top-3 accuracy on the test rows, messages per second on one pinned
  core (a batch of all test messages, and one call per message), training time (one core)
  and the size of the saved model. Targets (issue 3): macro-F1 ≥ 0.94, ≥ 2,000 msgs/s,
  training < 60 s, model < 50 MB.
- `benchmarks/city_day.py` — one day of Beijing's 2013 case volume filed through the HTTP
  API of 2 server processes on PostgreSQL + Redis: cases/s and p50/p99 latency (prints
  JSON; entries here are added by hand).
"""


@dataclass
class CatalogueResult:
    name: str
    figures: dict[str, float | None]
    train_s: float
    note: str = ""


CATALOGUE_COLUMNS = (("top1", "top-1"), ("top3", "top-3"), ("big_class", "big class"),
                     ("scope_accuracy", "scope acc."), ("nongrid_away", "non-grid → other"),
                     ("grid_keep", "grid → catalogue"), ("sure_share", "sure share"),
                     ("sure_precision", "right when sure"), ("topic_accuracy", "topic acc."),
                     ("msgs_per_s_one_by_one", "msgs/s (1 by 1)"))


def catalogue_table(results: list[CatalogueResult]) -> str:
    head = ("| model | " + " | ".join(h for _, h in CATALOGUE_COLUMNS) + " | train s |\n|"
            + "---|" * (len(CATALOGUE_COLUMNS) + 2) + "\n")

    def cell(key: str, value: float | None) -> str:
        if value is None:
            return "—"
        return f"{value:,.0f}" if key.startswith("msgs") else f"{value:.3f}"

    return head + "".join(
        f"| {r.name} | " + " | ".join(cell(k, r.figures.get(k)) for k, _ in CATALOGUE_COLUMNS)
        + f" | {r.train_s:.0f} |\n" for r in results)


def _flat_baseline(train_rows: list, held: list, seed_x: list[str], seed_y: list[str],
                   catalogue) -> CatalogueResult:
    """TF-IDF (jieba words) + LinearSVC, sklearn defaults, on the same data: one flat label
    per text (the item for catalogue matters, `scope:department` / `scope:question` else);
    scope = catalogue when an item wins; items ranked among the item columns."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    def flat(r) -> str | None:
        if r.scope in ("catalogue", "emergency") and r.item in catalogue:
            return r.item
        return f"scope:{r.scope}" if r.scope in ("department", "question") else None

    rows = [(r.text, flat(r)) for r in train_rows if flat(r)]
    started = time.perf_counter()
    pipe = Pipeline([
        ("words", TfidfVectorizer(tokenizer=tokenize, token_pattern=None, lowercase=False,
                                  sublinear_tf=True)),
        ("model", LinearSVC()),
    ]).fit([t for t, _ in rows] + seed_x, [y for _, y in rows] + seed_y)
    train_s = time.perf_counter() - started
    classes = list(pipe.classes_)
    item_cols = np.array([i for i, c in enumerate(classes) if not c.startswith("scope:")])
    scores = pipe.decision_function([r.text for r in held])
    best = np.array(classes)[scores.argmax(axis=1)]
    item_rank = item_cols[np.argsort(-scores[:, item_cols], axis=1)[:, :3]]
    cat = [i for i, r in enumerate(held) if r.scope in ("catalogue", "emergency")
           and r.item in catalogue]
    top1 = [classes[item_rank[i, 0]] == held[i].item for i in cat]
    top3 = [held[i].item in {classes[j] for j in item_rank[i]} for i in cat]
    big = [catalogue.get(classes[item_rank[i, 0]]).big_class
           == catalogue.get(held[i].item).big_class for i in cat]
    predicted = ["catalogue" if not b.startswith("scope:") else b[6:] for b in best]
    truth = [r.scope if r.scope != "emergency" else "catalogue" for r in held]
    grid = [p == "catalogue" for p, r in zip(predicted, held, strict=True)
            if r.scope == "catalogue"]
    away = [p != "catalogue" for p, r in zip(predicted, held, strict=True)
            if r.scope in ("department", "question")]
    sample = [r.text for r in held[:300]]
    started = time.perf_counter()
    for text in sample:
        pipe.decision_function([text])
    speed = len(sample) / (time.perf_counter() - started)
    return CatalogueResult("TF-IDF (jieba words) + LinearSVC, flat labels", {
        "top1": float(np.mean(top1)), "top3": float(np.mean(top3)),
        "big_class": float(np.mean(big)),
        "scope_accuracy": float(np.mean([a == b for a, b in zip(predicted, truth,
                                                                  strict=True)])),
        "nongrid_away": float(np.mean(away)), "grid_keep": float(np.mean(grid)),
        "sure_share": None, "sure_precision": None, "topic_accuracy": None,
        "msgs_per_s_one_by_one": speed}, train_s,
        "sklearn defaults (C=1), full text; no calibration, so no 'sure'")


def run_catalogue(data_dir: Path, folds: int) -> tuple[list[CatalogueResult], dict, str]:
    from bot.catalogue import load_catalogue
    from nlp.places import Gazetteer, load_gazetteer
    from nlp.topics import TOPICS
    from training.catalogue_model import train_catalogue_model
    from training.corpus import read_seed_corpus
    from training.labels import read_dev_topics, read_labelled
    from training.labels import split as split_labels
    from training.triage_model import evaluate_triage, train_triage_model

    catalogue = load_catalogue(ROOT / "data/catalogue.csv")
    words = Gazetteer(load_gazetteer(ROOT / "data/demo/gazetteer.csv")).words()
    seed_dir = ROOT / "data/seed_corpus"
    rows = read_labelled(data_dir)
    train_rows, held = split_labels(rows)
    dev = read_dev_topics(data_dir)
    results: list[CatalogueResult] = []
    print("seed-only model …", file=sys.stderr, flush=True)
    started = time.perf_counter()
    seed_model, _ = train_catalogue_model(seed_dir, catalogue, words)
    seed_s = time.perf_counter() - started
    results.append(CatalogueResult("seed-only model (before)", evaluate_triage(
        seed_model, held, catalogue), seed_s, "training.catalogue_model; scope by rules only"))
    print("triage model …", file=sys.stderr, flush=True)
    started = time.perf_counter()
    model, report = train_triage_model(seed_dir, catalogue, words, train_rows, dev, None,
                                       folds=folds)
    train_s = time.perf_counter() - started
    results.append(CatalogueResult("gridbot triage model", evaluate_triage(
        model, held, catalogue), train_s, "training.triage_model (scope + topic + item)"))
    print("TF-IDF + LinearSVC …", file=sys.stderr, flush=True)
    seed_x, seed_y = read_seed_corpus(seed_dir, catalogue)
    results.append(_flat_baseline(train_rows, held, seed_x, seed_y, catalogue))
    counts = {s: sum(r.scope == s for r in held) for s in ("catalogue", "department",
                                                           "question", "emergency")}
    sources = dict(sorted(Counter(r.source for r in train_rows).items()))
    board = sum(r.source == "board_messages" for r in rows)
    data_note = (f"Held-out part: {len(held)} of {board} labelled board messages "
                 f"({counts}); training part {len(train_rows)} labelled real messages "
                 f"({sources}) + seed corpus {len(seed_x)} sentences; dev_raw.csv's "
                 f"{len(dev[0])} topics also train the topic router ({len(TOPICS)} topics).")
    return results, report.cv, data_note


def record_catalogue(path: Path, command: str, results: list[CatalogueResult], cv: dict,
                     data_note: str, core: int) -> None:
    _append(path, "classify --catalogue", command, data_note, core, [
        "\n" + catalogue_table(results),
        *(f"\n- {r.name}: {r.note}" for r in results if r.note),
        "\n- Cross-validated on the training part (what the thresholds were chosen on): "
        + json.dumps(cv, ensure_ascii=False) + "\n"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="TIPDM data folder")
    parser.add_argument("--core", type=int, default=None, help="CPU to pin to (default: last)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--no-record", action="store_true", help="do not append RESULTS.md")
    parser.add_argument("--catalogue", action="store_true",
                        help="the catalogue / triage table on the held-out real messages")
    parser.add_argument("--folds", type=int, default=5, help="with --catalogue: CV folds")
    args = parser.parse_args(argv)
    core = args.core if args.core is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    if args.catalogue:
        cat_results, cv, data_note = run_catalogue(args.data, args.folds)
        print(catalogue_table(cat_results))
        print(data_note)
        print(json.dumps({"core": core, "results": [asdict(r) for r in cat_results],
                          "cross_validation": cv}, ensure_ascii=False, indent=2))
        if not args.no_record:
            command = "python benchmarks/classify.py " + shlex.join(
                argv if argv is not None else sys.argv[1:])
            record_catalogue(args.results, command.strip(), cat_results, cv, data_note, core)
        return 0
    split = load_split(args.data)
    results: list[Result] = []
    notes: list[str] = []
    for bench in (bench_project, bench_tfidf_svc, bench_fasttext):
        print(f"running {bench.__name__} …", file=sys.stderr, flush=True)
        outcome = bench(split)
        if isinstance(outcome, str):
            notes.append(outcome)
            print(outcome, file=sys.stderr)
        else:
            results.append(outcome)
    print(table(results))
    for note in notes:
        print(f"- {note}")
    print(json.dumps({"core": core, "n_train": len(split.train_texts),
                      "n_test": len(split.test_texts), "results": [asdict(r) for r in results],
                      "notes": notes}, ensure_ascii=False, indent=2))
    if not args.no_record:
        command = "python benchmarks/classify.py " + shlex.join(argv if argv is not None
                                                                else sys.argv[1:])
        record(args.results, command.strip(), split, results, notes, core)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
