"""Fixtures for integration tests: the sandbox PBX (once per session), SIPp phones and callers.

    pytestmark = pytest.mark.integration

    def test_something(phones, place_call, ari): ...

* `sandbox`  the running `coverage_lab.sandbox.Sandbox` (started once per
             session, stopped at the end; an instance already running is
             reused and left running);
* `ari`      its `AriCredentials` (url, user, password; `.websocket_url`);
* `phones`   a `coverage_lab.phones.Phones`: `phones.start("operator2",
             answers(after=1))`, then `phones.answered_by(caller)`, `phones.calls()`;
* `place_call(did, hangup_after=None, caller=None)` starts a SIPp caller on
             the carrier trunk and returns its `CallerHandle` (`.wait()`,
             `.wait_answered()`, `.caller` is a number unique to this call).
* operators: each test starts with operator1..3 logged in (see below);
             `no_operators` logs everyone out for the test, `logged_in("operator1",
             ...)` logs out everyone and then exactly those in;
* `ami_env`  puts the engine's AMI credentials (read-only presence) in
             COVERAGE_AMI_* for the test (what `run` reads); `operators_ami_env`
             those of the user `coverage-engine operators ...` logs in as.
* `place_call(code, from_phone="operator1")` dials from that phone: it
             authenticates with the phone's generated SIP password.

Every SIPp process a test starts is stopped when the test ends; then every
call still up in Asterisk is hung up and operator1..3 are logged in to the
`answering` queue again, unpaused, so no test's state leaks into the next.
A failed test's report has two extra sections: its phones (who got which
call) and Asterisk's log lines written during the test.

When the sandbox cannot run here (not root, no debootstrap/sipp, ports taken
by another Asterisk), integration tests skip with the reason; with CI=true
they fail instead, because a CI run that tested nothing must not pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from coverage_lab.ari_http import AriCredentials
from coverage_lab.phones import CallerHandle, Callers, Phones
from coverage_lab.sandbox import AmiCredentials, Sandbox
from tests.conftest import _SESSION_SANDBOX


@pytest.fixture(scope="session")
def ari(sandbox: Sandbox) -> AriCredentials:
    """ARI URL and the sandbox's generated credentials."""
    return sandbox.credentials()


@pytest.fixture
def phones(sandbox: Sandbox, tmp_path: Path) -> Iterator[Phones]:
    """SIPp phones for this test; all stopped when it ends."""
    box = Phones(tmp_path)
    yield box
    box.stop_all()


@pytest.fixture
def callers(sandbox: Sandbox, tmp_path: Path) -> Iterator[Callers]:
    """SIPp callers for this test; all stopped, and every call hung up, when it ends."""
    box = Callers(tmp_path)
    yield box
    box.stop_all()


_LOG_OFFSET = pytest.StashKey[int]()


@pytest.fixture(autouse=True)
def fresh_pbx_state(sandbox: Sandbox, request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test: every call hung up, operator1..3 logged in and unpaused."""
    log = sandbox.log_path()
    request.node.stash[_LOG_OFFSET] = log.stat().st_size if log.is_file() else 0
    yield
    sandbox.hang_up_all_calls()
    sandbox.reset_operators()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed integration test's report shows its phones and Asterisk's log of the test."""
    report = yield
    if report.when != "call" or not report.failed:
        return report
    funcargs = getattr(item, "funcargs", {})
    phones = funcargs.get("phones")
    if isinstance(phones, Phones):
        report.sections.append(("phones", phones.describe().replace("; ", "\n")))
    box = _SESSION_SANDBOX.get("box")
    offset = item.stash.get(_LOG_OFFSET, None)
    if box is not None and offset is not None and box.log_path().is_file():
        with box.log_path().open("rb") as handle:
            handle.seek(offset)
            lines = handle.read().decode(errors="replace").splitlines()[-80:]
        report.sections.append(("asterisk log (this test, last 80 lines)", "\n".join(lines)))
    return report


@pytest.fixture
def place_call(callers: Callers) -> Callable[..., CallerHandle]:
    """`place_call(did, *, hangup_after=None, caller=None)` -> a running `CallerHandle`."""
    return callers.place


OPERATOR_QUEUE = "answering"


def _members(sandbox: Sandbox) -> list[str]:
    """Interfaces logged in to the operator queue, from `queue show`.

    Member lines read `operator1 (PJSIP/operator1) (ringinuse disabled) ...`;
    only the Members section counts (the Callers section names channels).
    """
    out = sandbox.cli(f"queue show {OPERATOR_QUEUE}")
    members = out.split("Members:", 1)[1] if "Members:" in out else ""
    members = members.split("Callers", 1)[0]
    return sorted(set(re.findall(r"PJSIP/[\w.-]+", members)))


def _log_out_everyone(sandbox: Sandbox) -> None:
    for interface in _members(sandbox):
        sandbox.cli(f"queue remove member {interface} from {OPERATOR_QUEUE}")


def _log_in(sandbox: Sandbox, *operators: str) -> None:
    for op in operators:
        sandbox.cli(f"queue add member PJSIP/{op} to {OPERATOR_QUEUE} penalty 0 as {op}")


# No teardown in the fixtures below: `fresh_pbx_state` logs operator1..3 back
# in after every test.


@pytest.fixture
def no_operators(sandbox: Sandbox) -> None:
    """Nobody logged in to the operator queue during the test."""
    _log_out_everyone(sandbox)


@pytest.fixture
def logged_in(sandbox: Sandbox) -> Callable[..., None]:
    """`logged_in("operator1", ...)`: exactly those operators are in the queue."""
    _log_out_everyone(sandbox)

    def log_in(*operators: str) -> None:
        _log_in(sandbox, *operators)

    return log_in


def _set_ami_env(monkeypatch: pytest.MonkeyPatch, creds: AmiCredentials) -> None:
    monkeypatch.setenv("COVERAGE_AMI_HOST", creds.host)
    monkeypatch.setenv("COVERAGE_AMI_PORT", str(creds.port))
    monkeypatch.setenv("COVERAGE_AMI_USER", creds.user)
    monkeypatch.setenv("COVERAGE_AMI_SECRET", creds.secret)


@pytest.fixture
def ami_env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> AmiCredentials:
    """The engine's AMI credentials (presence only) in COVERAGE_AMI_*, nobody logged in."""
    creds = sandbox.ami_credentials()
    _set_ami_env(monkeypatch, creds)
    _log_out_everyone(sandbox)
    return creds


@pytest.fixture
def operators_ami_env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> AmiCredentials:
    """The AMI credentials of `coverage-engine operators` in COVERAGE_AMI_*, nobody logged in."""
    creds = sandbox.operators_ami_credentials()
    _set_ami_env(monkeypatch, creds)
    _log_out_everyone(sandbox)
    return creds
