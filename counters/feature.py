"""FEATURE: what the counters slice adds to the server (wired by hall/app.py)."""

from __future__ import annotations

from counters import web
from counters.devices import CALLER
from counters.supervision import supervising
from hall.features import Feature, Migrations
from hall.web.start_page import Audience, PageLink

FEATURE = Feature(
    name="counters",
    routes=tuple(web.ROUTES),
    migrations=Migrations("counters", first=40, last=49),
    tasks=(supervising,),
    device_roles=(CALLER,),
    pages=(
        PageLink("/login", "工作人员登录", Audience.CLERK),
        PageLink("/counter?hall={hall}", "窗口终端（叫号、办结、转办、暂停）", Audience.CLERK),
        PageLink("/password", "修改密码", Audience.CLERK),
    ),
)
