"""Scope before item: every text gets a scope, a topic and department when it is not a grid
matter, an urgency, and ranked catalogue items.

- `catalogue`: a grid / city-management matter → the item model's suggestions.
- `department`: a real problem that is not a grid matter → a topic (one of the 7 board
  topics) and the department the topic maps to (config `[triage.departments]`).
- `question`: a request for information → a topic and where to ask.
- `emergency`: danger now (nlp.urgency's rules) → 110 / 119 / 120 first; the item
  suggestions still come, so a city matter can be filed as urgent.

The parts (scope model, its cut, topic router, item facts) travel inside the item model's
pickle (`TextClassifier.parts`), so the ModelStore / ModelHolder versioning and hot reload
work unchanged; a model without parts (seed-only, or older) triages by the rules alone:
emergency or catalogue.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nlp.classifier import softmax
from nlp.message_text import clean_fast, strip_urls_fast
from nlp.topics import DEFAULT_DEPARTMENTS
from nlp.urgency import Danger, hotlines, read_danger

if TYPE_CHECKING:
    from nlp.classifier import LinearTfidfScorer, Suggestion, TextClassifier

SCOPES = ("catalogue", "department", "question", "emergency")
TOP_K = 3


@dataclass(frozen=True)
class ItemFacts:
    name: str
    big_class: str
    urgent: bool


@dataclass
class TriageParts:
    """What the item model needs besides itself to triage.

    `scope`: a classifier over catalogue / department / question (None: rules only);
    `catalogue_cut`: its catalogue probability at or above which the text stays a grid
    matter (chosen by cross-validation on the training part so that grid matters keep
    their scope); `topic`: the 7-topic router (None: no topic); `topic_threshold`: topic
    confidence at or above which a department / question answer counts as sure;
    `items`: code → name, big class, urgent flag (from the catalogue the model was trained
    with); `departments`: topic → department at training time (config overrides it)."""

    scope: TextClassifier | None = None
    catalogue_cut: float = 0.5
    short_cut: float | None = None  # the cut for texts shorter than short_chars (chat)
    short_chars: int = 40
    topic: TextClassifier | None = None
    topic_threshold: float = 1.01
    items: dict[str, ItemFacts] = field(default_factory=dict)
    departments: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_DEPARTMENTS))
    # The scope decision for texts of short_chars or more: a logistic regression over
    # stack_features (the scope model's odds and the item model's confidence: a letter the
    # item model recognises as one item is a grid matter more often), weights then intercept;
    # catalogue when its probability is ≥ stack_cut. None: the scope model's cut alone.
    stack: tuple[float, ...] | None = None
    stack_cut: float = 0.5
    # The detailed scope model: one class per catalogue item and per scope:topic for the
    # non-grid scopes ("department:教育文体"); its catalogue mass against each non-grid
    # scope's is two more stack features. Fine classes separate what three coarse ones
    # blur: a parking-fee letter to a property company (G0202) looks like a developer's
    # parking-space sale (department 城乡建设) to the coarse model. None: not used.
    scope_detail: TextClassifier | None = None

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Models saved before the stacked scope decision or the detailed scope model load
        # without them.
        state.setdefault("stack", None)
        state.setdefault("stack_cut", 0.5)
        state.setdefault("scope_detail", None)
        self.__dict__.update(state)


@dataclass
class TriageResult:
    scope: str
    topic: str | None
    department: str | None
    urgent: bool
    sure: bool
    suggestions: list[Suggestion]
    danger: Danger
    scope_confidence: float = 1.0
    topic_confidence: float | None = None

    def suggestion_dicts(self, items: dict[str, ItemFacts]) -> list[dict[str, Any]]:
        out = []
        for s in self.suggestions:
            facts = items.get(s.code)
            out.append({"code": s.code, "name": facts.name if facts else s.code,
                        "confidence": round(s.confidence, 4)})
        return out

    def as_dict(self, items: dict[str, ItemFacts]) -> dict[str, Any]:
        """The answer `gridbot suggest --json` prints and POST /api/v1/suggest includes."""
        return {
            "scope": self.scope,
            "scope_confidence": round(self.scope_confidence, 4),
            "topic": self.topic,
            "topic_confidence": (None if self.topic_confidence is None
                                 else round(self.topic_confidence, 4)),
            "department": self.department,
            "urgent": self.urgent,
            "danger": list(self.danger.urgent),
            "hotlines": hotlines(self.danger),
            "sure": self.sure,
            "suggestions": self.suggestion_dicts(items),
        }


def item_facts(catalogue: Any) -> dict[str, ItemFacts]:
    """code → ItemFacts for a bot.catalogue.Catalogue."""
    return {i.code: ItemFacts(i.name, i.big_class, bool(i.urgent)) for i in catalogue.items}


def parts_of(model: TextClassifier) -> TriageParts:
    parts = getattr(model, "parts", None)
    return parts if isinstance(parts, TriageParts) else TriageParts()


# Short texts that ask for information (chat: 「请问办理居住证需要带什么材料」). Letters are
# left to the scope model; this only decides question vs department for short texts that
# the scope model already sent away from catalogue.
_ASKS = re.compile(r"请问|咨询|想问|想了解|怎么办理|如何办理|怎样办理|怎么申请|如何申请|"
                   r"需要.{0,4}(什么|哪些)|在哪里?办|去哪里?办|什么时候|何时|能否|是否可以|"
                   r"可不可以|吗[？?]?$")


def asks_for_information(text: str) -> bool:
    return bool(_ASKS.search(text))


class JointScorer:
    """The decision scores of every model that shares the item model's fitted features, in
    one product: their coefficient matrices side by side, so a text's feature rows are
    gathered once instead of once per model (~70 µs instead of ~180 µs of a ~1 ms triage,
    one core). Built once per loaded model (TextClassifier.warm), never pickled."""

    def __init__(self, model: TextClassifier, scorer: LinearTfidfScorer,
                 members: list[tuple[TextClassifier, LinearTfidfScorer]]) -> None:
        self.columns: list[tuple[TextClassifier, slice]] = []
        start = 0
        for clf, member in members:
            width = member.coef_t.shape[1]
            self.columns.append((clf, slice(start, start + width)))
            start += width
        dtype = np.result_type(*(m.coef_t.dtype for _, m in members))
        # A model without parts scores alone: its own matrix, not a ~0.3 s copy of it.
        matrices = [m.coef_t for _, m in members]
        self.coef_t = np.ascontiguousarray(
            matrices[0] if len(matrices) == 1 else np.hstack(matrices), dtype=dtype)
        self.intercept = np.concatenate([m.intercept for _, m in members])
        self.scorer = scorer

    @classmethod
    def of(cls, model: TextClassifier) -> JointScorer | None:
        """The model's joint scorer (built on first use), or None when it has no fast
        scorer (then each model scores on its own)."""
        joint: JointScorer | None = model.__dict__.get("_joint")
        if joint is None:
            scorer = model._scorer()
            if scorer is None:
                return None
            union = model.pipeline.steps[0][1]
            parts = parts_of(model)
            members = [(model, scorer)]
            for clf in (parts.scope, parts.scope_detail, parts.topic):
                member = clf._scorer() if clf is not None else None
                if (clf is not None and member is not None
                        and clf.pipeline.steps[0][1] is union and clf.focus == model.focus
                        and clf.max_chars >= model.max_chars):
                    members.append((clf, member))
            joint = cls(model, scorer, members)
            model.__dict__["_joint"] = joint
        return joint

    def score(self, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        return self.intercept + values.astype(self.coef_t.dtype, copy=False) @ self.coef_t[idx]

    def slice_of(self, clf: TextClassifier) -> slice | None:
        return next((cols for member, cols in self.columns if member is clf), None)


class _Scores:
    """Class probabilities of the item, scope and topic models for one text, analysing the
    text once and scoring it once when the models share their fitted features (the shipped
    models do)."""

    def __init__(self, model: TextClassifier, text: str, cleaned: str) -> None:
        self.model = model
        self.text = text
        self.prepared = cleaned
        if model.focus is not None:  # as TextClassifier.prepare, without cleaning twice
            head, body = model.focus
            self.prepared = f"{cleaned[:head]} {cleaned[:body]}"
        self.joint = JointScorer.of(model)
        self.decisions: np.ndarray | None = None
        if self.joint is not None:
            self.decisions = self.joint.score(*self.joint.scorer.features(self.prepared))

    def probs(self, clf: TextClassifier) -> np.ndarray:
        cols = self.joint.slice_of(clf) if self.joint is not None else None
        if cols is not None and self.decisions is not None:
            return softmax(self.decisions[cols], clf.temperature)[0]
        return clf.scores([self.text])[0]


DETAIL_SEP = ":"  # a detailed scope class: "department:教育文体"; an item code has none


def detail_class(scope: str, item: str, topic: str) -> str:
    """The detailed scope model's class of a labelled row."""
    return (item or scope) if scope == "catalogue" else f"{scope}{DETAIL_SEP}{topic}"


@functools.lru_cache(maxsize=16)
def _scope_columns(labels: tuple[str, ...]) -> dict[str, np.ndarray]:
    """scope → the columns of the detailed scope model's classes that belong to it."""
    columns: dict[str, list[int]] = {"catalogue": [], "department": [], "question": []}
    for j, label in enumerate(labels):
        scope = label.split(DETAIL_SEP, 1)[0] if DETAIL_SEP in label else "catalogue"
        columns.setdefault(scope, []).append(j)
    return {scope: np.array(cols, dtype=np.intp) for scope, cols in columns.items()}


def scope_mass(labels: list[str], probs: np.ndarray) -> dict[str, float]:
    """The detailed scope model's probabilities summed per scope."""
    if len(labels) != len(probs):
        raise ValueError(f"{len(labels)} labels for {len(probs)} probabilities")
    return {scope: float(probs[cols].sum())
            for scope, cols in _scope_columns(tuple(labels)).items()}


def _log(p: float) -> float:
    return float(np.log(max(p, 1e-12)))


def stack_features(scope_probs: dict[str, float], item_probs: np.ndarray,
                   detail: dict[str, float] | None = None) -> list[float]:
    """What the stacked scope decision reads: log odds of catalogue against department and
    against question (scope model), the item model's top probability and its lead over the
    second, and — with `detail` (scope_mass of the detailed scope model) — its log odds of
    catalogue against department and against question. The same function builds the
    training rows (training.triage_model)."""
    cat = _log(scope_probs.get("catalogue", 1.0))
    top2 = np.partition(item_probs, -2)[-2:] if len(item_probs) > 1 else np.r_[0.0, 1.0]
    first, second = float(top2.max()), float(top2.min())
    out = [cat - _log(scope_probs.get("department", 0.0)),
           cat - _log(scope_probs.get("question", 0.0)), first, first - second]
    if detail is not None:
        fine = _log(detail.get("catalogue", 1.0))
        out += [fine - _log(detail.get("department", 0.0)),
                fine - _log(detail.get("question", 0.0))]
    return out


def stack_probability(stack: tuple[float, ...], features: list[float]) -> float:
    z = stack[-1] + sum(w * x for w, x in zip(stack[:-1], features, strict=True))
    return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


def _ranked(labels: list[str], probs: np.ndarray, k: int) -> list[Suggestion]:
    from nlp.classifier import Suggestion

    top = np.argsort(-probs)[:k]
    return [Suggestion(str(labels[j]), float(probs[j])) for j in top]


def triage(model: TextClassifier, text: str, departments: dict[str, str] | None = None,
           items: dict[str, ItemFacts] | None = None, k: int = TOP_K) -> TriageResult:
    """Scope, topic, department, urgency, sureness and the top-k items of one text.

    `departments` (config) overrides the model's topic → department map; `items` (from the
    running catalogue) overrides the facts saved with the model."""
    parts = parts_of(model)
    facts = items if items is not None else parts.items
    # Cut before cleaning (cleaning only shortens): a 20,000-character letter costs no more
    # than one of twice the model's limit.
    # clean_fast / strip_urls_fast: exactly clean / strip_urls, at a fraction of the cost.
    cleaned = strip_urls_fast(clean_fast(text[: model.max_chars * 2]))[: model.max_chars]
    danger = read_danger(cleaned)
    scores = _Scores(model, text, cleaned)
    item_probs = scores.probs(model)
    suggestions = _ranked(model.labels, item_probs, k)
    scope, scope_conf = "catalogue", 1.0
    if parts.scope is not None:
        probs = dict(zip(parts.scope.labels, scores.probs(parts.scope), strict=True))
        p_cat = float(probs.get("catalogue", 1.0))
        cut = parts.catalogue_cut
        if len(cleaned) < parts.short_chars:
            if parts.short_cut is not None:
                cut = parts.short_cut
        elif parts.stack is not None:
            detail = (None if parts.scope_detail is None else
                      scope_mass(parts.scope_detail.labels, scores.probs(parts.scope_detail)))
            p_cat = stack_probability(parts.stack, stack_features(probs, item_probs, detail))
            cut = parts.stack_cut
        if p_cat >= cut:
            scope, scope_conf = "catalogue", p_cat
        else:
            dept, question = float(probs.get("department", 0.0)), float(probs.get("question", 0.0))
            scope = "question" if question > dept else "department"
            if len(cleaned) < parts.short_chars and asks_for_information(cleaned):
                scope = "question"  # a short text that asks how / when / what to bring
            scope_conf = max(dept, question) / max(dept + question, 1e-9)
    if danger.is_emergency:
        scope = "emergency"
    topic = department = None
    topic_conf: float | None = None
    if scope in ("department", "question") and parts.topic is not None:
        best = _ranked(parts.topic.labels, scores.probs(parts.topic), 1)[0]
        topic, topic_conf = best.code, best.confidence
        department = (departments or parts.departments).get(topic)
    if scope in ("catalogue", "emergency"):
        sure = scope == "catalogue" and model.is_sure(suggestions)
    else:
        sure = topic_conf is not None and topic_conf >= parts.topic_threshold
    top = facts.get(suggestions[0].code) if suggestions else None
    item_urgent = scope in ("catalogue", "emergency") and sure and bool(top and top.urgent)
    return TriageResult(scope, topic, department, danger.is_urgent or item_urgent, sure,
                        suggestions, danger, scope_conf, topic_conf)
