"""Hotline suggestions over HTTP: top 3 items with their handling facts, the grid when the
text names a place, and confirmations stored as training examples."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot.models import TrainingExample
from bot.services import Services
from shell.app import create_app
from tests.conftest import make_config

LOCAL = {"client": ("127.0.0.1", 5000)}


async def _post(client, path: str, body: object, **kwargs):
    return await client.post(f"/api/v1/suggest{path}", json=body,
                             scope_base=kwargs.pop("scope_base", LOCAL), **kwargs)


async def _examples(services: Services) -> list[TrainingExample]:
    async with services.db.session() as session:
        return list((await session.execute(
            select(TrainingExample).order_by(TrainingExample.id))).scalars())


async def test_suggest_gives_three_items_with_handling_facts_and_the_grid(
    services: Services,
) -> None:
    client = create_app(services.config, services).test_client()
    r = await _post(client, "", {"text": "季华五路18号门口的路灯不亮了，晚上很黑"})
    assert r.status_code == 200
    body = await r.get_json()
    items = body["items"]
    assert len(items) == 3
    assert items[0]["code"] == "C0118" and items[0]["name"] == "路灯"
    assert items[0]["department"] == "区城市管理和综合执法局"
    assert items[0]["time_limits"]["handling"] == "3wd"
    confidences = [i["confidence"] for i in items]
    assert confidences == sorted(confidences, reverse=True) and 0 < confidences[0] <= 1
    assert {"big_class", "level", "urgent", "label"} <= set(items[0])
    assert body["location"]["status"] == "found"
    assert body["location"]["grid"]["name"] == "澜石社区第1网格"
    assert body["model_version"] == services.models.version


async def test_unsure_answer_says_so_and_unknown_road_is_named(services: Services) -> None:
    client = create_app(services.config, services).test_client()
    body = await (await _post(client, "", {"text": "朝阳路188号那边有点问题"})).get_json()
    assert len(body["items"]) == 3
    # Vague text: below the validated threshold, so staff are told to choose.
    assert body["sure"] is False and body["notice"]
    assert body["location"]["status"] == "none"
    assert body["location"]["place_names"] == ["朝阳路188号"]


async def test_text_without_chinese_and_bad_bodies_get_clear_errors(services: Services) -> None:
    client = create_app(services.config, services).test_client()
    r = await _post(client, "", {"text": "hello, the street light is broken 🙂"})
    assert r.status_code == 422
    body = await r.get_json()
    assert "中文" in body["error"] and body["items"] == []
    for bad, fragment in [({}, "text"), ({"text": ""}, "text"), ({"text": "井盖", "x": 1}, "x"),
                          ([1, 2], "JSON object"), ({"text": "\u200b\u200b"}, "empty")]:
        r = await _post(client, "", bad)
        assert r.status_code == 400, bad
        assert fragment in (await r.get_json())["error"]


async def test_confirm_stores_a_masked_example(services: Services) -> None:
    client = create_app(services.config, services).test_client()
    text = "文華路口井蓋不見了，請聯繫我 13812345678"
    r = await _post(client, "/confirm", {"text": text, "item_code": "C0102",
                                         "suggested_code": "C0103"})
    assert r.status_code == 201
    body = await r.get_json()
    assert body["stored"] and body["corrected"] and body["item"]["code"] == "C0102"
    r = await _post(client, "/confirm", {"text": "路灯不亮", "item_code": "C0118",
                                         "suggested_code": "C0118"})
    assert (await r.get_json())["corrected"] is False
    rows = await _examples(services)
    assert [(e.item_code, e.suggested_code, e.source) for e in rows] == [
        ("C0102", "C0103", "hotline"), ("C0118", "C0118", "hotline")]
    # Simplified, and the phone number never reaches the database.
    assert rows[0].text == "文华路口井盖不见了，请联系我 138****5678"


async def test_confirm_refuses_unknown_items_and_stores_nothing(services: Services) -> None:
    client = create_app(services.config, services).test_client()
    r = await _post(client, "/confirm", {"text": "井盖丢了", "item_code": "X9999"})
    assert r.status_code == 400 and "X9999" in (await r.get_json())["error"]
    r = await _post(client, "/confirm", {"text": "12345", "item_code": "C0102"})
    assert r.status_code == 422
    assert await _examples(services) == []


async def test_suggest_uses_the_chat_api_gate(services: Services, tmp_path: Path,
                                              model_dir: Path) -> None:
    remote = {"client": ("203.0.113.9", 5000)}
    open_app = create_app(services.config, services).test_client()
    for path in ("", "/confirm"):
        r = await _post(open_app, path, {"text": "井盖丢了", "item_code": "C0102"},
                        scope_base=remote)
        assert r.status_code == 403
    keyed = make_config(tmp_path, model_dir, services.config.database_url,
                        services.config.redis.url, GRIDBOT_API_KEYS="s3cret")
    client = create_app(keyed, services).test_client()
    r = await _post(client, "", {"text": "井盖丢了"}, scope_base=remote)
    assert r.status_code == 401
    r = await _post(client, "", {"text": "井盖丢了"}, scope_base=remote,
                    headers={"X-API-Key": "s3cret"})
    assert r.status_code == 200
