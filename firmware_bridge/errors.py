"""Exceptions of the firmware bridge: one root, shallow leaves with structured fields."""

from __future__ import annotations


class BridgeError(Exception):
    """Root of every error raised by ``firmware_bridge``."""


class EncodeError(BridgeError, ValueError):
    """A value cannot be put on the wire (range, length or text encoding)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class TextEncodingError(EncodeError):
    """Text not representable in the device's encoding (GBK without 4-byte codes, or UTF-8)."""


class DecodeError(BridgeError, ValueError):
    """A payload does not match its layout; ``status`` is what a device would answer."""

    def __init__(self, message: str, *, cmd: int | None = None, status: int = 1) -> None:
        super().__init__(message)
        self.cmd = cmd
        self.status = status


class DeviceStatusError(BridgeError):
    """The device answered with a status other than OK."""

    def __init__(self, *, addr: int, cmd: int, seq: int, status: int) -> None:
        super().__init__(
            f"device 0x{addr:02X} answered cmd 0x{cmd:02X} seq 0x{seq:02X} with status {status}"
        )
        self.addr = addr
        self.cmd = cmd
        self.seq = seq
        self.status = status


class DeviceTimeoutError(BridgeError, TimeoutError):
    """No valid reply to any attempt of a transaction."""

    def __init__(self, *, addr: int, cmd: int, seq: int, attempts: int) -> None:
        super().__init__(
            f"device 0x{addr:02X} did not answer cmd 0x{cmd:02X} seq 0x{seq:02X} "
            f"after {attempts} attempt(s)"
        )
        self.addr = addr
        self.cmd = cmd
        self.seq = seq
        self.attempts = attempts


class DeviceOfflineError(BridgeError):
    """The device is marked offline; only health probes are sent to it."""

    def __init__(self, *, addr: int) -> None:
        super().__init__(f"device 0x{addr:02X} is offline")
        self.addr = addr


class BusClosedError(BridgeError):
    """The bus master was stopped or its link was lost."""


class OutboxError(BridgeError):
    """The edge bridge's local outbox could not store or remove an item (disk full, I/O)."""
