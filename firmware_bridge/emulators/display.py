"""Window LED strip (窗口条屏, class 1) and hall screen (综合屏, class 2) emulators (§10.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from firmware_bridge.constants import (
    Caps,
    Command,
    DeviceClass,
    DeviceState,
    DisplayMode,
    Fonts,
    Status,
    TextEncoding,
)
from firmware_bridge.emulators.base import Hb1Device, Outcome
from firmware_bridge.messages import (
    BitmapRequest,
    BrightnessRequest,
    ClearRequest,
    Reply,
    Request,
    SetIdleRequest,
    ShowRowsRequest,
    ShowTextRequest,
    StatusReply,
)


@dataclass(frozen=True, slots=True)
class RegionContent:
    """Text shown in a region; ``until`` is when its hold time ends (None = until replaced)."""

    text: str
    mode: DisplayMode = DisplayMode.STATIC
    color: int = 0
    until: float | None = None
    shown_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Bitmap:
    """A completed BITMAP image in a region."""

    x: int
    y: int
    w: int
    h: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ScreenRow:
    """One hall-screen row (SHOW_ROWS)."""

    text: str
    attr: int = 0
    shown_at: float = 0.0


class DisplayDevice(Hb1Device):
    """Shared by strips and hall screens: regions with content, idle content and hold times."""

    caps = Caps.BRIGHTNESS | Caps.BITMAP | Caps.FLASH
    fonts = Fonts.GB2312 | Fonts.GBK
    class_commands = frozenset(
        {
            Command.SHOW_TEXT,
            Command.CLEAR,
            Command.SET_IDLE,
            Command.BRIGHTNESS,
            Command.BITMAP,
        }
    )

    def __init__(self, address: int, uid: bytes | None = None, **kwargs: Any) -> None:
        # Idle texts live in non-volatile memory: they survive reboots, not factory resets.
        self._idle: dict[int, RegionContent] = {}
        self._content: dict[int, RegionContent] = {}
        self._bitmaps: dict[int, Bitmap] = {}
        self._bitmap_parts: dict[int, tuple[BitmapRequest, bytearray]] = {}
        super().__init__(address, uid, **kwargs)

    # -- what a person sees ------------------------------------------------------------------

    def shown(self, region: int = 0) -> str:
        """Text visible in ``region`` now (content, else idle content, else blank)."""
        self.advance()
        content = self._content.get(region) or self._idle.get(region)
        return content.text if content else ""

    def shown_content(self, region: int = 0) -> RegionContent | None:
        self.advance()
        return self._content.get(region) or self._idle.get(region)

    def idle_text(self, region: int = 0) -> str:
        idle = self._idle.get(region)
        return idle.text if idle else ""

    def flashing(self, region: int = 0) -> bool:
        """True while a flash-mode text still blinks (FLASH_S after it was shown)."""
        content = self.shown_content(region)
        return (
            content is not None
            and content.mode == DisplayMode.FLASH
            and self.clock() < content.shown_at + self.config.flash_s
        )

    def bitmap(self, region: int = 0) -> Bitmap | None:
        self.advance()
        return self._bitmaps.get(region)

    # -- protocol ----------------------------------------------------------------------------

    def _on_boot(self) -> None:
        self._content.clear()
        self._bitmaps.clear()
        self._bitmap_parts.clear()

    def _factory_reset(self) -> None:
        self._idle.clear()

    def _class_state(self) -> DeviceState:
        return DeviceState.CLASS_BIT5 if self._content else DeviceState.NONE

    def _tick(self, now: float) -> None:
        for region, content in list(self._content.items()):
            if content.until is not None and now >= content.until:
                self._end_content(region)

    def _end_content(self, region: int) -> None:
        self._content.pop(region, None)
        self._bitmaps.pop(region, None)

    def _check_region(self, region: int) -> None:
        if region >= self.regions:
            raise Outcome(Status.BAD_PARAM, f"region {region} ≥ {self.regions}")

    def _check_enc(self, enc: TextEncoding) -> None:
        if enc == TextEncoding.UTF8 and not self.fonts & Fonts.UTF8:
            raise Outcome(Status.ENCODING, "UTF-8 not supported")

    def execute(self, request: Request) -> Reply:
        now = self.clock()
        if isinstance(request, ShowTextRequest):
            self._check_region(request.region)
            self._check_enc(request.enc)
            until = now + request.hold_s if request.hold_s else None
            self._end_content(request.region)
            self._content[request.region] = RegionContent(
                request.text, request.mode, request.color, until, now
            )
        elif isinstance(request, SetIdleRequest):
            self._check_region(request.region)
            self._check_enc(request.enc)
            if request.text:
                self._idle[request.region] = RegionContent(
                    request.text, request.mode, request.color, None, now
                )
            else:
                self._idle.pop(request.region, None)
        elif isinstance(request, ClearRequest):
            if request.region == ClearRequest.ALL:
                for region in list(self._content):
                    self._end_content(region)
                self._clear_all()
            else:
                self._check_region(request.region)
                self._end_content(request.region)
        elif isinstance(request, BrightnessRequest):
            self.brightness = request.level
        elif isinstance(request, BitmapRequest):
            self._bitmap_chunk(request)
        else:
            return self._execute_more(request)
        return StatusReply()

    def _execute_more(self, request: Request) -> Reply:
        raise Outcome(Status.UNKNOWN_CMD)

    def _clear_all(self) -> None:
        """CLEAR 0xFF extras (hall screen rows)."""

    def _bitmap_chunk(self, request: BitmapRequest) -> None:
        self._check_region(request.region)
        if request.offset == 0:
            self._bitmap_parts[request.region] = (request, bytearray())
        part = self._bitmap_parts.get(request.region)
        if part is None or len(part[1]) != request.offset:
            raise Outcome(Status.BAD_PARAM, "chunks out of order")
        first, data = part
        data += request.data
        if len(data) == first.image_size:
            del self._bitmap_parts[request.region]
            self._bitmaps[request.region] = Bitmap(first.x, first.y, first.w, first.h, bytes(data))


class StripEmulator(DisplayDevice):
    """Window LED strip: one text region, e.g. "请A001号到3号窗口"."""

    device_class = DeviceClass.STRIP
    model = "HB1-STRIP"
    regions = 1
    width_px = 160
    height_px = 16

    @property
    def text(self) -> str:
        """What the strip shows now."""
        return self.shown(0)


class ScreenEmulator(DisplayDevice):
    """Hall screen: a title/notice region plus rows of recent calls."""

    device_class = DeviceClass.SCREEN
    model = "HB1-SCREEN"
    regions = 2
    rows = 8
    width_px = 256
    height_px = 160
    class_commands = DisplayDevice.class_commands | {Command.SHOW_ROWS}

    def __init__(self, address: int, uid: bytes | None = None, **kwargs: Any) -> None:
        self._rows: list[ScreenRow | None] = [None] * self.rows
        super().__init__(address, uid, **kwargs)

    @property
    def lines(self) -> tuple[str, ...]:
        """Row texts top to bottom ("" for an empty row)."""
        self.advance()
        return tuple(row.text if row else "" for row in self._rows)

    def row(self, index: int) -> ScreenRow | None:
        return self._rows[index]

    def _on_boot(self) -> None:
        super()._on_boot()
        self._rows = [None] * self.rows

    def _clear_all(self) -> None:
        self._rows = [None] * self.rows

    def _class_state(self) -> DeviceState:
        active = self._content or any(self._rows)
        return DeviceState.CLASS_BIT5 if active else DeviceState.NONE

    def _execute_more(self, request: Request) -> Reply:
        if isinstance(request, ShowRowsRequest):
            if request.first_row + len(request.rows) > self.rows:
                raise Outcome(Status.BAD_PARAM, "rows beyond the screen")
            now = self.clock()
            for i, row in enumerate(request.rows):
                self._rows[request.first_row + i] = ScreenRow(row.text, row.attr, now)
            return StatusReply()
        return super()._execute_more(request)
