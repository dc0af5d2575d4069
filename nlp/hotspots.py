"""Hot spots (热点): many messages about one place and one problem within a time window.

Pure algorithm, no database: the CLI runs it on a message file, bot/hotspots.py on recent
cases. Steps:

1. place names per message — the gazetteer's exact names, estate / road / village /
   school names found by their suffixes (丽发新城, 伊景园滨河苑, 春华镇金鼎村 …), jieba's
   `ns` tags on the head of messages that name nothing else, and places the caller already
   knows (a case's grid);
2. problem similarity — cosine of TF-IDF over jieba words and over character bigrams, with
   the place names taken out (so "same place" and "same problem" are measured apart), plus
   the classifier's item when one is given;
3. average-linkage clustering on a similarity that needs the same place (or, with no place
   on one side, a near-identical text), so a spot's messages keep that similarity *on
   average* and a chain of loosely related messages cannot grow one giant spot;
4. the sliding window: a spot's messages sorted by time split wherever no message came for
   `window_days`;
5. a heat index whose parts are kept (messages, reporters, support, recency, growth) and a
   one-line description from the spot's most central message.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from nlp.char_ngrams import CharNgramCounter
from nlp.message_text import compact_all
from nlp.normalize import clean
from nlp.segment import tokenize

# Administrative parts (A市, A2区, K3县, 西地省, 禅城区 …) say where in the city, not which
# place: they are cut before names are looked for, and never make a place by themselves.
_ADMIN = re.compile(
    r"[A-Z][0-9]{0,2}(?:市|区|县)|[\u4e00-\u9fff]{2}省"
    r"|[\u4e00-\u9fff]{2}(?:市|县)(?=[\u4e00-\u9fff]{2}区)"
    r"|[\u4e00-\u9fff]{2}区(?=[\u4e00-\u9fff]{2,3}(?:街道|镇))"
)
# A named place ends with one of these; the name before it is 2–8 characters.
_SUFFIXES = (
    "小区|新城|花园|家园|公馆|公寓|山庄|广场|大厦|商城|市场|新村|社区|街道|学院|大学|中学|"
    "小学|学校|幼儿园|医院|工业园|产业园|步行街|大道|大街|"
    "苑|园|府|庭|湾|邸|城|村|镇|乡|路|街|巷|滩"
)
_NAME = re.compile(
    rf"(?P<name>[\u4e00-\u9fffA-Za-z0-9]{{2,8}}?(?:{_SUFFIXES}))(?:小区|[一二三四五六七八九十\d]+期)?"
)
# Fragments are cut at punctuation and at words that cannot be inside a name.
_SPLIT = re.compile(
    r"[^\u4e00-\u9fffA-Za-z0-9]+|的|在|与|及|对|是|了|有|被|把|给|向|从|到|等|"
    r"附近|旁边|周边|对面|门口|配套|关于|反映|投诉|举报|咨询|请问|建议|希望|要求|请求|强烈|紧急|"
    r"市民|业主|居民|我们|我|该|这个|那个|这|那|此|每|某|整个|所在|位于|地处|就是"
)
# Names that are a kind of place, not a place (我们小区, 农村, 城市 …).
_GENERIC_PREFIX = re.compile(
    r"^(?:[一二三四五六七八九十两几多个\d]+|新建|配套|老旧|周围|其他|其它|其中|农村|城市|城乡|县城|"
    r"城区|市区|全市|全省|全国|乡镇|乡村|村民|村级|村里|街道|道路|马路|公路|高速|小区|社区|"
    r"学校|医院|公立|私立|民办|公办|中小|大中|高等|职业|培训|普通|各级|相关|当地|本地|外地|"
    r"异地|城管|物业|开发|建设|省级|市级|区级|县级|国家|中国|政府|公共|人民|一条|这条|那条|"
    r"进城|出城|返乡|下乡|回乡|老家|家乡|进村|入村|到村|全村|全镇|农家|田园|公园|校园|家园|"
    r"花园|庄园|乐园|菜园|果园|墓园|陵园|动物园|工业|产业|科技|文化|体育|商业|经济开发|美丽)"
)
_GENERIC_END = re.compile(
    r"(?:政府|之路|道路|马路|线路|铁路|公路|出路|通路|水泥路|上班路|小路|大路|无路|文明城|城中村|"
    r"后花园|配套小学|全体村|各村|组村|个村|多村)$"
)
_GENERIC = frozenset({
    "花园", "家园", "公园", "校园", "乐园", "商城", "新城", "老城", "县城", "进城", "全城", "满城",
    "小学", "中学", "大学", "学院", "医院", "市场", "广场", "社区", "街道", "小区", "新村",
    "农村", "城乡", "马路", "公路", "道路", "一路", "沿路", "出路", "思路", "线路", "门路",
    "上街", "下乡", "幼儿园", "学校", "城镇", "乡镇", "乡村", "老街", "大街", "大道", "步行街",
    "工业园",
})
_BROAD = re.compile(r"(?:街道|镇|乡)$")
HEAD_CHARS = 60  # the title and first words: where a message names its place and problem
GRAM_CHARS = 400  # character n-grams: enough of a letter to know its problem, fast to compare
POS_CHARS = 30  # jieba POS tagging is slow (~5 ms for this much): only the head, only if needed
# A term in this many messages may still be one hot spot's own word (搅拌站 in its 50
# letters): "too common" is a share of the messages only above it.
COMMON_FLOOR = 60


@dataclass(frozen=True)
class HotMessage:
    """One message or case as hot-spot discovery sees it."""

    id: str
    text: str
    time: datetime
    support: int = 0  # likes, follow-ups, 我也遇到: people who agree without writing
    reporter: str | None = None  # None: unknown (distinct reporters are then not counted)
    places: tuple[str, ...] = ()  # places the caller already knows: a case's grid, its address
    item: str | None = None  # the classifier's or the case's catalogue item


@dataclass(frozen=True)
class HotspotSettings:
    window_days: float = 60.0  # a spot ends where no message came for this long
    min_messages: int = 3
    min_reporters: int = 2  # one person writing five times is not a hot spot
    same_place: float = 0.10  # average problem similarity needed inside one place
    no_place: float = 0.30  # … and for messages whose place is unknown on one side
    item_weight: float = 0.25  # same item: text similarity × 1.25; different items: × 0.75
    half_life_days: float = 30.0  # recency: points halve every this many days without news
    now: datetime | None = None  # the moment heat is measured at; default the newest message
    pos_tags: bool = True  # jieba `ns` tags on the head of messages naming no place


@dataclass
class HotSpot:
    heat: float
    heat_parts: dict[str, dict[str, float | int | None]]
    description: str
    place: str
    keywords: list[str]
    first: datetime
    last: datetime
    members: list[str]  # message ids, oldest first
    item: str | None = None
    indices: list[int] = field(default_factory=list, repr=False)

    def as_dict(self, rank: int) -> dict[str, Any]:
        return {
            "rank": rank, "heat": round(self.heat, 2), "heat_parts": self.heat_parts,
            "description": self.description, "place": self.place, "keywords": self.keywords,
            "item": self.item, "messages": len(self.members),
            "first": self.first.isoformat(sep=" ", timespec="seconds"),
            "last": self.last.isoformat(sep=" ", timespec="seconds"),
            "members": self.members,
        }


# ---------------------------------------------------------------- places


_TAIL = re.compile(r"(?:小区|[一二三四五六七八九十\d]+期)$")
# A suffix followed by one of these is the start of another word (城市, 村民, 园区 …).
_CONTINUES = {"城": "市乡管区镇建际中", "村": "民委级里庄", "园": "区林艺丁", "镇": "政府",
              "路": "灯段面况线费", "街": "头坊"}


def _canonical(name: str) -> str:
    """丽发新城小区 → 丽发新城, 佳兆业水新都一期 → 佳兆业水新都 (not 北辰小区 → 北辰)."""
    while (shorter := _TAIL.sub("", name)) != name and len(shorter) >= 3:
        name = shorter
    return name


_ENDING = re.compile(rf"(?:{_SUFFIXES})$")
_LEADING_TAGS = {"v", "vn", "t", "m", "p", "d", "c", "r", "u", "q"}  # not adjectives: 辉煌国际城
_PROPER_TAGS = {"ns", "nr", "nz", "nt"}


def _common(word: str, floor: int) -> bool:
    """A frequent dictionary word that is not a proper name (导致, 目前, 住宅 …)."""
    import jieba.posseg  # the tag table; jieba itself is already loaded by tokenize

    freq = jieba.dt.FREQ.get(word) or 0
    tag = jieba.posseg.dt.word_tag_tab.get(word, "")
    return freq >= floor and tag not in _PROPER_TAGS


@lru_cache(maxsize=65536)
def _trim(name: str) -> str:
    """Drop leading common words the regex swept in (靠近黄兴路 → 黄兴路, 导致小区 → 小区);
    "" when what is left is a kind of place (住宅小区, 部分村)."""
    import jieba.posseg

    words = tokenize(name)
    # Single characters stay: unknown names (星沙) are cut into them.
    while (len(words) > 1 and len(words[0]) > 1 and _common(words[0], 300)
           and jieba.posseg.dt.word_tag_tab.get(words[0], "") in _LEADING_TAGS):
        words = words[1:]
    name = "".join(words)
    if name[0] in "和与及同" and len(name) > 3:  # 和东四路 (but 和平路 stays)
        name = name[1:]
    ending = _ENDING.search(name)
    stem = name[:ending.start()] if ending else name
    if len(name) < 3 or name in _GENERIC or (stem and _common(stem, 500)):
        return ""
    return name


def names_in(text: str) -> list[str]:
    """Place names a message spells out, in order: '反映A市A2区丽发新城小区附近搅拌站噪音' →
    ['丽发新城']; adjacent names are also kept joined (伊景园滨河苑 → 伊景园, 滨河苑 and
    伊景园滨河苑), so a message naming the part meets one naming the whole."""
    found: list[str] = []
    for fragment in _SPLIT.split(_ADMIN.sub("|", text)):
        if len(fragment) < 3:
            continue
        previous_end, run = -1, ""
        for match in _NAME.finditer(fragment):
            name = _trim(_canonical(match["name"]))
            after = fragment[match.end("name"):match.end("name") + 1]
            if not name or (after and after in _CONTINUES.get(name[-1], "")):
                previous_end, run = -1, ""
                continue
            if (not name or name in _GENERIC or _GENERIC_PREFIX.match(name)
                    or _GENERIC_END.search(name) or len(name) < 3):
                previous_end, run = -1, ""
                continue
            found.append(name)
            if match.start() == previous_end and run and run != name:
                found.append(run + name)  # two names in a row: 伊景园 + 滨河苑, 开元路 + 东四路
            run = name
            previous_end = match.end()
    return list(dict.fromkeys(found))


def _pos_names(text: str) -> list[str]:
    from nlp.place_tags import place_names  # jieba.posseg loads its model on first use

    return [n for n in (_canonical(p) for p in place_names(text[:POS_CHARS]))
            if len(n) >= 3 and n not in _GENERIC and not _ADMIN.fullmatch(n)]


def message_places(message: HotMessage, gazetteer: Any = None, pos_tags: bool = True) -> list[str]:
    """The message's place names: known ones first, then the gazetteer's, then the text's."""
    text = message.text
    names = [p for p in message.places if p]
    if gazetteer is not None:
        names += [m.matched for m in gazetteer.find(text) if m.score >= 100.0]
    spelled = names_in(text)
    names += spelled
    if not spelled and pos_tags:
        names += _pos_names(text)
    return list(dict.fromkeys(names))


def _place_matrix(places: list[list[str]]) -> sp.csr_matrix:
    """Message × place-token incidence. A name's tokens are itself and every other name seen
    that it contains (伊景园滨河苑 → 伊景园, 滨河苑), so part and whole share a token."""
    vocab = {name for names in places for name in names}
    index = {name: i for i, name in enumerate(sorted(vocab))}
    rows: list[int] = []
    cols: list[int] = []
    for r, names in enumerate(places):
        tokens: set[int] = set()
        for name in names:
            # Every substring of 3+ characters that is itself a name somewhere.
            tokens.update(index[name[a:b]] for a in range(len(name) - 2)
                          for b in range(a + 3, len(name) + 1) if name[a:b] in index)
        rows += [r] * len(tokens)
        cols += sorted(tokens)
    data = np.ones(len(rows), dtype=np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(len(places), max(len(index), 1)))


# ---------------------------------------------------------------- problems


# Words every letter uses whatever its problem: with few messages (a week of one district's
# cases) IDF cannot learn that they say nothing, so they go before comparing.
_BOILERPLATE = re.compile(
    "小区|社区|居民|业主|市民|群众|百姓|老百姓|严重|影响|问题|情况|投诉|反映|反应|举报|咨询|"
    "请求|恳请|希望|要求|建议|强烈|解决|处理|部门|相关|有关|政府|领导|您好|你好|尊敬的|"
    "附近|旁边|周边|门口|一直|已经|现在|目前|非常|十分|真的|我们|我家|本人|生活|"
    "什么时候|何时|为什么|怎么|是否|能否|可以|谢谢|感谢"
)


def _problem_text(text: str, places: list[str]) -> str:
    """The text without its places, administrative parts and boilerplate."""
    for name in sorted(places, key=len, reverse=True):
        text = text.replace(name, " ")
    return _BOILERPLATE.sub(" ", _ADMIN.sub(" ", text))


def _words(text: str) -> list[str]:
    return [w for w in tokenize(text) if len(w) > 1 and not w.isdigit()]


def _gram_tfidf(texts: list[str], max_df: float = 0.05) -> sp.csr_matrix:
    """Sublinear TF-IDF of character 2–3-grams in at least two texts and at most `max_df` of
    them, L2-normalised; counted by the message model's hashing counter (fast on letters)."""
    counts = CharNgramCounter((2, 3), min_df=2, max_chars=GRAM_CHARS).fit(texts).transform(texts)
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    idf = np.log((1 + len(texts)) / (1 + df)) + 1.0
    idf[df > max(max_df * len(texts), COMMON_FLOOR)] = 0.0  # too common to tell problems apart
    counts.data = (1.0 + np.log(counts.data)) * idf[counts.indices].astype(np.float32)
    counts.eliminate_zeros()
    return normalize(counts).astype(np.float32)


def _similarity(texts: list[str]) -> tuple[np.ndarray, TfidfVectorizer, sp.csr_matrix]:
    """Cosine of word TF-IDF over each text's head (the title and first words, where the
    problem is named; jieba on whole letters would take most of the run time) averaged with
    the cosine of character 2–3-gram TF-IDF over the whole text, which catches the same
    complaint in other words (噪音/噪声扰民, 搅拌站/搅拌场)."""
    words = TfidfVectorizer(tokenizer=_words, lowercase=False, token_pattern=None,
                            sublinear_tf=True, min_df=2,
                            max_df=max(int(0.2 * len(texts)), COMMON_FLOOR))
    try:
        xw = words.fit_transform([t[:HEAD_CHARS] for t in texts]).astype(np.float32)
        xc = _gram_tfidf(compact_all(texts))
    except ValueError:  # too few texts for min_df: nothing is shared
        return np.eye(len(texts), dtype=np.float32), words, sp.csr_matrix((len(texts), 0))
    sim = (xw @ xw.T).toarray()
    sim += (xc @ xc.T).toarray()
    sim *= 0.5
    return sim, words, xw.tocsr()


# ---------------------------------------------------------------- clustering


def _combined(problem: np.ndarray, place: sp.csr_matrix, has_place: np.ndarray,
              items: Sequence[str | None], settings: HotspotSettings) -> np.ndarray:
    """Pairwise similarity of "same place and same problem", scaled so that the clustering
    cut is 0.5: same place needs problem ≥ `same_place`; two messages whose place is unknown
    on one side need ≥ `no_place`; two messages naming different places never join."""
    if any(items):
        # The item scales the text's similarity, never replaces it: two cases of one item in
        # one grid are not one hot spot unless their words agree too.
        codes = np.array([i or "" for i in items])
        known = (codes[:, None] != "") & (codes[None, :] != "")
        same = known & (codes[:, None] == codes[None, :])
        w = settings.item_weight
        problem = problem * np.where(same, 1 + w, np.where(known, 1 - w, 1.0)).astype(np.float32)
    shared = (place @ place.T).toarray() > 0
    located = has_place[:, None] & has_place[None, :]
    scale = np.where(shared, 0.5 / settings.same_place,
                     np.where(located, 0.0, 0.5 / settings.no_place)).astype(np.float32)
    return np.minimum(problem * scale, 1.0)


def _clusters(sim: np.ndarray) -> list[list[int]]:
    """Average-linkage groups whose members keep a mean similarity of at least 0.5; only
    messages with some neighbour above that take part (most messages are alone)."""
    np.fill_diagonal(sim, 0.0)
    active = np.flatnonzero((sim >= 0.5).any(axis=1))
    if len(active) < 2:
        return []
    sub = 1.0 - sim[np.ix_(active, active)].astype(np.float64)
    np.fill_diagonal(sub, 0.0)
    tree = linkage(squareform(sub, checks=False), method="average")
    labels = fcluster(tree, t=0.5, criterion="distance")
    groups: dict[int, list[int]] = {}
    for position, label in enumerate(labels):
        groups.setdefault(int(label), []).append(int(active[position]))
    return _merge([g for g in groups.values() if len(g) > 1], sim)


def _merge(groups: list[list[int]], sim: np.ndarray, floor: float = 0.35) -> list[list[int]]:
    """Join groups the cut left apart though they still agree on average (one estate's
    搅拌站 letters fall into two groups when half of them also complain of dust)."""
    if len(groups) < 2:
        return groups
    members = np.concatenate([np.array(g) for g in groups])
    owner = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    indicator = sp.csr_matrix((np.ones(len(members), np.float32), (owner, members)),
                              shape=(len(groups), sim.shape[0]))
    totals = np.asarray((indicator @ sim) @ indicator.T.toarray(), dtype=np.float64)
    sizes = np.array([len(g) for g in groups], dtype=np.float64)
    alive = list(range(len(groups)))
    while True:
        means = totals / np.outer(sizes, sizes)
        np.fill_diagonal(means, -1.0)
        keep = np.zeros(len(groups), bool)
        keep[alive] = True
        means[~keep, :] = -1.0
        means[:, ~keep] = -1.0
        a, b = np.unravel_index(int(means.argmax()), means.shape)
        if means[a, b] < floor:
            break
        # b joins a: sums of similarity add up, as sizes do.
        totals[a, :] += totals[b, :]
        totals[:, a] += totals[:, b]
        sizes[a] += sizes[b]
        groups[a] = groups[a] + groups[b]
        alive.remove(int(b))
    return [groups[i] for i in alive]


def _split_by_window(members: list[int], times: list[datetime],
                     window: timedelta) -> list[list[int]]:
    ordered = sorted(members, key=lambda i: times[i])
    runs: list[list[int]] = [[ordered[0]]]
    for i in ordered[1:]:
        if times[i] - times[runs[-1][-1]] > window:
            runs.append([])
        runs[-1].append(i)
    return runs


# ---------------------------------------------------------------- heat and description


def heat_of(members: Sequence[HotMessage], now: datetime,
            half_life_days: float = 30.0) -> tuple[float, dict[str, dict[str, float | int | None]]]:
    """The heat index and its parts. Counts enter as logarithms (the 50th message adds less
    than the 5th); recency halves every `half_life_days`; growth rewards a spot whose last
    fortnight (before `now`) brought more messages than the fortnight before."""
    # A letter posted again word for word is one voice, not two.
    n = len({re.sub(r"\s+", "", m.text) for m in members})
    reporters = {m.reporter for m in members if m.reporter}
    support = sum(max(m.support, 0) for m in members)
    last = max(m.time for m in members)
    age_days = max((now - last).total_seconds() / 86400, 0.0)
    fortnight = timedelta(days=14)
    recent = sum(1 for m in members if now - fortnight < m.time <= now)
    before = sum(1 for m in members if now - 2 * fortnight < m.time <= now - fortnight)
    parts: dict[str, dict[str, float | int | None]] = {
        "messages": {"value": n, "points": round(15 * math.log(n), 2)},
        "reporters": {"value": len(reporters) if reporters else None,
                      "points": round(10 * math.log(len(reporters)), 2) if reporters else 0.0},
        "support": {"value": support, "points": round(4 * math.log1p(support), 2)},
        "recency": {"value": round(age_days, 1),
                    "points": round(10 * 0.5 ** (age_days / half_life_days), 2)},
        "growth": {"value": recent - before,
                   "points": round(5 * math.log((1 + recent) / (1 + before)), 2)
                   if recent > before else 0.0},
    }
    return round(sum(float(p["points"] or 0) for p in parts.values()), 2), parts


def _clip(text: str, limit: int = 40) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _headline(text: str) -> str:
    """A message's first line (its title, when it has one) or first clause."""
    first = text.strip().split("\n", 1)[0]
    if len(first) > 40:
        first = re.split(r"[。！？!?；;，,]", first, maxsplit=1)[0]
    return _clip(first)


# ---------------------------------------------------------------- the whole


def find_hotspots(
    messages: Sequence[HotMessage],
    settings: HotspotSettings | None = None,
    gazetteer: Any = None,
    classify: Callable[[list[str]], list[str | None]] | None = None,
) -> list[HotSpot]:
    """Hot spots among `messages`, hottest first. `gazetteer`: an nlp.places.Gazetteer (its
    exact names count as places); `classify`: texts → catalogue item codes (the model)."""
    settings = settings or HotspotSettings()
    if not messages:
        return []
    texts = [clean(m.text) for m in messages]
    places = [message_places(HotMessage(m.id, t, m.time, places=m.places), gazetteer,
                             settings.pos_tags) for m, t in zip(messages, texts, strict=True)]
    items = [m.item for m in messages]
    if classify is not None and not any(items):
        items = classify(texts)
    problem, vectorizer, word_matrix = _similarity(
        [_problem_text(t, p) for t, p in zip(texts, places, strict=True)])
    has_place = np.array([bool(p) for p in places])
    sim = _combined(problem, _place_matrix(places), has_place, items, settings)
    times = [m.time for m in messages]
    window = timedelta(days=settings.window_days)
    now = settings.now or max(times)
    vocabulary = np.array(vectorizer.get_feature_names_out()) if word_matrix.shape[1] else None
    spots: list[HotSpot] = []
    for group in _clusters(sim.copy()):
        for run in _split_by_window(group, times, window):
            members = [messages[i] for i in run]
            known = {m.reporter for m in members if m.reporter}
            distinct = {re.sub(r"\s+", "", m.text) for m in members}
            if (len(distinct) < settings.min_messages
                    or (known and len(known) < settings.min_reporters)):
                continue
            heat, parts = heat_of(members, now, settings.half_life_days)
            spots.append(_describe(run, members, texts, places, items, sim, word_matrix,
                                   vocabulary, heat, parts))
    spots.sort(key=lambda s: (-s.heat, s.first))
    return spots


def _describe(run: list[int], members: list[HotMessage], texts: list[str],
              places: list[list[str]], items: Sequence[str | None], sim: np.ndarray,
              word_matrix: sp.csr_matrix, vocabulary: np.ndarray | None, heat: float,
              parts: dict[str, dict[str, float | int | None]]) -> HotSpot:
    block = sim[np.ix_(run, run)]
    central = run[int(block.sum(axis=1).argmax())]  # the message most like the others
    # Names in a message's head (its title) count twice: that is where a writer says where;
    # a street (街道) or town is broad, it counts half against the estate or road inside it.
    counts: dict[str, float] = {}
    for i in run:
        head = texts[i][:HEAD_CHARS]
        for name in places[i]:
            counts[name] = counts.get(name, 0.0) + (2.0 if name in head else 1.0) * (
                0.5 if _BROAD.search(name) else 1.0)
    place = ""
    if counts:
        # The longest of the names nearly as common as the commonest: 伊景园滨河苑, not 滨河苑.
        top = max(counts.values())
        place = max((n for n in counts if counts[n] >= 0.6 * top),
                    key=lambda n: (len(n), counts[n]))
    keywords: list[str] = []
    if vocabulary is not None:
        weights = np.asarray(word_matrix[run].sum(axis=0)).ravel()
        keywords = [str(vocabulary[k]) for k in weights.argsort()[::-1][:4] if weights[k] > 0]
    headline = _headline(members[run.index(central)].text)
    description = headline if not place or place in headline else f"{place}：{headline}"
    item_counts = Counter(items[i] for i in run if items[i])
    return HotSpot(
        heat=heat, heat_parts=parts, description=description, place=place, keywords=keywords,
        first=min(m.time for m in members), last=max(m.time for m in members),
        members=[m.id for m in members], item=item_counts.most_common(1)[0][0] if item_counts
        else None, indices=run,
    )


def as_messages(rows: Iterable[tuple[str, str, datetime, int, str | None]]) -> list[HotMessage]:
    """(id, text, time, support, reporter) tuples → HotMessage, skipping empty texts."""
    return [HotMessage(i, t, when, s, r) for i, t, when, s, r in rows if t.strip()]
