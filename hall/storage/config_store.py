"""Store the hall configuration: rows for what the invariants reference, plus a snapshot."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import asyncpg

from hall.config.models import HallConfig
from hall.storage import access_repo


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
        await conn.execute(
            "INSERT INTO config_snapshots (sha256, body) VALUES ($1, $2)", digest, body
        )
        return True


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
