"""Schemathesis against the served OpenAPI document, as every kind of caller: no 5xx, ever.

For each role the test fetches ``/api/v1/openapi.json`` from the running app, and for every
operation lets schemathesis generate valid (positive) and invalid (negative) requests, sent over
real HTTP on loopback. Every answer must be below 500 and, when it is an error, problem+json;
the server log (captured in-process) must hold no traceback.

``HALL_HOSTILE_EXAMPLES`` sets the examples per operation, mode and role: the default 5 sends
about 310 requests per role over the 31 operations (under 2 minutes for the six roles on a
loaded 2-core machine); 30 sends six times as many. Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.generation import GenerationMode

from tests.access_helpers import admin_headers, device_headers, staff_headers
from tests.hostile.conftest import Client, assert_no_tracebacks

EXAMPLES = int(os.environ.get("HALL_HOSTILE_EXAMPLES", "5"))
ROLES = ("admin", "manager", "clerk", "kiosk", "display", "anonymous")
# The session of a role is renewed for each operation: logout and revocation are in the API.


async def _headers(client: Client, role: str, n: int) -> dict[str, str]:
    if role == "admin":
        return await admin_headers(client, f"adm{n}")
    if role == "manager":
        return await staff_headers(client, f"mgr{n}", roles=("manager",), halls=("test",))
    if role == "clerk":
        return await staff_headers(client, f"clk{n}", counters=(1, 2))
    if role == "kiosk":
        return await device_headers(client, "kiosk", device_id="k1")
    if role == "display":
        return await device_headers(client, "display", device_id="s1")
    return {}


def _fuzz(op: Any, base_url: str, headers: dict[str, str], tally: Counter[str]) -> list[str]:
    """Run schemathesis' cases of one operation (blocking: called in a worker thread)."""
    failures: list[str] = []
    session = requests.Session()
    # Real hall and counter ids reach the handlers; generated ones mostly stop at 404.
    real = {k: v for k, v in (("hall", "test"), ("number", "1")) if f"{{{k}}}" in op.path}
    plans = [(GenerationMode.POSITIVE, real), (GenerationMode.NEGATIVE, real)]
    if real:
        plans.append((GenerationMode.NEGATIVE, {}))
    for mode, pinned in plans:
        strategy = op.as_strategy(generation_mode=mode, path_parameters=pinned or None)

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=False,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def run(case: Any) -> None:
            # A generated Authorization header would replace the role's: keep the role's.
            case.headers = {**(case.headers or {}), **headers}
            response = case.call(base_url=base_url, session=session, timeout=30)
            tally["requests"] += 1
            tally[f"{response.status_code // 100}xx"] += 1
            if b"Traceback" in response.content:
                failures.append(f"{case.method} {case.formatted_path}: traceback in the body")
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}")
            elif response.status_code >= 400 and response.status_code != 426:
                kind = (response.headers.get("content-type") or [""])[0]
                if not kind.startswith("application/problem+json"):
                    failures.append(
                        f"{case.method} {case.formatted_path} -> {response.status_code} {kind!r}"
                    )

        try:
            run()
        except Exception as exc:  # an unsatisfiable strategy is not a server error
            if "Unsatisfiable" not in type(exc).__name__:
                raise
    return failures


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("role", ROLES)
async def test_the_served_api_never_answers_5xx(
    hostile_client: Client, role: str, caplog: pytest.LogCaptureFixture
) -> None:
    base_url = str(hostile_client.make_url("")).rstrip("/")
    document = await (await hostile_client.get("/api/v1/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 15, "the whole route table is in the document"
    tally: Counter[str] = Counter()
    failures: list[str] = []
    for n, op in enumerate(operations):
        headers = await _headers(hostile_client, role, n)
        failures += await asyncio.to_thread(_fuzz, op, base_url, headers, tally)
    print(f"schemathesis role={role} operations={len(operations)} {dict(tally)}")
    assert not failures, failures[:20]
    assert tally["5xx"] == 0
    assert_no_tracebacks(caplog)
