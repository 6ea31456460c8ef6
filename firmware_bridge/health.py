"""Per-device health (spec §8.4): online → suspect → offline, with capped backoff probing."""

from __future__ import annotations

import enum
from dataclasses import dataclass

# §8.4: three consecutive failed transactions make a device OFFLINE.
OFFLINE_AFTER_FAILURES = 3
# §8.4 probes an offline device every 5 s; we start faster so a device that only blinked (a
# brown-out, a re-plugged cable) is back within a second or two, and back off to the spec's 5 s.
PROBE_MIN_S = 1.0
PROBE_MAX_S = 5.0


class DeviceHealth(enum.Enum):
    """What the host believes about one address."""

    UNKNOWN = "unknown"  # registered, never answered yet
    ONLINE = "online"
    SUSPECT = "suspect"  # 1–2 consecutive failures: still polled normally
    OFFLINE = "offline"  # only probed, commands fail at once


@dataclass(slots=True)
class HealthTracker:
    """Failure counting and probe backoff for one device."""

    state: DeviceHealth = DeviceHealth.UNKNOWN
    failures: int = 0
    probes: int = 0

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
        if self.failures >= OFFLINE_AFTER_FAILURES:
            if old is DeviceHealth.OFFLINE:
                self.probes += 1
            self.state = DeviceHealth.OFFLINE
        elif old is not DeviceHealth.OFFLINE:
            self.state = DeviceHealth.SUSPECT
        return old

    def probe_delay(self) -> float:
        """Seconds until the next probe of an offline device (doubling, capped)."""
        return float(min(PROBE_MIN_S * 2**self.probes, PROBE_MAX_S))
