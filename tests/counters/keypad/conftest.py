"""The bridge tests' pty rig (emulated strip, caller and pad on counter 1) and app maker."""

from tests.bridge.conftest import config, fast_timing, make_app, rig

__all__ = ["config", "fast_timing", "make_app", "rig"]
