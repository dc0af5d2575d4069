"""Triage speed of the current model (var/models), one message at a time, on the held-out real
messages (training.labels.split): scope, topic, urgency and the item ranking, CPU time.

    taskset -c 0 .venv/bin/python benchmarks/triage_speed.py [--model DIR]

`--model DIR`: a saved model directory instead of var/models' current one.

The baseline is issue 17's target, 1,000 messages/s one by one on one core; benchmarks/
classify.py --catalogue measures the same beside the seed-only model and TF-IDF + LinearSVC
(it trains them first: minutes).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import json
import time

from nlp.classifier import TextClassifier
from nlp.model_store import ModelStore
from training.labels import find_real_data, read_labelled, split

TARGET = 1000
ROOT = Path(__file__).resolve().parents[1]
args = sys.argv[1:]
chosen = Path(args[args.index("--model") + 1]) if "--model" in args else None
model = TextClassifier.load(chosen or ModelStore(ROOT / "var/models").current_dir())
_, held = split(read_labelled(find_real_data()))
texts = [r.text for r in held]
for text in texts[-30:]:  # warm up
    model.triage(text)
runs = []
for _ in range(3):
    started = time.process_time()
    for text in texts:
        model.triage(text)
    runs.append(len(texts) / (time.process_time() - started))
print(json.dumps({"messages": len(texts), "msgs_per_s_cpu": [round(r, 1) for r in runs],
                  "target": TARGET, "meets_target": min(runs) >= TARGET}))
