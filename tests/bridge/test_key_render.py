"""A key's own counter rendered from its transaction: the strip and the caller are queued at the
key's commit, ahead of the hall's pass, and no render from an older read replaces a newer one."""

from __future__ import annotations

from firmware_bridge.constants import KeyCode
from firmware_bridge.messages import KeyEvent
from hall.services.devices import CounterRender, ReadPoint
from hall.services.queue import ActionParams, CounterAction
from hall.web.state import COMMIT_NOTICES, NOTIFIER, QUEUE
from tests.bridge.conftest import AppMaker, Client, hub_of, issue, open_counter
from tests.bridge.test_desired_passes import config, settled, up
from tests.bridge.test_device_service import UID_CALLER
from tests.core.test_sequencer import Published

__all__ = ["config"]  # the bus config of test_desired_passes: strip 1 and caller 2 at counter 1

STRIP, CALLER = ("b1", 1), ("b1", 2)


async def ready(make_app: AppMaker) -> Client:
    client = await make_app(mode="off")
    await issue(client)
    await issue(client)
    await open_counter(client)
    await settled(hub_of(client))
    return client


async def test_a_key_queues_its_strip_and_caller_at_its_commit(make_app: AppMaker) -> None:
    client = await ready(make_app)
    hub = hub_of(client)
    passes = hub.passes

    result = await hub.service.handle_event(up(2, UID_CALLER, KeyEvent(KeyCode.CALL_NEXT), 2))
    # Nothing awaited since: no pass has run, the key's own render was pushed.
    strip, caller = hub.pushed(*STRIP), hub.pushed(*CALLER)

    assert result.outcome == "applied"
    assert hub.passes == passes
    truth = (await hub.service.desired_pass("test", fresh=True)).states
    assert (strip, caller) == (truth[STRIP], truth[CALLER])
    await settled(hub)
    assert (hub.pushed(*STRIP), hub.pushed(*CALLER)) == (truth[STRIP], truth[CALLER])


async def test_a_key_is_answered_before_its_connection_goes_back_to_the_pool(
    make_app: AppMaker,
) -> None:
    """The bridge's bus waits for the answer: the key's render is queued and the answer given
    straight after COMMIT; the release (and its commit notice) follows, and the hub is not
    settled until it did."""
    client = await ready(make_app)
    hub = hub_of(client)
    idle = hub.pushed(*STRIP)
    told: list[str] = []
    client.app[COMMIT_NOTICES].add(told.append)

    result = await hub.service.handle_event(up(2, UID_CALLER, KeyEvent(KeyCode.CALL_NEXT), 2))
    answered = (told[:], hub.pushed(*STRIP), hub.settled("test"))
    await settled(hub)

    assert result.outcome == "applied"
    assert answered[0] == []
    assert answered[1] != idle
    assert answered[2] is False
    assert told == ["test"]
    assert hub.pushed(*STRIP) == answered[1]


async def test_a_pass_that_read_before_the_key_does_not_undo_its_render(
    make_app: AppMaker,
) -> None:
    client = await ready(make_app)
    hub = hub_of(client)
    idle = hub.pushed(*STRIP)
    before = await hub.service.desired_pass("test")  # read before the key's commit

    await hub.service.handle_event(up(2, UID_CALLER, KeyEvent(KeyCode.CALL_NEXT), 2))
    calling = hub.pushed(*STRIP)
    hub.apply_pass("test", before)  # arrives late, as a pass that began before the commit

    assert calling != idle
    assert hub.pushed(*STRIP) == calling
    await settled(hub)
    assert hub.pushed(*STRIP) == calling


async def test_a_keys_render_that_a_pass_saw_is_not_shown_again(make_app: AppMaker) -> None:
    client = await ready(make_app)
    hub = hub_of(client)
    late: list[CounterRender] = []
    hub.service.on_render = late.append  # held back, to arrive after the passes below

    await hub.service.handle_event(up(2, UID_CALLER, KeyEvent(KeyCode.CALL_NEXT), 2))
    await settled(hub)
    await client.app[QUEUE].act("test", 1, CounterAction.START, "tests", ActionParams())
    await client.app[QUEUE].act("test", 1, CounterAction.FINISH, "tests", ActionParams())
    await settled(hub)
    finished = hub.pushed(*STRIP)
    hub.apply_render(late[0])

    assert late[0].states[STRIP] != finished
    assert hub.pushed(*STRIP) == finished


async def test_a_key_is_followed_by_one_pass(make_app: AppMaker) -> None:
    """The key's release (commit notice) starts a pass; the key's own mark after its render
    comes before that pass's read and is covered by it."""
    client = await make_app(mode="off")
    hub = hub_of(client)
    published = await Published.following(client.app[NOTIFIER])
    await issue(client)
    await issue(client)
    await open_counter(client)
    await published.reach(3)
    await settled(hub)
    for seq, key in enumerate((KeyCode.CALL_NEXT, KeyCode.FINISH, KeyCode.CALL_NEXT), start=2):
        before = hub.passes
        await hub.service.handle_event(up(2, UID_CALLER, KeyEvent(key), seq))
        await published.reach(seq + 2)  # numbered, and every process told
        await settled(hub)
        assert hub.passes == before + 1


def test_read_points_order_passes_and_key_renders() -> None:
    # A snapshot 100:105:101,103 saw transactions below 100, and 102 and 104.
    point = ReadPoint.parse("100:105:101,103")
    assert [x for x in range(98, 107) if point.includes(x)] == [98, 99, 100, 102, 104]
    key_101 = ReadPoint.parse("100:105:103", own=101)
    key_103 = ReadPoint.parse("100:106:", own=103)  # read after 101's commit
    assert key_101.includes(101) and not key_101.includes(103)
    # A pass that did not see the key's transaction does not replace the key's render ...
    assert not point.newer_than(key_101)
    assert ReadPoint.parse("102:110:").newer_than(key_101)
    # ... and a key's render does not replace a read that saw its transaction.
    assert key_101.newer_than(point)
    assert not key_101.newer_than(ReadPoint.parse("102:110:"))
    assert key_103.newer_than(key_101) and not key_101.newer_than(key_103)
    assert point.newer_than(None) and point.newer_than(ReadPoint.parse("1:2:"))
