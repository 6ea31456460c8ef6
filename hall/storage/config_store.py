"""Store the hall configuration: rows for what the invariants reference, plus a snapshot.

Loading a configuration (``hall config load``, the admin page, or a server started with
``--config``) notifies ``CONFIG_CHANNEL`` with the new snapshot's id when it commits; every
server process follows that channel (hall.services.config_follow) and swaps its
``Directory`` in place, so a change reaches all of them within moments, without a restart.
What running servers cannot take is refused before anything is written
(``live_refusals``); what takes effect only after a restart is named by
``restart_needed``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import asyncpg

from hall.config.models import HallConfig
from hall.domain.errors import ConfigNotLive
from hall.storage import access_repo

CONFIG_CHANNEL = "hall_config"
"""NOTIFY payload: the id of the config snapshot just committed."""


def config_digest(config: HallConfig) -> tuple[str, dict[str, Any]]:
    body = config.model_dump(mode="json")
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return digest, body


async def apply_config(conn: asyncpg.Connection, config: HallConfig) -> bool:
    """Upsert halls, services, counters and staff; deactivate what the file no longer names.

    Idempotent: loading the same file twice changes nothing and returns False. Counter states
    survive a reload so a config change during opening hours does not close windows.
    """
    digest, body = config_digest(config)
    async with conn.transaction():
        refusals = await live_refusals(conn, config)
        if refusals:
            raise ConfigNotLive("；".join(refusals), reasons=refusals)
        latest = await conn.fetchval("SELECT sha256 FROM config_snapshots ORDER BY id DESC LIMIT 1")
        # Halls reference parents, so insert them parent-first.
        for hall in _parent_first(config):
            await conn.execute(
                """INSERT INTO halls (id, name, level, parent_id, tz, day_boundary, active)
                   VALUES ($1, $2, $3, $4, $5, $6, true)
                   ON CONFLICT (id) DO UPDATE SET name = $2, level = $3, parent_id = $4, tz = $5,
                       day_boundary = $6, active = true""",
                hall.id,
                hall.name,
                str(hall.level),
                hall.parent,
                hall.timezone,
                hall.day_boundary,
            )
            await conn.execute("UPDATE services SET active = false WHERE hall_id = $1", hall.id)
            await conn.executemany(
                """INSERT INTO services (hall_id, code, name, prefix, number_group, active)
                   VALUES ($1, $2, $3, $4, $5, true)
                   ON CONFLICT (hall_id, code) DO UPDATE SET name = $3, prefix = $4,
                       number_group = $5, active = true""",
                [(hall.id, s.code, s.name, s.prefix, s.group) for s in hall.services],
            )
            await conn.execute("UPDATE counters SET active = false WHERE hall_id = $1", hall.id)
            await conn.executemany(
                """INSERT INTO counters (hall_id, number, name, kind, active)
                   VALUES ($1, $2, $3, $4, true)
                   ON CONFLICT (hall_id, number)
                   DO UPDATE SET name = $3, kind = $4, active = true""",
                [(hall.id, c.number, c.display_name, str(c.kind)) for c in hall.counters],
            )
        known = [h.id for h in config.halls]
        await conn.execute(
            "UPDATE halls SET active = false WHERE NOT (id = ANY($1::text[]))", known
        )
        await conn.execute("UPDATE staff SET active = false")
        await conn.executemany(
            """INSERT INTO staff (job_no, name, roles, halls, counters, active)
               VALUES ($1, $2, $3, $4, $5, true)
               ON CONFLICT (job_no) DO UPDATE SET name = $2, roles = $3, halls = $4,
                   counters = $5, active = true""",
            [
                (s.job_no, s.name, [str(r) for r in s.roles], list(s.halls), list(s.counters))
                for s in config.staff
            ],
        )
        await access_repo.announce_staff_change(conn)  # roles or accounts may have changed
        if latest == digest:
            return False
        snapshot = await conn.fetchval(
            "INSERT INTO config_snapshots (sha256, body) VALUES ($1, $2) RETURNING id", digest, body
        )
        # Delivered at commit: every server process reloads from this snapshot.
        await conn.execute("SELECT pg_notify($1, $2)", CONFIG_CHANNEL, str(snapshot))
        return True


async def live_refusals(conn: asyncpg.Connection, config: HallConfig) -> list[str]:
    """Why running servers cannot take ``config`` now (empty when they can), in Chinese.

    Refused: removing a counter that is open or holds a ticket; removing a service with
    tickets waiting, called or parked (of its last two business days); changing a hall's time zone
    or day boundary while it has such tickets. The counters concerned are locked until the
    caller's transaction ends, so none of them opens between this check and the load.
    """
    reasons: list[str] = []
    halls = {h.id: h for h in config.halls}
    counters = {(h.id, c.number) for h in config.halls for c in h.counters}
    for r in await conn.fetch(
        """SELECT c.hall_id, c.number, c.state::text AS state, t.display_number
             FROM counters c
             LEFT JOIN tickets t ON t.hall_id = c.hall_id AND t.counter_number = c.number
                                AND t.state IN ('called', 'serving')
            WHERE c.active AND c.state <> 'closed'
            ORDER BY c.hall_id, c.number
              FOR UPDATE OF c"""
    ):
        if (r["hall_id"], r["number"]) in counters:
            continue
        doing = f"正在办理 {r['display_number']}" if r["display_number"] else "窗口尚未关闭"
        reasons.append(
            f"不能删除大厅 {r['hall_id']} 的 {r['number']} 号窗口：{doing}，请先办结并关闭该窗口"
        )
    services = {(h.id, s.code) for h in config.halls for s in h.services}
    # Tickets of each hall's last two business days (older ones are history, not a queue).
    open_tickets = await conn.fetch(
        """SELECT t.hall_id, t.service_code, count(*)::int AS n
             FROM halls h
             CROSS JOIN LATERAL (SELECT max(business_day) AS d FROM tickets
                                  WHERE hall_id = h.id) m
             JOIN tickets t ON t.hall_id = h.id AND t.business_day >= m.d - 1
            WHERE t.state IN ('waiting', 'called', 'serving', 'parked')
            GROUP BY 1, 2 ORDER BY 1, 2"""
    )
    busy_halls = {r["hall_id"] for r in open_tickets}
    reasons.extend(
        f"不能删除大厅 {r['hall_id']} 的业务 {r['service_code']}：还有 {r['n']} 个号码在等候或办理"
        for r in open_tickets
        if r["hall_id"] in halls and (r["hall_id"], r["service_code"]) not in services
    )
    for r in await conn.fetch("SELECT id, tz, day_boundary FROM halls WHERE active"):
        new = halls.get(r["id"])
        if new is None:
            if r["id"] in busy_halls:
                reasons.append(f"不能删除大厅 {r['id']}：还有号码在等候或办理")
            continue
        if (new.timezone, new.day_boundary) != (r["tz"], r["day_boundary"]) and (
            r["id"] in busy_halls
        ):
            reasons.append(f"大厅 {r['id']} 的时区或日界线只能在没有等候和办理中的号码时修改")
    return reasons


def restart_needed(running: HallConfig | None, loaded: HallConfig) -> list[str]:
    """Parts of a change that servers take only at their next start (the serial buses and
    printers are opened once), in Chinese; empty when everything applies live."""
    if running is None:
        return []
    parts = []
    if (running.buses, running.devices) != (loaded.buses, loaded.devices):
        parts.append("串口总线与设备（buses、devices）的修改在服务重启后生效")
    if running.printers != loaded.printers:
        parts.append("打印机（printers）的修改在服务重启后生效")
    return parts


async def latest_snapshot(conn: asyncpg.Connection) -> tuple[int, HallConfig] | None:
    """The id and configuration of the last loaded snapshot."""
    row = await conn.fetchrow("SELECT id, body FROM config_snapshots ORDER BY id DESC LIMIT 1")
    if row is None:
        return None
    return row["id"], HallConfig.model_validate(row["body"])


async def latest_config(conn: asyncpg.Connection) -> HallConfig | None:
    body = await conn.fetchval("SELECT body FROM config_snapshots ORDER BY id DESC LIMIT 1")
    return None if body is None else HallConfig.model_validate(body)


def _parent_first(config: HallConfig) -> list[Any]:
    placed: set[str] = set()
    ordered = []
    pending = list(config.halls)
    while pending:
        progressed = False
        for hall in list(pending):
            if hall.parent is None or hall.parent in placed:
                ordered.append(hall)
                placed.add(hall.id)
                pending.remove(hall)
                progressed = True
        if not progressed:  # a cycle; the model validator reports it, keep input order here
            ordered.extend(pending)
            break
    return ordered
