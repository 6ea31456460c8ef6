"""Per-device health (spec §8.4): online → suspect → offline, and the offline probe period."""

from __future__ import annotations

import enum
from dataclasses import dataclass

# §8.4: three consecutive failed transactions make a device OFFLINE (bus option
# ``offline_after_failures``).
OFFLINE_AFTER_FAILURES = 3
# §8.4: an OFFLINE device is probed with one POLL every 5 s (bus option ``offline_probe_ms``).
PROBE_S = 5.0


class DeviceHealth(enum.Enum):
    """What the host believes about one address."""

    UNKNOWN = "unknown"  # registered, never answered yet
    ONLINE = "online"
    SUSPECT = "suspect"  # fewer failures in a row than the offline threshold: polled normally
    OFFLINE = "offline"  # only probed, commands fail at once


@dataclass(slots=True)
class HealthTracker:
    """Failure counting for one device; ``offline_after`` failures in a row make it OFFLINE."""

    state: DeviceHealth = DeviceHealth.UNKNOWN
    failures: int = 0
    probes: int = 0
    offline_after: int = OFFLINE_AFTER_FAILURES

    def success(self) -> DeviceHealth:
        """Record an answered transaction; returns the previous state."""
        old = self.state
        self.state = DeviceHealth.ONLINE
        self.failures = 0
        self.probes = 0
        return old

    def failure(self) -> DeviceHealth:
        """Record a failed transaction; returns the previous state."""
        old = self.state
        self.failures += 1
        if self.failures >= self.offline_after:
            if old is DeviceHealth.OFFLINE:
                self.probes += 1
            self.state = DeviceHealth.OFFLINE
        elif old is not DeviceHealth.OFFLINE:
            self.state = DeviceHealth.SUSPECT
        return old
