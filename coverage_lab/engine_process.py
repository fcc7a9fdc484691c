"""`coverage-engine run` as a child process, for the integration tests and the demo.

Starts the real command (the same code path as production) against a
sandbox Asterisk, with the ARI password passed in the environment (never on
the command line) and, when asked, the clock started at a chosen instant
(both safeguards set explicitly here, and logged loudly by the engine).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from coverage_engine.clock import ALLOW_OVERRIDE_ENV
from coverage_lab.ari_http import AriCredentials, ari_answers


class EngineProcess:
    """One `coverage-engine run` child; its log (JSON lines) goes to `log_path`."""

    def __init__(
        self,
        config: Path,
        *,
        ari_url: str,
        ari_user: str,
        ari_password: str,
        log_path: Path,
        app: str = "coverage-engine",
        verbose: bool = False,
    ) -> None:
        self.config = config
        self.ari_url = ari_url.rstrip("/")
        self.ari_user = ari_user
        self._password = ari_password
        self.app = app
        self.verbose = verbose
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.clock_start: datetime | None = None

    def _env(self) -> Mapping[str, str]:
        env = dict(os.environ)
        env.update(
            COVERAGE_ARI_URL=self.ari_url,
            COVERAGE_ARI_USER=self.ari_user,
            COVERAGE_ARI_PASSWORD=self._password,
            COVERAGE_ARI_APP=self.app,
        )
        env.pop(ALLOW_OVERRIDE_ENV, None)
        if self.clock_start is not None:
            env[ALLOW_OVERRIDE_ENV] = "1"
        return env

    def start(self, clock_start: datetime | None = None, *, timeout: float = 20.0) -> None:
        """Start the engine and return once its application is registered with Asterisk."""
        if clock_start is not None:
            self.clock_start = clock_start
        args = [sys.executable, "-m", "coverage_engine", "run", "--config", str(self.config)]
        if self.clock_start is not None:
            args += ["--clock-start", self.clock_start.isoformat()]
        if self.verbose:
            args.append("--verbose")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                args, env=self._env(), stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        self.wait_registered(timeout=timeout)

    def app_registered(self) -> bool:
        """True while Asterisk has our application (its WebSocket is connected)."""
        ari = AriCredentials(self.ari_url, self.ari_user, self._password, self.app)
        registered, _ = ari_answers(ari, f"/applications/{self.app}", timeout=3)
        return registered

    def wait_registered(self, *, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the engine exited ({self.proc.returncode}):\n{self.log()}")
            if self.app_registered() and "ari_connected" in self.log():
                return
            time.sleep(0.1)
        raise TimeoutError(f"the engine did not connect within {timeout:.0f}s:\n{self.log()}")

    def signal(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not stop in time. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        return self.proc.returncode

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def wait_log(self, text: str, *, timeout: float = 20.0, after: int = 0) -> None:
        """Poll the engine's log until `text` appears (past offset `after`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log()[after:]:
                return
            time.sleep(0.1)
        raise TimeoutError(f"{text!r} not in the engine's log within {timeout:.0f}s")
