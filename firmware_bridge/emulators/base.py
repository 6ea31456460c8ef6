"""The device side of HB/1, shared by every emulated device class.

:class:`Hb1Device` implements what all classes have in common: address and group filtering
(§5, §6), the reply cache for retried SEQs (§7.3), status codes (§7.2), the event FIFO with
``evt_seq``/``boot_id`` and POLL acknowledgement (§8), host-lost (§8.4), INFO, SET_ADDRESS,
SET_TIME, RESET, INDICATE and CONFIG (§10.1), and failure switches for tests. Subclasses add
their class's commands, their display and their buttons.

Time is read from an injectable clock and timers (hold times, rating timeouts, host-lost) are
evaluated lazily whenever the device is asked something, so tests drive time with a fake
clock instead of sleeping, and what the host observes is exactly what a real device would show.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from firmware_bridge import attention
from firmware_bridge.codec import BROADCAST_ADDR, HOST_ADDR, UNASSIGNED_ADDR, Frame, FrameFlags
from firmware_bridge.constants import (
    BAUD_RATES,
    CONTENT_COMMANDS,
    GROUP_COMMANDS,
    Bauds,
    BootReason,
    Caps,
    Command,
    ConfigTag,
    DeviceClass,
    DeviceState,
    Fonts,
    ResetMode,
    Status,
    TextEncoding,
)
from firmware_bridge.errors import DecodeError, EncodeError, TextEncodingError
from firmware_bridge.messages import (
    MAX_REASON_INDEX,
    MAX_REASON_LABEL,
    AttnRequest,
    BootEvent,
    ConfigItem,
    ConfigReply,
    ConfigRequest,
    Event,
    IndicateRequest,
    InfoReply,
    PollReply,
    PollRequest,
    Reply,
    Request,
    ResetRequest,
    SetAddressRequest,
    SetTimeRequest,
    StatusReply,
    decode_request,
    decode_text,
)

_LOGGER = logging.getLogger(__name__)

Clock = Callable[[], float]

PROTO_VERSION = 0x10
COMMON_COMMANDS = frozenset(
    {
        Command.POLL,
        Command.INFO,
        Command.SET_ADDRESS,
        Command.SET_TIME,
        Command.RESET,
        Command.INDICATE,
        Command.CONFIG,
    }
)
# §7.3 evt_seq arithmetic: an ack covers every event at most 32767 behind it.
_HALF_RANGE = 0x8000


class Outcome(Exception):
    """Raised inside a command handler to answer with a non-OK status (state unchanged)."""

    def __init__(self, status: Status, why: str = "") -> None:
        super().__init__(why or status.name)
        self.status = status


@dataclass(slots=True)
class FailureSwitches:
    """Misbehaviour to inject; every emulator has them (style guide §10)."""

    silent: bool = False  # hears nothing, answers nothing (unplugged, dead, wrong baud)
    busy: bool = False  # answers every unicast request with BUSY, executes nothing
    corrupt: bool = False  # replies leave with a broken CRC (noise, duplicate address)
    drop_next: int = 0  # the next N replies are lost on the wire (commands still execute)


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """One unacknowledged event in the device FIFO."""

    evt_seq: int
    event: Event


@dataclass(frozen=True, slots=True)
class Indication:
    """The last INDICATE: LED pattern, beep, display blink, until ``until`` (None = forever)."""

    pattern: int
    until: float | None


@dataclass(frozen=True, slots=True)
class _CacheEntry:
    seq: int
    cmd: int
    crc: bytes
    reply: bytes  # the reply frame as sent


@dataclass(slots=True)
class DeviceConfig:
    """CONFIG values (§10.1), kept in the device's non-volatile memory."""

    baud: int = 9600
    brightness: int = 8
    host_lost_s: int = 10
    text_enc: TextEncoding = TextEncoding.GBK
    flash_s: int = 3
    thanks_s: int = 3
    volume: int = 8
    reasons: dict[int, str] = field(default_factory=dict)


@dataclass(slots=True)
class RequestLog:
    """One request the device acted on, for tests and the CLI log."""

    at: float
    frame: Frame
    request: Request | None
    status: Status | None  # None: no reply sent (NOACK, group)
    note: str = ""


class Hb1Device:
    """Base of the emulated HB/1 devices. ``handle(frame)`` returns the reply frame bytes."""

    device_class: DeviceClass = DeviceClass.STRIP
    model = "HB1-EMU"
    # INFO display geometry; the display classes override these.
    regions = 0
    rows = 0
    width_px = 0
    height_px = 0
    class_commands: frozenset[Command] = frozenset()
    caps = Caps.NONE
    fonts = Fonts.GB2312 | Fonts.GBK
    # Reasons and thanks time exist on pads only; the other classes reject those tags.
    config_tags: frozenset[ConfigTag] = frozenset(
        {
            ConfigTag.BAUD,
            ConfigTag.BRIGHTNESS,
            ConfigTag.HOST_LOST_S,
            ConfigTag.TEXT_ENC,
            ConfigTag.FLASH_S,
            ConfigTag.VOLUME,
        }
    )

    def __init__(
        self,
        address: int,
        uid: bytes | None = None,
        *,
        clock: Clock = time.monotonic,
        boot_counter: int = 0,
        fifo_size: int = 16,
        max_payload: int = 256,
        t_busy_ms: int = 50,
        address_fixed: bool = False,
        fw: tuple[int, int, int] = (1, 0, 0),
        attention: bool = False,
    ) -> None:
        """``attention``: the device has the optional attention poll (docs/protocol.md §17)
        and announces it in INFO caps; without it the device is plain HB/1 1.0."""
        if not (0x01 <= address <= 0xEF or address == UNASSIGNED_ADDR):
            raise ValueError(f"device address 0x{address:02X} out of range")
        self.address = address
        self.switch_address = address if address_fixed else UNASSIGNED_ADDR
        self.address_fixed = address_fixed
        # Default UID "HB", class, address: unique on one emulated bus and stable across runs,
        # so the host's registry does not raise a UID-change alarm when the emulator restarts.
        default_uid = bytes((0x48, 0x42, int(self.device_class), 0, 0, 0, 0, address))
        self.uid = uid if uid is not None else default_uid
        if len(self.uid) != 8:
            raise ValueError("uid must be 8 bytes")
        self.clock = clock
        self.fifo_size = fifo_size
        self.max_payload = max_payload
        self.t_busy_ms = t_busy_ms
        self.fw = fw
        self.attention = attention
        if attention:
            self.caps = type(self).caps | Caps.ATTENTION
        # §17: state bits 2/3 set since the last POLL answer ask for the host's attention.
        self._state_news = False
        self._carried: int | None = None  # evt_seq of the event the last POLL reply carried
        self.switches = FailureSwitches()
        self.config = DeviceConfig()
        self.log: list[RequestLog] = []
        self.on_log: Callable[[Hb1Device, RequestLog], None] | None = None
        self.on_change: Callable[[Hb1Device], None] | None = None  # display/state changed
        self.error_beeps = 0
        self.time_offset: float | None = None  # unix − clock, after SET_TIME
        self._boot_counter = boot_counter  # "non-volatile"
        self.boot_id = 0
        self.boots = 0
        self._fifo: deque[QueuedEvent] = deque()
        self._next_seq = 1
        self._overflow = False
        self._config_changed = False
        self._host_lost = False
        self._host_lost_latched = False
        self._last_unicast = 0.0
        self._cache: _CacheEntry | None = None
        self._pending_reset = False
        self.indication: Indication | None = None
        self.boot(BootReason.POWER_ON)

    # -- boot, events -----------------------------------------------------------------------

    def boot(self, reason: BootReason = BootReason.POWER_ON) -> None:
        """(Re)boot: new boot_id, empty FIFO and cache, BOOT as evt_seq 1 (§8.1)."""
        self._boot_counter = self._boot_counter % 0xFFFF + 1  # 0xFFFF is followed by 1
        self.boot_id = self._boot_counter
        self.boots += 1
        self._fifo.clear()
        self._carried = None
        self._next_seq = 1
        self._overflow = False
        self._cache = None
        self._host_lost = False
        self._host_lost_latched = False
        self._last_unicast = self.clock()
        self.indication = None
        self.brightness = self.config.brightness  # BRIGHTNESS is not persisted; boot uses CONFIG
        self._on_boot()
        self.queue_event(BootEvent(reason))
        self._changed()

    def reboot(self, reason: BootReason = BootReason.WATCHDOG) -> None:
        """Failure switch: reboot now (volatile state and unacknowledged events are lost)."""
        self.boot(reason)

    def queue_event(self, event: Event) -> bool:
        """Append an event; False (and overflow set) if the FIFO is full."""
        if len(self._fifo) >= self.fifo_size:
            self._overflow = True
            return False
        self._fifo.append(QueuedEvent(self._next_seq, event))
        self._next_seq = self._next_seq % 0xFFFF + 1  # 0 is never used
        return True

    @property
    def fifo_full(self) -> bool:
        return len(self._fifo) >= self.fifo_size

    @property
    def pending_events(self) -> tuple[QueuedEvent, ...]:
        return tuple(self._fifo)

    def error_beep(self) -> None:
        self.error_beeps += 1

    # -- host-lost --------------------------------------------------------------------------

    @property
    def host_lost(self) -> bool:
        self.advance()
        return self._host_lost

    def advance(self) -> None:
        """Bring timers up to the clock: class timers, then host-lost (§8.4)."""
        now = self.clock()
        lost_at = self._last_unicast + self.config.host_lost_s
        if not self._host_lost and now >= lost_at:
            self._tick(lost_at)
            self._host_lost = True
            self._host_lost_latched = True
            self._state_news = True
            self._on_host_lost()
            self._changed()
        self._tick(now)

    def state_bits(self) -> DeviceState:
        bits = DeviceState.NONE
        if self._host_lost_latched:
            bits |= DeviceState.HOST_LOST
        if self._config_changed:
            bits |= DeviceState.CONFIG_CHANGED
        if self._overflow:
            bits |= DeviceState.OVERFLOW
        return bits | self._class_state()

    # -- frame handling ---------------------------------------------------------------------

    def accepts(self, frame: Frame) -> bool:
        """Device-side filter of §5: requests from the host to us, our group or everyone."""
        if frame.is_reply or frame.src != HOST_ADDR:
            return False
        return frame.dst in (self.address, self.device_class.group_address, BROADCAST_ADDR)

    def handle(self, frame: Frame) -> bytes | None:
        """Act on a decoded frame; returns the reply bytes to transmit, if any."""
        if self.switches.silent or not self.accepts(frame):
            return None
        self.advance()
        unicast = frame.dst == self.address
        if frame.cmd == Command.ATTN and frame.dst == BROADCAST_ADDR:
            return self._attention_mark(frame)
        if not unicast:
            self._handle_group(frame)
            return None
        # Any valid unicast request ends host-lost; the latched bit waits for content (§8.4).
        self._last_unicast = self.clock()
        if self._host_lost:
            self._host_lost = False
            self._changed()
        if frame.noack:
            # NOACK requests neither use nor update the reply cache (§7.3).
            self._execute(frame)
            return None
        crc = frame.to_bytes()[-2:]
        cache = self._cache
        if cache is not None and (cache.seq, cache.cmd, cache.crc) == (frame.seq, frame.cmd, crc):
            self._record(frame, None, None, "retry answered from reply cache")
            return self._transmit(cache.reply)
        old_address = self.address
        if self.switches.busy:
            status_reply: Reply = StatusReply(Status.BUSY)
            self._record(frame, None, Status.BUSY, "busy switch")
            reply = self._reply_frame(frame, status_reply, old_address)
        else:
            reply = self._reply_frame(frame, self._execute(frame), old_address)
        self._cache = _CacheEntry(frame.seq, frame.cmd, crc, reply)
        self._after_reply()
        return self._transmit(reply)

    def wants_attention(self) -> bool:
        """What the mark says (§17.3): an event no POLL reply has carried yet, or state bits
        2/3 set since the last POLL answer. An event carried but not yet acknowledged does not
        ask again: the host has it (or its POLL failed, and then it POLLs anyway)."""
        return bool(self._fifo and self._fifo[-1].evt_seq != self._carried) or self._state_news

    def _attention_mark(self, frame: Frame) -> bytes | None:
        """§17: one mark byte in our slot if the ATTN lists us; plain devices ignore ATTN."""
        if not self.attention or not frame.noack:
            return None
        try:
            request = AttnRequest.decode(frame.payload, strict=True)
            request.validate()
        except (DecodeError, EncodeError):
            return None
        slot = request.slot_of(self.address)
        if slot is None or slot >= attention.MAX_SLOTS:
            return None
        # Being listed counts as a unicast request for host-lost (§17.4).
        self._last_unicast = self.clock()
        if self._host_lost:
            self._host_lost = False
            self._changed()
        wanted = self.wants_attention()
        self._record(frame, request, None, f"slot {slot}: {'attention' if wanted else 'idle'}")
        if self.switches.corrupt:
            return b"\x2a"  # noise in our slot: no mark
        return self._transmit(bytes((attention.mark(slot, wanted),)))

    def _transmit(self, reply: bytes) -> bytes | None:
        if self.switches.drop_next > 0:
            self.switches.drop_next -= 1
            return None
        if self.switches.corrupt:
            return reply[:-1] + bytes((reply[-1] ^ 0x5A,))
        return reply

    def _reply_frame(self, frame: Frame, reply: Reply, src: int) -> bytes:
        payload = reply.encode(self.config.text_enc)
        flags = FrameFlags.RESP
        if isinstance(reply, PollReply) and reply.pending > 1:
            flags |= FrameFlags.MORE
        return Frame(flags, HOST_ADDR, src, frame.seq, frame.cmd, payload).to_bytes()

    def _handle_group(self, frame: Frame) -> None:
        cmd = Command(frame.cmd)
        if cmd not in GROUP_COMMANDS or not self._supports(cmd):
            return
        if cmd == Command.SET_ADDRESS and frame.dst != BROADCAST_ADDR:
            return  # SET_ADDRESS is broadcast only
        if cmd == Command.RESET and frame.payload[:1] != b"\x00":
            return  # group RESET only in mode 0: nobody factory-resets a whole class by mistake
        self._execute(frame)

    def _supports(self, cmd: Command) -> bool:
        return cmd in COMMON_COMMANDS or cmd in self.class_commands

    def _execute(self, frame: Frame) -> Reply:
        """Decode, validate and run one request; always returns the reply to send."""
        cmd = Command(frame.cmd)
        request: Request | None = None
        try:
            if not self._supports(cmd):
                raise Outcome(Status.UNKNOWN_CMD)
            if len(frame.payload) > self.max_payload:
                raise Outcome(Status.BAD_LENGTH, "longer than max_payload")
            request = decode_request(cmd, frame.payload, self.config.text_enc, strict=True)
            try:
                request.validate()
            except TextEncodingError as exc:
                raise Outcome(Status.ENCODING, str(exc)) from exc
            except EncodeError as exc:
                raise Outcome(Status.BAD_PARAM, str(exc)) from exc
            reply = self._dispatch(request)
        except DecodeError as exc:
            reply = StatusReply(Status(exc.status))
        except Outcome as exc:
            reply = StatusReply(exc.status)
        status = reply.status if isinstance(reply, StatusReply) else Status.OK
        unicast = frame.dst == self.address and not frame.noack
        self._record(frame, request, status if unicast else None)
        if status == Status.OK and request is not None and request.CMD in CONTENT_COMMANDS:
            self._host_lost_latched = False  # the host has resynced (§8.4)
        self._changed()
        return reply

    def _record(
        self, frame: Frame, request: Request | None, status: Status | None, note: str = ""
    ) -> None:
        entry = RequestLog(self.clock(), frame, request, status, note)
        self.log.append(entry)
        if len(self.log) > 1000:  # long emulator sessions must not grow without bound
            del self.log[:500]
        if self.on_log is not None:
            self.on_log(self, entry)

    def _dispatch(self, request: Request) -> Reply:
        if isinstance(request, PollRequest):
            return self._poll(request)
        if isinstance(request, SetAddressRequest):
            return self._set_address(request)
        if isinstance(request, SetTimeRequest):
            self.time_offset = request.unix - self.clock()
            return StatusReply()
        if isinstance(request, ResetRequest):
            return self._reset(request)
        if isinstance(request, IndicateRequest):
            dur = request.dur_100ms / 10 if request.dur_100ms else None
            self.indication = Indication(
                request.pattern, None if dur is None else self.clock() + dur
            )
            return StatusReply()
        if isinstance(request, ConfigRequest):
            return self._config(request)
        if request.CMD == Command.INFO:
            self._config_changed = False
            return self.info()
        return self.execute(request)

    # -- common commands --------------------------------------------------------------------

    def _poll(self, request: PollRequest) -> PollReply:
        ack, ack_boot = request.ack_evt_seq, request.ack_boot_id
        if ack_boot == self.boot_id and ack != 0:
            while self._fifo and (ack - self._fifo[0].evt_seq) % 0x10000 < _HALF_RANGE:
                self._fifo.popleft()
                self._overflow = False  # an acknowledgement freed space
        state = self.state_bits()
        self._state_news = False
        pending = min(len(self._fifo), 255)
        if not self._fifo:
            return PollReply(state, self.boot_id, 0)
        head = self._fifo[0]
        self._carried = head.evt_seq
        return PollReply.carrying(
            state=state,
            boot_id=self.boot_id,
            pending=pending,
            evt_seq=head.evt_seq,
            event=head.event,
        )

    def info(self) -> InfoReply:
        return InfoReply(
            device_class=self.device_class,
            proto=PROTO_VERSION,
            fw=self.fw,
            uid=self.uid,
            boot_id=self.boot_id,
            caps=self.caps,
            max_payload=self.max_payload,
            fonts=self.fonts,
            bauds=Bauds.B9600 | Bauds.B19200 | Bauds.B38400 | Bauds.B57600 | Bauds.B115200,
            baud_now=BAUD_RATES.index(self.config.baud),
            t_busy_ms=self.t_busy_ms,
            fifo=self.fifo_size,
            regions=self.regions,
            rows=self.rows,
            width_px=self.width_px,
            height_px=self.height_px,
            model=self.model,
        )

    def _set_address(self, request: SetAddressRequest) -> Reply:
        # Unicast path (broadcast goes through the same code but nobody hears the status).
        if request.uid != self.uid:
            raise Outcome(Status.BAD_PARAM, "uid mismatch")
        if self.address_fixed:
            raise Outcome(Status.STATE_CONFLICT, "address set by switches")
        self.address = request.new_addr  # the reply still leaves from the old address
        return StatusReply()

    def _reset(self, request: ResetRequest) -> Reply:
        if request.mode == ResetMode.FACTORY:
            self.config = DeviceConfig()
            self._factory_reset()
            self.address = self.switch_address
        self._pending_reset = True
        return StatusReply()

    def _after_reply(self) -> None:
        # RESET: the reply goes out first, the reboot follows (§10.1).
        if self._pending_reset:
            self._pending_reset = False
            self.boot(BootReason.RESET_COMMAND)

    def _config(self, request: ConfigRequest) -> ConfigReply:
        if not request.items:
            return ConfigReply(self._config_items())
        for item in request.items:
            self._validate_config(item)
        for item in request.items:
            self._apply_config(item)
        return ConfigReply(tuple(self._current_item(item) for item in request.items))

    def _validate_config(self, item: ConfigItem) -> None:
        tag = item.tag
        if tag not in self.config_tags:
            raise Outcome(Status.BAD_PARAM, f"unknown tag {int(tag):#x}")
        value = item.value
        if tag == ConfigTag.BAUD:
            if len(value) != 4 or item.int_value not in BAUD_RATES:
                raise Outcome(Status.BAD_PARAM, "baud")
            return
        if tag == ConfigTag.REASON:
            if not 1 <= len(value) <= 1 + MAX_REASON_LABEL or value[0] > MAX_REASON_INDEX:
                raise Outcome(Status.BAD_PARAM, "reason")
            try:
                decode_text(value[1:], TextEncoding.GBK, cmd=Command.CONFIG)
            except DecodeError as exc:
                raise Outcome(Status.ENCODING, "reason label") from exc
            return
        if len(value) != 1:
            raise Outcome(Status.BAD_PARAM, f"{tag.name} length")
        v = value[0]
        limits = {
            ConfigTag.BRIGHTNESS: (0, 15),
            ConfigTag.HOST_LOST_S: (1, 255),
            ConfigTag.TEXT_ENC: (0, 1),
            ConfigTag.VOLUME: (0, 15),
        }
        lo, hi = limits.get(tag, (0, 255))
        if not lo <= v <= hi:
            raise Outcome(Status.BAD_PARAM, f"{tag.name} range")
        if tag == ConfigTag.TEXT_ENC and v == 1 and not self.fonts & Fonts.UTF8:
            raise Outcome(Status.ENCODING, "UTF-8 not supported")

    def _apply_config(self, item: ConfigItem) -> None:
        c, v = self.config, item.int_value
        match item.tag:
            case ConfigTag.BAUD:
                c.baud = v
            case ConfigTag.BRIGHTNESS:
                c.brightness = v
            case ConfigTag.HOST_LOST_S:
                c.host_lost_s = v
            case ConfigTag.TEXT_ENC:
                c.text_enc = TextEncoding(v)
            case ConfigTag.FLASH_S:
                c.flash_s = v
            case ConfigTag.THANKS_S:
                c.thanks_s = v
            case ConfigTag.VOLUME:
                c.volume = v
            case ConfigTag.REASON:
                index, label = item.value[0], item.value[1:].decode("gbk")
                if label:
                    c.reasons[index] = label
                else:
                    c.reasons.pop(index, None)

    def _current_item(self, item: ConfigItem) -> ConfigItem:
        if item.tag == ConfigTag.REASON:
            index = item.value[0]
            return ConfigItem.reason(index, self.config.reasons.get(index, ""))
        return next(i for i in self._config_items() if i.tag == item.tag)

    def _config_items(self) -> tuple[ConfigItem, ...]:
        c = self.config
        values = {
            ConfigTag.BRIGHTNESS: c.brightness,
            ConfigTag.HOST_LOST_S: c.host_lost_s,
            ConfigTag.TEXT_ENC: int(c.text_enc),
            ConfigTag.FLASH_S: c.flash_s,
            ConfigTag.THANKS_S: c.thanks_s,
            ConfigTag.VOLUME: c.volume,
        }
        items: list[ConfigItem] = []
        for tag in sorted(self.config_tags):
            if tag == ConfigTag.BAUD:
                items.append(ConfigItem.baud(c.baud))
            elif tag == ConfigTag.REASON:
                items.extend(ConfigItem.reason(i, label) for i, label in sorted(c.reasons.items()))
            else:
                items.append(ConfigItem(tag, bytes((values[tag],))))
        return tuple(items)

    def change_config_locally(self, **changes: int) -> None:
        """Simulate the local menu: CONFIG values change and state bit 3 is set."""
        for name, value in changes.items():
            setattr(self.config, name, value)
        self._config_changed = True
        self._state_news = True

    # -- hooks for device classes -----------------------------------------------------------

    def execute(self, request: Request) -> Reply:
        """Run a class-specific command; raise Outcome for a non-OK status."""
        raise Outcome(Status.UNKNOWN_CMD)

    def _class_state(self) -> DeviceState:
        return DeviceState.NONE

    def _tick(self, now: float) -> None:
        """Fire class timers that are due at ``now`` (hold times, rating timeout)."""

    def _on_boot(self) -> None:
        """Reset volatile class state at boot."""

    def _on_host_lost(self) -> None:
        """Entering host-lost."""

    def _factory_reset(self) -> None:
        """Erase class-specific persistent state (idle texts, …)."""

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    def describe(self) -> str:
        """One line for logs: class, address, boot."""
        return f"{self.device_class.name.lower()}@0x{self.address:02X} boot {self.boot_id}"
