"""How well a model does on labelled texts, and the report files `gridbot train` writes."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from nlp.classifier import TextClassifier

REPORT_JSON = "report.json"
CONFUSION_CSV = "confusion_matrix.csv"
CONFUSION_PNG = "confusion_matrix.png"


def top_k_accuracy(probs: np.ndarray, labels: list[str], truth: list[str], k: int = 3) -> float:
    """Share of texts whose right label is among the k highest scores."""
    index = {label: i for i, label in enumerate(labels)}
    top = np.argsort(-probs, axis=1)[:, :k]
    hits = [index.get(t, -1) in row for t, row in zip(truth, top, strict=True)]
    return float(np.mean(hits)) if hits else 0.0


def score_metrics(probs: np.ndarray, labels: list[str], truth: list[str]) -> dict[str, Any]:
    """accuracy, macro/weighted F1, top-3 accuracy, per-class precision/recall/F1/support.

    Labels the model does not know count as errors (and get a per-class row of their own)."""
    predicted = [labels[i] for i in probs.argmax(axis=1)]
    names = sorted(set(labels) | set(truth))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=names, zero_division=0
    )
    present = support > 0  # averages over the classes in the data, as sklearn's "macro" does
    per_class = {
        name: {"precision": round(float(p), 4), "recall": round(float(r), 4),
               "f1": round(float(f), 4), "support": int(s)}
        for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
        if s > 0
    }
    weights = support[present] / support[present].sum()
    return {
        "n": len(truth),
        "accuracy": round(float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)])),
                          4),
        "macro_f1": round(float(f1[present].mean()), 4),
        "weighted_f1": round(float((f1[present] * weights).sum()), 4),
        "top3_accuracy": round(top_k_accuracy(probs, labels, truth, 3), 4),
        "per_class": per_class,
    }


def evaluate(model: TextClassifier, texts: list[str], truth: list[str]) -> dict[str, Any]:
    """Metrics of `model` on raw `texts`, plus its speed (messages per second, this process)."""
    started = time.perf_counter()
    probs = model.scores(texts)
    seconds = time.perf_counter() - started
    metrics = score_metrics(probs, model.labels, truth)
    metrics["msgs_per_s"] = round(len(texts) / seconds, 1) if seconds > 0 else None
    return metrics


def write_confusion(directory: Path, truth: list[str], predicted: list[str]) -> list[str]:
    """confusion_matrix.csv (rows: true label, columns: predicted) and a PNG of it."""
    names = sorted(set(truth) | set(predicted))
    matrix = confusion_matrix(truth, predicted, labels=names)
    with open(directory / CONFUSION_CSV, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["true \\ predicted", *names])
        for name, row in zip(names, matrix, strict=True):
            writer.writerow([name, *map(int, row)])
    _plot_confusion(directory / CONFUSION_PNG, names, matrix)
    return names


def _cjk_font() -> str | None:
    """A font that has Chinese glyphs, if the machine has one (labels are Chinese)."""
    from matplotlib import font_manager

    wanted = ("Noto Sans CJK", "Source Han Sans", "WenQuanYi", "SimHei", "Microsoft YaHei",
              "PingFang", "Droid Sans Fallback", "AR PL")
    for font in font_manager.fontManager.ttflist:
        if font.name.startswith(wanted):
            return font.name
    return None


def _plot_confusion(path: Path, names: list[str], matrix: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers or CI
    import matplotlib.pyplot as plt

    font = _cjk_font()
    # Without a CJK font the glyphs would be empty boxes: number the classes instead and
    # let the CSV carry the names.
    ticks = names if font else [str(i) for i in range(len(names))]
    size = max(4.0, 0.45 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    try:
        if font:
            plt.rcParams["font.sans-serif"] = [font, *plt.rcParams["font.sans-serif"]]
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(len(names)), ticks, rotation=90, fontsize=8)
        ax.set_yticks(range(len(names)), ticks, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if len(names) <= 20:
            limit = matrix.max() / 2 if matrix.size else 0
            for (i, j), count in np.ndenumerate(matrix):
                if count:
                    ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                            color="white" if count > limit else "black")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def write_report(directory: Path, report: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / REPORT_JSON).write_text(
        json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8"
    )
