"""Desired-state passes: one per write in the writer's process, none missed across processes,
and devices rendered from a cache that always equals a full recompute."""

from __future__ import annotations

import time
from typing import Any

import pytest

from counters.signin import set_credential
from firmware_bridge.bridge import UpEvent
from firmware_bridge.constants import KeyCode, LoginMethod
from firmware_bridge.messages import Event, KeyEvent, LoginEvent, LogoutEvent
from hall.app import SEQUENCER
from hall.config.models import HallConfig
from hall.security.passwords import ScryptParams
from hall.services.devices import Desired, DeviceService
from hall.services.queue import ActionParams, CounterAction
from hall.storage import access_repo
from hall.web.bridge import BridgeHub
from hall.web.state import CLOCK, COMMIT_NOTICES, DIRECTORY, NOTIFIER, POOL, QUEUE
from tests.bridge.conftest import AppMaker, Client, eventually, hub_of, issue
from tests.core.test_sequencer import Published
from tests.factories import hall_config

FAST = ScryptParams(n=2**4, r=8, p=1)
UID_CALLER_2 = "4842040000000012"


@pytest.fixture
def config() -> HallConfig:
    base = hall_config(
        extra_hall={
            "screens": [
                {"id": "s1", "name": "大厅屏", "rows": 3},
                {"id": "s2", "name": "二号窗口屏", "rows": 2, "counters": [2]},
            ],
        }
    )
    body: dict[str, Any] = base.model_dump(mode="json", by_alias=True, exclude_unset=True)
    body["buses"] = [{"name": "b1", "hall": "test", "url": "/dev/ttyHB0"}]
    body["devices"] = [
        {"bus": "b1", "address": 1, "class": "strip", "counter": 1},
        {"bus": "b1", "address": 2, "class": "caller", "counter": 1},
        {"bus": "b1", "address": 3, "class": "pad", "counter": 1},
        {"bus": "b1", "address": 11, "class": "strip", "counter": 2},
        {"bus": "b1", "address": 12, "class": "caller", "counter": 2},
        {"bus": "b1", "address": 13, "class": "pad", "counter": 2},
        {"bus": "b1", "address": 21, "class": "screen", "screen": "s1"},
        {"bus": "b1", "address": 22, "class": "screen", "screen": "s2"},
    ]
    return HallConfig.model_validate(body)


def up(address: int, uid: str, event: Event, evt_seq: int) -> UpEvent:
    return UpEvent(
        bus="b1",
        address=address,
        device_class=0,
        uid=uid,
        boot_id=7,
        evt_seq=evt_seq,
        evt_type=int(event.evt_type),
        data=event.encode(),
        at=time.time(),
    )


async def settled(hub: BridgeHub) -> None:
    await eventually(lambda: hub.settled("test"), "the hub's passes to settle")


async def after_first_write(make_app: AppMaker) -> tuple[Client, BridgeHub, Published]:
    """A server whose hub has settled after one write, and its sequencer notices as heard
    after the hub's (subscribed after the hub: a notice in ``Published`` reached the hub)."""
    client = await make_app(mode="off")
    hub = hub_of(client)
    published = await Published.following(client.app[NOTIFIER])
    await issue(client)
    await published.reach(1)
    await settled(hub)
    return client, hub, published


def full_recompute(client: Client) -> DeviceService:
    """A device service of its own, with nothing rendered yet: every device rendered anew."""
    app = client.app
    roles = list(hub_of(client).service.roles.values())
    return DeviceService(app[POOL], app[DIRECTORY], app[QUEUE], app[CLOCK], roles)


async def test_devices_show_what_a_full_recompute_gives_after_every_step(
    make_app: AppMaker,
) -> None:
    client = await make_app(mode="off")
    hub = hub_of(client)
    queue = client.app[QUEUE]
    clock = client.app[CLOCK]
    async with client.app[POOL].acquire() as conn:
        # A clerk who is only in the database (`hall user add`), signing in with a PIN.
        await access_repo.save_account(
            conn, "c101", password_hash="x", name="赵敏", roles=["clerk"], halls=["test"],
            counters=[1, 2],
        )  # fmt: skip
        await set_credential(conn, "c101", "pin", "3721", clock.now(), FAST)
    for _ in range(3):
        await issue(client)
    await issue(client, "TAX")
    seqs = iter(range(2, 1000))

    async def act(counter: int, action: CounterAction, **params: Any) -> None:
        await queue.act("test", counter, action, "c001", ActionParams(**params))

    async def device(address: int, event: Event) -> None:
        result = await hub.service.handle_event(up(address, UID_CALLER_2, event, next(seqs)))
        assert result.outcome == "applied", result

    steps = [
        ("open 1", act(1, CounterAction.OPEN, clerk="c001")),
        ("login at 2", device(12, LoginEvent(LoginMethod.KEYS, b"c101*3721"))),
        ("call at 1", act(1, CounterAction.CALL_NEXT)),
        ("call at 2 by key", device(12, KeyEvent(KeyCode.CALL_NEXT))),
        ("recall at 1", act(1, CounterAction.RECALL)),
        ("recall at 1 again", act(1, CounterAction.RECALL)),
        ("start at 1", act(1, CounterAction.START)),
        ("finish at 1", act(1, CounterAction.FINISH)),
        ("no-show at 2", act(2, CounterAction.NO_SHOW)),
        ("pause 2", act(2, CounterAction.PAUSE, reason="break")),
        ("call at 1 while 2 pauses", act(1, CounterAction.CALL_NEXT)),
        ("resume 2", act(2, CounterAction.RESUME)),
        ("call at 2", act(2, CounterAction.CALL_NEXT)),
        ("start at 2", act(2, CounterAction.START)),
        ("finish at 2", act(2, CounterAction.FINISH)),
        ("logout at 2", device(12, LogoutEvent())),
        ("start at 1", act(1, CounterAction.START)),
        ("finish at 1", act(1, CounterAction.FINISH)),
        ("close 1", act(1, CounterAction.CLOSE)),
    ]
    seen: set[tuple[tuple[str, int], Desired]] = set()
    for what, step in steps:
        await step
        await settled(hub)
        full = await full_recompute(client).desired_state("test")
        pushed = {key: hub._pushed.get(key) for key in full}
        assert pushed == full, what
        assert (await hub.service.desired_pass("test", fresh=True)).states == full, what
        seen.update(full.items())
    # The sequence went through calls, recalls, pauses and closes on every kind of device.
    texts = {
        getattr(r, "text", "") for (_, address), d in seen if address in (1, 11) for r in d.commands
    }
    assert {"请A001号到1号窗口", "暂停服务", "窗口关闭"} <= texts, texts
    assert len({d.generation for (_, address), d in seen if address == 1}) >= 3


async def test_a_write_is_followed_by_one_pass_in_its_own_process(make_app: AppMaker) -> None:
    client, hub, published = await after_first_write(make_app)
    for n in range(4):
        before = hub.passes
        await issue(client)
        await published.reach(2 + n)  # the sequencer numbered it and told every process
        await settled(hub)
        assert hub.passes == before + 1


async def test_a_pass_does_not_vouch_for_another_processs_events_it_did_not_see(
    make_app: AppMaker,
) -> None:
    a, b = await make_app(mode="off"), await make_app(mode="off")
    hub_a, hub_b = hub_of(a), hub_of(b)
    # As process B hears the sequencers (after its hub).
    published = await Published.following(b.app[NOTIFIER])
    await issue(a)
    await published.reach(1)
    for client in (a, b):
        # Nothing numbers events on its own below: the test says when which sequencer runs.
        sequencer = client.app[SEQUENCER]
        client.app[COMMIT_NOTICES].remove(sequencer.poke)
        assert sequencer._sweeper is not None
        sequencer._sweeper.cancel()
    await settled(hub_a)
    await settled(hub_b)
    # Process B writes, and its pass reads that write's events, still unnumbered.
    passes = hub_b.passes
    await b.app[QUEUE].act("test", 2, CounterAction.OPEN, "c001", ActionParams(clerk="c001"))
    await settled(hub_b)
    assert hub_b.passes == passes + 1
    # Then process A calls at window 1, after B's read: B hears nothing of it yet.
    await a.app[QUEUE].act("test", 1, CounterAction.OPEN, "c001", ActionParams(clerk="c001"))
    await a.app[QUEUE].act("test", 1, CounterAction.CALL_NEXT, "c001")
    await settled(hub_a)
    strip = ("b1", 1)
    assert "请A001号" in str(hub_a._pushed[strip])
    assert "请A001号" not in str(hub_b._pushed[strip])
    # B's own sequencer numbers both processes' events in one run, and B's hub must follow
    # A's call although the notice comes from B's own run, after a pass that followed B's
    # own write.
    b.app[SEQUENCER].poke("test")
    await published.reach(await a.app[POOL].fetchval("SELECT count(*) FROM events"))
    await eventually(lambda: hub_b._pushed[strip] == hub_a._pushed[strip], "B's strip 1")
    await settled(hub_b)
    assert hub_b._pushed == hub_a._pushed


async def test_notices_during_a_pass_are_judged_by_what_it_read(make_app: AppMaker) -> None:
    client, hub, published = await after_first_write(make_app)
    # The sequencer's notice of the next write comes while the pass after it still runs.
    service = hub.service
    original = service.desired_pass

    async def slow(hall_id: str, *, fresh: bool = False, reading: Any = None) -> Any:
        result = await original(hall_id, fresh=fresh, reading=reading)
        await published.reach(2)
        return result

    service.desired_pass = slow  # type: ignore[method-assign]
    before = hub.passes
    await issue(client)
    await published.reach(2)
    await settled(hub)
    assert hub.passes == before + 1
