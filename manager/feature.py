"""FEATURE: what the manager slice adds to the server (wired by hall/app.py)."""

from __future__ import annotations

from hall.features import Feature, Migrations
from hall.web.start_page import Audience, PageLink
from manager import admin, rollup, settings, web

FEATURE = Feature(
    name="manager",
    routes=(*web.ROUTES, *admin.ROUTES, *settings.ROUTES),
    migrations=Migrations("manager", first=70, last=79),
    tasks=(rollup.rolling,),
    pages=(
        PageLink("/manage?hall={hall}", "管理看板（排队、窗口、告警）", Audience.MANAGER),
        PageLink("/manage/report.html?hall={hall}", "运行报表与窗口配置建议", Audience.MANAGER),
        PageLink("/manage/overview.html", "多大厅总览（逐级汇总）", Audience.MANAGER),
        PageLink("/manage/admin.html", "人员与大厅配置", Audience.MANAGER),
        PageLink("/manage/settings.html?hall={hall}", "日历与阈值", Audience.MANAGER),
    ),
)
