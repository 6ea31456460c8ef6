"""Clerk caller keypad (呼叫器, class 4) and kiosk helper MCU (class 5) emulators (§10.4)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from firmware_bridge.constants import (
    Caps,
    Command,
    DeviceClass,
    KeyCode,
    LoginMethod,
    Status,
)
from firmware_bridge.emulators.base import Hb1Device, Outcome
from firmware_bridge.messages import (
    MAX_PASSTHRU_RX,
    NO_WAITING,
    KeyEvent,
    KeypadShowRequest,
    LoginEvent,
    LogoutEvent,
    PassthruRxEvent,
    PassthruTxRequest,
    Reply,
    Request,
    StatusReply,
)

# Keys whose argument is required (§11): the device refuses them without one.
_ARG_REQUIRED = frozenset({KeyCode.TRANSFER, KeyCode.CALL_SPECIFIC})
HOST_LOST_DISPLAY = "----"


@dataclass(frozen=True, slots=True)
class KeypadDisplay:
    """What the caller's 7-segment display and LED show."""

    ticket: str
    waiting: int | None  # None = hidden
    led: int


def _key_event(key: KeyCode | int, arg: str) -> KeyEvent | None:
    """A KEY event, or None when the press is invalid and must be refused."""
    code = KeyCode(key)
    if code in _ARG_REQUIRED and not arg:
        return None
    if len(arg) > 255 or not all(0x20 <= ord(c) <= 0x7E for c in arg):
        return None
    return KeyEvent(code, arg)


class CallerEmulator(Hb1Device):
    """A clerk's caller keypad: keys become KEY events; the host drives its display."""

    device_class = DeviceClass.CALLER
    model = "HB1-CALLER"
    caps = Caps.CARD_READER
    class_commands = frozenset({Command.KEYPAD_SHOW})

    def __init__(self, address: int, uid: bytes | None = None, **kwargs: Any) -> None:
        self._display = KeypadDisplay("", None, 0)
        super().__init__(address, uid, **kwargs)

    @property
    def display(self) -> KeypadDisplay:
        """Display content; "----" while host-lost (§8.4)."""
        if self.host_lost:
            return KeypadDisplay(HOST_LOST_DISPLAY, None, self._display.led)
        return self._display

    @property
    def text(self) -> str:
        d = self.display
        return d.ticket if d.waiting is None else f"{d.ticket} 等候{d.waiting}"

    def press_key(self, key: KeyCode | int, arg: str = "") -> bool:
        """A clerk presses a key; False = refused with an error beep, nothing queued."""
        event = _key_event(key, arg)
        # While host-lost, stale calls must not be replayed later: no KEY event at all.
        if event is None or self.host_lost or self.fifo_full:
            self.error_beep()
            return False
        return self.queue_event(event)

    def login(self, method: LoginMethod, cred: bytes) -> bool:
        if self.host_lost or self.fifo_full:
            self.error_beep()
            return False
        return self.queue_event(LoginEvent(method, cred))

    def logout(self) -> bool:
        if self.host_lost or self.fifo_full:
            self.error_beep()
            return False
        return self.queue_event(LogoutEvent())

    def _on_boot(self) -> None:
        self._display = KeypadDisplay("", None, 0)

    def execute(self, request: Request) -> Reply:
        if isinstance(request, KeypadShowRequest):
            waiting = None if request.waiting == NO_WAITING else request.waiting
            self._display = KeypadDisplay(request.ticket, waiting, request.led)
            return StatusReply()
        raise Outcome(Status.UNKNOWN_CMD)


# A local UART device behind the kiosk MCU: takes bytes, returns what it answers.
LocalDevice = Callable[[bytes], bytes]


class KioskEmulator(Hb1Device):
    """Kiosk helper MCU: a key board (KEY events) and local UARTs reached by PASSTHRU.

    Attach a local device per port (e.g. ``EscPosPrinter().feed``): bytes from PASSTHRU_TX
    reach it unchanged and its answers come back as PASSTHRU_RX events (§13 tunnel).
    """

    device_class = DeviceClass.KIOSK
    model = "HB1-KIOSK"
    caps = Caps.PASSTHRU
    class_commands = frozenset({Command.PASSTHRU_TX})

    def __init__(self, address: int, uid: bytes | None = None, **kwargs: Any) -> None:
        self.uart_tx: dict[int, bytearray] = {port: bytearray() for port in range(4)}
        self.local_devices: dict[int, LocalDevice] = {}
        super().__init__(address, uid, **kwargs)

    def attach_local(self, port: int, device: LocalDevice) -> None:
        self.local_devices[port] = device

    def press_key(self, key: KeyCode | int, arg: str = "") -> bool:
        event = _key_event(key, arg)
        if event is None or self.fifo_full:
            self.error_beep()
            return False
        return self.queue_event(event)

    def uart_received(self, port: int, data: bytes) -> None:
        """Bytes arrived on a local UART: queued as PASSTHRU_RX events of ≤ 64 bytes."""
        for i in range(0, len(data), MAX_PASSTHRU_RX):
            self.queue_event(PassthruRxEvent(port, data[i : i + MAX_PASSTHRU_RX]))

    def execute(self, request: Request) -> Reply:
        if isinstance(request, PassthruTxRequest):
            self.uart_tx[request.port] += request.data
            local = self.local_devices.get(request.port)
            if local is not None:
                answer = local(bytes(request.data))
                if answer:
                    self.uart_received(request.port, answer)
            return StatusReply()
        raise Outcome(Status.UNKNOWN_CMD)
