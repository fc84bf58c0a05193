"""Append-only, fsync'd JSONL files, written in groups (group commit) by one writer.

Why group commit: an fsync costs about as much for one line as for a thousand, so a receiver that
fsyncs per request tops out at the disk's fsync rate. Here concurrent requests queue their lines;
one writer task takes everything queued, writes it with one ``write`` and one ``fsync`` (in a
thread, so the event loop keeps reading requests meanwhile), then wakes every request of that
group at once. While it syncs, the next group queues. A request is answered only after the fsync
that covers its line, so nothing acknowledged is lost to a SIGKILL or a power cut; lines of a
group that fails (disk full, store removed) all get the error, and their senders a 503.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from pathlib import Path

from sre_llm.fsutil import _fsync_dir


class Journal:
    """One JSONL file, appended to durably. Thread-safe; opened per write, so a file replaced or
    unmounted underneath shows up as an error on the next write, not as writes to a stale descriptor."""

    def __init__(self, path: str | Path, mode: int = 0o600):
        self.path = Path(path)
        self.mode = mode
        self._lock = threading.Lock()

    def write(self, lines: list[bytes]) -> None:
        """Append ``lines`` (each ending in a newline) and fsync; raises OSError when it could not."""
        data = b"".join(lines)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            fd = self._open_locked()
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_dir(self.path.parent)


    def _open_locked(self) -> int:
        """The file, opened for appending under a shared ``flock``: ``dataset forget`` / ``prune``
        rewrite it under an exclusive one and rename the new file over it
        (:func:`sre_llm.dataset.retention.rewrite_locked`). If the path names another inode once
        the lock is ours, the rewrite happened meanwhile: open the new file."""
        for _ in range(100):
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, self.mode)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
                if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        raise OSError(f"{self.path}: replaced 100 times while opening it")


class GroupCommit:
    """Async front of a :class:`Journal`: ``await commit(line)`` returns once the line is on disk.

    Bound lazily to the event loop of its first ``commit`` (hypercorn's), so it can be built before
    the loop exists. ``max_group_bytes`` bounds one write (a burst of large payloads is split).
    """

    def __init__(self, journal: Journal, max_group_bytes: int = 8 << 20):
        self.journal = journal
        self.max_group_bytes = max_group_bytes
        self._pending: list[tuple[bytes, asyncio.Future]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._busy = False
        self.groups = 0  # fsyncs done (for metrics and tests)
        self.lines = 0

    async def commit(self, line: bytes) -> None:
        """Durably append ``line``; raises what the write raised (OSError: could not store)."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._writer(), name="sre-llm-group-commit")
        future = loop.create_future()
        self._pending.append((line, future))
        self._wake.set()
        await future

    async def close(self) -> None:
        """Finish what is queued, then stop the writer."""
        if self._task is not None and not self._task.done():
            while self._pending or self._busy:
                await asyncio.sleep(0.01)
            self._task.cancel()

    def _take(self) -> list[tuple[bytes, asyncio.Future]]:
        size, n = 0, 0
        for line, _ in self._pending:
            if n and size + len(line) > self.max_group_bytes:
                break
            size += len(line)
            n += 1
        group, self._pending = self._pending[:n], self._pending[n:]
        return group

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                group = self._take()
                self._busy = True
                try:
                    await asyncio.to_thread(self.journal.write, [line for line, _ in group])
                except Exception as exc:  # noqa: BLE001 - every waiter gets the error; the writer lives on
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                finally:
                    self._busy = False
                self.groups += 1
                self.lines += len(group)
                for _, future in group:
                    if not future.done():  # a sender that went away meanwhile: its line is stored anyway
                        future.set_result(None)
