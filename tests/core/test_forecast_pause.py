"""A paused counter counts in the wait forecast: its clerk is expected back after a short
break (``PAUSE_GUESS_S``, 10 minutes in all), and never in less than a minute."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from hall.config.models import HallConfig
from hall.ports import FixedClock
from hall.services.directory import Directory
from hall.services.queue import ActionParams, CounterAction, IssueTicket, QueueService
from tests.factories import hall_config

A = CounterAction


@pytest.fixture
def config() -> HallConfig:
    return hall_config(counters=2)  # both serve BDC (8 minutes a visit by default)


async def test_a_paused_counter_is_expected_back_after_a_short_break(
    pool: asyncpg.Pool, config: HallConfig, clock: FixedClock
) -> None:
    service = QueueService(pool, Directory(config), clock)
    await service.act("test", 1, A.OPEN, "c001")
    await service.act("test", 2, A.OPEN, "c002")
    await service.act("test", 2, A.PAUSE, "c002", ActionParams(reason="午休"))
    tickets = [
        await service.issue(IssueTicket(hall_id="test", service_code="BDC")) for _ in range(3)
    ]
    # Counter 1 calls the first at once and the second after its visit (8 minutes); counter 2
    # is back from its break after 10 minutes, before counter 1's second visit ends.
    assert [t.estimated_wait_s for t in tickets] == pytest.approx([0.0, 480.0, 600.0])
    # Nine and a half minutes into the break: counter 2 is still expected, in a minute at
    # the least, and the second ticket goes to it.
    clock.set(clock.now() + timedelta(seconds=570))
    second = await service.ticket_status(tickets[1].token)
    assert second.estimated_wait_s == pytest.approx(60.0)
    # Long past the guess, still a minute away (not "now", not a negative wait).
    clock.set(clock.now() + timedelta(seconds=1800))
    second = await service.ticket_status(tickets[1].token)
    assert second.estimated_wait_s == pytest.approx(60.0)
