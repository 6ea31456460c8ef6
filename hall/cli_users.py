"""``hall user add``: create a staff login or reset its password."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import re
import sys
from collections.abc import Callable

import asyncpg

from hall.config.models import StaffRole
from hall.security.logfilter import install_pii_filter
from hall.security.passwords import hash_password, password_problem
from hall.storage import access_repo

_JOB_NO = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_ROLES = {str(r) for r in StaffRole}


def read_password(prompt: Callable[[str], str] = getpass.getpass) -> str:
    """Ask twice without echo; raises ValueError when the answers differ."""
    first = prompt("密码：")
    if prompt("再次输入密码：") != first:
        raise ValueError("两次输入的密码不一致")
    return first


async def add_user(
    conn: asyncpg.Connection,
    args: argparse.Namespace,
    prompt: Callable[[str], str] = getpass.getpass,
) -> int:
    """Create the staff member (or update an existing one) with a password; 0 on success."""
    install_pii_filter()
    job_no: str = args.job_no
    roles: list[str] = list(args.roles or [])
    halls: list[str] | None = list(args.halls) if args.halls else None
    counters: list[int] | None = getattr(args, "counters", None)
    problems: list[str] = []
    if not _JOB_NO.match(job_no):
        problems.append("工号只能包含字母、数字、下划线、点和连字符，最长 32 个字符")
    if unknown := [r for r in roles if r not in _ROLES]:
        problems.append(f"未知角色 {', '.join(unknown)}；可选：{', '.join(sorted(_ROLES))}")
    if halls:
        known = {r["id"] for r in await conn.fetch("SELECT id FROM halls")}
        if missing := [h for h in halls if h not in known]:
            problems.append(f"大厅 {', '.join(missing)} 不存在（请先 hall config load）")
    existing = await access_repo.get_account(conn, job_no)
    if existing is None and (not args.name or not roles):
        problems.append("新建账号需要 --name 和至少一个 --role")
    if problems:
        for line in problems:
            print(f"错误：{line}", file=sys.stderr)
        return 2

    password = args.password if args.password is not None else read_password(prompt)
    problem = password_problem(password, job_no)
    if problem is not None:
        print(f"错误：{problem}", file=sys.stderr)
        return 2
    password_hash = await asyncio.to_thread(hash_password, password)
    created = await access_repo.save_account(
        conn,
        job_no,
        password_hash=password_hash,
        name=args.name,
        roles=roles or None,
        halls=halls,
        counters=counters,
    )
    if created:
        print(f"已创建账号 {job_no}（{args.name}），角色：{', '.join(roles)}")
    else:
        print(f"已更新账号 {job_no} 的密码" + ("和资料" if roles or halls or args.name else ""))
        if existing is not None and (roles or halls):
            print("注意：该工号若在大厅配置中，下次加载配置时角色和大厅将以配置文件为准")
    return 0
