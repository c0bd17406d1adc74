"""Where an export goes (``exports/_files``): files replaced atomically, links, devices and
FIFOs, modes and owners kept, end to end through the command."""

from __future__ import annotations

import contextlib
import json
import os
import select
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._support.command import CLEAN_ENV, COMMAND

ORDERS = 500  # the sandbox's default order list


def export_orders(
    target: Path | str, *, umask: int | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, "export", "orders", "--sandbox", "-q", "-o", str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        env=CLEAN_ENV,
        check=False,
        encoding="utf-8",
        umask=-1 if umask is None else umask,
        cwd=cwd,
    )


def order_ids(text: str) -> list[str]:
    return [json.loads(line)["id"] for line in text.splitlines()]


@contextlib.contextmanager
def device_kept(path: str, major: int, minor: int) -> Iterator[None]:
    """Fail if ``path`` stopped being that character device; put it back if so (as root)."""
    yield
    info = os.lstat(path)
    if stat.S_ISCHR(info.st_mode) and info.st_rdev == os.makedev(major, minor):
        return
    with contextlib.suppress(OSError):
        os.unlink(path)
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(path, 0o666)
    pytest.fail(f"{path} was replaced by a {stat.filemode(info.st_mode)} file (restored)")


def test_dev_null_stays_a_character_device_and_the_export_succeeds() -> None:
    with device_kept("/dev/null", 1, 3):
        result = export_orders("/dev/null")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_dev_full_fails_with_exit_1_in_one_line_and_stays_a_device() -> None:
    with device_kept("/dev/full", 1, 7):
        result = export_orders("/dev/full")
    assert result.returncode == 1
    assert result.stderr == "yeastar-csss: /dev/full: No space left on device\n"


def read_fifo(path: Path, chunks: list[bytes], stop: threading.Event) -> None:
    """Read ``path`` until its writer closes it, or until ``stop`` (no writer ever came).

    Opened non-blocking, so no writer is needed to open it; poll() reports POLLHUP only once
    a writer has come and gone, so "no writer yet" is not mistaken for the end.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while not stop.is_set():
            if not poller.poll(50):
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return
            chunks.append(chunk)
    finally:
        os.close(fd)


def test_a_fifo_is_written_through_to_its_reader(tmp_path: Path) -> None:
    fifo = tmp_path / "orders.fifo"
    os.mkfifo(fifo)
    chunks: list[bytes] = []
    stop = threading.Event()
    reader = threading.Thread(target=read_fifo, args=(fifo, chunks, stop))
    reader.start()
    try:
        result = export_orders(fifo)
    finally:
        stop.set()  # only matters if the export never opened the FIFO
        reader.join()
    assert result.returncode == 0, result.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert len(order_ids(b"".join(chunks).decode())) == ORDERS
    assert [p.name for p in tmp_path.iterdir()] == ["orders.fifo"]


@pytest.mark.parametrize("target_exists", [True, False])
def test_a_symlink_is_kept_and_its_target_written(tmp_path: Path, target_exists: bool) -> None:
    (tmp_path / "links").mkdir()
    (tmp_path / "data").mkdir()
    target = tmp_path / "data" / "orders.jsonl"
    if target_exists:
        target.write_text("old\n")
    link = tmp_path / "links" / "orders.jsonl"
    link.symlink_to(Path("..") / "data" / "orders.jsonl")
    result = export_orders(link)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink()
    assert os.readlink(link) == str(Path("..") / "data" / "orders.jsonl")
    assert len(order_ids(target.read_text())) == ORDERS
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["orders.jsonl"]  # no temp


def test_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "orders.jsonl"
    target.write_text("old\n")
    target.chmod(0o640)
    result = export_orders(target, umask=0o077)  # the umask is for new files only
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert len(order_ids(target.read_text())) == ORDERS


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_a_new_file_gets_the_mode_the_umask_allows(tmp_path: Path, umask: int, mode: int) -> None:
    result = export_orders("orders.jsonl", umask=umask, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((tmp_path / "orders.jsonl").stat().st_mode) == mode


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may give a file to another user")
def test_an_existing_file_keeps_its_owner_when_root_writes_it(tmp_path: Path) -> None:
    target = tmp_path / "orders.jsonl"
    target.write_text("old\n")
    os.chown(target, 4321, 4322)
    result = export_orders(target)
    assert result.returncode == 0, result.stderr
    assert (target.stat().st_uid, target.stat().st_gid) == (4321, 4322)
    assert len(order_ids(target.read_text())) == ORDERS


def test_a_hard_linked_file_is_replaced_and_its_other_name_keeps_the_old_content(
    tmp_path: Path,
) -> None:
    # The chosen trade-off (see _Replacement): the name given gets all of the new content
    # atomically, so the link is broken; writing in place would truncate both names first.
    target = tmp_path / "orders.jsonl"
    target.write_text("old\n")
    target.chmod(0o640)
    other = tmp_path / "backup.jsonl"
    os.link(target, other)
    result = export_orders(target)
    assert result.returncode == 0, result.stderr
    assert len(order_ids(target.read_text())) == ORDERS
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert other.read_text() == "old\n"
    assert other.stat().st_nlink == 1
    assert not os.path.samefile(target, other)
