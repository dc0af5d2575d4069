"""Model cards: what a model was trained on, how, with what, and how well it did."""

from __future__ import annotations

import hashlib
import platform
from collections import Counter
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any


def data_hash(texts: list[str], labels: list[str]) -> str:
    digest = hashlib.sha256()
    for text, label in zip(texts, labels, strict=True):
        digest.update(f"{label}\t{text}\n".encode())
    return digest.hexdigest()


def model_card(
    *,
    kind: str,
    texts: list[str],
    labels: list[str],
    params: dict[str, Any],
    metrics: dict[str, Any],
    train_seconds: float,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_sha256": data_hash(texts, labels),
        "n_examples": len(texts),
        "labels": dict(sorted(Counter(labels).items())),
        "params": params,
        "metrics": metrics,
        "train_seconds": round(train_seconds, 2),
        "versions": {
            "python": platform.python_version(),
            **{p: version(p) for p in ("scikit-learn", "jieba", "numpy", "scipy")},
        },
    }
