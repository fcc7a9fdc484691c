"""Pure parts of the sandbox: cache key, mirror discovery, paths inside the tree."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from coverage_lab.sandbox import (
    MirrorUnreachableError,
    MissingToolError,
    NotRootError,
    Sandbox,
    _check_mirror,
    _in_tree,
    _port_free,
    find_mirror,
    read_packages,
    tree_key,
)


def test_the_cache_key_changes_with_the_package_list_only() -> None:
    """Same packages in any order share a tree; one more package builds a new one."""
    assert tree_key(("asterisk", "asterisk-modules")) == tree_key(("asterisk-modules", "asterisk"))
    assert tree_key(("asterisk",)) != tree_key(("asterisk", "asterisk-moh-opsound-gsm"))


def test_the_project_package_list_names_asterisk_and_drops_comments() -> None:
    """config/asterisk/packages.txt is read without its comment lines."""
    packages = read_packages(Path(__file__).resolve().parents[2])
    assert "asterisk" in packages
    assert all(not name.startswith("#") and " " not in name for name in packages)


def test_the_mirror_comes_from_deb822_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deb822 .sources file's Debian URI is the mirror; the security archive is not."""
    monkeypatch.delenv("COVERAGE_SANDBOX_MIRROR", raising=False)
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://security.example/debian-security\nSuites: x\n\n"
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n"
    )
    assert find_mirror(tmp_path) == "http://mirror.example/debian"


def test_the_mirror_comes_from_a_one_line_sources_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`deb [options] URI suite` lines work too, and the environment overrides both."""
    monkeypatch.delenv("COVERAGE_SANDBOX_MIRROR", raising=False)
    (tmp_path / "sources.list").write_text(
        "deb [arch=amd64 signed-by=/k.gpg] http://ftp.example/debian bookworm main\n"
    )
    assert find_mirror(tmp_path) == "http://ftp.example/debian"
    monkeypatch.setenv("COVERAGE_SANDBOX_MIRROR", "http://env.example/debian/")
    assert find_mirror(tmp_path) == "http://env.example/debian"


def test_without_any_source_the_default_mirror_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No apt sources at all: deb.debian.org."""
    monkeypatch.delenv("COVERAGE_SANDBOX_MIRROR", raising=False)
    assert find_mirror(tmp_path) == "http://deb.debian.org/debian"


def test_absolute_symlinks_in_the_tree_resolve_inside_the_tree(tmp_path: Path) -> None:
    """`/var/run -> /run` in the chroot never leads the host to its own /run."""
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    (root / "var").mkdir()
    (root / "var" / "run").symlink_to("/run")
    (root / "usr" / "share" / "sounds" / "en_US").mkdir(parents=True)
    (root / "etc" / "alternatives").mkdir(parents=True)
    (root / "etc" / "alternatives" / "prompt").symlink_to("/usr/share/sounds/en_US")
    (root / "usr" / "share" / "sounds" / "en").symlink_to("/etc/alternatives/prompt")

    assert _in_tree(root, "/var/run/asterisk") == root / "run" / "asterisk"
    assert _in_tree(root, "/usr/share/sounds/en/coverage") == (
        root / "usr" / "share" / "sounds" / "en_US" / "coverage"
    )


def test_dotdot_cannot_climb_out_of_the_tree(tmp_path: Path) -> None:
    """`..` above the tree's root stays at the tree's root, as it does in a chroot."""
    root = tmp_path / "root"
    root.mkdir()
    assert _in_tree(root, "/../../etc/passwd") == root / "etc" / "passwd"


def test_not_root_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A non-root user is told the sandbox needs root, before anything is touched."""
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(NotRootError, match="needs root"):
        Sandbox(_project_copy(tmp_path), log=lambda _: None).start()


def test_a_missing_debootstrap_names_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without debootstrap the message points at scripts/bootstrap."""
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr("shutil.which", lambda tool: None)
    with pytest.raises(MissingToolError, match="scripts/bootstrap"):
        Sandbox(_project_copy(tmp_path), log=lambda _: None).provision()


def test_an_unreachable_mirror_is_a_clear_error() -> None:
    """A mirror that refuses connections says so and names COVERAGE_SANDBOX_MIRROR."""
    with pytest.raises(MirrorUnreachableError, match="COVERAGE_SANDBOX_MIRROR"):
        _check_mirror("http://127.0.0.1:9/debian")


def test_a_taken_port_is_detected() -> None:
    """A port someone already listens on is reported as taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert not _port_free(port, socket.SOCK_STREAM)
    assert _port_free(port, socket.SOCK_STREAM)


def _project_copy(tmp_path: Path) -> Path:
    """A checkout with just what Sandbox() reads at construction."""
    root = tmp_path / "checkout"
    (root / "config" / "asterisk").mkdir(parents=True)
    (root / "config" / "asterisk" / "packages.txt").write_text("asterisk\n")
    return root
