"""Atomic file writes that leave nothing behind: `atomic_write(path, write)`.

The data goes to a temporary file in the target's directory, named
`.NAME.<pid>.<random>.tmp` and created exclusively, then `os.replace`s the target, so a
reader never sees a half-written file. The temporary file is removed on every exit path:
an exception, Ctrl-C (SIGINT) and SIGTERM (in the main thread the handlers are wrapped for
the duration of the write: the signal is recorded, the file removed, then the signal acts as
it would have, even when a C library such as h5py swallowed the KeyboardInterrupt). An
ignored signal stays ignored, and a handler of the process' own runs once the save has
finished (see `_deferred_signals`). A save
killed outright (SIGKILL, power loss) leaves its temporary file; the next save to the same
path removes the temporary files of processes that no longer exist. A target that is a
symbolic link is written through: the link stays and the file it points to is replaced.
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import tempfile
import threading
import time

_LEGACY_STALE_S = 3600  # temp files without a pid (older kgraph) count as stale after this


def _new_file_mode(path) -> int:
    """The mode a plain `open(path, "w")` would give (kept when `path` exists)."""
    with contextlib.suppress(OSError):
        return os.stat(path).st_mode & 0o777
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as fh:  # Linux: read the umask without changing it
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temp_files(path) -> list:
    """Remove the temporary files that killed saves to `path` left behind; return them."""
    directory, name = os.path.split(os.path.abspath(path))
    pattern = re.compile(r"\." + re.escape(name) + r"\.(?:(\d+)\.)?[A-Za-z0-9_]+\.tmp\Z")
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            match = pattern.match(entry.name)
            if match is None or not entry.is_file(follow_symlinks=False):
                continue
            pid = match.group(1)
            stale = not _pid_alive(int(pid)) if pid else \
                time.time() - entry.stat(follow_symlinks=False).st_mtime > _LEGACY_STALE_S
            if stale:
                with contextlib.suppress(OSError):
                    os.remove(entry.path)
                    removed.append(entry.path)
    return removed


class _SaveSignals:
    """SIGINT/SIGTERM seen during one write: `interrupted` stop it (their handler was the
    default one); `deferred` are (handler, signum) of the process' own handlers, run after
    the write."""

    def __init__(self):
        self.interrupted: list = []
        self.deferred: list = []
        self.previous: dict = {}


@contextlib.contextmanager
def _deferred_signals():
    """Watch SIGINT/SIGTERM while the body runs (main thread only); yields a `_SaveSignals`.

    A signal whose handler is the default (Python's KeyboardInterrupt, or SIG_DFL) raises
    KeyboardInterrupt at once to stop the write; it acts after the cleanup. A signal that is
    ignored stays ignored. A handler of the process' own (a graceful-shutdown flag) lets the
    write finish and runs after it, with the handlers restored."""
    signals = _SaveSignals()
    if threading.current_thread() is not threading.main_thread():
        yield signals
        return

    def handler(signum, frame):
        old = signals.previous[signum]
        if old in (signal.SIG_DFL, signal.default_int_handler):
            signals.interrupted.append(signum)
            raise KeyboardInterrupt  # stop writing now; the signal is acted on after cleanup
        signals.deferred.append((old, signum))

    for signum in (signal.SIGINT, signal.SIGTERM):
        old = signal.getsignal(signum)
        if old is signal.SIG_IGN or old is None:  # ignored, or set outside Python: leave it
            continue
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signum, handler)
            signals.previous[signum] = old
    try:
        yield signals
    finally:
        for signum, old in signals.previous.items():
            signal.signal(signum, old)
        for old, signum in signals.deferred:
            old(signum, None)


def _redeliver(signals):
    """Act on the signals that stopped a write, now that its temporary file is gone."""
    for signum in signals.interrupted:
        if signals.previous[signum] is signal.SIG_DFL:
            os.kill(os.getpid(), signum)  # the restored default acts (ends the process)
    if signal.SIGINT in signals.interrupted:
        raise KeyboardInterrupt
    if signals.interrupted:  # a default action that returned: say the save did not happen
        raise InterruptedError(f"The save was interrupted by signal "
                               f"{signals.interrupted[0]}; nothing was written.")


def atomic_write(path, write) -> None:
    """Call `write(tmp_path)`, then move the finished file over `path` (see the module
    docstring for what happens on errors and signals).

    Args:
        path: The file to (re)place. A symbolic link is followed.
        write: A function that writes the complete file at the path it is given.
    """
    path = os.path.realpath(os.fspath(path)) if os.path.islink(path) else os.fspath(path)
    remove_stale_temp_files(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.{os.getpid()}.",
                               suffix=".tmp")
    os.close(fd)
    with _deferred_signals() as signals:
        try:
            write(tmp)
            if signals.interrupted:
                raise KeyboardInterrupt  # swallowed inside `write` (h5py): stop here
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(tmp, _new_file_mode(path))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            if not signals.interrupted:
                raise
    _redeliver(signals)


def atomic_write_bytes(path, data: bytes) -> None:
    """`atomic_write` of a bytes object."""
    def write(tmp):
        with open(tmp, "wb") as fh:
            fh.write(data)
    atomic_write(path, write)
