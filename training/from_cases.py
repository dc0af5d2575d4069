"""Retrain the catalogue model on the seed corpus plus examples confirmed by people
(hotline staff confirming or correcting a suggestion; table `training_examples`)."""

from __future__ import annotations

import csv
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import select

from bot.catalogue import Catalogue
from bot.models import TrainingExample
from bot.storage import Database
from nlp.classifier import TextClassifier
from training.catalogue_model import ValidationReport, train_catalogue_model

CONFIRMED_FILE = "zz_confirmed_examples.csv"


async def confirmed_examples(db: Database) -> list[tuple[str, str]]:
    """(item_code, text) of every stored example, oldest first."""
    async with db.session() as session:
        rows = await session.execute(
            select(TrainingExample.item_code, TrainingExample.text).order_by(TrainingExample.id)
        )
        return [(code, text) for code, text in rows.all()]


def train_with_examples(
    seed_corpus: Path,
    catalogue: Catalogue,
    extra_words: set[str],
    examples: list[tuple[str, str]],
) -> tuple[TextClassifier, ValidationReport, int]:
    """The catalogue model trained on the seed corpus and `examples`; returns how many
    examples were used (codes no longer in the catalogue are left out)."""
    usable = [(code, text.strip()) for code, text in examples
              if code in catalogue and text.strip()]
    with tempfile.TemporaryDirectory(prefix="gridbot-corpus-") as tmp:
        corpus = Path(tmp)
        # The corpus reader takes a folder of code,text files: the seed files plus one more.
        for path in sorted(seed_corpus.glob("*.csv")):
            shutil.copy(path, corpus / path.name)
        with open(corpus / CONFIRMED_FILE, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["code", "text"])
            writer.writerows(usable)
        model, report = train_catalogue_model(corpus, catalogue, extra_words)
    model.card["confirmed_examples"] = len(usable)
    return model, report, len(usable)
