"""``hall emulate``: run emulated hall devices or an ESC/POS printer on a serial line.

    hall emulate strip|screen|pad|caller|kiosk|printer [--address N ...] [--url URL]
                 [--listen HOST:PORT] [--baudrate B]

Without ``--url``/``--listen`` a pty is created and its slave path printed as ``pty: PATH``;
point the hall server's bus (or a printer config) at that path. Every command the device
receives is logged readably (Chinese text decoded), and what it shows is printed whenever it
changes. Lines typed on stdin press keys, rate, or flip failure switches; ``help`` lists them.
Also runnable as ``python -m firmware_bridge.emulators.cli``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import enum
import signal
import sys
from collections.abc import Callable

from firmware_bridge.constants import BootReason, KeyCode, LoginMethod
from firmware_bridge.emulators.base import Hb1Device, RequestLog
from firmware_bridge.emulators.bus import Hb1Bus
from firmware_bridge.emulators.display import ScreenEmulator, StripEmulator
from firmware_bridge.emulators.keypad import CallerEmulator, KioskEmulator
from firmware_bridge.emulators.line import LineEndpoint
from firmware_bridge.emulators.pad import PadEmulator
from firmware_bridge.emulators.printer import EscPosPrinter, PaperLevel, PrintJob
from firmware_bridge.messages import AttnRequest, PollRequest, Request
from firmware_bridge.transport import SerialOptions

KINDS: dict[str, type[Hb1Device]] = {
    "strip": StripEmulator,
    "screen": ScreenEmulator,
    "pad": PadEmulator,
    "caller": CallerEmulator,
    "kiosk": KioskEmulator,
}
DEFAULT_ADDRESS = {"strip": 0x03, "screen": 0x20, "pad": 0x05, "caller": 0x07, "kiosk": 0x30}

HELP = """\
commands (prefix '@N ' to address one device when several run):
  key NAME|CODE [ARG]   press a key: key 1, key call_next, key call_specific A012, key transfer 5
  rate LEVEL [REASONS] [DIM ...]   citizen rates 1-5 (REASONS as a bit mask, e.g. 0x3)
  login STAFF[*PIN]     clerk logs in with keys; card HEX: with a staff card; logout
  reboot | silent on|off | busy on|off | corrupt on|off | drop N
  show | events | help | quit
printer: paper ok|near|out, cover open|closed, cutter ok|error, silent on|off, jobs"""


def _int(text: str) -> int:
    return int(text, 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hall emulate", description="Emulate HB/1 hall devices or an ESC/POS printer."
    )
    parser.add_argument("kind", choices=[*KINDS, "printer"])
    parser.add_argument(
        "--address",
        type=_int,
        action="append",
        help="device address (repeat for several devices on one bus; default per kind)",
    )
    parser.add_argument("--url", help="attach to a tty path or socket://host:port")
    parser.add_argument("--listen", metavar="HOST:PORT", help="serve on TCP like a serial server")
    parser.add_argument("--baudrate", type=int, default=9600)
    parser.add_argument("--verbose", "-v", action="store_true", help="also log every POLL")
    parser.add_argument(
        "--attention",
        action="store_true",
        help="devices have the optional attention poll (docs/protocol.md §17, INFO caps bit 8)",
    )
    parser.add_argument("--no-stdin", action="store_true", help="ignore stdin (run as a service)")
    return parser


def _fmt_value(value: object) -> str:
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, bytes | bytearray):
        return value.hex(" ") if value else "''"
    if isinstance(value, str):
        return f"'{value}'"  # keep Chinese readable; repr() would too, but quotes are enough
    if isinstance(value, tuple):
        return "[" + ", ".join(_fmt_value(v) for v in value) + "]"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        inner = " ".join(
            f"{f.name}={_fmt_value(getattr(value, f.name))}" for f in dataclasses.fields(value)
        )
        return f"({inner})"
    return str(value)


def describe_request(request: Request) -> str:
    """One readable line for a request: name and fields, text decoded."""
    if not dataclasses.is_dataclass(request):
        return request.CMD.name
    return f"{request.CMD.name} {_fmt_value(request)[1:-1]}".rstrip()


def render(device: Hb1Device) -> str:
    """What a person standing in front of the device sees."""
    if isinstance(device, StripEmulator):
        return f"strip shows: {device.text!r}"
    if isinstance(device, ScreenEmulator):
        rows = " | ".join(device.lines)
        return f"screen shows: {device.shown(0)!r} rows: {rows}"
    if isinstance(device, PadEmulator):
        return "pad shows: " + " / ".join(device.screen)
    if isinstance(device, CallerEmulator):
        return f"caller shows: {device.text!r}"
    if isinstance(device, KioskEmulator):
        return f"kiosk uart0 tx bytes: {len(device.uart_tx[0])}"
    return device.describe()


class Session:
    """Glue between devices, the line and the console."""

    def __init__(self, args: argparse.Namespace, out: Callable[[str], None]) -> None:
        self.args = args
        self.out = out
        self.devices: list[Hb1Device] = []
        self.printer: EscPosPrinter | None = None
        self._shown: dict[int, str] = {}
        self.done = asyncio.Event()
        if args.kind == "printer":
            self.printer = EscPosPrinter(on_job=self._on_job, on_command=self._printer_log)
            self.endpoint = LineEndpoint(self.printer)
        else:
            cls = KINDS[args.kind]
            for address in args.address or [DEFAULT_ADDRESS[args.kind]]:
                device = cls(address, attention=args.attention)
                device.on_log = self._on_request
                device.on_change = self._on_change
                self.devices.append(device)
            self.endpoint = LineEndpoint(Hb1Bus(self.devices, baud=args.baudrate))

    # -- output ------------------------------------------------------------------------------

    def _on_request(self, device: Hb1Device, entry: RequestLog) -> None:
        if isinstance(entry.request, PollRequest | AttnRequest) and not self.args.verbose:
            return  # POLL and attention rounds are the heartbeat: several per second
        what = describe_request(entry.request) if entry.request else f"cmd 0x{entry.frame.cmd:02X}"
        status = "no reply" if entry.status is None else entry.status.name
        note = f" ({entry.note})" if entry.note else ""
        self.out(f"[{device.describe()}] <- {what} seq=0x{entry.frame.seq:02X} -> {status}{note}")

    def _on_change(self, device: Hb1Device) -> None:
        text = render(device)
        if self._shown.get(id(device)) != text:
            self._shown[id(device)] = text
            self.out(f"[{device.describe()}] {text}")

    def _printer_log(self, text: str) -> None:
        self.out(f"[printer] {text}")

    def _on_job(self, job: PrintJob) -> None:
        assert self.printer is not None
        self.out(f"[printer] job #{len(self.printer.jobs)}: {' / '.join(job.text_lines)}")

    # -- console commands --------------------------------------------------------------------

    def command(self, line: str) -> None:
        words = line.split()
        if not words:
            return
        target = self.devices[0] if self.devices else None
        if words[0].startswith("@"):
            address = _int(words[0][1:])
            target = next((d for d in self.devices if d.address == address), None)
            words = words[1:]
            if target is None or not words:
                self.out(f"no device at {address:#04x}")
                return
        try:
            self._run(words[0].lower(), words[1:], target)
        except (ValueError, IndexError, KeyError) as exc:
            self.out(f"error: {exc!r}; type 'help'")

    def _run(self, cmd: str, args: list[str], dev: Hb1Device | None) -> None:
        if cmd == "help":
            self.out(HELP)
        elif cmd in ("quit", "exit"):
            self.done.set()
        elif self.printer is not None:
            self._printer_command(cmd, args, self.printer)
        elif dev is not None:
            self._device_command(cmd, args, dev)

    def _printer_command(self, cmd: str, args: list[str], printer: EscPosPrinter) -> None:
        c = printer.condition
        if cmd == "paper":
            level = {"ok": PaperLevel.ADEQUATE, "near": PaperLevel.NEAR_END, "out": PaperLevel.OUT}
            c = dataclasses.replace(c, paper=level[args[0]])
        elif cmd == "cover":
            c = dataclasses.replace(c, cover_open=args[0] == "open")
        elif cmd == "cutter":
            c = dataclasses.replace(c, cutter_error=args[0] == "error")
        elif cmd == "silent":
            c = dataclasses.replace(c, silent=args[0] == "on")
        elif cmd == "jobs":
            for i, job in enumerate(printer.jobs, start=1):
                qr = ", ".join(q.text for q in job.qr_codes)
                self.out(f"job #{i}: {' / '.join(job.text_lines)} qr=[{qr}] cut={job.cut}")
            return
        else:
            raise ValueError(f"unknown printer command {cmd}")
        printer.set_condition(c)
        answers = [printer.condition.status_byte(n) for n in (1, 2, 3, 4)]
        status = " ".join("--" if a is None else f"{a:02x}" for a in answers)
        self.out(f"[printer] condition {c} -> DLE EOT 1-4 answers {status}")

    def _device_command(self, cmd: str, args: list[str], dev: Hb1Device) -> None:
        tag = f"[{dev.describe()}]"
        switches = dev.switches
        if cmd == "key":
            key = _key(args[0])
            arg = args[1] if len(args) > 1 else ""
            ok = isinstance(dev, CallerEmulator | KioskEmulator) and dev.press_key(key, arg)
            self.out(f"{tag} key {key.name} {arg} -> {'queued' if ok else 'refused (beep)'}")
        elif cmd == "rate":
            if not isinstance(dev, PadEmulator):
                raise ValueError("only pads rate")
            reasons = _int(args[1]) if len(args) > 1 else 0
            dims = tuple(int(a) for a in args[2:]) or None
            ok = dev.rate(int(args[0]), reasons, dims)
            self.out(f"{tag} rate {args[0]} -> {'queued' if ok else 'refused (beep)'}")
        elif cmd in ("login", "card", "logout"):
            if not isinstance(dev, PadEmulator | CallerEmulator):
                raise ValueError("only pads and callers log in")
            if cmd == "logout":
                ok = dev.logout()
            elif cmd == "card":
                ok = dev.login(LoginMethod.CARD, bytes.fromhex(args[0]))
            else:
                ok = dev.login(LoginMethod.KEYS, args[0].encode("ascii"))
            self.out(f"{tag} {cmd} -> {'queued' if ok else 'refused (beep)'}")
        elif cmd == "reboot":
            dev.reboot(BootReason.POWER_ON)
            self.out(f"{tag} rebooted")
        elif cmd in ("silent", "busy", "corrupt"):
            setattr(switches, cmd, args[0] == "on")
            self.out(f"{tag} {cmd} {'on' if getattr(switches, cmd) else 'off'}")
        elif cmd == "drop":
            switches.drop_next = int(args[0])
            self.out(f"{tag} dropping the next {switches.drop_next} replies")
        elif cmd == "show":
            self.out(f"{tag} {render(dev)}")
        elif cmd == "events":
            for q in dev.pending_events:
                self.out(f"{tag} evt {q.evt_seq}: {q.event.evt_type.name} {_fmt_value(q.event)}")
        else:
            raise ValueError(f"unknown command {cmd}")

    # -- running -----------------------------------------------------------------------------

    async def attach(self) -> None:
        args = self.args
        if args.url:
            await self.endpoint.attach_url(args.url, SerialOptions(baudrate=args.baudrate))
            self.out(f"attached: {args.url}")
        elif args.listen:
            host, _, port = args.listen.rpartition(":")
            bound = await self.endpoint.serve_tcp(host or "127.0.0.1", int(port))
            self.out(f"listening: socket://{host or '127.0.0.1'}:{bound}")
        else:
            pair = await self.endpoint.attach_pty()
            self.out(f"pty: {pair.slave_path}")
        for device in self.devices:
            self._on_change(device)


def _key(text: str) -> KeyCode:
    try:
        return KeyCode(_int(text))
    except ValueError:
        return KeyCode[text.upper()]


async def _read_stdin(session: Session) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    try:
        while line := await reader.readline():
            session.command(line.decode("utf-8", errors="replace"))
    finally:
        transport.close()
    session.done.set()  # EOF on stdin ends the session (use --no-stdin to run detached)


async def run(args: argparse.Namespace, out: Callable[[str], None]) -> int:
    session = Session(args, out)
    await session.attach()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, session.done.set)
    stdin_task = None if args.no_stdin else asyncio.create_task(_read_stdin(session))
    try:
        await session.done.wait()
    finally:
        if stdin_task is not None:
            stdin_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stdin_task
        await session.endpoint.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.address:
        bad = [a for a in args.address if not 0x01 <= a <= 0xF0]
        if bad:
            print(f"invalid address {bad[0]:#x}: use 1..0xEF (0xF0 = unassigned)", file=sys.stderr)
            return 2

    def out(text: str) -> None:
        print(text, flush=True)

    return asyncio.run(run(args, out))


if __name__ == "__main__":
    sys.exit(main())
