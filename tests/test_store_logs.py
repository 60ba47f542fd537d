"""Stored task logs on every backend (mfc.stores.logs): readable while the task runs, sealed
whole when it ends, uploaded off the orchestrator's scheduling thread."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest
from support import clean_env, mfc, mfc_executable, write_flow

from mfc.exceptions import MfcError
from mfc.stores.local import LocalBlobStore
from mfc.stores.logs import StagedLogWriter, read_log
from mfc.stores.records import TaskRecords
from mfc.stores.s3 import S3BlobStore

KEY = "F/1/start/1/0.stdout"


def wait_for(condition, timeout: float = 30.0, every: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(every)
    raise AssertionError("timed out waiting")


class SlowStore(LocalBlobStore):
    """A local store whose batch uploads take a while (as S3 far away), or fail."""

    def __init__(self, root: str, delay: float = 0.0, fail: bool = False) -> None:
        super().__init__(root)
        self.delay, self.fail = delay, fail
        self.batches: list[list[str]] = []

    def put_files(self, items: dict[str, str]) -> None:
        time.sleep(self.delay)
        if self.fail:
            raise MfcError("S3 kept failing for the upload")
        self.batches.append(sorted(items))
        super().put_files(items)


def names(blobs, key: str = KEY) -> list[str]:
    return sorted(blobs.list(key.rsplit("/", 1)[0] + "/"))


# -- the staged writer on its own -----------------------------------------------------------------

def test_a_staged_log_is_readable_in_parts_while_written_and_whole_once_sealed(tmp_path):
    blobs = LocalBlobStore(str(tmp_path / "ds"))
    writer = StagedLogWriter(blobs, interval=0.02, part_size=10)
    sink = writer.open(KEY)
    wait_for(lambda: "0.stdout.0" in names(blobs))  # visible (empty) from the start
    assert read_log(blobs, KEY) == b""
    sink.write(b"first line\n")  # 11 bytes: one full part and the start of the next
    wait_for(lambda: read_log(blobs, KEY) == b"first line\n")
    sink.write(b"second line\n" * 3)
    whole = b"first line\n" + b"second line\n" * 3
    wait_for(lambda: read_log(blobs, KEY) == whole)
    parts = [n for n in names(blobs) if n.startswith("0.stdout.")]
    assert len(parts) == -(-len(whole) // 10)  # parts are filled, not one per upload
    writer.seal([sink])
    writer.close()
    assert names(blobs) == ["0.stdout"]  # stored whole, its parts gone
    assert blobs.get_bytes(KEY) == whole == read_log(blobs, KEY)
    assert not [n for n in os.listdir(blobs.staging_dir()) if n.startswith(".tmp-log-")]


def test_sealing_does_not_wait_for_the_store_and_a_task_goes_as_one_batch(tmp_path):
    blobs = SlowStore(str(tmp_path / "ds"), delay=1.0)
    writer = StagedLogWriter(blobs, interval=0.02)
    sinks = [writer.open(KEY), writer.open(KEY.replace("stdout", "stderr"))]
    sinks[0].write(b"out\n")
    sinks[1].write(b"err\n")
    started = time.monotonic()
    writer.seal(sinks)
    assert time.monotonic() - started < 0.5  # the scheduling thread is not held by the upload
    writer.close()  # waits for it
    assert blobs.batches == [[KEY.replace("stdout", "stderr"), KEY]]
    assert blobs.get_bytes(KEY) == b"out\n"


def test_a_failed_upload_is_raised_by_close_and_its_staging_file_can_be_swept(tmp_path):
    from mfc.stores import staging

    blobs = SlowStore(str(tmp_path / "ds"), fail=True)
    writer = StagedLogWriter(blobs, interval=0.02)
    sink = writer.open(KEY)
    sink.write(b"kept in parts\n")
    wait_for(lambda: read_log(blobs, KEY) == b"kept in parts\n")
    writer.seal([sink])
    with pytest.raises(MfcError, match="kept failing"):
        writer.close()
    assert read_log(blobs, KEY) == b"kept in parts\n"  # what was published still reads
    assert staging.sweep(blobs.staging_dir(), min_age=0)  # its lock was released


def test_close_raises_a_failure_that_happened_before_it_sealed_the_rest(tmp_path):
    blobs = SlowStore(str(tmp_path / "ds"), fail=True)
    writer = StagedLogWriter(blobs, interval=0.02, max_sealing=1)
    first = writer.open(KEY)
    writer.open(KEY.replace("/1/0.", "/2/0."))  # still open when the run ends
    writer.seal([first])
    wait_for(lambda: writer._sealing.acquire(blocking=False))  # its upload has ended (failed)
    writer._sealing.release()
    with pytest.raises(MfcError, match="kept failing"):
        writer.close()


def test_a_reader_racing_the_seal_gets_the_whole_log(tmp_path):
    blobs = LocalBlobStore(str(tmp_path / "ds"))
    body = b"".join(b"line %d\n" % n for n in range(2000))
    for _ in range(20):
        writer = StagedLogWriter(blobs, interval=0.01, part_size=1000)
        sink = writer.open(KEY)
        sink.write(body)
        wait_for(lambda: read_log(blobs, KEY) == body)
        stop = threading.Event()
        seen: list[bytes] = []

        def read(stop: threading.Event = stop, seen: list[bytes] = seen) -> None:
            while not stop.is_set():
                seen.append(read_log(blobs, KEY))

        reader = threading.Thread(target=read)
        reader.start()
        writer.seal([sink])
        writer.close()
        stop.set()
        reader.join()
        assert set(seen) <= {body}
        blobs.delete(KEY)


# -- a flow on S3 ---------------------------------------------------------------------------------

LIVE_FLOW = '''
import os
import time
from mfc import FlowSpec, step

class LiveLogFlow(FlowSpec):
    @step
    def start(self):
        print("hello while running", flush=True)
        deadline = time.time() + 120
        while not os.path.exists(os.environ["LIVE_MARKER"]) and time.time() < deadline:
            time.sleep(0.05)
        print("done waiting")
        self.next(self.end)

    @step
    def end(self):
        pass
'''


def client_view(monkeypatch, moto, root: str, run_id: str) -> tuple[list[str], str]:
    """What the client API shows of a run: its steps, and the stdout of its start task."""
    import sys

    from mfc.client import Run, metadata

    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MFC_CONFIG", "/nonexistent/mfc-config.toml")
    monkeypatch.setattr(sys.modules["mfc.client.namespace"], "_current", None)  # every run
    metadata(root)
    try:
        run = Run(f"LiveLogFlow/{run_id}")
        return [step.id for step in run.steps()], next(iter(run["start"].tasks())).stdout
    finally:
        metadata(None)


def test_a_running_tasks_logs_read_through_mfc_logs_on_s3(moto, tmp_path, monkeypatch):
    root = f"s3://{moto.new_bucket()}/live"
    flow = write_flow(tmp_path, LIVE_FLOW)
    marker, id_file = tmp_path / "marker", tmp_path / "run-id"
    env = clean_env(None, {**moto.env(), "MFC_DATASTORE_ROOT": root, "LIVE_MARKER": str(marker)})
    run = subprocess.Popen([mfc_executable(), "run", flow, "--run-id-file", str(id_file)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        run_id = wait_for(lambda: id_file.exists() and id_file.read_text().strip(), timeout=60)
        logs_env = {**moto.env(), "MFC_DATASTORE_ROOT": root}

        def shown() -> str:
            proc = mfc(None, "logs", f"LiveLogFlow/{run_id}/start", env=logs_env)
            return proc.stdout if proc.returncode == 0 else ""

        text = wait_for(lambda: "hello while running" in shown() and shown(), timeout=60, every=0.5)
        assert "done waiting" not in text and run.poll() is None  # read while the task runs
        records = TaskRecords(S3BlobStore(root, client=moto.client()), "LiveLogFlow")
        assert records.steps(run_id) == ["start"]  # the running step is listed
        assert client_view(monkeypatch, moto, root, run_id) == (["start"], "hello while running\n")
        marker.touch()
        out, _ = run.communicate(timeout=120)
    finally:
        marker.touch()
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, out
    blobs = records.blobs
    task = records.tasks(run_id, "start")[0]
    final = mfc(None, "logs", f"LiveLogFlow/{run_id}/start/{task}", "--stdout", env=logs_env)
    assert final.stdout == "hello while running\ndone waiting\n"
    stored = sorted(blobs.list(f"LiveLogFlow/{run_id}/start/{task}/"))
    assert [n for n in stored if n.count(".") > 1] == []  # sealed whole, parts removed
    assert "0.stdout" in stored and "0.stderr" in stored


PRINT_FLOW = '''
from mfc import FlowSpec, step

class PartsFlow(FlowSpec):
    @step
    def start(self):
        print("from start")
        self.next(self.end)

    @step
    def end(self):
        pass
'''


def test_logs_left_in_parts_by_a_killed_orchestrator_read_and_verify(tmp_path):
    """An orchestrator killed before it sealed a log leaves only its parts: they are the log."""
    from support import run_flow

    root = tmp_path / "ds"
    flow = write_flow(tmp_path, PRINT_FLOW)
    _, run_id = run_flow(root, flow)
    [task_dir] = (root / "PartsFlow" / run_id / "start").iterdir()
    log = task_dir / "0.stdout"
    body = log.read_bytes()
    assert body == b"from start\n"
    (task_dir / "0.stdout.0").write_bytes(body[:5])
    (task_dir / "0.stdout.1").write_bytes(body[5:])
    log.unlink()
    shown = mfc(root, "logs", f"PartsFlow/{run_id}/start/{task_dir.name}", "--stdout")
    assert shown.returncode == 0 and shown.stdout == "from start\n", shown.stderr
    verified = mfc(root, "verify", f"PartsFlow/{run_id}")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    for part in task_dir.glob("0.stdout.*"):
        part.unlink()
    missing = mfc(root, "verify", f"PartsFlow/{run_id}")
    assert missing.returncode == 1 and "the stdout log of attempt 0 is missing" in missing.stderr + missing.stdout
