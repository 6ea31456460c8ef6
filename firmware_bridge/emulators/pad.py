"""Rating pad (评价器, class 3) emulator: clerk card, service and the rating flow (§10.3, §12)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from firmware_bridge.constants import (
    Caps,
    Command,
    ConfigTag,
    DeviceClass,
    DeviceState,
    LoginMethod,
    RatingDim,
    Status,
)
from firmware_bridge.emulators.base import Hb1Device, Outcome
from firmware_bridge.messages import (
    RATING_LEVELS,
    LoginEvent,
    LogoutEvent,
    PadCancelRequest,
    PadClerkRequest,
    PadRateRequest,
    PadServiceRequest,
    RatingEvent,
    RatingTimeoutEvent,
    Reply,
    Request,
    StatusReply,
)

LEVEL_NAMES = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
DIM_NAMES = {
    RatingDim.EFFICIENCY: "服务效率",
    RatingDim.SKILL: "服务水平",
    RatingDim.ATTITUDE: "服务态度",
}
MAINTENANCE = "系统维护中，请稍候"
PAUSED = "暂停服务"
THANKS = "谢谢您的评价"
RATE_PROMPT = "请您对本次服务进行评价"

# Enough history to answer PAD_RATE_REQ/PAD_CANCEL for sessions the host may still retry.
_ENDED_HISTORY = 64


@dataclass(frozen=True, slots=True)
class Clerk:
    window: str
    staff_no: str
    name: str
    paused: bool = False


@dataclass(frozen=True, slots=True)
class Service:
    session_id: int
    ticket: str
    matter: str


@dataclass(frozen=True, slots=True)
class RatingSession:
    session_id: int
    deadline: float
    dims_mask: int
    voice: bool


class PadEmulator(Hb1Device):
    """A rating pad. ``screen`` is what the citizen sees; ``rate()`` is a citizen's press."""

    device_class = DeviceClass.PAD
    model = "HB1-PAD"
    caps = Caps.CARD_READER | Caps.VOICE | Caps.RATING_DIMS
    class_commands = frozenset(
        {Command.PAD_CLERK, Command.PAD_SERVICE, Command.PAD_RATE_REQ, Command.PAD_CANCEL}
    )
    config_tags = Hb1Device.config_tags | {ConfigTag.THANKS_S, ConfigTag.REASON}

    def __init__(self, address: int, uid: bytes | None = None, **kwargs: Any) -> None:
        self._clerk: Clerk | None = None
        self._service: Service | None = None
        self._rating: RatingSession | None = None
        self.voice_prompts: list[str] = []
        self._ended: deque[int] = deque(maxlen=_ENDED_HISTORY)
        self._thanks_until: float | None = None
        super().__init__(address, uid, **kwargs)

    # -- what the citizen sees ---------------------------------------------------------------

    @property
    def clerk(self) -> Clerk | None:
        """The clerk card the pad holds (also while paused)."""
        return self._clerk

    @property
    def service(self) -> Service | None:
        self.advance()
        return self._service

    @property
    def rating(self) -> RatingSession | None:
        """The open rating session, if any (timeouts applied up to now)."""
        self.advance()
        return self._rating

    @property
    def screen(self) -> tuple[str, ...]:
        """The pad's screen as lines of text."""
        self.advance()
        now = self.clock()
        if self._rating is not None:
            lines = [RATE_PROMPT, " ".join(LEVEL_NAMES[level] for level in range(5, 0, -1))]
            lines += [DIM_NAMES[d] for d in RatingDim if d and self._rating.dims_mask & d]
            return tuple(lines)
        if self._thanks_until is not None and now < self._thanks_until:
            return (THANKS,)
        if self._host_lost:
            return (MAINTENANCE,)
        if self._clerk is None or self._clerk.paused:
            return (PAUSED,)
        card = (
            f"窗口：{self._clerk.window}",
            f"工号：{self._clerk.staff_no}",
            f"姓名：{self._clerk.name}",
        )
        if self._service is not None:
            return (f"正在为 {self._service.ticket} 办理：{self._service.matter}", *card)
        return card

    # -- citizen and clerk actions -----------------------------------------------------------

    def rate(self, level: int, reasons: int = 0, dims: tuple[int, ...] | None = None) -> bool:
        """The citizen presses a level (and reasons, dimension levels); False = refused."""
        self.advance()
        session = self._rating
        if session is None or not 1 <= level <= RATING_LEVELS or self.fifo_full:
            self.error_beep()  # no open session, or FIFO full: the rating screen stays (§8.1)
            return False
        n_dims = bin(session.dims_mask).count("1")
        if session.dims_mask:
            dims = dims if dims is not None else (0,) * n_dims  # skipped dimensions are 0
            if len(dims) != n_dims or not all(0 <= d <= RATING_LEVELS for d in dims):
                self.error_beep()
                return False
        else:
            dims = None
        event = RatingEvent(session.session_id, level, reasons if level <= 2 else 0, dims)
        self.queue_event(event)
        self._end_session(session.session_id, rated=True)
        self._thanks_until = self.clock() + self.config.thanks_s
        self._changed()
        return True

    def login(self, method: LoginMethod, cred: bytes) -> bool:
        """A clerk logs in on the pad (card, keys or badge scan)."""
        if self.host_lost or self.fifo_full:
            self.error_beep()
            return False
        return self.queue_event(LoginEvent(method, cred))

    def logout(self) -> bool:
        if self.host_lost or self.fifo_full:
            self.error_beep()
            return False
        return self.queue_event(LogoutEvent())

    # -- protocol ----------------------------------------------------------------------------

    def _on_boot(self) -> None:
        self._clerk = None
        self._service = None
        self._rating = None  # a session lost by a reboot has no terminal event (§8.4)
        self._ended.clear()
        self._thanks_until = None

    def _class_state(self) -> DeviceState:
        bits = DeviceState.NONE
        if self._rating is not None:
            bits |= DeviceState.CLASS_BIT5
        if self._clerk is not None:
            bits |= DeviceState.CLASS_BIT6
        return bits

    def _tick(self, now: float) -> None:
        session = self._rating
        if session is not None and now >= session.deadline:
            self.queue_event(RatingTimeoutEvent(session.session_id))
            self._end_session(session.session_id, rated=True)
            self._changed()

    def _end_session(self, session_id: int, *, rated: bool) -> None:
        """Close the open session; ``rated`` = ended by RATING or RATING_TIMEOUT."""
        if rated:
            self._ended.append(session_id)
        self._rating = None
        self._service = None

    def execute(self, request: Request) -> Reply:
        now = self.clock()
        if isinstance(request, PadClerkRequest):
            if not request.name:
                # Nobody logged in: sessions end without an event.
                self._clerk = None
                self._service = None
                self._rating = None
            else:
                paused = bool(request.flags & PadClerkRequest.PAUSED)
                self._clerk = Clerk(request.window, request.staff_no, request.name, paused)
        elif isinstance(request, PadServiceRequest):
            if self._rating is not None and self._rating.session_id != request.session_id:
                self._rating = None
            self._service = Service(request.session_id, request.ticket, request.matter)
            self._thanks_until = None
        elif isinstance(request, PadRateRequest):
            self._rate_request(request, now)
        elif isinstance(request, PadCancelRequest):
            self._cancel(request.session_id)
        else:
            raise Outcome(Status.UNKNOWN_CMD)
        return StatusReply()

    def _rate_request(self, request: PadRateRequest, now: float) -> None:
        if self._rating is not None and self._rating.session_id == request.session_id:
            return  # same session already open: the timer is not restarted
        if request.session_id in self._ended:
            raise Outcome(Status.STATE_CONFLICT, "session already rated or timed out")
        self._rating = RatingSession(
            request.session_id, now + request.timeout_s, request.dims_mask, bool(request.voice)
        )
        self._thanks_until = None
        if request.voice:
            self.voice_prompts.append("请对我的服务进行评价")

    def _cancel(self, session_id: int) -> None:
        if self._rating is not None and self._rating.session_id == session_id:
            self._rating = None
            self._service = None
            return
        if session_id in self._ended:
            raise Outcome(Status.STATE_CONFLICT, "session already ended by the citizen")
        if self._rating is not None:
            raise Outcome(Status.STATE_CONFLICT, "another session is open")
