"""nlp/topics.py: the seven message-board topics and the department each goes to."""

from __future__ import annotations

from bot.catalogue import load_catalogue
from bot.config import PROJECT_ROOT
from nlp.topics import DEFAULT_DEPARTMENTS, TOPICS


def test_every_topic_has_one_default_department_in_topic_order() -> None:
    assert len(TOPICS) == len(set(TOPICS)) == 7
    # The order matters: the catalogue numbers the department items D01… in this order.
    assert list(DEFAULT_DEPARTMENTS) == list(TOPICS)
    assert all(name.strip() for name in DEFAULT_DEPARTMENTS.values())


def test_the_catalogue_files_each_topic_under_its_department_item() -> None:
    catalogue = load_catalogue(PROJECT_ROOT / "data/catalogue.csv").with_departments(
        DEFAULT_DEPARTMENTS)
    items = [catalogue.department_item(topic) for topic in TOPICS]
    assert all(item is not None for item in items)
    assert [(i.code, i.department) for i in items if i is not None] == [
        (f"D{n:02d}", DEFAULT_DEPARTMENTS[topic]) for n, topic in enumerate(TOPICS, start=1)]
    assert catalogue.department_item("不是话题") is None
