"""The console's browser test harness: Debian's headless Chromium driven by Selenium.

Nothing here downloads anything: the driver is /usr/bin/chromedriver (Debian's
`chromium-driver`), passed explicitly so Selenium Manager never looks for
one, and SE_OFFLINE keeps it from trying. Every browser gets a fresh profile
directory and the flags that keep Chromium off the network (no component
updates, no sync, no QUIC, no background requests).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from coverage_engine.clock import ALLOW_OVERRIDE_ENV

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",  # root in a container or network namespace has no user namespaces
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1366,768",  # the smallest desk screen the console is made for
)
T = TypeVar("T")


def unavailable() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} is missing (Debian packages chromium and chromium-driver)"
    return None


class Browser:
    """One headless Chromium with its own profile; `close()` ends it and removes the profile."""

    def __init__(self, base_url: str) -> None:
        os.environ["SE_OFFLINE"] = "true"
        self.base_url = base_url.rstrip("/")
        self._profile = tempfile.mkdtemp(prefix="console-browser-")
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self._profile}")
        service = Service(executable_path=str(CHROMEDRIVER), log_output=subprocess.DEVNULL)
        self.driver: WebDriver = webdriver.Chrome(options=options, service=service)
        self.driver.implicitly_wait(0)

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text(self, css: str) -> str:
        return str(self.find(css).text)

    def wait(self, check: Callable[[], T], *, timeout: float = 5.0, what: str = "") -> T:
        """Poll `check` until it returns something truthy (exceptions count as not yet)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while True:
            try:
                result = check()
                if result:
                    return result
            except (WebDriverException, AssertionError, ValueError) as exc:
                last = exc
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not within {timeout:.1f}s: {what or check!r} (last error: {last}); "
                    f"page {self.driver.current_url}:\n{self.find('body').text[:2000]}"
                )
            time.sleep(0.05)

    def sign_in(self, username: str, password: str) -> None:
        self.open("/login")
        self.find("#username").send_keys(username)
        self.find("#password").send_keys(password)
        self.find("#sign-in").click()

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(path))

    def script(self, source: str, *args: Any) -> Any:
        return self.driver.execute_script(source, *args)

    def close(self) -> None:
        with suppress(WebDriverException):
            self.driver.quit()
        shutil.rmtree(self._profile, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ConsoleProcess:
    """`coverage-engine console` as a child process (the real command), for browser tests."""

    def __init__(
        self, config: Path, log_path: Path, *, clock_start: datetime | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.pop("COVERAGE_AMI_USER", None)
        args = [sys.executable, "-m", "coverage_engine", "console", "--config", str(config),
                "--port", str(self.port)]  # fmt: skip
        if clock_start is not None:
            env[ALLOW_OVERRIDE_ENV] = "1"
            args += ["--clock-start", clock_start.isoformat()]
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                args, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        self.log_path = log_path
        wait_http(self.url + "/healthz", self.proc, log_path)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def wait_http(url: str, proc: subprocess.Popen[bytes] | None, log_path: Path) -> None:
    """Return once `url` answers 200; fail with the log if the process exits first."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"exited {proc.returncode}:\n{log_path.read_text(errors='replace')}")
        with suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
            if response.status == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer:\n{log_path.read_text(errors='replace')}")
