"""Task logs in a blob store: written while the task runs, readable while it runs, sealed when
it ends, whatever the backend.

The orchestrator asks its store for a :class:`LogWriter` (:meth:`BlobStore.log_writer`), opens
one :class:`LogSink` per stored log and seals a finished task's sinks together. Readers call
:func:`read_log` (:meth:`BlobStore.read_log`), which sees a running task's log so far.

* A local datastore's sink appends to the datastore file itself (:class:`FileLogSink`).
* On a remote store (S3) a sink appends to a locked staging file, and a background uploader
  publishes it while the task runs as numbered parts ``<key>.<n>``: the last part is rewritten
  with what arrived every ``interval`` seconds until it holds ``part_size`` bytes, then the next
  one starts (so a log has few parts, and each upload is at most one part). Sealing uploads the
  whole staging file as ``<key>`` (a task's logs in one ``put_files`` batch) and then deletes its
  parts. Nothing of this runs on the caller's thread except appending to the staging file; the
  number of sealed logs waiting for their upload is bounded (sealing blocks beyond it).

A reader takes ``<key>`` when it is there, else the parts in order; a part is written only once
the one before it is complete, so any parts a reader finds make a prefix of the log.
"""

from __future__ import annotations

import abc
import os
import queue
import threading
from typing import TYPE_CHECKING, BinaryIO

from mfc.stores import staging

if TYPE_CHECKING:
    from mfc.stores.blob import BlobStore

INTERVAL = 2.0  # seconds between uploads of a running task's new output
PART_SIZE = 4 * 1024 * 1024  # a part is rewritten until it is this large
MAX_SEALING = 64  # sealed logs (tasks) waiting for their upload before seal() blocks
WORKERS = 4


class LogSink(abc.ABC):
    """Where one stored log is written while its task runs."""

    key: str

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Append bytes to the log."""


class LogWriter(abc.ABC):
    """Opens and seals the stored logs of one process's tasks on one store."""

    @abc.abstractmethod
    def open(self, key: str) -> LogSink:
        """A sink for the log stored under ``key``; the log is visible (empty) from now on."""

    @abc.abstractmethod
    def seal(self, sinks: list[LogSink]) -> None:
        """No more writes to these sinks (the logs of one task): store them for good. It may
        finish in the background; :meth:`close` waits for it."""

    @abc.abstractmethod
    def close(self) -> None:
        """Seal what is still open and wait until every sealed log is stored; raises the first
        failure to store one."""


class FileLogSink(LogSink):
    """A log appended to a file (the datastore file of a local root). The file is created now and
    opened for each write, so a thousand running tasks do not hold two thousand descriptors."""

    def __init__(self, path: str, key: str = "") -> None:
        self.key = key or path
        self.path = path
        self.sealed = False
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        open(path, "ab").close()

    def write(self, data: bytes) -> None:
        assert not self.sealed, f"{self.key}: written after it was sealed"
        with open(self.path, "ab") as fh:
            fh.write(data)

    def close(self) -> None:
        self.sealed = True


class LocalLogWriter(LogWriter):
    """Logs written straight into a local datastore's files."""

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs
        self._open: dict[int, FileLogSink] = {}

    def open(self, key: str) -> LogSink:
        path = self.blobs.local_path(key)
        assert path is not None
        sink = FileLogSink(path, key)
        self._open[id(sink)] = sink
        return sink

    def seal(self, sinks: list[LogSink]) -> None:
        for sink in sinks:
            self._open.pop(id(sink), None)
            if isinstance(sink, FileLogSink):
                sink.close()

    def close(self) -> None:
        self.seal(list(self._open.values()))


class _StagedSink(LogSink):
    """A remote log being written: its staging file, and how much of it is published."""

    def __init__(self, key: str, fh: BinaryIO, path: str) -> None:
        self.key = key
        self.fh = fh
        self.path = path
        self.written = 0  # bytes in the staging file (set after they are flushed to it)
        self.part = 0  # the part being filled
        self.published = -1  # bytes published as parts (-1: not even the empty first part)
        self.queued = False  # a publish job is waiting for it
        self.sealed = False
        self.done = False  # stored for good (or given up): no more uploads
        self.lock = threading.Lock()  # one upload of this log at a time

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.fh.write(data)
        self.fh.flush()
        self.written += len(data)


class StagedLogWriter(LogWriter):
    """Logs of a remote store: staged locally, published in parts while the task runs, stored
    whole when it ends (see the module doc)."""

    def __init__(self, blobs: BlobStore, interval: float = INTERVAL, part_size: int = PART_SIZE,
                 max_sealing: int = MAX_SEALING, workers: int = WORKERS) -> None:
        self.blobs = blobs
        self.interval = interval
        self.part_size = part_size
        self.workers = max(1, workers)
        self._jobs: queue.Queue[_StagedSink | list[_StagedSink] | None] = queue.Queue()
        self._sealing = threading.Semaphore(max(1, max_sealing))
        self._live: dict[int, _StagedSink] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._warned = False

    # -- the caller's side ------------------------------------------------------------------------
    def open(self, key: str) -> LogSink:
        self._raise_failure()
        fh, path = staging.create(self.blobs.staging_dir(), "log-")
        sink = _StagedSink(key, fh, path)
        with self._lock:
            self._live[id(sink)] = sink
            self._start()
            self._enqueue(sink)  # the empty first part: the task is visible while it runs
        return sink

    def seal(self, sinks: list[LogSink]) -> None:
        self._seal(sinks)
        self._raise_failure()

    def _seal(self, sinks: list[LogSink]) -> None:
        staged = [s for s in sinks if isinstance(s, _StagedSink) and not s.sealed]
        if not staged:
            return
        with self._lock:
            for sink in staged:
                sink.sealed = True
                self._live.pop(id(sink), None)
        self._sealing.acquire()  # bounded: a slow store holds the caller back, not its memory
        self._jobs.put(staged)

    def close(self) -> None:
        with self._lock:
            live = list(self._live.values())
        for sink in live:
            self._seal([sink])
        if self._threads:
            self._stop.set()
            for _ in self._threads:
                self._jobs.put(None)
            for thread in self._threads:
                thread.join()
            self._threads = []
        self._raise_failure()

    def _raise_failure(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    # -- the uploader's side ----------------------------------------------------------------------
    def _start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        self._threads = [threading.Thread(target=self._work, name="mfc-logs", daemon=True)
                         for _ in range(self.workers)]
        self._threads.append(threading.Thread(target=self._tick, name="mfc-logs-tick", daemon=True))
        for thread in self._threads:
            thread.start()

    def _enqueue(self, sink: _StagedSink) -> None:
        """Queue a publish of ``sink`` unless one is waiting already (called under _lock)."""
        if not sink.queued and not sink.sealed:
            sink.queued = True
            self._jobs.put(sink)

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                for sink in self._live.values():
                    if sink.written > sink.published:
                        self._enqueue(sink)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            if isinstance(job, list):
                self._store(job)
                continue
            with self._lock:
                job.queued = False
            try:
                with job.lock:
                    if not job.done:
                        self._publish(job)
            except Exception as exc:  # noqa: BLE001 - the next publish or the seal tries again
                if not self._warned:
                    self._warned = True
                    from mfc.exceptions import warn

                    warn(f"the log {self.blobs.root}/{job.key} could not be updated while its task runs: {exc}")

    def _publish(self, sink: _StagedSink) -> None:
        """Upload what the staging file gained since the last publish (called under sink.lock)."""
        end = sink.written
        while True:
            start = sink.part * self.part_size
            stop = min(start + self.part_size, end)
            if stop <= sink.published and sink.published >= 0:
                return
            data = os.pread(sink.fh.fileno(), stop - start, start) if stop > start else b""
            self.blobs.put_bytes(f"{sink.key}.{sink.part}", data)
            sink.published = stop
            if stop - start < self.part_size:
                return
            sink.part += 1  # this part is complete and never rewritten
            if stop >= end:
                return

    def _store(self, sinks: list[_StagedSink]) -> None:
        """Store sealed logs whole, then drop their parts."""
        try:
            parts: list[str] = []
            for sink in sinks:
                with sink.lock:  # waits for a publish in flight; none starts after this
                    sink.done = True
                parts += _part_keys(sink, self.part_size)
            self.blobs.put_files({sink.key: sink.path for sink in sinks})  # consumes the files
            if parts:
                self.blobs.delete_many(parts)
        except BaseException as exc:  # noqa: BLE001 - raised by the next seal() or close()
            if self._error is None:
                self._error = exc
        finally:
            for sink in sinks:
                sink.fh.close()  # releases the staging lock: a failed upload's file can be swept
            self._sealing.release()


def _part_keys(sink: _StagedSink, part_size: int) -> list[str]:
    """The parts of ``sink`` that were published."""
    if sink.published < 0:
        return []
    started = sink.published > sink.part * part_size or (sink.part == 0 and sink.published == 0)
    count = sink.part + (1 if started else 0)
    return [f"{sink.key}.{n}" for n in range(count)]


def read_log(blobs: BlobStore, key: str) -> bytes:
    """A stored log: whole once its task is sealed, else the parts published so far (empty when
    there is nothing)."""
    from mfc.stores.blob import BlobNotFound

    for _ in range(3):
        try:
            return blobs.get_bytes(key)
        except BlobNotFound:
            pass
        directory, _, name = key.rpartition("/")
        numbers = sorted(int(n[len(name) + 1:]) for n in blobs.list(directory + "/")
                         if n.startswith(name + ".") and n[len(name) + 1:].isdigit())
        if not numbers:  # nothing yet, or sealed (and its parts gone) since the first read
            try:
                return blobs.get_bytes(key)
            except BlobNotFound:
                return b""
        keys = [f"{key}.{n}" for n in numbers]
        found = blobs.get_many(keys)
        if len(found) == len(keys) and numbers == list(range(len(numbers))):
            return b"".join(found[k] for k in keys)
        # a part went away between the listing and its read: the log was sealed meanwhile
    return b""


__all__ = ["LogSink", "LogWriter", "FileLogSink", "LocalLogWriter", "StagedLogWriter", "read_log",
           "INTERVAL", "PART_SIZE"]
