"""``hall emulate`` as a person runs it: a subprocess that prints its pty and takes stdin lines."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from firmware_bridge.constants import Command, DisplayMode, EventType, KeyCode, Status
from firmware_bridge.emulators.cli import main
from firmware_bridge.messages import (
    KeyEvent,
    KeypadShowRequest,
    PadRateRequest,
    PollReply,
    PollRequest,
    RatingEvent,
    ShowTextRequest,
    decode_reply,
)
from tests.firmware_bridge.emu_helpers import TIMEOUT, HostLine, message, request

REPO = Path(__file__).resolve().parents[2]


class EmulatorProcess:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.output: list[str] = []

    async def expect(self, text: str) -> str:
        """Read stdout lines until one contains ``text``; returns that line."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(TIMEOUT):
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    raise AssertionError(f"emulator exited; output so far: {self.output}")
                line = raw.decode("utf-8").rstrip("\n")
                self.output.append(line)
                if text in line:
                    return line

    async def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    async def quit(self) -> int:
        await self.type("quit")
        async with asyncio.timeout(TIMEOUT):
            return await self.proc.wait()


Spawn = Callable[..., Awaitable[tuple[EmulatorProcess, HostLine]]]


@pytest.fixture
async def spawn() -> AsyncIterator[Spawn]:
    started: list[tuple[EmulatorProcess, HostLine]] = []

    async def start(*args: str, marker: str = "pty: ") -> tuple[EmulatorProcess, HostLine]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "firmware_bridge.emulators.cli",
            *args,
            cwd=REPO,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        emu = EmulatorProcess(proc)
        # The emulator prints where to connect: "pty: /dev/pts/N" or "listening: socket://…".
        line = await emu.expect(marker)
        host = await HostLine.open(line.split(marker, 1)[1])
        started.append((emu, host))
        return emu, host

    yield start
    for emu, host in started:
        host.close()
        if emu.proc.returncode is None:
            emu.proc.kill()
            await emu.proc.wait()


async def poll(host: HostLine, addr: int, ack: int, boot: int, seq: int) -> PollReply:
    reply = await host.transact(message(addr, PollRequest(ack, boot), seq=seq))
    decoded = decode_reply(Command.POLL, reply.payload)
    assert isinstance(decoded, PollReply)
    return decoded


async def test_caller_cli_logs_commands_takes_keys_and_goes_silent(spawn: Spawn) -> None:
    emu, host = await spawn("caller", "--address", "7")
    show = KeypadShowRequest("A001", 3, 1)
    reply = await host.transact(message(0x07, show, seq=1))
    assert reply.payload == bytes([Status.OK])
    await emu.expect("KEYPAD_SHOW ticket='A001' waiting=3 led=1")
    await emu.expect("caller shows: 'A001 等候3'")

    await emu.type("key call_specific A012")
    await emu.expect("key CALL_SPECIFIC A012 -> queued")
    boot = (await poll(host, 0x07, 0, 0, seq=2)).boot_id
    event = (await poll(host, 0x07, 1, boot, seq=3)).event()
    assert event == KeyEvent(KeyCode.CALL_SPECIFIC, "A012")

    await emu.type("silent on")
    await emu.expect("silent on")
    await host.expect_silence(message(0x07, PollRequest(), seq=4))
    await emu.type("silent off")
    await emu.expect("silent off")
    assert (await poll(host, 0x07, 0, 0, seq=5)).pending == 1
    assert await emu.quit() == 0


async def test_strip_cli_logs_decoded_chinese_text(spawn: Spawn) -> None:
    emu, host = await spawn("strip")
    req = ShowTextRequest(mode=DisplayMode.FLASH, color=1, hold_s=10, text="请A001号到3号窗口")
    reply = await host.transact(message(0x03, req, seq=0x22))
    assert reply.payload == b"\x00"
    line = await emu.expect("SHOW_TEXT")
    assert "text='请A001号到3号窗口'" in line and "-> OK" in line
    await emu.expect("strip shows: '请A001号到3号窗口'")
    assert await emu.quit() == 0


async def test_pad_cli_citizen_rates_from_the_terminal(spawn: Spawn) -> None:
    emu, host = await spawn("pad", "--address", "0x05")
    rate = PadRateRequest(0xCAFEBABE, timeout_s=30)
    assert (await host.transact(message(0x05, rate, seq=1))).payload == b"\x00"
    await emu.expect("请您对本次服务进行评价")
    await emu.type("rate 5")
    await emu.expect("pad shows: 谢谢您的评价")  # the screen changes as the button is pressed
    await emu.expect("rate 5 -> queued")
    boot = (await poll(host, 0x05, 0, 0, seq=2)).boot_id
    reply = await poll(host, 0x05, 1, boot, seq=3)
    assert reply.evt_type == EventType.RATING
    assert reply.event() == RatingEvent(0xCAFEBABE, 5, 0, None)
    assert await emu.quit() == 0


async def test_printer_cli_prints_jobs_and_answers_status(spawn: Spawn) -> None:
    emu, host = await spawn("printer")
    job = b"\x1b@\x1c&" + "XX县政务服务中心\nA023\n".encode("gbk") + b"\x1dV\x00"
    await host.send(job)
    await emu.expect("job #1: XX县政务服务中心 / A023")
    await host.send(b"\x10\x04\x04")
    assert await host.read_exactly(1) == b"\x12"
    await emu.type("paper out")
    await emu.expect("answers 1a 32 12 7e")
    await host.send(b"\x10\x04\x04")
    assert await host.read_exactly(1) == b"\x7e"
    assert await emu.quit() == 0


async def test_screen_cli_listens_on_tcp_with_two_screens(spawn: Spawn) -> None:
    emu, host = await spawn(
        "screen",
        "--address",
        "0x20",
        "--address",
        "0x21",
        "--listen",
        "127.0.0.1:0",
        marker="listening: ",
    )
    rows = bytes.fromhex("00 01 02 0c") + "B015 7号窗口".encode("gbk")
    reply = await host.transact(request(0x21, Command.SHOW_ROWS, rows, seq=1))
    assert (reply.src, reply.payload) == (0x21, b"\x00")
    await emu.expect("[screen@0x21 boot 1] screen shows: '' rows: B015 7号窗口")
    await emu.type("@0x20 show")
    line = await emu.expect("[screen@0x20 boot 1] screen shows")
    assert "B015" not in line
    assert await emu.quit() == 0


def test_main_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["caller", "--address", "0xF5"]) == 2
    assert "invalid address" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["toaster"])
