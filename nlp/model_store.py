"""Model versions on disk: <model_dir>/<version>/ plus a CURRENT file naming the one in use.

Servers read CURRENT to notice a new model without a restart; `gridbot model use` rolls back.
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path

from nlp.classifier import MODEL_FILE, TextClassifier

CURRENT = "CURRENT"
_VERSION = re.compile(r"^[A-Za-z0-9_.-]+$")


class ModelStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def versions(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / MODEL_FILE).exists())

    def current(self) -> str | None:
        try:
            name = (self.root / CURRENT).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name if name in self.versions() else None

    def current_dir(self) -> Path | None:
        name = self.current()
        return self.root / name if name else None

    def new_version_dir(self, tag: str = "") -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        name = f"{stamp}-{tag}" if tag else stamp
        return self.root / name

    def use(self, version: str) -> None:
        if not _VERSION.match(version) or version not in self.versions():
            raise ValueError(f"no model version '{version}' in {self.root}")
        tmp = self.root / f".{CURRENT}.{os.getpid()}"
        tmp.write_text(version + "\n", encoding="utf-8")
        os.replace(tmp, self.root / CURRENT)  # atomic: readers never see half a name

    def stamp(self) -> float:
        """Changes whenever CURRENT is replaced: cheap to poll from every server process."""
        try:
            return (self.root / CURRENT).stat().st_mtime_ns
        except FileNotFoundError:
            return 0.0


class ModelHolder:
    """The model a server process uses, swapped when CURRENT changes (checked every few s)."""

    def __init__(self, store: ModelStore, threshold: float = -1.0, check_every_s: float = 5.0,
                 max_chars: int = 2000) -> None:
        self.store = store
        self.threshold = threshold
        self.check_every_s = check_every_s
        self.max_chars = max_chars
        self._model: TextClassifier | None = None
        self._stamp: float = -1.0
        self._checked = 0.0

    @property
    def version(self) -> str | None:
        return self.store.current()

    def get(self) -> TextClassifier:
        now = time.monotonic()
        if self._model is None or now - self._checked >= self.check_every_s:
            self._checked = now
            stamp = self.store.stamp()
            if stamp != self._stamp or self._model is None:
                self._model = self._load()
                self._stamp = stamp
        return self._model

    def _load(self) -> TextClassifier:
        directory = self.store.current_dir()
        if directory is None:
            raise FileNotFoundError(
                f"no trained model in {self.store.root}; run `gridbot train` (./run demo does)"
            )
        model = TextClassifier.load(directory)
        if self.threshold >= 0:
            model.threshold = self.threshold
        model.max_chars = self.max_chars
        model.warm()
        return model
