"""Display numbers: daily reset at the hall's boundary, quotas, groups, hours."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from hall.config.models import HallConfig, Purpose
from hall.domain.errors import OutsideHours, PurposeNotAllowed, QuotaExhausted
from hall.ports import FixedClock
from hall.services.directory import Directory
from hall.services.queue import IssueTicket, QueueService
from tests.factories import hall_config


def _service(pool: asyncpg.Pool, config: HallConfig, clock: FixedClock) -> QueueService:
    return QueueService(pool, Directory(config), clock)


async def _number(service: QueueService, code: str = "BDC") -> str:
    view = await service.issue(IssueTicket(hall_id="test", service_code=code))
    return view.ticket.display_number


async def test_numbers_reset_at_the_shanghai_day_boundary_not_utc_midnight(
    pool: asyncpg.Pool, config: HallConfig
) -> None:
    # Boundary 03:00 Asia/Shanghai = 19:00 UTC; UTC midnight is 08:00 in Shanghai.
    clock = FixedClock(datetime(2026, 11, 24, 10, 0, tzinfo=UTC))  # 18:00 local, 24th
    service = _service(pool, config, clock)
    assert await _number(service) == "A001"
    clock.set(datetime(2026, 11, 24, 18, 59, 59, tzinfo=UTC))  # 02:59:59 local, 25th
    assert await _number(service) == "A002"
    clock.set(datetime(2026, 11, 24, 19, 0, tzinfo=UTC))  # 03:00 local: new business day
    assert await _number(service) == "A001"
    clock.set(datetime(2026, 11, 24, 23, 59, 59, tzinfo=UTC))
    assert await _number(service) == "A002"
    clock.set(datetime(2026, 11, 25, 0, 0, 1, tzinfo=UTC))  # UTC midnight passed: no reset
    assert await _number(service) == "A003"
    days = await pool.fetch("SELECT DISTINCT business_day::text AS d FROM tickets ORDER BY 1")
    assert [r["d"] for r in days] == ["2026-11-24", "2026-11-25"]


async def test_services_in_one_number_group_share_a_sequence(
    pool: asyncpg.Pool, config: HallConfig, clock: FixedClock
) -> None:
    service = _service(pool, config, clock)
    assert [await _number(service, c) for c in ("SOC", "MED", "SOC")] == ["C001", "C002", "C003"]
    assert await _number(service, "TAX") == "B001"


@pytest.fixture
def quota_config() -> HallConfig:
    return hall_config(quota=3)


async def test_quota_exhaustion_is_a_clear_error_and_keeps_numbers_contiguous(
    pool: asyncpg.Pool, quota_config: HallConfig, clock: FixedClock
) -> None:
    async with pool.acquire() as conn:
        from hall.storage.config_store import apply_config

        await apply_config(conn, quota_config)
    service = _service(pool, quota_config, clock)
    assert [await _number(service) for _ in range(3)] == ["A001", "A002", "A003"]
    with pytest.raises(QuotaExhausted) as err:
        await _number(service)
    assert "今日号源已取完" in err.value.detail
    assert await pool.fetchval("SELECT count(*) FROM tickets WHERE service_code = 'BDC'") == 3
    assert await pool.fetchval("SELECT max(last_value) FROM number_counters") == 3
    # Another service is unaffected.
    assert await _number(service, "TAX") == "B001"


async def test_tickets_refused_outside_business_hours_unless_configured(
    pool: asyncpg.Pool,
) -> None:
    strict = hall_config(issue_outside_hours=False)
    night = FixedClock(datetime(2026, 11, 24, 14, 0, tzinfo=UTC))  # 22:00 in Shanghai
    service = _service(pool, strict, night)
    with pytest.raises(OutsideHours) as err:
        await _number(service)
    assert "08:30" in err.value.detail  # tells the citizen when numbers are issued again
    assert await pool.fetchval("SELECT count(*) FROM tickets") == 0
    night.set(datetime(2026, 11, 25, 1, 0, tzinfo=UTC))  # 09:00 next day
    assert await _number(service) == "A001"


async def test_weekend_and_holiday_are_closed(pool: asyncpg.Pool) -> None:
    strict = hall_config(
        issue_outside_hours=False, extra_hall={"calendar": {"holidays": ["2026-11-26"]}}
    )
    service = _service(pool, strict, FixedClock(datetime(2026, 11, 26, 2, 0, tzinfo=UTC)))
    with pytest.raises(OutsideHours):
        await _number(service)
    saturday = FixedClock(datetime(2026, 11, 28, 2, 0, tzinfo=UTC))
    with pytest.raises(OutsideHours):
        await _number(_service(pool, strict, saturday))


async def test_purpose_limits(pool: asyncpg.Pool, config: HallConfig, clock: FixedClock) -> None:
    service = _service(pool, config, clock)
    with pytest.raises(PurposeNotAllowed):
        await service.issue(
            IssueTicket(hall_id="test", service_code="SOC", purpose=Purpose.COLLECT)
        )
    view = await service.issue(
        IssueTicket(hall_id="test", service_code="SOC", purpose=Purpose.CONSULT)
    )
    assert view.ticket.purpose == "consult"


async def test_numbers_grow_past_their_width_as_the_domain_formats_them(
    pool: asyncpg.Pool, clock: FixedClock
) -> None:
    from hall.domain.tickets import format_number

    wide = hall_config(
        extra_hall={
            "services": [{"code": "BDC", "name": "不动产登记", "prefix": "A", "number_start": 998}],
            "counters": [{"number": 1, "services": [{"code": "BDC"}]}],
        }
    )
    async with pool.acquire() as conn:
        from hall.storage.config_store import apply_config

        await apply_config(conn, wide)
    service = _service(pool, wide, clock)
    numbers = [await _number(service) for _ in range(3)]
    assert numbers == [format_number("A", n, 3) for n in (998, 999, 1000)]
    assert numbers == ["A998", "A999", "A1000"]


async def test_quota_of_one_service_in_a_shared_group(
    pool: asyncpg.Pool, clock: FixedClock
) -> None:
    shared = hall_config(
        extra_hall={
            "services": [
                {
                    "code": "SOC",
                    "name": "社保",
                    "prefix": "C",
                    "number_group": "CD",
                    "daily_quota": 2,
                },
                {"code": "MED", "name": "医保", "prefix": "C", "number_group": "CD"},
            ],
            "counters": [{"number": 1, "services": [{"code": "SOC"}, {"code": "MED"}]}],
        }
    )
    async with pool.acquire() as conn:
        from hall.storage.config_store import apply_config

        await apply_config(conn, shared)
    service = _service(pool, shared, clock)
    assert [await _number(service, c) for c in ("SOC", "MED", "SOC")] == ["C001", "C002", "C003"]
    with pytest.raises(QuotaExhausted):
        await _number(service, "SOC")
    # The refused ticket took no number and left no trace; the group's other service goes on.
    assert await _number(service, "MED") == "C004"
    assert await pool.fetchval("SELECT count(*) FROM tickets WHERE service_code = 'SOC'") == 2
    assert await pool.fetchval("SELECT count(*) FROM events") == 4
