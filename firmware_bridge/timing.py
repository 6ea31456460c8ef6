"""HB/1 line timing (spec §1, §5, §7.1), derived from the baud rate in one place.

Pure arithmetic, no I/O: the link, the master and the tests all take their numbers from here.
Tests shrink the named constants with ``monkeypatch`` instead of sleeping.
"""

from __future__ import annotations

from firmware_bridge.codec import FRAME_OVERHEAD

# 8N1: start bit + 8 data bits + stop bit per character (§1).
BITS_PER_CHAR = 10

# §5 rule 5: a gap of 10 characters, but never below 20 ms because USB-serial adapters and
# OS schedulers deliver bytes in bursts with pauses of several milliseconds at high speeds.
IDLE_CHARS = 10
IDLE_FLOOR_S = 0.020

# §7.1: the latest a device may start replying (plain and persistent commands).
T_RESP_S = 0.020
T_BUSY_MAX_S = 0.200

# §7.1: host timeout margin on top of reply start and reply transmission, for OS latency.
REPLY_MARGIN_S = 0.010

# §7.1: silence the host keeps after a reply or a timeout before it transmits again.
TURNAROUND_CHARS = 3.5
TURNAROUND_FLOOR_S = 0.00175

# §7.1: after a group/broadcast request nobody answers, so wait for the devices to execute it.
BROADCAST_GAP_S = 0.020

# §7.3: a BUSY reply must be followed by a new transaction no earlier than this.
BUSY_RETRY_S = 0.100


def t_char(baud: int) -> float:
    """Seconds one 8N1 character occupies on the line."""
    return BITS_PER_CHAR / baud


def t_idle(baud: int) -> float:
    """Inter-character silence after which an incomplete frame is abandoned (§5)."""
    return max(IDLE_CHARS * t_char(baud), IDLE_FLOOR_S)


def turnaround(baud: int) -> float:
    """Minimum silence before the host transmits after a reply or a timeout (§7.1)."""
    return max(TURNAROUND_CHARS * t_char(baud), TURNAROUND_FLOOR_S)


def frame_time(baud: int, payload_len: int) -> float:
    """Seconds a frame with ``payload_len`` payload bytes occupies on the line."""
    return (FRAME_OVERHEAD + payload_len) * t_char(baud)


def reply_timeout(baud: int, max_reply_payload: int, *, busy_s: float | None = None) -> float:
    """Host reply timeout measured from the end of the request's transmission (§7.1).

    ``busy_s`` is the device's ``t_busy_ms`` (as seconds) for persistent commands.
    """
    start_limit = T_RESP_S if busy_s is None else min(busy_s, T_BUSY_MAX_S)
    return start_limit + frame_time(baud, max_reply_payload) + REPLY_MARGIN_S


# §8.4: interactive devices (pads, callers, kiosk MCUs) about every 250 ms so a key press shows
# within well under a second; displays only need a heartbeat, every 2–5 s.
INTERACTIVE_POLL_S = 0.250
DISPLAY_POLL_S = 3.0
# Devices not in use (a caller or pad at a closed counter, a strip without a call) are polled
# rarely: interactive ones once per second (§8.4's minimum), strips without a call only as
# often as keeps them out of host-lost (9 s, and never later than one failed transaction and
# half a second before HOST_LOST_S runs out: BusMaster.idle_display_poll_s). Such a strip's
# POLL carries only BOOT or FAULT; docs/protocol.md §15.2 says why this reads §8.4's "2-5 s".
IDLE_INTERACTIVE_POLL_S = 1.0
IDLE_DISPLAY_POLL_S = 9.0
# A window strip is POLLed (BOOT, FAULT, state bits, health) at least this often; its other
# heartbeats are a unicast SET_TIME with NOACK, 17 bytes and no reply instead of a 35-byte
# exchange (docs/protocol.md §15.2).
STRIP_CHECK_S = 30.0

# §7.3: a transaction is tried at most 3 times (2 retries), each byte for byte identical.
MAX_ATTEMPTS = 3

# After a KEY event is committed the master keeps the line for the command the key causes (the
# strip's call) instead of starting another device's poll, at most this long (BusMaster).
# A poll started while the server decides would hold the call back by up to a whole exchange
# (43.75 ms at 9600 baud); waiting costs only the time the server takes, once per key press.
KEY_HOLD_MAX_S = 0.100

# The application commits its database transaction inside the event callback; a stuck
# database must not stall the bus forever. A timed-out event is not acknowledged and comes back.
EVENT_CALLBACK_TIMEOUT_S = 10.0

# State bit 2 (host-lost) stays set until a content command runs; without this floor a device
# whose desired state has no content command would be resynced on every poll.
RESYNC_MIN_INTERVAL_S = 5.0

# §10.1: the host broadcasts SET_TIME hourly (and sends it after every resync).
SET_TIME_INTERVAL_S = 3600.0

# Pause before retrying the line after a write failed because the port is gone.
LINK_DOWN_RETRY_S = 0.5

# §8.4 / CONFIG tag HOST_LOST_S default: a device that hears no unicast request this long
# enters host-lost.
HOST_LOST_DEFAULT_S = 10.0

# docs/protocol.md §17: a device found through attention rounds is still POLLed this often
# (its marks show it alive; the POLL re-checks boot_id and state bits at a low cost).
ATTENTION_POLL_S = 30.0

# docs/protocol.md §17.4: an event carried by a POLL reply whose storing failed is fetched
# again after this long (the device's mark does not ask twice for one event).
ATTENTION_RETRY_S = 1.0
