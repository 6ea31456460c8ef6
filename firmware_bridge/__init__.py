"""HB/1 serial protocol, bus master, device registry, emulators and the bridge link.

Knows frames and devices, never tickets: it must not import ``hall`` or the feature packages.
"""
