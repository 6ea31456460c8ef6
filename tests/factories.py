"""Small hall configurations for tests."""

from __future__ import annotations

from typing import Any

from hall.config.models import HallConfig


def hall_config(
    *,
    counters: int = 4,
    quota: int | None = None,
    issue_outside_hours: bool = True,
    priority_ratio: int = 3,
    extra_hall: dict[str, Any] | None = None,
) -> HallConfig:
    """One county hall 'test' with services A (不动产), B (税务), C (综合, group with D)."""
    services = [
        {
            "code": "BDC",
            "name": "不动产登记",
            "prefix": "A",
            "daily_quota": quota,
            "priority_classes": ["elderly", "disabled"],
        },
        {"code": "TAX", "name": "税务", "prefix": "B", "transfer_placement": "issue_time"},
        {
            "code": "SOC",
            "name": "社保",
            "prefix": "C",
            "number_group": "CD",
            "purposes": ["apply", "consult"],
        },
        {"code": "MED", "name": "医保", "prefix": "C", "number_group": "CD"},
    ]
    window_list: list[dict[str, Any]] = [
        {"number": n, "services": [{"code": "BDC"}, {"code": "TAX"}]}
        for n in range(1, counters + 1)
    ]
    window_list.append(
        {
            "number": 90,
            "kind": "comprehensive",
            "services": [{"code": "SOC"}, {"code": "MED"}, {"code": "TAX"}],
        }
    )
    hall: dict[str, Any] = {
        "id": "test",
        "name": "测试县政务服务中心",
        "timezone": "Asia/Shanghai",
        "issue_outside_hours": issue_outside_hours,
        "call_policy": {"priority_ratio": priority_ratio, "max_recalls": 2},
        "services": services,
        "counters": window_list,
        # The kiosk the tests' kiosk device tokens stand for: every service of the hall.
        "kiosks": [{"id": "k1", "name": "取号机"}],
    }
    hall.update(extra_hall or {})
    return HallConfig.model_validate(
        {"halls": [hall], "staff": [{"job_no": "c001", "name": "王小明", "halls": ["test"]}]}
    )
