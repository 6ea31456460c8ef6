"""Authorisation matrix: every endpoint of the app's route table x every kind of caller.

The expected table below is written by hand, independently of ``hall.web.access.ACCESS_TABLE``:
an endpoint added to the app without a row here fails ``test_every_endpoint_has_a_row``, and a
row that does not match what the server does fails ``test_matrix``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hall.web.access import ACCESS_TABLE, Role, access_table_markdown
from hall.web.routes import ROUTES_KEY, Access, Route
from tests.access_helpers import (
    PASSWORD,
    admin_headers,
    create_device,
    create_staff,
    device_headers,
    open_session,
    staff_headers,
)

Client = TestClient[web.Request, web.Application]
Credentials = Callable[[Client], Awaitable[dict[str, str]]]


def _staff(
    job_no: str,
    roles: tuple[str, ...],
    halls: tuple[str, ...] = ("test",),
    counters: tuple[int, ...] = (),
) -> Credentials:
    async def make(client: Client) -> dict[str, str]:
        return await staff_headers(client, job_no, roles=roles, halls=halls, counters=counters)

    return make


def _device(kind: str, hall: str = "test", device_id: str = "k1") -> Credentials:
    async def make(client: Client) -> dict[str, str]:
        assert kind in ("kiosk", "display", "bridge")
        return await device_headers(client, kind, hall=hall, device_id=device_id)

    return make


async def _nobody(client: Client) -> dict[str, str]:
    return {}


# Requests go to hall "test" and counter 1.
CALLERS: dict[str, tuple[Role, Credentials]] = {
    "anonymous": (Role.ANONYMOUS, _nobody),
    "kiosk": (Role.KIOSK, _device("kiosk")),
    "kiosk_north": (Role.KIOSK, _device("kiosk", hall="north")),
    "display": (Role.DISPLAY, _device("display")),
    "display_north": (Role.DISPLAY, _device("display", hall="north")),
    "bridge": (Role.BRIDGE, _device("bridge")),
    "clerk": (Role.CLERK, _staff("m-clerk", ("clerk",), counters=(1,))),
    "clerk_counter2": (Role.CLERK, _staff("m-clerk2", ("clerk",), counters=(2,))),
    "clerk_north": (Role.CLERK, _staff("m-clerkn", ("clerk",), halls=("north",), counters=(1,))),
    "kiosk_operator": (Role.KIOSK_OPERATOR, _staff("m-guide", ("kiosk_operator",))),
    "duty_manager": (Role.DUTY_MANAGER, _staff("m-duty", ("duty_manager",))),
    "manager": (Role.MANAGER, _staff("m-mgr", ("manager",))),
    "manager_north": (Role.MANAGER, _staff("m-mgrn", ("manager",), halls=("north",))),
    "admin": (Role.ADMIN, _staff("m-admin", ("admin",), halls=())),
}

EVERYONE = frozenset(CALLERS)
SIGNED_IN = EVERYONE - {"anonymous"}
TEST_HALL_STAFF = frozenset(
    {"clerk", "clerk_counter2", "kiosk_operator", "duty_manager", "manager", "admin"}
)
ADMIN_ONLY = frozenset({"admin"})

EXPECTED: dict[str, frozenset[str]] = {
    # public
    "healthz": EVERYONE,
    "openapi": EVERYONE,
    "halls": EVERYONE,
    "services": EVERYONE,
    "login": EVERYONE,
    "device_login": EVERYONE,
    "tv": EVERYONE,
    "static": EVERYONE,
    "ticket_status": EVERYONE,
    # issuing: a kiosk of the hall, or staff of the hall on a citizen's behalf
    "issue_ticket": TEST_HALL_STAFF | {"kiosk"},
    # hall state: displays and the bridge of the hall, staff of the hall
    "snapshot": TEST_HALL_STAFF | {"display", "bridge"},
    "live": TEST_HALL_STAFF | {"display", "bridge"},
    # a counter: its own clerk, the hall's duty manager and managers, admins
    "counter": frozenset({"clerk", "duty_manager", "manager", "admin"}),
    "counter_action": frozenset({"clerk", "duty_manager", "manager", "admin"}),
    # devices on the bus: the bridge link checks for a bridge token itself (hall/web/bridge.py)
    "bridge": frozenset({"bridge"}),
    "devices": frozenset({"manager", "admin"}),
    "device_set_address": ADMIN_ONLY,
    # own session
    "me": SIGNED_IN,
    "logout": SIGNED_IN,
    # own password: staff accounts only (devices have tokens, not passwords)
    "change_password": frozenset(
        {
            "clerk",
            "clerk_counter2",
            "clerk_north",
            "kiosk_operator",
            "duty_manager",
            "manager",
            "manager_north",
            "admin",
        }
    ),
    # administration
    "sessions": ADMIN_ONLY,
    "revoke_session": ADMIN_ONLY,
    "create_device_token": ADMIN_ONLY,
    "revoke_device_token": ADMIN_ONLY,
    "audit": ADMIN_ONLY,
    # device pairing: the browser's own pairing cookie is its credential; a manager approves
    "pair_page": EVERYONE,
    "pairing_start": EVERYONE,
    "pairing_status": EVERYONE,
    "pairing_claim": EVERYONE,
    "pairing_approve": frozenset({"manager", "admin"}),
    # the admin page lists codes and the hall's paired devices, and revokes them (its managers)
    "devices_page": EVERYONE,
    "pairing_list": frozenset({"manager", "admin"}),
    "hall_device_revoke": frozenset({"manager", "admin"}),
    # kiosk feature: printers and print jobs (补打, cancel) for the hall's staff
    "kiosk_printers": TEST_HALL_STAFF,
    "kiosk_print_jobs": TEST_HALL_STAFF,
    "kiosk_reprint": TEST_HALL_STAFF,
    "kiosk_cancel_print_job": TEST_HALL_STAFF,
    # kiosk feature: pages are public (they check /api/v1/me); the kiosk API is for a paired
    # kiosk device only, in whichever hall it belongs to (the hall comes from the device)
    "start_page": EVERYONE,
    "page_hooks": EVERYONE,
    "kiosk_page": EVERYONE,
    "kiosk_files": EVERYONE,
    "ticket_page": EVERYONE,
    "ticket_follow": EVERYONE,
    "lookup_page": EVERYONE,
    "ticket_lookup": EVERYONE,
    "kiosk_info": frozenset({"kiosk", "kiosk_north"}),
    "kiosk_issue": frozenset({"kiosk", "kiosk_north"}),
    # counters feature: pages are public (they check /api/v1/me); the terminal's read API
    # like the counter actions; one's own counters for staff; device credentials for admins;
    # alarms and sign-in lockouts for the hall's managers
    "login_page": EVERYONE,
    "password_page": EVERYONE,
    "counter_page": EVERYONE,
    "counters_static": EVERYONE,
    "counter_desk": frozenset({"clerk", "duty_manager", "manager", "admin"}),
    "my_counters": frozenset(
        {
            "clerk",
            "clerk_counter2",
            "clerk_north",
            "kiosk_operator",
            "duty_manager",
            "manager",
            "manager_north",
            "admin",
        }
    ),
    "device_credentials": ADMIN_ONLY,
    "supervision_alarms": frozenset({"manager", "admin"}),
    "supervision_day": frozenset({"manager", "admin"}),
    "sign_in_locks": frozenset({"manager", "admin"}),
    "sign_in_unlock_staff": frozenset({"manager", "admin"}),
    "sign_in_unlock_counter": frozenset({"manager", "admin"}),
    # manager feature: the dashboard page is public (it checks /api/v1/me); reports, staffing
    # advice, dashboard data and alarm acknowledgement for the hall's managers; staff and the
    # hall config for admins
    "manage_page": EVERYONE,
    "manage_files": EVERYONE,
    "manager_report": frozenset({"manager", "admin"}),
    "manager_staffing": frozenset({"manager", "admin"}),
    "manager_dashboard": frozenset({"manager", "admin"}),
    "manager_alarm_ack": frozenset({"manager", "admin"}),
    "manager_staff": ADMIN_ONLY,
    "manager_staff_save": ADMIN_ONLY,
    "manager_staff_disable": ADMIN_ONLY,
    "manager_staff_enable": ADMIN_ONLY,
    "manager_staff_password": ADMIN_ONLY,
    "manager_config": ADMIN_ONLY,
    "manager_config_check": ADMIN_ONLY,
    "manager_config_apply": ADMIN_ONLY,
    # the multi-hall overview has no hall in its path: every manager sees their own halls
    "manager_overview": frozenset({"manager", "manager_north", "admin"}),
    "manager_settings": ADMIN_ONLY,
    "manager_settings_check": ADMIN_ONLY,
    "manager_settings_apply": ADMIN_ONLY,
    "kiosk_guide": frozenset({"kiosk", "kiosk_north"}),
    "kiosk_guide_matter": frozenset({"kiosk", "kiosk_north"}),
    "kiosk_notice": frozenset({"kiosk", "kiosk_north"}),
    "kiosk_check_in": frozenset({"kiosk", "kiosk_north"}),
    "kiosk_add_appointment": frozenset({"manager", "admin"}),
    # display feature: the TV page sends anyone not allowed to /pair; its files and voice
    # segments are public; its status and announcements are for the hall's displays and staff
    "display_voice": EVERYONE,
    "display_files": EVERYONE,
    "tv_status": TEST_HALL_STAFF | {"display", "bridge"},
    "display_announcements": TEST_HALL_STAFF | {"display", "bridge"},
    # evaluator feature: cases at the counter (its clerk), found by any staff of the hall;
    # ratings, alarms and the upstream outbox for managers; the web pad is a display device
    # of the hall (only the tablet itself submits ratings); the phone link's token is its
    # credential; pages are public
    "evaluator_create_case": frozenset({"clerk", "duty_manager", "manager", "admin"}),
    "evaluator_matters": TEST_HALL_STAFF,
    "evaluator_find_cases": TEST_HALL_STAFF,
    "evaluator_get_case": TEST_HALL_STAFF,
    "evaluator_case_status": TEST_HALL_STAFF,
    "evaluator_import_cases": frozenset({"manager", "admin"}),
    "evaluator_pull_cases": frozenset({"manager", "admin"}),
    "evaluator_list_ratings": frozenset({"manager", "admin"}),
    "evaluator_pad_state": TEST_HALL_STAFF | {"display", "bridge"},
    "evaluator_pad_rate": frozenset({"display"}),  # staff never rate for the citizen
    "evaluator_phone_case": EVERYONE,
    "evaluator_phone_rate": EVERYONE,
    "evaluator_list_tasks": TEST_HALL_STAFF,
    "evaluator_task_action": TEST_HALL_STAFF,
    "evaluator_alarms": frozenset({"manager", "admin"}),
    "evaluator_outbox": frozenset({"manager", "admin"}),
    "evaluator_outbox_retry": frozenset({"manager", "admin"}),
    "evaluator_pad_page": EVERYONE,
    "evaluator_hall_pad_page": EVERYONE,
    "evaluator_phone_page": EVERYONE,
    "evaluator_ratings_page": EVERYONE,
    "evaluator_static": EVERYONE,
}


_PARAM = re.compile(r"{(\w+)(?::[^}]*)?}")


def _routes(app: web.Application) -> list[Route]:
    table: list[Route] = app[ROUTES_KEY]
    return list(table)


def test_every_caller_kind_of_the_access_table_is_exercised() -> None:
    """A new Role needs callers here too."""
    assert {role for role, _ in CALLERS.values()} == set(Role)


async def test_every_endpoint_has_a_row(access_client: Client) -> None:
    names = [r.name for r in _routes(access_client.app)]
    assert len(names) == len(set(names)), "route names must be unique"
    missing = sorted(set(names) - set(EXPECTED))
    assert not missing, f"add the expected callers of {missing} to EXPECTED in {__file__}"


async def _samples(
    client: Client,
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, Any]]]:
    """Path parameters and bodies per route: real objects so allowed callers reach the handler."""
    admin = await admin_headers(client, "m-setup")
    issued = await client.post("/api/v1/halls/test/tickets", json={"service": "BDC"}, headers=admin)
    assert issued.status == 201, await issued.text()
    ticket = (await issued.json())["token"]
    await create_staff(client, "victim", roles=("clerk",))
    victim_session, _, _ = await open_session(client, "victim")
    victim_device, device_token = await create_device(client, "display", device_id="victim")
    common = {
        "hall": "test",
        "number": "1",
        "action": "open",
        "token": ticket,
        "path": "live.js",
        "code": "123456",
        "name": "counter.js",
        "job_no": "victim",
        "slot": "counter.finish",
        "case": "1",
        "task": "1",
        "record": "1",
    }
    params = {
        "revoke_session": {**common, "id": str(victim_session)},
        "revoke_device_token": {**common, "id": str(victim_device)},
        "hall_device_revoke": {**common, "id": str(victim_device)},
        "kiosk_cancel_print_job": {**common, "id": "1"},
        "": common,
    }
    bodies: dict[str, dict[str, Any]] = {
        "issue_ticket": {"service": "BDC"},
        "kiosk_reprint": {"number": "A001"},
        "pairing_approve": {"kind": "kiosk", "device_id": "k1"},
        "kiosk_issue": {"service": "BDC"},
        "kiosk_notice": {"matter": "T0001"},
        "kiosk_check_in": {"code": "NONE01"},
        "kiosk_add_appointment": {
            "code": "M0001",
            "service": "BDC",
            "slot_start": "2026-11-24T10:00:00+08:00",
            "slot_end": "2026-11-24T10:30:00+08:00",
        },
        "login": {"job_no": "victim", "password": PASSWORD},
        "device_login": {"token": device_token},
        "create_device_token": {"kind": "bridge", "hall": "test", "device_id": "edge1"},
        "change_password": {"current_password": PASSWORD, "new_password": "matrix-new-pass-1"},
        "device_credentials": {"pin": "1234"},
        "manager_alarm_ack": {"key": "matrix:1"},
        "manager_staff_save": {
            "job_no": "m-new",
            "name": "新员工",
            "roles": ["clerk"],
            "password": "matrix-new-pass-2",
        },
        "manager_staff_password": {"password": "matrix-new-pass-3"},
    }
    return params, bodies


async def test_matrix(access_client: Client) -> None:
    client = access_client
    params, bodies = await _samples(client)
    wrong: list[str] = []
    for route in _routes(client.app):
        expected = EXPECTED.get(route.name)
        if expected is None:
            wrong.append(f"{route.name}: no row in EXPECTED")
            continue
        values = params.get(route.name, params[""])
        path = _PARAM.sub(lambda m, v=values: v[m.group(1)], route.path)  # type: ignore[misc]
        for caller, (_, credentials) in CALLERS.items():
            headers = await credentials(client)
            client.session.cookie_jar.clear()  # the login row's cookie must not leak
            response = await client.request(
                route.method, path, json=bodies.get(route.name), headers=headers
            )
            text = await response.text()
            assert response.status < 500, f"{route.name} as {caller}: {response.status} {text}"
            got = response.status not in (401, 403)
            if got != (caller in expected):
                verdict = "allowed" if got else "denied"
                wrong.append(f"{route.method} {path} ({route.name}) {verdict} {caller}: {text}")
            if not got:
                want = 401 if caller == "anonymous" else 403
                assert response.status == want, f"{route.name} as {caller}: {text}"
                assert response.content_type == "application/problem+json"
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("access", list(Access))
def test_access_table_covers_every_rule(access: Access) -> None:
    """Every Access value has a row; roles absent from it are denied."""
    assert access in ACCESS_TABLE


def test_docs_show_the_access_table_the_code_enforces() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text("utf-8")
    shown = docs.split("<!-- access-table:begin -->\n")[1].split("<!-- access-table:end -->")[0]
    assert shown == access_table_markdown(), "paste access_table_markdown() into docs/security.md"
