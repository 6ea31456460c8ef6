"""Sign-in credentials: parsing of LOGIN, hashes only, and a lock after wrong PINs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from counters.signin import (
    LOCK_AFTER,
    Credential,
    SignInRefused,
    identify,
    log_sign_in,
    parse_login,
    set_credential,
)
from firmware_bridge.constants import LoginMethod
from hall.security.passwords import ScryptParams, hash_password
from hall.storage import access_repo

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
FAST = ScryptParams(n=2**4, r=8, p=1)


@pytest.mark.parametrize(
    ("method", "cred", "expected"),
    [
        (LoginMethod.KEYS, b"1024*3721", Credential("pin", "1024", "3721")),
        (LoginMethod.CARD, bytes.fromhex("0a1b2c3d"), Credential("card", None, "0A1B2C3D")),
        (LoginMethod.SCAN, b" GZ-1024 ", Credential("badge", None, "GZ-1024")),
    ],
)
def test_login_credentials_are_read_as_hb1_defines_them(
    method: LoginMethod, cred: bytes, expected: Credential
) -> None:
    assert parse_login(method, cred) == expected


@pytest.mark.parametrize(
    ("method", "cred", "code"),
    [
        (LoginMethod.KEYS, b"1024", "pin_required"),
        (LoginMethod.KEYS, b"1024*", "pin_required"),
        (LoginMethod.KEYS, b"*3721", "bad_credential_format"),
        (LoginMethod.KEYS, b"1024*37a1", "bad_credential_format"),
        (LoginMethod.KEYS, b"\xff\xfe", "bad_credential_format"),
        (LoginMethod.CARD, b"", "bad_credential_format"),
        (LoginMethod.SCAN, b"\x01\x02", "bad_credential_format"),
        (0x09, b"x", "bad_credential_format"),
    ],
)
def test_malformed_logins_are_refused_with_a_reason(method: int, cred: bytes, code: str) -> None:
    with pytest.raises(SignInRefused) as refused:
        parse_login(method, cred)
    assert refused.value.code == code


async def test_wrong_pins_lock_the_job_number_for_a_while(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await access_repo.save_account(
            conn, "c101", password_hash=hash_password("pw-not-used-1", FAST), name="赵敏",
            roles=["clerk"], halls=["test"], counters=[1],
        )  # fmt: skip
        await set_credential(conn, "c101", "pin", "3721", NOW, FAST)
        right = Credential("pin", "c101", "3721")
        assert await identify(conn, "test", 1, right, NOW) == "c101"
        for _ in range(LOCK_AFTER):
            with pytest.raises(SignInRefused) as refused:
                await identify(conn, "test", 1, Credential("pin", "c101", "0000"), NOW)
            assert refused.value.code == "wrong_credential"
            await log_sign_in(
                conn, hall_id="test", counter=1, device="device:b1/2", at=NOW, kind="login",
                method="pin", job_no="c101", refusal="wrong_credential",
            )  # fmt: skip
        with pytest.raises(SignInRefused) as refused:
            await identify(conn, "test", 1, right, NOW + timedelta(minutes=1))
        assert refused.value.code == "locked"
        assert await identify(conn, "test", 1, right, NOW + timedelta(minutes=16)) == "c101"
        stored = await conn.fetchval("SELECT secret_hash FROM staff_device_credentials")
        assert "3721" not in stored
