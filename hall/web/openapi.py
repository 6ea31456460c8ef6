"""OpenAPI 3.1 document generated from the route table and the pydantic models."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from hall.web.access import COOKIE_NAME, CSRF_HEADER, DEVICE_COOKIE_NAME
from hall.web.problems import PROBLEM_TYPE_BASE
from hall.web.routes import ROUTES_KEY, Access

_PARAM = re.compile(r"{(\w+)}")
_REF = "#/components/schemas/"

# How callers prove who they are (docs/security.md); which roles an endpoint admits is its
# ``x-access`` rule, which OpenAPI has no words for.
_SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "登录返回的 token（hs1_…），或管理员创建的设备令牌",
    },
    "session_cookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": COOKIE_NAME,
        "description": f"登录设置的会话 Cookie；修改类请求还须带 {CSRF_HEADER} 请求头",
    },
    "device_cookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": DEVICE_COOKIE_NAME,
        "description": f"设备登录设置的 Cookie；修改类请求还须带 {CSRF_HEADER} 请求头",
    },
}
_SIGNED_IN: list[dict[str, list[str]]] = [{name: []} for name in _SECURITY_SCHEMES]
# Public endpoints and those opened by a ticket's own token in the path need no credentials.
_OPEN = (Access.PUBLIC, Access.TICKET_TOKEN)


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
            "security": [{}] if route.access in _OPEN else _SIGNED_IN,
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
        "components": {"schemas": components, "securitySchemes": _SECURITY_SCHEMES},
    }
