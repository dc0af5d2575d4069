"""The OpenAPI 3.1 document of the HTTP chat API (/api/v1), served at
GET /api/v1/openapi.json.

Request schemas come from the pydantic models the routes validate with, so the document
cannot drift from what is accepted; response schemas are written here by hand and checked
against the running app by tests/test_fuzz_api.py (schemathesis).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from quart import Blueprint, Response, jsonify

from adapters.http_api import MessageIn, ReportIn
from adapters.suggest_api import ConfirmIn, SuggestIn

openapi_blueprint = Blueprint("openapi_v1", __name__)
REF = "#/components/schemas/{model}"
REQUEST_MODELS: list[type[BaseModel]] = [MessageIn, ReportIn, SuggestIn, ConfirmIn]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _str(nullable: bool = False) -> dict[str, Any]:
    return {"type": ["string", "null"]} if nullable else {"type": "string"}


_OBJ = {"type": "object"}
RESPONSE_SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {"type": "object", "required": ["error"],
              "properties": {"error": {"type": "string"}}},
    "Button": {"type": "object", "required": ["label", "value"],
               "properties": {"label": _str(), "value": _str()}},
    "Reply": {"type": "object", "required": ["text", "buttons"],
              "properties": {"text": _str(), "buttons": {"type": "array",
                                                         "items": _ref("Button")}}},
    "Turn": {"type": "object", "required": ["replies", "case"], "properties": {
        "replies": {"type": "array", "items": _ref("Reply")},
        "case": _nullable(_ref("Case"))}},
    "Event": {"type": "object", "required": ["at", "action", "status", "note"], "properties": {
        "at": _str(), "action": _str(), "status": _str(True), "status_label": _str(),
        "note": _str(True)}},
    # No reporter identity: bot.cases.CaseService.public_view is the one place it is built.
    "Case": {"type": "object", "additionalProperties": False,
             "required": ["number", "status", "item", "grid", "created_at"], "properties": {
                 "number": _str(), "status": _str(), "status_label": _str(),
                 "item": {"type": "object", "properties": {
                     "code": _str(), "name": _str(), "big_class": _str(True),
                     "label": _str()}},
                 "department": _str(True), "level": _str(True), "assignee": _str(True),
                 "urgent": {"type": "boolean"},
                 "grid": {"type": "object", "properties": {
                     "code": _str(), "name": _str(), "leader": _str(True)}},
                 "address": _str(True),
                 "location": _nullable({"type": "object", "required": ["lat", "lon"],
                                        "properties": {"lat": {"type": "number"},
                                                       "lon": {"type": "number"}}}),
                 "text": _str(), "created_at": _str(), "response_due": _str(True),
                 "handling_due": _str(True), "closed_at": _str(True),
                 "rating": {"type": ["integer", "null"]},
                 "timeline": {"type": "array", "items": _ref("Event")},
                 "photos": {"type": "integer"}}},
    "Filed": {"type": "object", "required": ["case", "attached", "suggestions"], "properties": {
        "case": _ref("Case"), "attached": {"type": "boolean"},
        "suggestions": {"type": "array", "items": {"type": "object", "properties": {
            "code": _str(), "label": _str(), "confidence": {"type": "number"}}}}}},
    "Updates": {"type": "object", "required": ["updates"], "properties": {
        "updates": {"type": "array", "items": {
            "type": "object", "required": ["id", "text", "at"], "properties": {
                "id": {"type": "integer"}, "text": _str(), "case": _str(True),
                "at": _str()}}}}},
    "FeatureCollection": {"type": "object", "required": ["type", "features"], "properties": {
        "type": {"const": "FeatureCollection"},
        "features": {"type": "array", "items": {
            "type": "object", "required": ["type", "geometry", "properties"], "properties": {
                "type": {"const": "Feature"}, "geometry": _OBJ,
                "properties": {"type": "object", "properties": {
                    "code": _str(), "name": _str(), "level": _str(),
                    "parent": _str(True)}}}}}}},
    "Suggestions": {"type": "object", "required": ["items", "sure", "threshold"],
                    "properties": {"items": {"type": "array", "items": _OBJ},
                                   "sure": {"type": "boolean"},
                                   "threshold": {"type": "number"},
                                   "model_version": _str(True),
                                   "location": _nullable(_OBJ), "notice": _str()}},
    "Stored": {"type": "object", "required": ["stored", "id", "item"], "properties": {
        "stored": {"type": "boolean"}, "id": {"type": "integer"}, "item": _OBJ,
        "corrected": {"type": "boolean"}, "message": _str()}},
}


def _errors(*codes: str) -> dict[str, Any]:
    words = {"400": "bad request: the body or a parameter is wrong (the error says which)",
             "401": "missing or wrong X-API-Key", "403": "API keys not configured and the "
             "client is not on this machine", "404": "no such case for this user",
             "409": "this id was already processed", "413": "body too large",
             "422": "understood but not acceptable (the error says why)",
             "429": "rate limit: retry after Retry-After seconds"}
    return {code: _json(words[code], _ref("Error")) for code in codes}


_COMMON = ("400", "401", "403", "429")
_BODY_ERRORS = ("413", *_COMMON)


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {"required": True,
            "content": {"application/json": {"schema": _ref(model.__name__)}}}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": True, "description": description,
            "schema": schema}


def build_document() -> dict[str, Any]:
    _, defs = models_json_schema([(m, "validation") for m in REQUEST_MODELS],
                                 ref_template=REF)
    schemas = {**defs.get("$defs", {}), **RESPONSE_SCHEMAS}
    user = _query("user", "the caller's user id on the HTTP channel",
                  {"type": "string", "minLength": 1})
    return {
        "openapi": "3.1.0",
        "info": {"title": "gridbot HTTP chat API", "version": "1.0.0",
                 "description": "For trusted front ends (web widget, mini-program back end). "
                                "Send X-API-Key when api.keys is configured."},
        "servers": [{"url": "/"}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header",
                                           "name": "X-API-Key"}},
        },
        "security": [{"apiKey": []}, {}],
        "paths": {
            "/api/v1/messages": {"post": {
                "summary": "One chat turn: text, a location or media in; the replies out",
                "requestBody": _body(MessageIn),
                "responses": {"200": _json("the dialog's answer", _ref("Turn")),
                              **_errors("409", *_BODY_ERRORS)}}},
            "/api/v1/reports": {"post": {
                "summary": "File a whole report in one request (report_id makes retries safe)",
                "requestBody": _body(ReportIn),
                "responses": {"201": _json("filed (or attached to an open case)",
                                           _ref("Filed")),
                              **_errors("409", "422", *_BODY_ERRORS)}}},
            "/api/v1/cases/{number}": {"get": {
                "summary": "A case with its timeline, for its reporter only",
                "parameters": [{"name": "number", "in": "path", "required": True,
                                "schema": {"type": "string", "maxLength": 40}}, user],
                "responses": {"200": _json("the case", _ref("Case")),
                              **_errors("404", *_COMMON)}}},
            "/api/v1/updates": {"get": {
                "summary": "Status updates for a user's cases after an id (polling)",
                "parameters": [user, {**_query("after", "the last update id seen",
                                               {"type": "string", "pattern": "^[0-9]{1,18}$",
                                                "default": "0"}), "required": False}],
                "responses": {"200": _json("updates, oldest first", _ref("Updates")),
                              **_errors(*_COMMON)}}},
            "/api/v1/grids": {"get": {
                "summary": "The grid cells as a GeoJSON FeatureCollection (WGS-84)",
                "responses": {"200": _json("grids", _ref("FeatureCollection")),
                              **_errors(*_COMMON)}}},
            "/api/v1/suggest": {"post": {
                "summary": "Hotline staff: the three most likely catalogue items for a text",
                "requestBody": _body(SuggestIn),
                "responses": {"200": _json("suggestions", _ref("Suggestions")),
                              **_errors("422", *_BODY_ERRORS)}}},
            "/api/v1/suggest/confirm": {"post": {
                "summary": "Hotline staff: store the chosen item as a training example",
                "requestBody": _body(ConfirmIn),
                "responses": {"201": _json("stored", _ref("Stored")),
                              **_errors("422", *_BODY_ERRORS)}}},
        },
    }


DOCUMENT = build_document()


@openapi_blueprint.get("/api/v1/openapi.json")
async def openapi() -> Response:
    return jsonify(DOCUMENT)
