"""``hall config check FILE``: validate a configuration file and summarise it."""

from __future__ import annotations

import sys
from typing import TextIO

from hall.config.loader import ConfigError, load_config
from hall.config.models import HallConfig


def summary(config: HallConfig) -> str:
    """One line describing what a valid configuration contains."""
    services = sum(len(h.services) for h in config.halls)
    counters = sum(len(h.counters) for h in config.halls)
    kiosks = sum(len(h.kiosks) for h in config.halls)
    screens = sum(len(h.screens) for h in config.halls)
    return (
        f"{len(config.halls)} halls, {services} services, {counters} counters, "
        f"{kiosks} kiosks, {screens} screens, {len(config.departments)} departments, "
        f"{len(config.matters)} matters, {len(config.staff)} staff, "
        f"{len(config.buses)} buses, {len(config.devices)} devices, "
        f"{len(config.printers)} printers"
    )


def check_command(path: str, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print every problem of ``path`` (one per line, with its key path) or a summary.

    Returns the process exit code: 0 when the file is valid, 1 otherwise.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        config = load_config(path)
    except ConfigError as exc:
        for issue in exc.issues:
            print(f"{path}: {issue}", file=err)
        count = len(exc.issues)
        print(
            f"{path}: {count} problem{'s' if count != 1 else ''}, configuration not valid", file=err
        )
        return 1
    print(f"{path}: OK: {summary(config)}", file=out)
    for hall in config.halls:
        print(
            f"  {hall.id} ({hall.name}, {hall.level.value}): {len(hall.services)} services, "
            f"{len(hall.counters)} counters",
            file=out,
        )
    return 0
