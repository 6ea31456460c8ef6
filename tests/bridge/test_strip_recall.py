"""Window strips on a real pty bus: the configured call text flashes with the HB/1 hold, the
idle text is stored for after it, and a recall flashes the unchanged text again."""

from __future__ import annotations

from firmware_bridge.constants import DisplayMode, KeyCode
from firmware_bridge.messages import SetIdleRequest, ShowTextRequest
from tests.bridge.conftest import (
    CALLER,
    STRIP,
    AppMaker,
    Rig,
    eventually,
    fetch,
    hub_of,
    issue,
    open_and_idle,
)


def shows(strip_rig: Rig, since: int, text: str) -> list[ShowTextRequest]:
    return [
        e.request
        for e in strip_rig.strip.log[since:]
        if isinstance(e.request, ShowTextRequest) and e.request.text == text
    ]


async def test_a_recall_flashes_the_strip_again_with_the_same_text(
    make_app: AppMaker, rig: Rig
) -> None:
    client = await make_app()
    number = await issue(client)
    await open_and_idle(client, rig)
    # Stored by SET_IDLE for after a hold (it follows the SHOW_TEXT).
    await eventually(lambda: rig.strip.idle_text() == "1号窗口 欢迎光临", "idle text stored")
    assert any(isinstance(e.request, SetIdleRequest) for e in rig.strip.log)
    call = f"请{number}号到1号窗口"
    # First contact done: a resync still running would send the call a second time (the state
    # it read, then the live command it held back), which this test could take for the recall.
    bridge = hub_of(client).bridge
    assert bridge is not None
    master = bridge.master("b1")
    await eventually(
        lambda: not (master.device(STRIP).resyncing or master.device(CALLER).resyncing),
        "first resyncs done",
    )

    mark = len(rig.strip.log)
    assert rig.caller.press_key(KeyCode.CALL_NEXT)
    await eventually(lambda: rig.strip.text == call, "call on the strip")
    assert rig.strip.flashing()
    [first] = shows(rig, mark, call)
    assert (first.mode, first.hold_s) == (DisplayMode.FLASH, 10)  # HB/1 §12: flash, hold 10 s

    mark = len(rig.strip.log)
    assert rig.caller.press_key(KeyCode.RECALL)
    await eventually(lambda: len(shows(rig, mark, call)) == 1, "the call sent again on recall")
    assert rig.strip.text == call
    assert rig.strip.flashing()
    rows = await fetch(client, "SELECT recall_count FROM tickets")
    assert [r["recall_count"] for r in rows] == [1]
