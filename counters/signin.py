"""Hardware sign-in (HB1.md §11 LOGIN/LOGOUT): who presents what at which window.

A LOGIN carries a card serial (method 1), ``job_no*pin`` typed on the keys (method 2) or a
scanned badge code (method 3). The host checks the window–staff binding (the staff member's
``counters``), then the credential against its salted hash, signs the clerk in and opens the
counter. Credentials are stored only hashed; a card or badge is matched against the hashes
of the staff bound to the window, so no lookup by value is ever needed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from firmware_bridge.constants import LoginMethod
from hall.security.passwords import ScryptParams, hash_password, verify_password

log = logging.getLogger(__name__)

METHOD_NAMES = {LoginMethod.CARD: "card", LoginMethod.KEYS: "pin", LoginMethod.SCAN: "badge"}
REFUSALS = {
    "bad_credential_format": "登录信息格式不正确",
    "pin_required": "请输入 工号*密码",
    "unknown_staff": "工号不存在或已停用",
    "not_assigned": "该工作人员未被分配到本窗口",
    "wrong_credential": "卡号、工牌或密码不正确",
    "counter_in_use": "本窗口已由其他工作人员登录",
    "ticket_in_hand": "请先办结或转出当前号码再退出",
    "locked": "密码错误次数过多，请稍后再试或联系管理员",
}
# Wrong PINs, cards or badges for one job number (or at one counter, for cards and badges)
# within LOCK_WINDOW that make a further attempt refused unchecked until the window passes.
LOCK_AFTER = 5
LOCK_WINDOW = timedelta(minutes=15)


class SignInRefused(Exception):
    """A LOGIN or LOGOUT the host refuses; ``code`` is a key of REFUSALS."""

    def __init__(self, code: str, job_no: str | None = None) -> None:
        super().__init__(REFUSALS[code])
        self.code = code
        self.job_no = job_no


@dataclass(frozen=True, slots=True)
class Credential:
    kind: str  # "card", "pin", "badge"
    job_no: str | None  # only typed logins name the clerk
    secret: str


def parse_login(method: int, cred: bytes) -> Credential:
    """The credential of a LOGIN event; SignInRefused for a malformed one."""
    if method == LoginMethod.CARD:
        if not 1 <= len(cred) <= 32:
            raise SignInRefused("bad_credential_format")
        return Credential("card", None, cred.hex().upper())
    try:
        text = cred.decode("ascii").strip()
    except UnicodeDecodeError:
        raise SignInRefused("bad_credential_format") from None
    if method == LoginMethod.KEYS:
        job_no, star, pin = text.partition("*")
        if not job_no or not job_no.isalnum() or len(job_no) > 32:
            raise SignInRefused("bad_credential_format")
        if not star or not pin:
            raise SignInRefused("pin_required", job_no)
        if not pin.isdigit() or len(pin) > 12:
            raise SignInRefused("bad_credential_format", job_no)
        return Credential("pin", job_no, pin)
    if method == LoginMethod.SCAN:
        if not 1 <= len(text) <= 128 or not text.isprintable():
            raise SignInRefused("bad_credential_format")
        return Credential("badge", None, text)
    raise SignInRefused("bad_credential_format")


@dataclass(frozen=True, slots=True)
class BoundStaff:
    job_no: str
    name: str
    hashes: dict[str, str]  # kind -> stored hash


async def staff_bound_to(
    conn: asyncpg.Connection, hall_id: str, counter: int
) -> dict[str, BoundStaff]:
    """Active staff whose halls include ``hall_id`` (or all) and whose counters include
    ``counter``, with their device credential hashes."""
    rows = await conn.fetch(
        """SELECT s.job_no, s.name, c.kind, c.secret_hash
           FROM staff s
           LEFT JOIN staff_device_credentials c ON c.job_no = s.job_no
           WHERE s.active AND $2 = ANY(s.counters)
             AND (cardinality(s.halls) = 0 OR $1 = ANY(s.halls))""",
        hall_id,
        counter,
    )
    out: dict[str, BoundStaff] = {}
    for r in rows:
        staff = out.setdefault(r["job_no"], BoundStaff(r["job_no"], r["name"], {}))
        if r["kind"] is not None:
            staff.hashes[r["kind"]] = r["secret_hash"]
    return out


async def staff_exists(conn: asyncpg.Connection, job_no: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM staff WHERE job_no = $1 AND active)", job_no
        )
    )


async def recent_failures(
    conn: asyncpg.Connection, hall_id: str, counter: int, job_no: str | None, now: datetime
) -> int:
    """Wrong credentials in the lock window since the last unlock: for a job number anywhere,
    else at the counter."""
    value = await conn.fetchval(
        """SELECT count(*) FROM device_sign_ins s
           WHERE s.reason = 'wrong_credential' AND s.at > $1
             AND CASE WHEN $2::text IS NULL
                      THEN s.hall_id = $3 AND s.counter_number = $4 AND s.job_no IS NULL
                      ELSE s.job_no = $2 END
             AND NOT EXISTS (
                 SELECT 1 FROM sign_in_unlocks u WHERE u.at >= s.at
                   AND CASE WHEN $2::text IS NULL
                            THEN u.hall_id = $3 AND u.counter_number = $4
                            ELSE u.job_no = $2 END)""",
        now - LOCK_WINDOW,
        job_no,
        hall_id,
        counter,
    )
    return int(value or 0)


@dataclass(frozen=True, slots=True)
class Lock:
    """A hardware sign-in lockout in force: a job number's (typed PINs) or a counter's (cards
    and badges, whose owner is not known)."""

    job_no: str | None
    counter: int | None  # the counter of a card/badge lock; for a job number, the last one
    failures: int
    last_at: datetime
    until: datetime


async def locks(conn: asyncpg.Connection | asyncpg.Pool, hall_id: str, now: datetime) -> list[Lock]:
    """Lockouts in force that involve this hall: job numbers with wrong PINs typed here (their
    count is taken everywhere, as sign-in checks it) and counters with wrong cards or badges."""
    rows = await conn.fetch(
        """WITH wrong AS (
               SELECT s.* FROM device_sign_ins s
               WHERE s.reason = 'wrong_credential' AND s.at > $2
                 AND NOT EXISTS (
                     SELECT 1 FROM sign_in_unlocks u WHERE u.at >= s.at
                       AND CASE WHEN s.job_no IS NULL
                                THEN u.hall_id = s.hall_id AND u.counter_number = s.counter_number
                                ELSE u.job_no = s.job_no END))
           SELECT job_no, NULL::int AS counter_number, count(*) AS failures, max(at) AS last_at,
                  (array_agg(counter_number ORDER BY at DESC))[1] AS last_counter,
                  (array_agg(at ORDER BY at DESC))[$3] AS lifting
           FROM wrong WHERE job_no IS NOT NULL
             AND job_no IN (SELECT job_no FROM wrong WHERE hall_id = $1)
           GROUP BY job_no HAVING count(*) >= $3
           UNION ALL
           SELECT NULL, counter_number, count(*), max(at), counter_number,
                  (array_agg(at ORDER BY at DESC))[$3]
           FROM wrong WHERE job_no IS NULL AND hall_id = $1
           GROUP BY counter_number HAVING count(*) >= $3
           ORDER BY 4 DESC""",
        hall_id,
        now - LOCK_WINDOW,
        LOCK_AFTER,
    )
    # A lock lifts when its LOCK_AFTER-th newest failure leaves the window.
    out = [
        Lock(
            job_no=r["job_no"],
            counter=r["last_counter"],
            failures=int(r["failures"]),
            last_at=r["last_at"],
            until=r["lifting"] + LOCK_WINDOW,
        )
        for r in rows
    ]
    return out


async def unlock(
    conn: asyncpg.Connection,
    hall_id: str,
    *,
    job_no: str | None,
    counter: int | None,
    now: datetime,
    actor: str,
) -> bool:
    """Release a lock in force (False when there is none); kept with who released it."""
    current = await locks(conn, hall_id, now)
    if not any(
        (job_no is not None and lock.job_no == job_no)
        or (counter is not None and lock.job_no is None and lock.counter == counter)
        for lock in current
    ):
        return False
    await conn.execute(
        """INSERT INTO sign_in_unlocks (hall_id, job_no, counter_number, at, by_actor)
           VALUES ($1, $2, $3, $4, $5)""",
        hall_id,
        job_no,
        counter,
        now,
        actor,
    )
    log.info("sign-in lock of %s released by %s", job_no or f"counter {counter}", actor)
    return True


async def identify(
    conn: asyncpg.Connection, hall_id: str, counter: int, cred: Credential, now: datetime
) -> str:
    """The job number of the clerk the credential belongs to, bound to this window."""
    if await recent_failures(conn, hall_id, counter, cred.job_no, now) >= LOCK_AFTER:
        raise SignInRefused("locked", cred.job_no)
    bound = await staff_bound_to(conn, hall_id, counter)
    if cred.job_no is not None:
        staff = bound.get(cred.job_no)
        if staff is None:
            known = await staff_exists(conn, cred.job_no)
            raise SignInRefused("not_assigned" if known else "unknown_staff", cred.job_no)
        stored = staff.hashes.get(cred.kind)
        if stored is None or not await asyncio.to_thread(verify_password, cred.secret, stored):
            raise SignInRefused("wrong_credential", cred.job_no)
        return staff.job_no
    for staff in bound.values():
        stored = staff.hashes.get(cred.kind)
        if stored is not None and await asyncio.to_thread(verify_password, cred.secret, stored):
            return staff.job_no
    raise SignInRefused("wrong_credential")


async def log_sign_in(
    conn: asyncpg.Connection,
    *,
    hall_id: str,
    counter: int,
    device: str,
    at: datetime,
    kind: str,
    method: str | None,
    job_no: str | None,
    refusal: str | None,
) -> None:
    await conn.execute(
        """INSERT INTO device_sign_ins
               (hall_id, counter_number, device, at, kind, method, job_no, outcome, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        hall_id,
        counter,
        device,
        at,
        kind,
        method,
        job_no,
        "refused" if refusal else "accepted",
        refusal,
    )
    if refusal:
        log.warning(
            "%s at %s counter %d by %s refused: %s (%s)",
            kind,
            hall_id,
            counter,
            device,
            refusal,
            REFUSALS.get(refusal, ""),
        )


def normalise_secret(kind: str, value: str) -> str:
    """What is hashed: card serials as upper-case hex without separators, others as given."""
    value = value.strip()
    if kind == "card":
        return value.replace(":", "").replace(" ", "").upper()
    return value


async def set_credential(
    conn: asyncpg.Connection,
    job_no: str,
    kind: str,
    value: str | None,
    now: datetime,
    params: ScryptParams,
) -> None:
    """Store (or with ``None`` remove) one device credential of a staff member, hashed."""
    if value is None:
        await conn.execute(
            "DELETE FROM staff_device_credentials WHERE job_no = $1 AND kind = $2", job_no, kind
        )
        return
    hashed = await asyncio.to_thread(hash_password, normalise_secret(kind, value), params)
    await conn.execute(
        """INSERT INTO staff_device_credentials (job_no, kind, secret_hash, changed_at)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (job_no, kind) DO UPDATE
           SET secret_hash = excluded.secret_hash, changed_at = excluded.changed_at""",
        job_no,
        kind,
        hashed,
        now,
    )
