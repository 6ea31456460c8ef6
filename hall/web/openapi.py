"""OpenAPI 3.1 document generated from the route table and the pydantic models."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from hall.web.problems import PROBLEM_TYPE_BASE
from hall.web.routes import ROUTES_KEY

_PARAM = re.compile(r"{(\w+)}")
_REF = "#/components/schemas/"


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=_REF + "{model}")
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": _REF + model.__name__}


def build_openapi(app: web.Application) -> dict[str, Any]:
    components: dict[str, Any] = {
        "Problem": {
            "type": "object",
            "description": f"RFC 9457 problem; `type` is {PROBLEM_TYPE_BASE}<code>",
            "required": ["type", "title", "status", "code"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "code": {"type": "string"},
                "detail": {"type": "string"},
                "instance": {"type": "string"},
            },
        }
    }
    problem_ref = {
        "description": "错误（problem+json）",
        "content": {"application/problem+json": {"schema": {"$ref": _REF + "Problem"}}},
    }
    paths: dict[str, Any] = {}
    for route in app[ROUTES_KEY]:
        if not route.in_openapi:
            continue
        op: dict[str, Any] = {
            "operationId": route.name,
            "summary": route.summary,
            "tags": list(route.tags),
            "x-access": str(route.access),
            "parameters": [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in _PARAM.findall(route.path)
            ],
            "responses": {"4XX": problem_ref, "5XX": problem_ref},
        }
        if route.body is not None:
            op["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": _schema(route.body, components)}},
            }
        ok: dict[str, Any] = {"description": "成功"}
        if route.response is not None:
            ref = _schema(route.response, components)
            schema = {"type": "array", "items": ref} if route.response_list else ref
            ok["content"] = {"application/json": {"schema": schema}}
        op["responses"]["200"] = ok
        if route.method == "POST":
            op["responses"]["201"] = ok
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "政务服务大厅排队叫号系统 API", "version": "1"},
        "paths": paths,
        "components": {"schemas": components},
    }
