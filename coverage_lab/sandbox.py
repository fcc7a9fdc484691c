"""The sandbox PBX: Debian unstable's Asterisk 22 in a chroot, run by the project.

Debian 12 has no Asterisk package, and there is no Docker engine on the
machines we test on, so the sandbox is a Debian unstable tree made with
`debootstrap` and run with `chroot`:

* **Pristine tree** (cached, shared by every checkout on the machine):
  `debootstrap --variant=minbase sid` plus the packages listed in
  `config/asterisk/packages.txt`, under `$XDG_CACHE_HOME/coverage-engine/`
  (default `~/.cache/coverage-engine/`), in a directory named after a hash of
  that list. Changing the list builds a new tree; nothing else does.
* **Instance** (one per checkout): a copy of the pristine tree in
  `<checkout>/.sandbox/root`, made once. Each `start` copies the project's
  `config/asterisk/*.conf`, `dialplan/*.conf`, the generated secrets and the
  prompts of `sounds/` into it, so two checkouts never share runtime state.
* **Process**: `unshare -m` gives Asterisk a private mount namespace in which
  `/proc` is mounted into the tree; the mount lives and dies with the
  process, so nothing is ever left mounted on the host. No host directory is
  bind-mounted (deleting a tree with the host's /dev bound into it would
  delete the host's devices).

Ports are the standard ones on 127.0.0.1 (SIP 5060/udp, HTTP/ARI 8088, AMI
5038). Two checkouts run side by side by starting their sandboxes inside
`scripts/netns-run`, each in its own network namespace.

Errors a user can meet are `SandboxError` subclasses whose message says what
to do next; the CLI prints them without a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from coverage_lab.ari_http import AriCredentials, ari_answers

# SandboxError
#  ├── NotRootError             debootstrap, chroot and unshare need root
#  ├── MissingToolError         a host command is not installed
#  ├── MirrorUnreachableError   the Debian mirror does not answer
#  ├── PortInUseError           5060/8088/5038 already taken on 127.0.0.1
#  ├── ProvisionError           debootstrap or apt-get failed
#  └── StartError               Asterisk exited or never answered


class SandboxError(Exception):
    """A sandbox problem a user can act on; the message says how."""


class NotRootError(SandboxError):
    pass


class MissingToolError(SandboxError):
    pass


class MirrorUnreachableError(SandboxError):
    pass


class PortInUseError(SandboxError):
    pass


class ProvisionError(SandboxError):
    pass


class StartError(SandboxError):
    pass


SUITE = "sid"
# Bump when the way the pristine tree is built changes (not its package
# list, which is hashed already): every machine then builds a fresh tree.
TREE_FORMAT = 1
DEFAULT_MIRROR = "http://deb.debian.org/debian"

HOST = "127.0.0.1"
SIP_PORT = 5060
HTTP_PORT = 8088
AMI_PORT = 5038
ARI_APP = "coverage-engine"
# Operators logged in to this queue at every start (queues.conf has only
# dynamic members): the answering service "on shift" of the sandbox.
OPERATOR_QUEUE = "answering"
SANDBOX_OPERATORS = ("operator1", "operator2", "operator3")
ARI_USER = "coverage-engine"
AMI_USER = "coverage-engine"  # reads operator presence
AMI_OPERATORS_USER = "coverage-operators"  # logs operators in and out
_SECRET_FILES = ("ari-password", "ami-secret", "ami-operators-secret", "agi-secret")

# Paths inside the tree (Debian's layout, as in config/asterisk/asterisk.conf).
ETC_DIR = PurePosixPath("/etc/asterisk")
SOUNDS_DIR = PurePosixPath("/usr/share/asterisk/sounds")
RUN_DIR = PurePosixPath("/var/run/asterisk")
LOG_DIR = PurePosixPath("/var/log/asterisk")
LIB_DIR = PurePosixPath("/var/lib/asterisk")
ASTERISK = "/usr/sbin/asterisk"

_COMPLETE_MARK = ".coverage-engine-complete"

Log = Callable[[str], None]


def _print_log(message: str) -> None:
    print(f"sandbox: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class AmiCredentials:
    """How the AMI adapter reaches the manager interface."""

    host: str
    port: int
    user: str
    # Kept out of repr(): pytest prints fixture values in failure reports.
    secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SipCredentials:
    """A phone's digest credentials: the pjsip.conf auth user and its password."""

    user: str
    password: str = field(repr=False)


# `[operator1-auth](phone-auth)` then `username = operator1`: the phones of
# pjsip.conf that must authenticate, each with the auth object that names it.
_AUTH_SECTION = re.compile(
    r"^\[(?P<auth>[A-Za-z0-9_.-]+)\]\(phone-auth\)\s*\n(?:[^\[]*?\n)?"
    r"\s*username\s*=\s*(?P<user>[A-Za-z0-9_.+-]+)",
    re.MULTILINE,
)


def phone_auths(pjsip_conf: str) -> dict[str, str]:
    """Phone user -> its auth object id, for every `(phone-auth)` section of pjsip.conf."""
    return {m["user"]: m["auth"] for m in _AUTH_SECTION.finditer(pjsip_conf)}


@dataclass(frozen=True, slots=True)
class Status:
    """What `coverage-engine sandbox status` reports."""

    provisioned: bool
    running: bool
    pid: int | None
    ari_ok: bool
    tree: Path
    cache_tree: Path
    credentials_file: Path


def project_root() -> Path:
    """The checkout whose config the sandbox runs: $COVERAGE_ENGINE_ROOT, else ours."""
    env = os.environ.get("COVERAGE_ENGINE_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parent.parent
    if (here / "config" / "asterisk").is_dir():
        return here
    return Path.cwd()


def cache_home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "coverage-engine"


def read_packages(root: Path) -> tuple[str, ...]:
    """The Debian package list of config/asterisk/packages.txt (comments dropped)."""
    text = (root / "config" / "asterisk" / "packages.txt").read_text(encoding="utf-8")
    names = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return tuple(name for name in names if name)


def tree_key(packages: tuple[str, ...]) -> str:
    """Names the cached tree after what it contains, so a changed list rebuilds it."""
    blob = json.dumps({"suite": SUITE, "packages": sorted(packages), "format": TREE_FORMAT})
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def find_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt already uses ($COVERAGE_SANDBOX_MIRROR wins)."""
    env = os.environ.get("COVERAGE_SANDBOX_MIRROR")
    if env:
        return env.rstrip("/")
    uris: list[str] = []
    files = [apt_dir / "sources.list"]
    for pattern in ("*.list", "*.sources"):
        files += sorted((apt_dir / "sources.list.d").glob(pattern))
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip()
            if line.startswith("URIs:"):
                uris += line.split()[1:]
            elif line.startswith("deb "):
                # deb [options] URI suite components
                words = [w for w in line.split()[1:] if not w.startswith("[")]
                words = [w for w in words if not w.endswith("]")]
                if words:
                    uris.append(words[0])
    for uri in uris:
        if uri.rstrip("/").endswith("/debian") and uri.startswith(("http://", "https://")):
            return uri.rstrip("/")
    return DEFAULT_MIRROR


def _in_tree(root: Path, inner: PurePosixPath | str) -> Path:
    """Host path of `inner` as the chroot sees it, following symlinks INSIDE the tree.

    Debian's tree has absolute symlinks (`/var/run -> /run`,
    `sounds/en -> /etc/alternatives/...`); followed from the host they would
    point into the host's own /run or /etc. This resolves them against the
    tree instead, so the sandbox never writes or deletes outside it.
    """
    parts = (
        list(PurePosixPath(inner).parts[1:])
        if str(inner).startswith("/")
        else list(PurePosixPath(inner).parts)
    )
    current = PurePosixPath("/")
    hops = 0
    while parts:
        part = parts.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            current = current.parent
            continue
        candidate = current / part
        host = root / str(candidate).lstrip("/")
        if host.is_symlink():
            hops += 1
            if hops > 40:
                raise SandboxError(f"symlink loop under {root} at {candidate}")
            target = PurePosixPath(host.readlink())
            base = PurePosixPath("/") if target.is_absolute() else current
            parts = list(target.parts[1:] if target.is_absolute() else target.parts) + parts
            current = base
            continue
        current = candidate
    return root / str(current).lstrip("/")


def _port_free(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def _run(cmd: list[str], log_file: Path, what: str, env: dict[str, str] | None = None) -> None:
    with log_file.open("ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.run(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            check=False,
        )
    if proc.returncode != 0:
        tail = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        raise ProvisionError(
            f"{what} failed (exit {proc.returncode}). Last lines of {log_file}:\n" + "\n".join(tail)
        )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Only one process builds a given tree; another checkout waits for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Sandbox:
    """The sandbox PBX of one checkout: provision, start, stop, status, cli."""

    def __init__(self, root: Path | None = None, *, log: Log = _print_log) -> None:
        self.root = (root or project_root()).resolve()
        self.log = log
        self.state = self.root / ".sandbox"
        self.tree = self.state / "root"
        self.pid_file = self.state / "asterisk.pid"
        self.out_file = self.state / "asterisk.out"
        self.secrets_dir = self.state / "secrets"
        self.credentials_file = self.state / "credentials.env"
        self.operators_credentials_file = self.state / "operators.env"
        try:
            self.packages = read_packages(self.root)
        except FileNotFoundError:
            raise SandboxError(
                f"{self.root} has no config/asterisk/packages.txt: run this from a "
                "coverage-engine checkout, or set COVERAGE_ENGINE_ROOT to one"
            ) from None
        self.key = tree_key(self.packages)
        self.cache_tree = cache_home() / f"asterisk-{SUITE}-{self.key}"
        # Kept so that stop() can reap the process we started (and Python
        # does not warn about a child it never waited for).
        self._proc: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------ provision
    def provision(self, *, refresh: bool = False) -> None:
        """Make sure the cached pristine tree and this checkout's copy exist (idempotent).

        `refresh` downloads the packages again (a new Asterisk security release
        in Debian unstable) into a new cached tree and copies it here.
        """
        if refresh:
            _require_root()
            if self.is_running():
                raise SandboxError("stop the sandbox first: `coverage-engine sandbox stop`")
            (self.cache_tree / _COMPLETE_MARK).unlink(missing_ok=True)
            (self.state / "tree-key").unlink(missing_ok=True)
        if self._instance_ready():
            return
        _require_root()
        self._ensure_pristine()
        if self.is_running():
            raise SandboxError(
                "the sandbox Asterisk is running on an outdated tree; "
                "run `coverage-engine sandbox stop` first"
            )
        self.log(f"copying the Asterisk tree into {self.tree}")
        self.state.mkdir(parents=True, exist_ok=True)
        staging = self.state / "root.new"
        if staging.exists():
            shutil.rmtree(staging)
        if self.tree.exists():
            shutil.rmtree(self.tree)
        subprocess.run(
            ["cp", "-a", "--reflink=auto", str(self.cache_tree / "root"), str(staging)],
            check=True,
        )
        staging.rename(self.tree)
        (self.state / "tree-key").write_text(self.key + "\n", encoding="utf-8")

    def _instance_ready(self) -> bool:
        key_file = self.state / "tree-key"
        return (
            key_file.is_file()
            and key_file.read_text(encoding="utf-8").strip() == self.key
            and (self.tree / ASTERISK.lstrip("/")).is_file()
        )

    def _ensure_pristine(self) -> None:
        if (self.cache_tree / _COMPLETE_MARK).is_file():
            return
        for tool in ("debootstrap", "chroot", "unshare"):
            if shutil.which(tool) is None:
                raise MissingToolError(
                    f"`{tool}` is not installed; run scripts/bootstrap as root "
                    "(it installs debootstrap and friends)"
                )
        with _locked(self.cache_tree.with_suffix(".lock")):
            if (self.cache_tree / _COMPLETE_MARK).is_file():  # built while we waited
                return
            mirror = find_mirror()
            _check_mirror(mirror)
            self.cache_tree.mkdir(parents=True, exist_ok=True)
            build = self.cache_tree / "root.partial"
            if build.exists():
                shutil.rmtree(build)
            log_file = self.cache_tree / "provision.log"
            self.log(
                f"building the Asterisk tree (Debian {SUITE} from {mirror}) in "
                f"{self.cache_tree}; about a minute, once per machine; log: {log_file}"
            )
            env = {
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "LANG": "C.UTF-8",
                "DEBIAN_FRONTEND": "noninteractive",
            }
            _run(
                ["debootstrap", "--variant=minbase", SUITE, str(build), mirror],
                log_file,
                "debootstrap",
                env,
            )
            # Package scripts must not try to start services in the tree.
            policy = build / "usr" / "sbin" / "policy-rc.d"
            policy.write_text("#!/bin/sh\nexit 101\n", encoding="utf-8")
            policy.chmod(0o755)
            # No `apt-get update`: debootstrap left fresh package lists, and a
            # second download can fail on mirrors whose Release is past its
            # Valid-Until date (snapshots), which debootstrap does not check.
            _run(
                [
                    "chroot",
                    str(build),
                    "apt-get",
                    "install",
                    "-y",
                    "-q",
                    "--no-install-recommends",
                    *self.packages,
                ],
                log_file,
                "apt-get install " + " ".join(self.packages),
                env,
            )
            _run(["chroot", str(build), "apt-get", "clean"], log_file, "apt-get clean", env)
            final = self.cache_tree / "root"
            if final.exists():
                shutil.rmtree(final)
            build.rename(final)
            (self.cache_tree / _COMPLETE_MARK).write_text(
                json.dumps({"suite": SUITE, "packages": self.packages, "mirror": mirror}) + "\n",
                encoding="utf-8",
            )
            self.log("Asterisk tree ready")

    # ---------------------------------------------------------------- start
    def start(self, *, timeout: float = 60.0) -> None:
        """Start Asterisk with the project's config and wait until ARI answers."""
        _require_root()
        if self.is_running():
            self.log("already running")
            try:
                self.wait_ready(timeout=min(timeout, 10.0))
            except StartError as exc:
                raise StartError(
                    "this checkout's sandbox Asterisk is running but ARI does not answer from "
                    "here: it probably runs in another network namespace (scripts/netns-run). "
                    f"Stop it with `coverage-engine sandbox stop` and start again.\n{exc}"
                ) from None
            return
        self.provision()
        for port, kind, name in (
            (SIP_PORT, socket.SOCK_DGRAM, "SIP (udp)"),
            (HTTP_PORT, socket.SOCK_STREAM, "HTTP/ARI"),
            (AMI_PORT, socket.SOCK_STREAM, "AMI"),
        ):
            if not _port_free(port, kind):
                raise PortInUseError(
                    f"port {port} ({name}) on {HOST} is already taken: another Asterisk or "
                    "another checkout's sandbox is running. Stop it, or run this inside "
                    "scripts/netns-run to get a private loopback."
                )
        self._install_config()
        self._reset_runtime()
        self.log("starting Asterisk")
        # unshare execs sh, sh execs chroot, chroot execs asterisk: one pid,
        # and the mount namespace holding /proc dies with it.
        script = 'mount -t proc proc "$1/proc" && exec chroot "$1" "$2" -f -C "$3"'
        with self.out_file.open("wb") as out:
            proc = subprocess.Popen(
                [
                    "unshare",
                    "-m",
                    "--propagation",
                    "private",
                    "--",
                    "sh",
                    "-c",
                    script,
                    "sh",
                    str(self.tree),
                    ASTERISK,
                    str(ETC_DIR / "asterisk.conf"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
            )
        self._proc = proc
        self.pid_file.write_text(f"{proc.pid}\n", encoding="utf-8")
        try:
            self.wait_ready(timeout=timeout, proc=proc)
        except StartError:
            self.stop()
            raise
        self.reset_operators()
        self.log(f"Asterisk is up (pid {proc.pid}); ARI at {self.credentials().url}")

    def _install_config(self) -> None:
        etc = _in_tree(self.tree, ETC_DIR)
        if etc.exists():
            shutil.rmtree(etc)
        etc.mkdir(parents=True)
        for conf in sorted((self.root / "config" / "asterisk").glob("*.conf")):
            shutil.copyfile(conf, etc / conf.name)
        (etc / "dialplan").mkdir()
        for conf in sorted((self.root / "dialplan").glob("*.conf")):
            shutil.copyfile(conf, etc / "dialplan" / conf.name)
        values = self._secrets()
        secret_dir = etc / "coverage-secrets"
        secret_dir.mkdir(mode=0o700)
        _write_private(secret_dir / "ari.conf", f"password = {values['ari-password']}\n")
        for user, name in ((AMI_USER, "ami-secret"), (AMI_OPERATORS_USER, "ami-operators-secret")):
            _write_private(secret_dir / f"manager-{user}.conf", f"secret = {values[name]}\n")
        # The FastAGI service's shared secret, a dialplan global only Asterisk reads.
        _write_private(
            secret_dir / "extensions.conf",
            f"[globals](+)\nCOVERAGE_AGI_SECRET = {values['agi-secret']}\n",
        )
        # `(+)` adds the password to the auth object pjsip.conf defines.
        _write_private(
            secret_dir / "pjsip.conf",
            "".join(
                f"[{auth}](+)\npassword = {self._phone_passwords()[user]}\n\n"
                for user, auth in sorted(self._phone_auths().items())
            ),
        )
        sounds_src = self.root / "sounds"
        if sounds_src.is_dir():
            for lang_dir in sorted(p for p in sounds_src.iterdir() if p.is_dir()):
                dest = _in_tree(self.tree, SOUNDS_DIR / lang_dir.name / "coverage")
                if dest.exists():
                    shutil.rmtree(dest)
                dest.mkdir(parents=True)
                for sound in sorted(lang_dir.iterdir()):
                    if sound.suffix in (".gsm", ".wav", ".sln", ".ulaw"):
                        shutil.copyfile(sound, dest / sound.name)

    def _reset_runtime(self) -> None:
        """Every start begins clean: no stale control socket, astdb or logs."""
        for inner in (RUN_DIR, LOG_DIR):
            path = _in_tree(self.tree, inner)
            if path.exists():
                shutil.rmtree(path)
            path.mkdir(parents=True)
        astdb = _in_tree(self.tree, LIB_DIR / "astdb.sqlite3")
        astdb.unlink(missing_ok=True)

    def _secrets(self) -> dict[str, str]:
        """This checkout's ARI password and AMI secrets: random, made once, kept private."""
        self.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name in _SECRET_FILES:
            path = self.secrets_dir / name
            if not path.is_file():
                # URL-safe base64 has no `;` (a comment in Asterisk config).
                _write_private(path, secrets.token_urlsafe(24) + "\n")
        values = self._read_secrets()

        def env_file(pairs: tuple[tuple[str, str], ...]) -> str:
            return "".join(f"{k}={v}\n" for k, v in pairs)

        ami = (("COVERAGE_AMI_HOST", HOST), ("COVERAGE_AMI_PORT", str(AMI_PORT)))
        _write_private(
            self.credentials_file,
            env_file(
                (
                    ("COVERAGE_ARI_URL", f"http://{HOST}:{HTTP_PORT}/ari"),
                    ("COVERAGE_ARI_USER", ARI_USER),
                    ("COVERAGE_ARI_PASSWORD", values["ari-password"]),
                    ("COVERAGE_ARI_PASSWORD_FILE", str(self.secrets_dir / "ari-password")),
                    ("COVERAGE_ARI_APP", ARI_APP),
                    *ami,
                    ("COVERAGE_AMI_USER", AMI_USER),
                    ("COVERAGE_AMI_SECRET", values["ami-secret"]),
                    ("COVERAGE_AMI_SECRET_FILE", str(self.secrets_dir / "ami-secret")),
                )
            ),
        )
        # `coverage-engine operators` logs in as the AMI user allowed to change
        # the queues; the engine's own user only reads presence.
        _write_private(
            self.operators_credentials_file,
            env_file(
                (
                    *ami,
                    ("COVERAGE_AMI_USER", AMI_OPERATORS_USER),
                    ("COVERAGE_AMI_SECRET", values["ami-operators-secret"]),
                    (
                        "COVERAGE_AMI_SECRET_FILE",
                        str(self.secrets_dir / "ami-operators-secret"),
                    ),
                )
            ),
        )
        return values

    def _phone_auths(self) -> dict[str, str]:
        return phone_auths(
            (self.root / "config" / "asterisk" / "pjsip.conf").read_text(encoding="utf-8")
        )

    def _phone_passwords(self) -> dict[str, str]:
        """A random SIP password per phone of pjsip.conf: made once, kept, private.

        A phone added to pjsip.conf gets its password at the next start; the
        others keep theirs.
        """
        self.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.secrets_dir / "sip-passwords.json"
        known: dict[str, str] = {}
        if path.is_file():
            known = json.loads(path.read_text(encoding="utf-8"))
        wanted = {
            user: known.get(user) or secrets.token_urlsafe(24) for user in self._phone_auths()
        }
        if wanted != known:
            _write_private(path, json.dumps(wanted, indent=1, sort_keys=True) + "\n")
        return wanted

    def phone_credentials(self, phone: str) -> SipCredentials:
        """The SIP digest credentials of `phone` (an endpoint of pjsip.conf), made at start."""
        path = self.secrets_dir / "sip-passwords.json"
        try:
            passwords = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SandboxError(
                "the sandbox has no phone passwords yet; run `coverage-engine sandbox start`"
            ) from None
        if phone not in passwords:
            raise SandboxError(
                f"{phone!r} is not a phone that authenticates in pjsip.conf "
                f"(known: {', '.join(sorted(passwords))})"
            )
        return SipCredentials(user=phone, password=passwords[phone])

    def credentials(self) -> AriCredentials:
        """ARI credentials of this checkout's sandbox (made at first start)."""
        return AriCredentials(
            url=f"http://{HOST}:{HTTP_PORT}/ari",
            user=ARI_USER,
            password=self._read_secrets()["ari-password"],
        )

    def ami_credentials(self) -> AmiCredentials:
        """The engine's AMI credentials (presence, read only), made at first start."""
        secret = self._read_secrets()["ami-secret"]
        return AmiCredentials(host=HOST, port=AMI_PORT, user=AMI_USER, secret=secret)

    def agi_secret_file(self) -> Path:
        """The file holding the FastAGI shared secret (`coverage-engine agi --secret-file`)."""
        self._read_secrets()  # made at first start
        return self.secrets_dir / "agi-secret"

    def operators_ami_credentials(self) -> AmiCredentials:
        """AMI credentials of `coverage-engine operators` (may change the queues)."""
        secret = self._read_secrets()["ami-operators-secret"]
        return AmiCredentials(host=HOST, port=AMI_PORT, user=AMI_OPERATORS_USER, secret=secret)

    def _read_secrets(self) -> dict[str, str]:
        try:
            return {
                name: (self.secrets_dir / name).read_text(encoding="utf-8").strip()
                for name in _SECRET_FILES
            }
        except FileNotFoundError:
            raise SandboxError(
                "the sandbox has no credentials yet; run `coverage-engine sandbox start`"
            ) from None

    def wait_ready(
        self, *, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None
    ) -> None:
        """Wait until Asterisk is fully booted and ARI answers with our credentials."""
        deadline = time.monotonic() + timeout
        booted = False
        booted_at = 0.0
        last = "no answer yet"
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise StartError(
                    f"Asterisk exited with status {proc.returncode} while starting.\n"
                    + self._diagnostics()
                )
            if not booted:
                # Returns once every module is loaded (app_queue, pjsip, ARI).
                result = self._asterisk_rx("core waitfullybooted", timeout=5)
                booted = result.returncode == 0
                booted_at = time.monotonic()
            if booted:
                ok, last = self.ari_ok()
                if ok:
                    return
                if last == "HTTP 404" and time.monotonic() - booted_at > 5:
                    # Fully booted but no /ari: res_ari did not load.
                    raise StartError(
                        "Asterisk started without ARI (a module failed to load; "
                        "check config/asterisk/modules.conf).\n" + self._diagnostics()
                    )
            time.sleep(0.2)
        raise StartError(
            f"Asterisk did not answer on ARI within {timeout:.0f}s ({last}).\n"
            + self._diagnostics()
        )

    def ari_ok(self) -> tuple[bool, str]:
        """Whether ARI answers `GET /asterisk/info` with our credentials, and why not."""
        return ari_answers(self.credentials(), "/asterisk/info")

    def _diagnostics(self) -> str:
        """Errors first (a module that failed to load), then the log's last lines."""
        path = _in_tree(self.tree, LOG_DIR / "messages")
        if not path.is_file():
            path = self.out_file
        if not path.is_file():
            return ""
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        errors = [line for line in lines if " ERROR[" in line or "ERROR" in line[:60]][-20:]
        return "\n".join(
            [f"--- errors in {path}:", *errors, f"--- last lines of {path}:", *lines[-8:]]
        )

    # ----------------------------------------------------------------- stop
    def pid(self) -> int | None:
        """The pid of this checkout's Asterisk if it is running, else None."""
        try:
            pid = int(self.pid_file.read_text(encoding="utf-8").strip())
        except (FileNotFoundError, ValueError):
            return None
        # Guard against a recycled pid: the process must live in our tree.
        try:
            proc_root = Path(f"/proc/{pid}/root").resolve()
        except (OSError, RuntimeError):
            return None
        if not Path(f"/proc/{pid}").exists():
            return None
        if proc_root != self.tree.resolve():
            # Between fork and chroot the process still sees the host root;
            # accept it only if it is our unshare/sh wrapper.
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                return None
            if str(self.tree).encode() not in cmdline:
                return None
        return pid

    def is_running(self) -> bool:
        return self.pid() is not None

    def stop(self, *, timeout: float = 15.0) -> bool:
        """Stop this checkout's Asterisk (TERM, then KILL); True if one was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        self.log(f"stopping Asterisk (pid {pid})")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            self.log("Asterisk did not stop in time; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 5.0)
        if self._proc is not None:
            # Our child is the `unshare` wrapper, whose pid is not Asterisk's:
            # it ends with Asterisk, and is reaped here (a restart in one
            # session would otherwise leave it unwaited).
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
            self._proc = None
        self.pid_file.unlink(missing_ok=True)
        return True

    # --------------------------------------------------------- status & cli
    def status(self) -> Status:
        pid = self.pid()
        ari = False
        if pid is not None:
            try:
                ari, _ = self.ari_ok()
            except SandboxError:
                ari = False
        return Status(
            provisioned=self._instance_ready(),
            running=pid is not None,
            pid=pid,
            ari_ok=ari,
            tree=self.tree,
            cache_tree=self.cache_tree,
            credentials_file=self.credentials_file,
        )

    def cli(self, command: str, *, timeout: float = 20.0) -> str:
        """Run one Asterisk CLI command (`asterisk -rx`) and return its output."""
        if not self.is_running():
            raise SandboxError("the sandbox is not running; `coverage-engine sandbox start`")
        result = self._asterisk_rx(command, timeout=timeout)
        if result.returncode != 0:
            raise SandboxError(f"asterisk -rx {command!r} failed: {result.stdout.strip()}")
        # The remote console itself complains that the private network
        # namespace has no ethernet card; that line is not the command's output.
        return "".join(
            line
            for line in result.stdout.splitlines(keepends=True)
            if not line.startswith("No ethernet interface found")
        )

    def _asterisk_rx(self, command: str, *, timeout: float) -> subprocess.CompletedProcess[str]:
        # The remote console talks to the control socket inside the tree; it
        # needs no /proc, so plain chroot from the host namespace is enough.
        try:
            return subprocess.run(
                [
                    "chroot",
                    str(self.tree),
                    ASTERISK,
                    "-C",
                    str(ETC_DIR / "asterisk.conf"),
                    "-rx",
                    command,
                ],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess([], 124, "", "timeout")

    def hang_up_all_calls(self, *, timeout: float = 10.0) -> None:
        """Hang up every channel and wait until none is left (isolation between tests).

        A test may leave a call up on purpose (a caller still waiting in the
        queue) and a stopped SIPp sends no BYE: without this, Asterisk would
        keep ringing the next test's phones for that call.
        """
        self.cli("channel request hangup all")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.cli("core show channels count")
            if out.strip().startswith("0 active channels"):
                return
            time.sleep(0.2)
        raise SandboxError(f"channels still up after hang-up:\n{self.cli('core show channels')}")

    def reset_operators(self) -> None:
        """Log operator1..3 in to the `answering` queue, unpaused (a shift is on)."""
        for name in SANDBOX_OPERATORS:
            # "Already there" is fine: the point is that they are in.
            self.cli(f"queue add member PJSIP/{name} to {OPERATOR_QUEUE} penalty 0 as {name}")
            self.cli(f"queue unpause member PJSIP/{name} queue {OPERATOR_QUEUE}")

    def console_command(self) -> list[str]:
        """The argv of an interactive remote console (`asterisk -r`) into the sandbox."""
        return ["chroot", str(self.tree), ASTERISK, "-C", str(ETC_DIR / "asterisk.conf"), "-r"]

    def log_path(self) -> Path:
        """Asterisk's `messages` log as seen from the host."""
        return _in_tree(self.tree, LOG_DIR / "messages")


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    path.chmod(0o600)


def _require_root() -> None:
    if os.geteuid() != 0:
        raise NotRootError(
            "the sandbox PBX needs root (debootstrap, chroot and a private mount "
            "namespace); run as root, e.g. `sudo scripts/test`"
        )


def _check_mirror(mirror: str) -> None:
    url = f"{mirror}/dists/{SUITE}/Release"
    try:
        with urllib.request.urlopen(url, timeout=15) as response:  # noqa: S310 (apt mirror URL)
            if response.status == 200:
                return
            reason = f"HTTP {response.status}"
    except (urllib.error.URLError, OSError) as exc:
        reason = str(exc)
    raise MirrorUnreachableError(
        f"the Debian mirror {mirror} does not answer ({reason}); the sandbox downloads "
        "Asterisk from Debian unstable once. Check the network, or set "
        "COVERAGE_SANDBOX_MIRROR to a reachable Debian mirror."
    )


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # Reap it if it is our child (the CLI started it in this process).
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
        except ChildProcessError:
            pass
        if not Path(f"/proc/{pid}").exists():
            return True
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            return True
        if state == "Z":  # exited, waiting for its parent to reap it
            return True
        time.sleep(0.1)
    return False
