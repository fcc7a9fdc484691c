"""A throwaway PostgreSQL cluster for tests and the chaos suite: initdb, pg_ctl, a socket in /tmp.

Debian's `postgresql` package brings the server binaries (under
/usr/lib/postgresql/<version>/bin, not on PATH); `scripts/bootstrap` installs
it without letting it create or start a cluster of its own. A `TempCluster`
lives in a fresh directory, listens on a Unix socket only (no TCP port to
collide with anyone), trusts local connections (it holds test data only),
and is gone after `destroy()`. As root the server runs as the `postgres`
user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

USER = "coverage"


class ClusterUnavailable(Exception):
    """PostgreSQL's server programs are not installed here (or cannot run)."""


def server_bin(program: str) -> Path:
    """A PostgreSQL server program: on PATH, else the newest Debian one."""
    found = shutil.which(program)
    if found:
        return Path(found)
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{program}"))
    if not candidates:
        raise ClusterUnavailable(
            f"{program} not found: install PostgreSQL's server (Debian: postgresql; "
            "scripts/bootstrap does)"
        )
    return candidates[-1]


class TempCluster:
    """One PostgreSQL server in a temporary directory, reached through its socket."""

    def __init__(self, base: Path | None = None) -> None:
        self.base = Path(base or tempfile.mkdtemp(prefix="coverage-pg-"))
        self.data = self.base / "data"
        self.socket_dir = self.base / "socket"
        self.log = self.base / "server.log"
        self._as: list[str] = []

    def url(self, database: str = "coverage") -> str:
        """The libpq URL of `database` on this cluster (over its Unix socket)."""
        return f"postgresql://{USER}@/{database}?host={self.socket_dir}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._as, *args], check=check, capture_output=True, text=True, timeout=120
        )

    def create(self) -> None:
        """initdb the cluster (once)."""
        initdb = server_bin("initdb")
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise ClusterUnavailable("no postgres user to run the server as") from exc
            for path in (self.base, self.socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        try:
            self._run(
                str(initdb), "-D", str(self.data), "-U", USER, "--auth=trust",
                "--encoding=UTF8", "--locale=C", "--no-sync",
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            raise ClusterUnavailable(f"initdb failed: {exc.stderr.strip()}") from exc

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-k {self.socket_dir} -c listen_addresses='' -c fsync=on"
        result = self._run(
            str(server_bin("pg_ctl")), "-D", str(self.data), "-l", str(self.log),
            "-o", options, "-w", "-t", str(int(timeout)), "start",
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise ClusterUnavailable(
                f"pg_ctl start failed: {result.stderr.strip()}\n{self.server_log()}"
            )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`immediate`: as abruptly as a crash)."""
        self._run(
            str(server_bin("pg_ctl")), "-D", str(self.data), "-m", mode, "-w", "stop",
            check=False,
        )  # fmt: skip

    def restart(self, down_for: float = 0.0) -> None:
        """Stop abruptly, stay down `down_for` seconds, start again."""
        self.stop("immediate")
        time.sleep(down_for)
        self.start()

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        result = self._run(
            str(server_bin("psql")), "-h", str(self.socket_dir), "-U", USER, "-d", "postgres",
            "-v", "ON_ERROR_STOP=1", "-c", f'CREATE DATABASE "{name}"',
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise ClusterUnavailable(f"CREATE DATABASE failed: {result.stderr.strip()}")
        return self.url(name)

    def server_log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-4000:]
        return ""

    def destroy(self) -> None:
        """Stop the server and remove its directory."""
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)
