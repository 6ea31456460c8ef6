"""The multi-hall overview: one business day's figures of every hall a manager looks after,
rolled up the hall tree (``parent`` in the hall config: township → county → city).

A manager sees the halls of their account (all halls when it names none) and every hall
under them; each hall has its own figures and its subtree's (itself plus everything under
it). Figures are counts and times only, never a citizen's data.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

import asyncpg

from hall.config.models import HallConfig
from hall.domain.calendar import business_day


@dataclass(frozen=True, slots=True)
class HallFigures:
    issued: int = 0
    served: int = 0
    no_show: int = 0
    waiting: int = 0
    longest_wait_s: float | None = None
    """Of the tickets waiting now (None when nobody waits)."""
    rated: int = 0
    satisfied: int = 0
    bad: int = 0

    def plus(self, other: HallFigures) -> HallFigures:
        waits = [w for w in (self.longest_wait_s, other.longest_wait_s) if w is not None]
        return HallFigures(
            issued=self.issued + other.issued,
            served=self.served + other.served,
            no_show=self.no_show + other.no_show,
            waiting=self.waiting + other.waiting,
            longest_wait_s=max(waits) if waits else None,
            rated=self.rated + other.rated,
            satisfied=self.satisfied + other.satisfied,
            bad=self.bad + other.bad,
        )

    @property
    def satisfaction(self) -> float | None:
        return self.satisfied / self.rated if self.rated else None


@dataclass(frozen=True, slots=True)
class HallNode:
    hall: str
    name: str
    level: str
    parent: str | None
    depth: int
    """0 for a top hall of this overview; children one deeper."""
    day: date
    """The hall's business day the figures are of (halls may lie in different time zones)."""
    own: HallFigures
    total: HallFigures
    """This hall and every hall under it."""
    halls: int
    """How many halls ``total`` adds up (this one included)."""


def visible_halls(config: HallConfig, mine: tuple[str, ...]) -> list[str]:
    """The caller's halls and every hall under them, in config order (all for an empty list)."""
    ids = [h.id for h in config.halls]
    if not mine:
        return ids
    parent = {h.id: h.parent for h in config.halls}

    def under_mine(hall: str | None) -> bool:
        seen: set[str] = set()
        while hall is not None and hall not in seen:  # the config refuses cycles anyway
            if hall in mine:
                return True
            seen.add(hall)
            hall = parent.get(hall)
        return False

    return [h for h in ids if under_mine(h)]


_FIGURES = """
WITH d AS (SELECT * FROM unnest($1::text[], $2::date[]) AS d (hall_id, day))
SELECT d.hall_id,
       count(t.id)::int AS issued,
       count(*) FILTER (WHERE t.state = 'done')::int AS served,
       count(*) FILTER (WHERE t.state = 'no_show')::int AS no_show,
       count(r.level)::int AS rated,
       count(*) FILTER (WHERE r.level >= 3)::int AS satisfied,
       count(*) FILTER (WHERE r.level <= 2)::int AS bad,
       (SELECT count(*) FROM tickets w WHERE w.hall_id = d.hall_id AND w.state = 'waiting')::int
           AS waiting,
       (SELECT min(w.issued_at) FROM tickets w
         WHERE w.hall_id = d.hall_id AND w.state = 'waiting') AS oldest
  FROM d
  LEFT JOIN tickets t ON t.hall_id = d.hall_id AND t.business_day = d.day
  LEFT JOIN ratings r ON r.ticket_id = t.id
 GROUP BY d.hall_id
"""


async def overview(
    conn: asyncpg.Connection, config: HallConfig, mine: tuple[str, ...], now: datetime
) -> list[HallNode]:
    """Every visible hall in tree order (parents before their children), with figures."""
    halls = {h.id: h for h in config.halls}
    shown = visible_halls(config, mine)
    days = {h: business_day(now, ZoneInfo(halls[h].timezone), halls[h].day_boundary) for h in shown}
    own: dict[str, HallFigures] = {}
    for r in await conn.fetch(_FIGURES, shown, [days[h] for h in shown]):
        oldest = r["oldest"]
        own[r["hall_id"]] = HallFigures(
            issued=r["issued"],
            served=r["served"],
            no_show=r["no_show"],
            waiting=r["waiting"],
            longest_wait_s=(now - oldest).total_seconds() if oldest is not None else None,
            rated=r["rated"],
            satisfied=r["satisfied"],
            bad=r["bad"],
        )
    visible = set(shown)
    children: dict[str | None, list[str]] = {}
    for h in shown:
        parent = halls[h].parent
        children.setdefault(parent if parent in visible else None, []).append(h)

    out: list[HallNode] = []

    def walk(hall: str, depth: int) -> tuple[HallFigures, int]:
        at = len(out)
        out.append(
            HallNode(
                hall=hall,
                name=halls[hall].name,
                level=str(halls[hall].level),
                parent=halls[hall].parent,
                depth=depth,
                day=days[hall],
                own=own.get(hall, HallFigures()),
                total=HallFigures(),
                halls=1,
            )
        )
        total, count = out[at].own, 1
        for child in children.get(hall, []):
            sub, n = walk(child, depth + 1)
            total, count = total.plus(sub), count + n
        out[at] = replace(out[at], total=total, halls=count)
        return total, count

    for top in children.get(None, []):
        walk(top, 0)
    return out
