"""HB/1 wire codes (spec §6–§11) as enums with hex values.

Codes that newer firmware may send and this host does not know still convert: ``Command(0x99)``
yields a pseudo-member named ``UNKNOWN_0x99`` whose ``is_known`` is false.
"""

from __future__ import annotations

import enum
from typing import Self


class WireEnum(enum.IntEnum):
    """IntEnum for a one-byte wire code that tolerates unknown values."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if isinstance(value, int) and 0 <= value <= 0xFF:
            member = int.__new__(cls, value)
            member._name_ = f"UNKNOWN_0x{value:02X}"
            member._value_ = value
            return member
        return None

    @property
    def is_known(self) -> bool:
        """False for a pseudo-member created for an unknown code."""
        return self._name_ in type(self).__members__


class Command(WireEnum):
    """CMD byte (§9)."""

    POLL = 0x01
    INFO = 0x02
    SET_ADDRESS = 0x03
    SET_TIME = 0x04
    RESET = 0x05
    INDICATE = 0x06
    CONFIG = 0x07
    ATTN = 0x08  # optional extension (docs/protocol.md §17), INFO caps bit 8
    SHOW_TEXT = 0x10
    CLEAR = 0x11
    SET_IDLE = 0x12
    BRIGHTNESS = 0x13
    SHOW_ROWS = 0x14
    BITMAP = 0x15
    PAD_CLERK = 0x20
    PAD_SERVICE = 0x21
    PAD_RATE_REQ = 0x22
    PAD_CANCEL = 0x23
    KEYPAD_SHOW = 0x30
    PASSTHRU_TX = 0x50


# §9 column G (SET_ADDRESS only as broadcast, RESET only mode 0).
GROUP_COMMANDS = frozenset(
    {
        Command.SET_ADDRESS,
        Command.SET_TIME,
        Command.RESET,
        Command.INDICATE,
        Command.CONFIG,
        Command.SHOW_TEXT,
        Command.CLEAR,
        Command.SET_IDLE,
        Command.BRIGHTNESS,
        Command.SHOW_ROWS,
        Command.BITMAP,
    }
)
# §9 column P: the reply may take up to t_busy_ms.
PERSISTENT_COMMANDS = frozenset(
    {Command.SET_ADDRESS, Command.SET_IDLE, Command.CONFIG, Command.RESET}
)
# §8.4: executing one of these clears the latched host-lost state bit.
CONTENT_COMMANDS = frozenset(
    {
        Command.SHOW_TEXT,
        Command.SET_IDLE,
        Command.CLEAR,
        Command.SHOW_ROWS,
        Command.PAD_CLERK,
        Command.PAD_SERVICE,
        Command.PAD_RATE_REQ,
        Command.PAD_CANCEL,
        Command.KEYPAD_SHOW,
    }
)


class Status(WireEnum):
    """First byte of every reply payload (§7.2)."""

    OK = 0x00
    BAD_LENGTH = 0x01
    UNKNOWN_CMD = 0x02
    BAD_PARAM = 0x03
    BUSY = 0x04
    STATE_CONFLICT = 0x05
    ENCODING = 0x06


class DeviceClass(WireEnum):
    """INFO ``class`` (§10.1); the group address is 0xF0 + class (§6)."""

    STRIP = 0x01
    SCREEN = 0x02
    PAD = 0x03
    CALLER = 0x04
    KIOSK = 0x05

    @property
    def group_address(self) -> int:
        """Group address of this class (§6)."""
        return 0xF0 + int(self)

    @property
    def interactive(self) -> bool:
        """Polled about every 250 ms rather than every few seconds (§8.4)."""
        return self in INTERACTIVE_CLASSES

    @property
    def is_display(self) -> bool:
        """Strip or hall screen."""
        return self in (DeviceClass.STRIP, DeviceClass.SCREEN)


INTERACTIVE_CLASSES = frozenset({DeviceClass.PAD, DeviceClass.CALLER, DeviceClass.KIOSK})


class EventType(WireEnum):
    """``evt_type`` of a POLL reply (§11); 0 means no event."""

    NONE = 0x00
    BOOT = 0x40
    RATING = 0x41
    RATING_TIMEOUT = 0x42
    LOGIN = 0x43
    LOGOUT = 0x44
    KEY = 0x45
    FAULT = 0x46
    PASSTHRU_RX = 0x47


class BootReason(WireEnum):
    """BOOT ``reason``."""

    POWER_ON = 0x00
    WATCHDOG = 0x01
    RESET_COMMAND = 0x02
    BROWN_OUT = 0x03
    FIRMWARE_UPDATE = 0x04
    OTHER = 0xFF


class LoginMethod(WireEnum):
    """LOGIN ``method``."""

    CARD = 0x01
    KEYS = 0x02
    SCAN = 0x03


class KeyCode(WireEnum):
    """KEY ``key`` (0x80–0xFE are site-defined and convert as unknown members)."""

    CALL_NEXT = 0x01
    RECALL = 0x02
    NO_SHOW = 0x03
    PAUSE = 0x04
    RESUME = 0x05
    TRANSFER = 0x06
    FINISH = 0x07
    CALL_SPECIFIC = 0x08
    HOLD = 0x09
    CALL_BACK = 0x0A


class FaultCode(WireEnum):
    """FAULT ``code`` (0x80–0xFE vendor)."""

    DISPLAY = 0x01
    KEY_STUCK = 0x02
    NVM = 0x03
    FONT_MISSING = 0x04
    TAMPER = 0x05
    SENSOR = 0x06
    LOCAL_UART = 0x07


class ConfigTag(WireEnum):
    """CONFIG TLV tags (§10.1); 0x80–0xFE are vendor tags."""

    BAUD = 0x01
    BRIGHTNESS = 0x02
    HOST_LOST_S = 0x03
    TEXT_ENC = 0x04
    FLASH_S = 0x05
    THANKS_S = 0x06
    VOLUME = 0x07
    REASON = 0x10


class TextEncoding(WireEnum):
    """SHOW_TEXT ``enc`` and CONFIG TEXT_ENC."""

    GBK = 0x00
    UTF8 = 0x01


class DisplayMode(WireEnum):
    """SHOW_TEXT ``mode``."""

    STATIC = 0x00
    SCROLL = 0x01
    FLASH = 0x02


class ResetMode(WireEnum):
    """RESET ``mode``."""

    REBOOT = 0x00
    FACTORY = 0x01


class Color(enum.IntFlag):
    """Colour bits of SHOW_TEXT and SHOW_ROWS attr; 0 = device default."""

    DEFAULT = 0x00
    RED = 0x01
    GREEN = 0x02
    BLUE = 0x04
    YELLOW = RED | GREEN


class RowAttr(enum.IntFlag):
    """SHOW_ROWS ``attr`` (colour bits 0–2 plus flash)."""

    RED = 0x01
    GREEN = 0x02
    BLUE = 0x04
    FLASH = 0x08


class DeviceState(enum.IntFlag):
    """POLL reply ``state`` (§8.2)."""

    NONE = 0x00
    FAULT = 0x01
    TAMPER = 0x02
    HOST_LOST = 0x04
    CONFIG_CHANGED = 0x08
    OVERFLOW = 0x10
    CLASS_BIT5 = 0x20  # displays: content active; pads: rating session open
    CLASS_BIT6 = 0x40  # pads: a clerk is shown


class Caps(enum.IntFlag):
    """INFO ``caps``."""

    NONE = 0x0000
    BRIGHTNESS = 0x0001
    BITMAP = 0x0002
    PASSTHRU = 0x0004
    RTC = 0x0008
    CARD_READER = 0x0010
    VOICE = 0x0020
    RATING_DIMS = 0x0040
    FLASH = 0x0080
    ATTENTION = 0x0100  # the optional attention poll (docs/protocol.md §17)


class Fonts(enum.IntFlag):
    """INFO ``fonts``."""

    NONE = 0x00
    GB2312 = 0x01
    GBK = 0x02
    GB18030_2BYTE = 0x04
    UTF8 = 0x08


class Bauds(enum.IntFlag):
    """INFO ``bauds``; ``baud_now`` is the bit index."""

    NONE = 0x00
    B9600 = 0x01
    B19200 = 0x02
    B38400 = 0x04
    B57600 = 0x08
    B115200 = 0x10


BAUD_RATES = (9600, 19200, 38400, 57600, 115200)


class RatingDim(enum.IntFlag):
    """PAD_RATE_REQ ``dims_mask``."""

    NONE = 0x00
    EFFICIENCY = 0x01  # 服务效率
    SKILL = 0x02  # 服务水平
    ATTITUDE = 0x04  # 服务态度
