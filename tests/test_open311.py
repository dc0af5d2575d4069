"""Open311 GeoReport v2: every endpoint and error, in JSON (validated against the official
GeoReport v2 JSON Schemas) and XML, a FixMyStreet-style POST, and no reporter identity in
anything the API says."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

import pytest
from jsonschema import Draft7Validator, FormatChecker, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from sqlalchemy import func, select

import adapters.open311 as open311_module
from bot.apikeys import create_key, revoke_key
from bot.config import PROJECT_ROOT
from bot.messages import Location
from bot.models import Case, Open311Token, OutboxMessage, Reporter
from bot.services import Services
from bot.texts import t
from handlers.one_shot import OneShotReport, file_report
from shell.app import create_app
from tests.conftest import FIXTURES, FakeClock

SHARED_SCHEMAS = PROJECT_ROOT.parent / "shared" / "data" / "open311"
COPIED_SCHEMAS = FIXTURES / "open311" / "schemas"
SCHEMAS = SHARED_SCHEMAS if SHARED_SCHEMAS.is_dir() else COPIED_SCHEMAS
BASE = "/open311/v2"
PIN = {"lat": "23.0215", "long": "113.1214"}  # 同济社区第3网格 (WGS-84)
CREATED = "swagger.json#/definitions/RequestResponse"  # a POST's answer entries
TOKENS = "swagger.json#/definitions/TokenResponse"
FMS_IDENTITY = ("zhang.xiaoming@example.com", "Xiaoming", "Zhang", "13912345678",
                "139 1234 5678")

# The spec's error answer (wiki.open311.org "Errors"); the official schema files define none.
ERRORS_SCHEMA = {
    "type": "array", "minItems": 1,
    "items": {"type": "object", "required": ["code", "description"],
              "properties": {"code": {"type": "integer"},
                             "description": {"type": "string", "minLength": 1}}},
}
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    """RFC 3339, as the schemas' format means (jsonschema needs an extra package for it)."""
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


@FORMATS.checks("uri", raises=ValueError)
def _uri(value: object) -> bool:
    if isinstance(value, str):
        parts = urlsplit(value)
        if not parts.scheme or not parts.netloc or any(c.isspace() for c in value):
            raise ValueError(f"{value!r} is not an absolute URI")
    return True


def _registry() -> Registry:
    resources = [(path.name, Resource.from_contents(json.loads(path.read_text("utf-8")),
                                                    default_specification=DRAFT7))
                 for path in sorted(SCHEMAS.glob("*.json"))]
    return Registry().with_resources(resources)


REGISTRY = _registry()


def validate(data: Any, schema: str) -> None:
    """`schema`: an official file name, or swagger.json#/definitions/X for one entry type."""
    if schema == "errors":
        document: dict[str, Any] = ERRORS_SCHEMA
    elif schema.startswith("swagger.json#"):
        document = {"type": "array", "minItems": 1, "items": {"$ref": schema}}
    else:
        document = {"$ref": schema}
    Draft7Validator(document, registry=REGISTRY, format_checker=FORMATS).validate(data)


def test_the_schema_copy_matches_the_official_files() -> None:
    assert sorted(p.name for p in COPIED_SCHEMAS.glob("*.json")) == [
        "request.json", "requests.json", "service-definition.json", "service.json",
        "services.json", "swagger.json"]
    if SHARED_SCHEMAS.is_dir():
        for path in SHARED_SCHEMAS.glob("*.json"):
            assert (COPIED_SCHEMAS / path.name).read_bytes() == path.read_bytes(), path.name


def test_the_validator_refuses_what_the_spec_refuses() -> None:
    """The checks below can fail: a wrong status, a missing field, a bad date are caught."""
    good = {"service_request_id": "1", "status": "open", "service_code": "C0102",
            "requested_datetime": "2026-11-23T09:00:00+08:00"}
    validate([good], "requests.json")
    for bad in ({**good, "status": "dispatched"}, {**good, "requested_datetime": "yesterday"},
                {k: v for k, v in good.items() if k != "service_code"},
                {**good, "media_url": "not a url"}):
        with pytest.raises(ValidationError):
            validate([bad], "requests.json")
    with pytest.raises(ValidationError):
        validate([{"code": "400"}], "errors")


class Open311Client:
    """The app's test client, checking every answer's format and keeping every body so a
    test can look for leaked identities in all of them at the end."""

    def __init__(self, services: Services) -> None:
        self.client = create_app(services.config, services, background=False).test_client()
        self.bodies: list[str] = []

    async def _send(self, method: str, path: str, form: dict[str, str] | None = None,
                    raw: str | None = None, query: dict[str, str] | None = None):
        kwargs: dict[str, Any] = {"query_string": query or {}}
        if raw is not None:
            kwargs["data"] = raw.encode("utf-8")
            kwargs["headers"] = {"Content-Type": "application/x-www-form-urlencoded"}
        elif form is not None:
            kwargs["form"] = form
        response = await getattr(self.client, method)(BASE + path, **kwargs)
        body = await response.get_data(as_text=True)
        self.bodies.append(body)
        return response, body

    async def json(self, method: str, path: str, schema: str | None, status: int = 200,
                   **kwargs: Any) -> Any:
        response, body = await self._send(method, path, **kwargs)
        assert response.status_code == status, body
        assert response.content_type.startswith("application/json")
        data = json.loads(body)
        if status >= 400:
            validate(data, "errors")
            assert data[0]["code"] == status
        elif schema is not None:
            validate(data, schema)
        else:  # only discovery has no official schema; it is checked field by field
            assert path.startswith("/discovery."), path
        return data

    async def xml(self, method: str, path: str, status: int = 200, **kwargs: Any) -> ET.Element:
        response, body = await self._send(method, path, **kwargs)
        assert response.status_code == status, body
        assert response.content_type.startswith("text/xml")
        root = ET.fromstring(body.encode("utf-8"))  # our own output, not outside input
        if status >= 400:
            assert root.tag == "errors"
            assert root.find("error/code").text == str(status)
            assert root.find("error/description").text
        return root


def _xml_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def assert_same(element: ET.Element, entry: dict[str, Any]) -> None:
    """An XML entry says what the JSON one says, field for field."""
    assert [child.tag for child in element] == list(entry)
    for key, value in entry.items():
        if not isinstance(value, list | dict):
            assert element.find(key).text == _xml_value(value), key


def _fms_body(key: str) -> str:
    body = (FIXTURES / "open311" / "fixmystreet_post.form").read_text("utf-8").strip()
    return body.replace("%API_KEY%", key)


async def _count(s: Services, model: Any) -> int:
    async with s.db.session() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


# -- services --------------------------------------------------------------------------------

async def test_discovery_services_and_service_definitions(services: Services) -> None:
    o = Open311Client(services)
    found = await o.json("get", "/discovery.json", None)
    endpoint = found["endpoints"][0]
    assert endpoint["url"].endswith("/open311/v2") and endpoint["type"] == "production"
    assert set(endpoint["formats"]) == {"application/json", "text/xml"}
    assert "GeoReport_v2" in endpoint["specification"]
    datetime.fromisoformat(found["changeset"])
    root = await o.xml("get", "/discovery.xml")
    assert root.tag == "discovery"
    assert [f.text for f in root.findall("endpoints/endpoint/formats/format")] == \
        endpoint["formats"]

    listed = await o.json("get", "/services.json", "services.json")
    assert [s["service_code"] for s in listed] == [i.code for i in services.catalogue.items]
    manhole = next(s for s in listed if s["service_code"] == "C0102")
    item = services.catalogue.get("C0102")
    assert manhole["service_name"] == "污水井盖" and manhole["group"] == "公用设施"
    assert manhole["metadata"] is False and manhole["type"] == "realtime"
    assert all(word in manhole["keywords"] for word in item.synonyms)
    assert item.department in manhole["description"]
    root = await o.xml("get", "/services.xml")
    assert root.tag == "services" and len(root.findall("service")) == len(listed)
    assert_same(root.find("service[service_code='C0102']"), manhole)

    # metadata false: the definition exists and has no attributes; it is not a 404.
    definition = await o.json("get", "/services/C0102.json", "service-definition.json")
    assert definition == {"service_code": "C0102", "attributes": []}
    root = await o.xml("get", "/services/C0102.xml")
    assert root.tag == "service_definition" and root.find("service_code").text == "C0102"
    assert root.find("attributes") is not None and len(root.find("attributes")) == 0

    for fmt in ("json", "xml"):
        path = f"/services/NOPE.{fmt}"
        if fmt == "json":
            error = await o.json("get", path, None, status=404)
            assert "NOPE" in error[0]["description"]
        else:
            await o.xml("get", path, status=404)
    assert "html" in (await o.json("get", "/services.html", None, status=404))[0]["description"]
    await o.json("get", "/no-such-thing.json", None, status=404)
    await o.xml("get", "/requests/x/y.xml", status=404)


# -- filing and following ------------------------------------------------------------------

async def test_fixmystreet_post_files_a_case_that_can_be_followed(
    clocked: Services, clock: FakeClock
) -> None:
    s = clocked
    o = Open311Client(s)
    _, key = await create_key(s.db, "fixmystreet")
    answer = await o.xml("post", "/requests.xml", raw=_fms_body(key))  # FixMyStreet reads XML
    assert answer.tag == "service_requests"
    number = answer.find("request/service_request_id").text
    token = answer.find("request/token").text
    assert number and token and number in answer.find("request/service_notice").text

    case = await s.cases.get(number)
    assert case is not None and case.channel == "open311" and case.item_code == "C0102"
    assert (case.lat, case.lon) == (23.0215, 113.1214)
    assert [m.ref for m in case.media] == ["https://fms.example.org/photo/1024.0.full.jpeg"]
    async with s.db.session() as session:
        reporter = await session.get(Reporter, case.reporter_id)
    # Only an opaque id: no phone, email or name is kept for an Open311 reporter.
    assert reporter.phone is None and reporter.channel == "open311"
    assert not any(part.lower() in reporter.external_id.lower() for part in FMS_IDENTITY)

    followed = await o.json("get", f"/requests/{number}.json", "requests.json")
    assert len(followed) == 1
    entry = followed[0]
    assert entry["service_request_id"] == number and entry["status"] == "open"
    assert entry["service_code"] == "C0102" and entry["service_name"] == "污水井盖"
    assert entry["agency_responsible"] == case.department
    assert (entry["lat"], entry["long"]) == (23.0215, 113.1214)
    assert entry["media_url"] == "https://fms.example.org/photo/1024.0.full.jpeg"
    assert "同济路口污水井盖不见了" in entry["description"]
    assert "139****5678" in entry["description"]  # the number typed in the text is masked
    assert datetime.fromisoformat(entry["requested_datetime"]) == clock.now
    assert datetime.fromisoformat(entry["expected_datetime"]) == case.handling_due
    assert entry["status_notes"] == "已派遣至责任单位处理"  # public words, no staff names
    assert_same((await o.xml("get", f"/requests/{number}.xml")).find("request"), entry)

    tokens = await o.json("get", f"/tokens/{token}.json", TOKENS)
    assert tokens == [{"token": token, "service_request_id": number}]
    root = await o.xml("get", f"/tokens/{token}.xml")
    assert root.find("request/service_request_id").text == number
    await o.json("get", "/tokens/not-a-token.json", None, status=404)
    # Ids that cannot exist (a NUL, far too long) find nothing; they do not break the query.
    for odd in ("%00", "x%00y", "9" * 300):
        await o.json("get", f"/tokens/{odd}.json", None, status=404)
        await o.json("get", f"/requests/{odd}.json", None, status=404)
    assert await o.json("get", "/requests.json", "requests.json",
                        query={"service_request_id": f"\x00,{number}"}) != []
    assert await o.json("get", "/requests.json", "requests.json",
                        query={"service_code": "\x00"}) == []
    await o.json("get", "/requests/20990101-9999.json", None, status=404)
    await o.xml("get", "/requests/20990101-9999.xml", status=404)

    # The same problem again, from a JSON client with no identity: it joins the open case.
    clock.advance(minutes=20)
    again = await o.json("post", "/requests.json", CREATED,
                         form={"api_key": key, "service_code": "C0102", **PIN,
                               "description": "路口的井盖还是没有盖上"})
    assert again[0]["service_request_id"] == number and again[0]["token"] != token
    assert again[0]["service_notice"] == t("open311.notice_attached", number=number)
    assert "account_id" not in again[0]
    assert await _count(s, Case) == 1 and await _count(s, Open311Token) == 2
    joined = await o.json("get", f"/tokens/{again[0]['token']}.json", TOKENS)
    assert joined[0]["service_request_id"] == number

    # A description is optional: the service names the problem. An address locates it.
    other = await o.json("post", "/requests.json", CREATED,
                         form={"api_key": key, "service_code": "C0301",
                               "address_string": "季华五路18号"})
    filed = await s.cases.get(other[0]["service_request_id"])
    assert filed.text == s.catalogue.get("C0301").name and filed.address == "季华五路18号"
    assert filed.number in other[0]["service_notice"]
    assert filed.department in other[0]["service_notice"]

    everything = "\n".join(o.bodies)
    for part in FMS_IDENTITY:
        assert part not in everything, part


async def test_post_errors_say_what_is_wrong_and_file_nothing(services: Services) -> None:
    s = services
    o = Open311Client(s)
    _, key = await create_key(s.db, "client")
    _, revoked = await create_key(s.db, "old-client")
    assert await revoke_key(s.db, "old-client")
    good = {"api_key": key, "service_code": "C0102", **PIN, "description": "井盖丢了"}
    cases: list[tuple[dict[str, str], int, str]] = [
        ({k: v for k, v in good.items() if k != "api_key"}, 403, "api_key"),
        ({**good, "api_key": "gbk_wrong"}, 403, "api_key"),
        ({**good, "api_key": key + "x"}, 403, "api_key"),
        ({**good, "api_key": revoked}, 403, "api_key"),
        ({**good, "api_key": "gbk_\x00" + key[5:]}, 403, "api_key"),
        ({k: v for k, v in good.items() if k != "service_code"}, 400, "service_code"),
        ({**good, "service_code": "Z9999"}, 400, "Z9999"),
        ({k: v for k, v in good.items() if k != "long"}, 400, "long"),
        ({**good, "lat": "north"}, 400, "lat"),
        ({**good, "lat": "91", "long": "113"}, 400, "lat"),
        ({**good, "lat": "nan"}, 400, "lat"),
        ({k: v for k, v in good.items() if k not in ("lat", "long")}, 400, "address_string"),
        ({**good, "lat": "39.9042", "long": "116.4074"}, 400, t("report.location_outside")),
        ({**{k: v for k, v in good.items() if k not in ("lat", "long")},
          "address_string": "火星基地一号"}, 400, t("oneshot.no_place")),
        ({**good, "description": "the manhole cover is missing"}, 400, t("no_chinese")),
        ({**good, "description": "井" * 4001}, 400, "description"),
        ({**good, "media_url": "javascript:alert(1)"}, 400, "media_url"),
        ({**good, "media_url": "https://example.org/a\x00.jpg"}, 400, "media_url"),
        ({**good, "email": "x" * 300}, 400, "email"),
    ]
    for form, status, fragment in cases:
        error = await o.json("post", "/requests.json", None, status=status, form=form)
        assert fragment in error[0]["description"], (form, error)
    root = await o.xml("post", "/requests.xml", status=403, form=cases[0][0])
    assert "api_key" in root.find("error/description").text
    await o.xml("post", "/requests.xml", status=400,
                form=next(form for form, status, _ in cases if status == 400))
    # The key also works from the query string (where the swagger file puts it).
    error = await o.json("post", "/requests.json", None, status=400,
                         form={"service_code": "Z9999", **PIN}, query={"api_key": key})
    assert "Z9999" in error[0]["description"]
    assert await _count(s, Case) == 0 and await _count(s, Open311Token) == 0


async def test_get_requests_filters_windows_and_statuses(
    clocked: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = clocked
    o = Open311Client(s)
    _, key = await create_key(s.db, "client")
    grid_items = [i.code for i in s.catalogue.items if i.level == "grid" and not i.urgent]

    async def chat_case(code: str, place: dict[str, Any]) -> str:
        report = OneShotReport("http", "wechat-citizen-7", "我叫王小明，楼下这里有问题",
                               item_code=code, **place)
        result = await file_report(report, s)
        return result["case"]["number"]

    old = await chat_case(grid_items[0], {"address": "季华五路18号"})
    clock.advance(days=100)
    posted = await o.json("post", "/requests.json", CREATED, form={
        "api_key": key, "service_code": "C0102", **PIN, "description": "井盖不见了",
        "media_url": "http://photos.example.org/a.jpg"})
    mine = posted[0]["service_request_id"]
    clock.advance(hours=1)
    closed = await chat_case(grid_items[1], {"location": Location(23.0215, 113.1214)})
    merged = await chat_case(grid_items[2], {"address": "季华五路18号"})

    case = await s.cases.get(closed)
    worker = await s.teams.add_worker("李静平", "grid_worker", f"grid:{case.grid_code}",
                                      "telegram", "tg-1", clock())
    leader = await s.teams.add_worker("冯永丽", "grid_leader", f"grid:{case.grid_code}",
                                      "telegram", "tg-2", clock())
    dispatcher = await s.teams.add_worker("周调度", "dispatcher", "district:440604",
                                          "telegram", "tg-3", clock())
    await s.actions.accept(closed, worker)
    await s.actions.resolve(closed, worker, "已清理干净")
    clock.advance(hours=2)
    await s.actions.verify(closed, leader, fixed=True, note="现场已干净")
    await s.actions.merge(merged, mine, dispatcher, "同一处问题")
    clock.advance(hours=1)

    everything = await o.json("get", "/requests.json", "requests.json")
    assert [e["service_request_id"] for e in everything] == [merged, closed, mine]  # newest first
    assert old not in json.dumps(everything)  # the default window is the last 90 days
    by_id = {e["service_request_id"]: e for e in everything}
    done = by_id[closed]
    closed_case = await s.cases.get(closed)
    assert done["status"] == "closed" and done["service_notice"] is None
    assert datetime.fromisoformat(done["updated_datetime"]) == closed_case.closed_at
    assert done["status_notes"] == t("public.status.closed")
    assert by_id[merged]["status"] == "closed"
    assert mine in by_id[merged]["status_notes"]
    # A chat citizen's words and photos are not published; the problem and place are.
    assert done["description"] is None and done["media_url"] is None
    assert done["lat"] == 23.0215 and by_id[merged]["address"] == "季华五路18号"
    assert "王小明" not in json.dumps(everything, ensure_ascii=False)
    assert by_id[mine]["media_url"] == "http://photos.example.org/a.jpg"
    root = await o.xml("get", "/requests.xml")
    assert root.tag == "service_requests"
    for element, entry in zip(root.findall("request"), everything, strict=True):
        assert_same(element, entry)

    async def ids(**query: str) -> list[str]:
        found = await o.json("get", "/requests.json", "requests.json", query=query)
        return [e["service_request_id"] for e in found]

    assert await ids(status="open") == [mine]
    assert await ids(status="closed") == [merged, closed]
    assert await ids(status="open,closed") == [merged, closed, mine]
    assert await ids(service_code=f"C0102,{grid_items[1]}") == [closed, mine]
    # service_request_id overrides every other filter, old cases included.
    assert set(await ids(service_request_id=f"{old}, {mine}", status="closed")) == {old, mine}
    filed_at = datetime.fromisoformat(by_id[mine]["requested_datetime"])
    assert await ids(start_date=(filed_at + timedelta(minutes=1)).isoformat()) == [merged,
                                                                                   closed]
    assert await ids(end_date=(filed_at + timedelta(minutes=1)).isoformat()) == [mine]
    day = clock.now.astimezone(s.cases.tz).date().isoformat()  # a date alone: its start
    assert await ids(start_date=day) == [merged, closed, mine]
    # "+" in an unescaped query string arrives as a space: the offset is still understood.
    assert await ids(start_date=f"{day}T00:00:00 08:00") == [merged, closed, mine]
    start = (clock.now - timedelta(days=120)).isoformat()
    assert await ids(start_date=start,
                     end_date=(clock.now - timedelta(days=40)).isoformat()) == [old]
    assert await ids(start_date=start.replace("+00:00", "Z"),
                     end_date=(clock.now - timedelta(days=40)).isoformat()) == [old]
    monkeypatch.setattr(open311_module, "MAX_RESULTS", 2)
    assert await ids(status="open,closed") == [merged, closed]

    for query, fragment in [
        ({"status": "pending"}, "status"),
        ({"start_date": "last tuesday"}, "start_date"),
        ({"end_date": "2026-13-01"}, "end_date"),
        ({"start_date": "2026-11-20", "end_date": "2026-11-01"}, "start_date"),
        ({"start_date": "2026-01-01", "end_date": "2026-11-01"}, "90"),
    ]:
        error = await o.json("get", "/requests.json", None, status=400, query=query)
        assert fragment in error[0]["description"]
        await o.xml("get", "/requests.xml", status=400, query=query)


def test_the_schema_folder_is_there() -> None:
    assert Path(SCHEMAS, "swagger.json").is_file()


async def test_open311_reporters_notices_are_delivered_by_polling(services: Services) -> None:
    """The engine tells every reporter of a change through the outbox; Open311 clients poll,
    so once the channel has started its rows are done rather than waiting for ever."""
    s = services
    o = Open311Client(s)
    _, key = await create_key(s.db, "client")
    posted = await o.json("post", "/requests.json", CREATED, form={
        "api_key": key, "service_code": "C0102", **PIN, "description": "井盖不见了"})
    number = posted[0]["service_request_id"]
    case = await s.cases.get(number)
    worker = await s.teams.add_worker("陈街道", "street_staff", case.assignee, "telegram",
                                      "tg-9", s.cases.clock())
    await s.actions.accept(number, worker)

    async def waiting() -> int:
        async with s.db.session() as session:
            return (await session.execute(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.channel == "open311",
                OutboxMessage.status == "pending"))).scalar_one()

    await s.outbox.run_once()
    assert await waiting() == 0  # delivered by being there for the client's next GET
    followed = await o.json("get", f"/requests/{number}.json", "requests.json")
    assert followed[0]["status"] == "open"
    moves = [e for e in (await s.cases.get(number)).events
             if e.action == "transition" and e.note]
    assert moves[-1].to_status in ("handling", "dispatched")
    # Public words for the status, never the worker's name or a staff note.
    assert followed[0]["status_notes"] == t(f"public.status.{moves[-1].to_status}")
    assert worker.name not in json.dumps(followed, ensure_ascii=False)


def test_xml_leaves_out_what_xml_cannot_carry() -> None:
    from adapters.open311_xml import document

    body = document("service_requests", [{"status_notes": "已\x00处\x1b理 <&>", "lat": 23.5,
                                          "metadata": False, "address": None}], "request")
    request = ET.fromstring(body).find("request")
    assert request.find("status_notes").text == "已处理 <&>"
    assert request.find("lat").text == "23.5" and request.find("metadata").text == "false"
    assert request.find("address").text is None
