"""Line-time budget of one bus: what the bus options can and cannot ask of the line.

Pure arithmetic from the baud rate and the frame sizes (docs/protocol.md §3, §7.1, §8.4), used
by ``hall config check`` to refuse options that cannot work at a bus's baud rate, and by the
bench for its lower bounds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from firmware_bridge import timing
from firmware_bridge.constants import Command, DeviceClass
from firmware_bridge.messages import max_reply_payload

POLL_REQUEST_PAYLOAD = 4
POLL_REPLY_PAYLOAD = 9  # without an event
# §8.4: every interactive device at least once per second.
INTERACTIVE_MAX_PERIOD_S = 1.0
# §8.4 / CONFIG tag HOST_LOST_S: a device not addressed for this long enters host-lost.
HOST_LOST_DEFAULT_S = 10.0


def exchange_s(baud: int, request_payload: int, reply_payload: int) -> float:
    """Least line time of one request/reply exchange: both frames and both §7.1 gaps."""
    return (
        timing.frame_time(baud, request_payload)
        + timing.turnaround(baud)
        + timing.frame_time(baud, reply_payload)
        + timing.turnaround(baud)
    )


def poll_exchange_s(baud: int) -> float:
    """A POLL and its reply without an event (43.75 ms at 9600 baud)."""
    return exchange_s(baud, POLL_REQUEST_PAYLOAD, POLL_REPLY_PAYLOAD)


def min_reply_timeout_s(baud: int, classes: Iterable[DeviceClass]) -> float:
    """Least reply timeout that lets every device of ``classes`` answer a POLL and an INFO.

    A device may start its reply T_RESP after the request (§7.1); its longest reply to those
    two regular requests (INFO with a 32-character model, or POLL with the longest event its
    class sends) must then be complete inside the timeout.
    """
    longest = max_reply_payload(Command.INFO)
    for cls in classes:
        longest = max(longest, max_reply_payload(Command.POLL, cls))
    return timing.T_RESP_S + timing.frame_time(baud, longest)


@dataclass(frozen=True, slots=True)
class OptionProblem:
    option: str  # key in [buses.options], or "baudrate"
    message: str


def check_bus_options(
    baud: int,
    classes: Iterable[DeviceClass],
    *,
    reply_timeout_ms: int | None,
    poll_display_ms: int,
    offline_probe_ms: int,
) -> list[OptionProblem]:
    """Options of one bus that cannot work at ``baud`` with these devices on it."""
    classes = list(classes)
    problems: list[OptionProblem] = []
    least = min_reply_timeout_s(baud, classes)
    if reply_timeout_ms is not None and reply_timeout_ms / 1000 < least:
        problems.append(
            OptionProblem(
                "reply_timeout_ms",
                f"{reply_timeout_ms} ms is shorter than a device may take to answer at {baud} "
                f"baud ({least * 1000:.1f} ms: a reply may start {timing.T_RESP_S * 1000:.0f} ms "
                "after the request, and the longest POLL or INFO reply of the bus's devices "
                "must be in by then); raise it or leave it out",
            )
        )
    timeout_s = (
        reply_timeout_ms / 1000 if reply_timeout_ms is not None else least + timing.REPLY_MARGIN_S
    )
    probe = timing.frame_time(baud, POLL_REQUEST_PAYLOAD) + timeout_s
    if offline_probe_ms / 1000 < probe:
        problems.append(
            OptionProblem(
                "offline_probe_ms",
                f"{offline_probe_ms} ms is shorter than one probe of an offline device takes "
                f"at {baud} baud ({probe * 1000:.0f} ms: the POLL and its reply timeout)",
            )
        )
    # A display polled every poll_display_ms must be polled again before host_lost_s runs out,
    # with room for a failed transaction (all attempts timed out) in between.
    slack = timing.MAX_ATTEMPTS * (timing.frame_time(baud, POLL_REQUEST_PAYLOAD) + timeout_s)
    if poll_display_ms / 1000 + slack >= HOST_LOST_DEFAULT_S:
        problems.append(
            OptionProblem(
                "poll_display_ms",
                f"{poll_display_ms} ms leaves displays no margin before they give up on the host "
                f"(host-lost after {HOST_LOST_DEFAULT_S:.0f} s without a request; one failed "
                f"transaction takes {slack * 1000:.0f} ms at {baud} baud); HB/1 polls displays "
                "every 2-5 s",
            )
        )
    exchange = poll_exchange_s(baud)
    interactive = sum(1 for c in classes if c.interactive)
    displays = len(classes) - interactive
    load = exchange * (interactive / INTERACTIVE_MAX_PERIOD_S + displays / (poll_display_ms / 1000))
    if load > 1.0:
        problems.append(
            OptionProblem(
                "baudrate",
                f"at {baud} baud one POLL exchange takes {exchange * 1000:.2f} ms: the line "
                f"cannot poll {interactive} interactive device(s) at least once a second and "
                f"{displays} display(s) every {poll_display_ms} ms ({load * 100:.0f} % of the "
                "line with no room for commands); use a higher baud rate or split the bus",
            )
        )
    return problems
