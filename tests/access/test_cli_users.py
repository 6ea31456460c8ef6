"""`hall user add`: accounts created or reset from the command line can log in."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hall.cli import build_parser
from hall.cli_users import add_user
from hall.config.models import HallConfig
from hall.storage.config_store import apply_config
from hall.web.state import POOL
from tests.access_helpers import login

Client = TestClient[web.Request, web.Application]


def args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["user", "add", *argv])


def answers(*values: str) -> Iterator[str]:
    yield from values


async def test_a_new_admin_with_a_prompted_password_can_log_in(
    access_client: Client, config: HallConfig
) -> None:
    replies = answers("long-enough-1", "long-enough-1")
    async with access_client.app[POOL].acquire() as conn:
        code = await add_user(
            conn, args("a01", "--name", "张管理", "--role", "admin"), lambda _: next(replies)
        )
        assert code == 0
        await apply_config(conn, config)  # a config reload keeps CLI-created accounts usable
    body = await login(access_client, "a01", "long-enough-1")
    assert (body["name"], body["roles"], body["halls"]) == ("张管理", ["admin"], [])


async def test_a_new_clerk_gets_the_counters_named_on_the_command_line(
    access_client: Client,
) -> None:
    argv = ("c9", "--name", "李四", "--role", "clerk", "--hall", "test", "--counter", "2")
    async with access_client.app[POOL].acquire() as conn:
        assert await add_user(conn, args(*argv, "--password", "long-enough-1")) == 0
    body = await login(access_client, "c9", "long-enough-1")
    assert (body["roles"], body["halls"], body["counters"]) == (["clerk"], ["test"], [2])
    opened = await access_client.post(
        "/api/v1/halls/test/counters/2/open", headers={"Authorization": f"Bearer {body['token']}"}
    )
    assert opened.status == 200


async def test_resetting_a_configured_clerks_password(access_client: Client) -> None:
    async with access_client.app[POOL].acquire() as conn:
        assert await add_user(conn, args("c001", "--password", "first-pass-1")) == 0
        assert await add_user(conn, args("c001", "--password", "second-pass-2")) == 0
    refused = await access_client.post(
        "/api/v1/login", json={"job_no": "c001", "password": "first-pass-1"}
    )
    assert refused.status == 401
    body = await login(access_client, "c001", "second-pass-2")
    assert (body["name"], body["roles"], body["halls"]) == ("王小明", ["clerk"], ["test"])


async def test_bad_input_is_refused_with_reasons(
    access_client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    async with access_client.app[POOL].acquire() as conn:
        code = await add_user(
            conn, args("new1", "--role", "boss", "--hall", "nowhere", "--password", "x" * 12)
        )
        assert code == 2
        err = capsys.readouterr().err
        assert "未知角色 boss" in err
        assert "大厅 nowhere 不存在" in err
        assert "--name" in err
        assert await add_user(conn, args("c001", "--password", "short")) == 2
        assert "至少需要 8 个字符" in capsys.readouterr().err
        replies = answers("one-password", "another-one")
        with pytest.raises(ValueError, match="两次输入的密码不一致"):
            await add_user(conn, args("c001"), lambda _: next(replies))
        assert await conn.fetchval("SELECT count(*) FROM staff_credentials") == 0
