"""Per-address token buckets: 429 problem+json with Retry-After, refill, who is exempt."""

from __future__ import annotations

from datetime import timedelta

from hall.ports import FixedClock
from hall.security.ratelimit import BucketSpec, RateLimiter
from tests.access.conftest import roomy_settings
from tests.access_helpers import device_headers
from tests.conftest import AppFactory


async def test_anonymous_clients_get_429_with_retry_after_and_recover(
    make_client: AppFactory, clock: FixedClock
) -> None:
    client = await make_client(access=roomy_settings(public_rate=BucketSpec(3, 0.5)))
    for _ in range(3):
        assert (await client.get("/api/v1/halls")).status == 200
    response = await client.get("/api/v1/halls/test/services")  # same client, same bucket
    assert response.status == 429
    assert response.headers["Retry-After"] == "2"
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert (body["code"], body["retry_after_s"]) == ("rate_limited", 2)
    assert body["title"] == "请求过于频繁，请稍后再试"

    clock.set(clock.now() + timedelta(seconds=2))
    assert (await client.get("/api/v1/halls")).status == 200
    assert (await client.get("/api/v1/halls")).status == 429


async def test_authenticated_devices_are_not_charged_to_the_public_bucket(
    make_client: AppFactory,
) -> None:
    client = await make_client(access=roomy_settings(public_rate=BucketSpec(2, 0.01)))
    kiosk = await device_headers(client, "kiosk")
    for _ in range(10):
        assert (await client.get("/api/v1/halls/test/services", headers=kiosk)).status == 200
    assert (await client.get("/api/v1/halls")).status == 200


async def test_bad_credentials_are_charged_like_anonymous_guesses(
    make_client: AppFactory,
) -> None:
    client = await make_client(access=roomy_settings(public_rate=BucketSpec(2, 0.01)))
    forged = {"Authorization": "Bearer hd1_guess"}
    statuses = [
        (await client.get("/api/v1/halls/test/snapshot", headers=forged)).status for _ in range(3)
    ]
    assert statuses == [401, 401, 429]


async def test_login_attempts_have_their_own_stricter_bucket(make_client: AppFactory) -> None:
    client = await make_client(access=roomy_settings(login_rate=BucketSpec(2, 0.1)))
    attempt = {"job_no": "c001", "password": "guess-guess"}
    first = [(await client.post("/api/v1/login", json=attempt)).status for _ in range(2)]
    assert first == [401, 401]
    blocked = await client.post("/api/v1/login", json=attempt)
    assert blocked.status == 429
    assert blocked.headers["Retry-After"] == "10"
    assert (await client.get("/api/v1/halls")).status == 200  # browsing is not blocked


def test_buckets_are_per_client_and_bounded() -> None:
    limiter = RateLimiter(BucketSpec(1, 1), max_keys=2)
    assert limiter.take("a", 0.0) == 0
    assert limiter.take("a", 0.0) == 1
    assert limiter.take("b", 0.0) == 0  # another address has its own bucket
    assert limiter.take("a", 1.0) == 0  # refilled after a second
    limiter.take("c", 1.0)
    limiter.take("d", 1.0)  # "a" and "b" are the least recently used; only two are kept
    assert limiter.take("a", 1.0) == 0


async def test_clients_behind_a_trusted_gateway_get_their_own_buckets(
    make_client: AppFactory,
) -> None:
    client = await make_client(
        access=roomy_settings(
            public_rate=BucketSpec(1, 0.01), trusted_proxies=frozenset({"127.0.0.1"})
        )
    )
    first = {"X-Forwarded-For": "203.0.113.5"}
    second = {"X-Forwarded-For": "203.0.113.99, 203.0.113.6"}  # the left part is client-supplied
    assert (await client.get("/api/v1/halls", headers=first)).status == 200
    assert (await client.get("/api/v1/halls", headers=second)).status == 200
    assert (await client.get("/api/v1/halls", headers=first)).status == 429
    spoofed = {"X-Forwarded-For": "198.51.100.1, 203.0.113.6"}
    assert (await client.get("/api/v1/halls", headers=spoofed)).status == 429


async def test_forwarded_addresses_from_untrusted_peers_are_ignored(
    make_client: AppFactory,
) -> None:
    client = await make_client(access=roomy_settings(public_rate=BucketSpec(1, 0.01)))
    assert (await client.get("/api/v1/halls", headers={"X-Forwarded-For": "1.2.3.4"})).status == 200
    assert (await client.get("/api/v1/halls", headers={"X-Forwarded-For": "5.6.7.8"})).status == 429
