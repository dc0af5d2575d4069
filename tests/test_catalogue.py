import csv
import io
from pathlib import Path

import pytest

from bot.catalogue import COLUMNS, CatalogueError, TimeLimit, load_catalogue
from bot.config import PROJECT_ROOT

SHIPPED = PROJECT_ROOT / "data/catalogue.csv"


def test_shipped_catalogue_covers_the_national_lists_and_governance() -> None:
    catalogue = load_catalogue(SHIPPED)
    kinds = {k: [i for i in catalogue.items if i.kind == k]
             for k in ("component", "event", "governance")}
    assert len(kinds["component"]) == 85
    # The national list's 50 events (E01–E05) plus local extensions (E06: water supply,
    # trucks, rural roads, power — what real messages needed, data/labelling.md).
    national = [i for i in kinds["event"] if not i.code.startswith("E06")]
    assert len(national) == 50 and len(kinds["event"]) > 50
    assert len(kinds["governance"]) >= 15
    big = {(i.kind, i.big_class) for i in national + kinds["component"]}
    assert len({b for k, b in big if k == "component"}) == 6
    assert len({b for k, b in big if k == "event"}) == 5
    assert {i.level for i in catalogue.items} == {"grid", "street", "district"}
    assert any(i.urgent for i in catalogue.items)
    assert any(len(i.other_limits) >= 2 for i in catalogue.items)  # staged limits
    assert all(i.synonyms for i in catalogue.items)
    item = catalogue.get("C0102")
    assert item.label == "公用设施 › 污水井盖"
    assert item.public_dict()["time_limits"]["handling"] == str(item.handling)


def _rewrite(tmp_path: Path, change) -> Path:
    rows = list(csv.DictReader(SHIPPED.read_text(encoding="utf-8").splitlines()))
    change(rows)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0].keys()) if rows else COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    path = tmp_path / "catalogue.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


@pytest.mark.parametrize(("change", "message"), [
    (lambda rows: rows[3].update(level="city"), r"line 5: column 'level'"),
    (lambda rows: rows[0].update(handling="3 days"), r"line 2: column 'handling'"),
    (lambda rows: rows[1].update(urgent="yes"), r"line 3: column 'urgent'"),
    (lambda rows: rows[2].update(kind="thing"), r"line 4: column 'kind'"),
    (lambda rows: rows[4].update(code=rows[0]["code"]), r"line 6: code .* twice"),
    (lambda rows: rows[5].update(other_limits="停工4wh"), r"line 7: column 'other_limits'"),
    (lambda rows: rows[6].update(department=""), r"line 8: column 'department' is empty"),
    (lambda rows: [r.pop("synonyms") for r in rows], r"missing column\(s\) synonyms"),
    (lambda rows: rows.clear(), r"no items|missing column"),
])
def test_bad_catalogue_files_name_line_and_column(tmp_path: Path, change, message: str) -> None:
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(_rewrite(tmp_path, change))


def test_missing_and_binary_catalogue_files(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="not found"):
        load_catalogue(tmp_path / "none.csv")
    path = tmp_path / "bin.csv"
    path.write_bytes(b"\xff\xfe\x00\x01garbage")
    with pytest.raises(CatalogueError):
        load_catalogue(path)


@pytest.mark.parametrize("text", ["30m", "4h", "4wh", "3d", "2wd"])
def test_time_limits_round_trip(text: str) -> None:
    assert str(TimeLimit.parse(text)) == text


@pytest.mark.parametrize("text", ["0h", "h", "4 weeks", "-1d", "1.5h"])
def test_bad_time_limits(text: str) -> None:
    with pytest.raises(ValueError):
        TimeLimit.parse(text)
