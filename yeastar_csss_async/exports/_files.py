"""Where an export's bytes go: a file replaced atomically, a device or pipe written through.

:func:`open_output` decides once, from what is at the path:

* nothing, or a regular file: the bytes go to a temporary file beside it, which is fsynced,
  renamed onto the name, and the directory fsynced, only when the export succeeded. A new
  file gets ``0o666 & ~umask`` (the kernel applies the umask, and default ACLs); an existing
  one keeps its mode and, where the user may set them, its owner and group.
* a symbolic link: it is resolved, and its target is written (the temporary file goes beside
  the target, so the rename stays within one file system); the link is kept.
* a character device or a FIFO (``/dev/null``, ``/dev/stdout``, a named pipe): written
  straight through, never renamed over, never truncated.
* ``-``: the process's stdout, written straight through.

Every write goes to the file descriptor with ``os.write``, never through ``sys.stdout``'s
buffer, so a writer blocked on a full pipe holds no lock that interpreter shutdown needs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import sys
import threading
from pathlib import Path

__all__ = ["Output", "open_output"]

_WRITE_FLAGS = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)


class Output:
    """An export destination. One writer thread calls ``open``, ``write``, ``commit`` and
    ``close``; ``discard`` may be called from any thread, at any time, and never blocks."""

    def __init__(self, name: str) -> None:
        self.name = name
        """The name to show in messages: the path as given, or ``stdout``."""
        self._fd: int | None = None

    def open(self) -> None:
        """Open the destination; may block (a FIFO waits for its reader)."""

    def write(self, data: bytes) -> None:
        """Write all of ``data``; an ``OSError`` names this output in ``filename``."""
        fd = self._fd
        assert fd is not None, "write() before open()"
        view = memoryview(data)
        try:
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError as error:
            if error.filename is None:
                error.filename = self.name
            raise

    seekable = False
    """Whether :meth:`seek` and :meth:`tell` work: only for a file being replaced (a pipe, a
    device or stdout, which may be a file opened for appending, is written in order)."""

    def tell(self) -> int:
        """The write position (only where :attr:`seekable`)."""
        raise OSError(errno.ESPIPE, os.strerror(errno.ESPIPE), self.name)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move the write position (only where :attr:`seekable`); return the new one."""
        raise OSError(errno.ESPIPE, os.strerror(errno.ESPIPE), self.name)

    def commit(self) -> None:
        """Make what was written final (called once, after the last ``write``)."""

    def discard(self) -> None:
        """Make sure nothing written so far appears under the final name."""

    def close(self) -> None:
        """Release the file descriptor, if this output owns one."""


class _Stdout(Output):
    """The process's stdout, borrowed: written through, never closed."""

    def __init__(self) -> None:
        super().__init__("stdout")
        stream = sys.stdout
        try:
            if stream is None:
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))
            stream.flush()
            fd = stream.fileno()
            os.fstat(fd)
        except (OSError, ValueError) as error:  # ValueError: a closed or detached stream
            raise OSError(errno.EBADF, "it is closed", self.name) from error
        self._fd = fd


class _PassThrough(Output):
    """A character device or FIFO: opened for writing as it is, no temporary file."""

    def __init__(self, name: str, path: Path) -> None:
        super().__init__(name)
        self._path = path

    def open(self) -> None:
        try:
            self._fd = os.open(self._path, _WRITE_FLAGS)
        except OSError as error:
            error.filename = self.name
            raise

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class _Replacement(Output):
    """A regular file (or none yet) replaced by rename: all of the new content or nothing.

    A file with other hard links is replaced like any other: the name given gets the new
    inode and the other links keep the old content. Writing such a file in place would keep
    the links together but give up the promise that an interrupted export leaves the old
    content untouched (all linked names would hold a truncated file); the promise wins.
    """

    def __init__(self, name: str, path: Path, existing: os.stat_result | None) -> None:
        super().__init__(name)
        self._path = path
        self._lock = threading.Lock()
        self._finished = False  # renamed onto the target, or discarded
        self._temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        # A new file is created 0o666: the kernel applies the umask (and any default ACL).
        # An existing file's content is private until its mode and owner are copied over.
        try:
            self._fd = os.open(
                self._temp,
                _WRITE_FLAGS | os.O_CREAT | os.O_EXCL,
                0o666 if existing is None else 0o600,
            )
        except OSError as error:
            error.filename = name
            raise
        if existing is not None:
            try:
                if (existing.st_uid, existing.st_gid) != (os.geteuid(), os.getegid()):
                    with contextlib.suppress(PermissionError):  # only root may give files away
                        os.fchown(self._fd, existing.st_uid, existing.st_gid)
                os.fchmod(self._fd, stat.S_IMODE(existing.st_mode))
            except BaseException:
                self.close()
                self.discard()
                raise

    seekable = True

    def tell(self) -> int:
        return self.seek(0, os.SEEK_CUR)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        assert self._fd is not None, "seek() after close()"
        return os.lseek(self._fd, offset, whence)

    def commit(self) -> None:
        assert self._fd is not None
        os.fsync(self._fd)
        self.close()
        with self._lock:
            if self._finished:  # discarded meanwhile: the export was cancelled
                return
            os.replace(self._temp, self._path)
            self._finished = True
        _fsync_directory(self._path.parent)

    def discard(self) -> None:
        with self._lock:
            if not self._finished:
                self._finished = True
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._temp)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (where the file system supports it)."""
    fd = os.open(
        directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
    )
    try:
        with contextlib.suppress(OSError):  # EINVAL: the file system cannot sync directories
            os.fsync(fd)
    finally:
        os.close(fd)


def open_output(target: str) -> Output:
    """The destination for ``target`` (``-`` is stdout), prepared but not yet opened.

    Raises ``OSError`` (with ``filename`` set to ``target``) when the destination cannot be
    used: a directory, a socket or block device, a missing or unwritable directory, a
    closed stdout. Does not block: a FIFO is opened later, by :meth:`Output.open`.
    """
    if target == "-":
        return _Stdout()
    try:
        existing: os.stat_result | None = os.stat(target)  # what the links lead to
    except FileNotFoundError:
        existing = None  # nothing there, or a dangling link: create what it names
    except OSError as error:
        error.filename = target
        raise
    if existing is None or stat.S_ISREG(existing.st_mode):
        return _Replacement(target, Path(os.path.realpath(target)), existing)
    if stat.S_ISCHR(existing.st_mode) or stat.S_ISFIFO(existing.st_mode):
        # Opened by the name given: /dev/stdout on a pipe resolves to no real path.
        return _PassThrough(target, Path(target))
    if stat.S_ISDIR(existing.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), target)
    raise OSError(errno.EINVAL, "not a regular file, FIFO or character device", target)
