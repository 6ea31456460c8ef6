"""Device emulators: HB/1 hall devices on a shared bus and an ESC/POS ticket printer.

They sit on the far end of a pty, a TCP port or a serial URL and behave like the hardware,
with failure switches for tests and for ``hall emulate``.
"""
