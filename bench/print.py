"""Tap to cut: a kiosk ticket through the real server to an emulated ESC/POS printer.

Starts a throwaway embedded PostgreSQL, an ESC/POS printer emulator listening on TCP like a
serial server at 9600 baud (its status answers are held for their line time), and one
``hall serve`` process whose kiosk k1 prints there. Then taps ``--taps`` times, one after
another: POST /api/v1/kiosk/tickets as the paired kiosk, and times the printer's cut.

The TCP hop delivers the host's bytes at once, so each cut time adds the line time those
bytes would take at 9600 baud (the ticket and the 12 status-query bytes sent before it, 10
bits a byte; the printer's answers are already held for their line time).
Prints readable lines, then one JSON object (``ticket_bytes``, ``tap_to_cut_p99_s``, …).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import embedded_database, kiosk_device_token, percentile, server_process
from firmware_bridge.emulators.line import LineEndpoint
from firmware_bridge.emulators.printer import EscPosPrinter, PrintJob
from kiosk.escpos import INIT, STATUS_QUERIES

BAUD = 9600
STATUS_BYTES_BEFORE_CUT = len(STATUS_QUERIES) * 3
"""DLE EOT 1-4, sent in one write before the job (their answers are held by the emulator's
line for their own line time; the status read after the job comes after the cut)."""


def config_toml(printer_port: int) -> str:
    return f"""
[[halls]]
id = "bench"
name = "压测县政务服务中心"
issue_outside_hours = true
kiosks = [{{ id = "k1", name = "一楼取号机", services = ["bdc"] }}]

[halls.ticket]
after_qr = ["当日有效 · 监督电话 12345"]
page_url = "http://10.1.2.3:8080/t/{{token}}"

[[halls.services]]
code = "bdc"
name = "不动产登记"
prefix = "A"
zone = "二楼综合受理区"

[[halls.counters]]
number = 1
services = [{{ code = "bdc" }}]

[[printers]]
name = "p1"
hall = "bench"
kiosk = "k1"
url = "tcp://127.0.0.1:{printer_port}"
"""


async def run(taps: int, gap_s: float) -> dict[str, Any]:
    printer = EscPosPrinter(chinese_default=False)
    cuts: asyncio.Queue[tuple[float, PrintJob]] = asyncio.Queue()
    printer.on_job = lambda job: cuts.put_nowait((time.perf_counter(), job))
    tap_to_cut: list[float] = []
    responses: list[float] = []
    sizes: list[int] = []
    virtual = 0
    with embedded_database() as dsn:
        async with LineEndpoint(printer, line_baud=BAUD) as endpoint:
            port = await endpoint.serve_tcp()
            async with server_process(dsn, config_toml(port)) as url:
                token = await kiosk_device_token(dsn, "bench", "k1", "bench/print")
                headers = {"Authorization": f"Bearer {token}"}
                async with aiohttp.ClientSession(headers=headers) as api:
                    for _ in range(taps):
                        key = {"Idempotency-Key": str(uuid.uuid4())}
                        t0 = time.perf_counter()
                        async with api.post(
                            f"{url}/api/v1/kiosk/tickets", json={"service": "bdc"}, headers=key
                        ) as resp:
                            data = await resp.json()
                            t1 = time.perf_counter()
                            assert resp.status == 201, data
                        responses.append(t1 - t0)
                        if not data["print"]["printed"]:
                            virtual += 1
                            continue
                        number = data["ticket"]["number"]
                        async with asyncio.timeout(10):
                            # A ticket held earlier (shown on screen) may print meanwhile:
                            # its cut is not this tap's.
                            while True:
                                cut_at, job = await cuts.get()
                                if number in job.text_lines:
                                    break
                        # The emulator's job holds every byte since the last cut, status
                        # queries included; the ticket itself starts with its ESC @.
                        ticket = job.raw[job.raw.rfind(INIT) :]
                        wire = (len(ticket) + STATUS_BYTES_BEFORE_CUT) * 10 / BAUD
                        tap_to_cut.append(cut_at - t0 + wire)
                        sizes.append(len(ticket))
                        await asyncio.sleep(gap_s)
    figures: dict[str, Any] = {
        "taps": taps,
        "printed": len(tap_to_cut),
        "virtual_tickets": virtual,
        "ticket_bytes": max(sizes) if sizes else None,
        "tap_to_cut_p50_s": round(percentile(tap_to_cut, 50), 3),
        "tap_to_cut_p99_s": round(percentile(tap_to_cut, 99), 3),
        "tap_to_cut_max_s": round(max(tap_to_cut), 3) if tap_to_cut else None,
        "response_p50_s": round(percentile(responses, 50), 3),
        "response_p99_s": round(percentile(responses, 99), 3),
        "baud": BAUD,
    }
    print(f"{taps} taps, {len(tap_to_cut)} printed, {virtual} shown on screen only")
    print(f"ticket size: {figures['ticket_bytes']} bytes (target ≤ 400)")
    print(
        f"tap → cut at {BAUD} baud: p50={figures['tap_to_cut_p50_s']:.3f} s "
        f"p99={figures['tap_to_cut_p99_s']:.3f} s (target ≤ 0.5 s)"
    )
    print(
        f"tap → kiosk answer (includes the print outcome): p50={figures['response_p50_s']:.3f} s "
        f"p99={figures['response_p99_s']:.3f} s"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taps", type=int, default=50)
    parser.add_argument("--gap-s", type=float, default=0.2, help="pause between taps")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(max(1, min(args.taps, 1000)), max(0.0, args.gap_s)))))


if __name__ == "__main__":
    main()
