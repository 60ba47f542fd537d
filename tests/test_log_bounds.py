"""Task logs are followed in bounded memory, very long lines are split (and say so), and a
finished task's stored log is sealed against processes it left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from mfc.runner.logtail import MAX_LINE, SPLIT_MARK, LineSplitter, LogTailer
from mfc.stores.logs import FileLogSink
from tests.support import clean_env, flow_path, mfc, mfc_executable, only, process_alive, run_flow, write_flow

PEAK_LIMIT_KB = 100 * 1024

# The last step reads the orchestrator's peak RSS: its parent is the fork server, whose parent
# is the `mfc run` process.
BIG_OUTPUT = '''
import os, sys
from mfc import FlowSpec, Parameter, step

def parent_of(pid):
    with open("/proc/%d/stat" % pid) as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])

class BigOutputFlow(FlowSpec):
    mode = Parameter("mode", default="lines")

    @step
    def start(self):
        block = (b"x" * 1023 + b"\\n") * 1024 if self.mode == "lines" else b"y" * (1024 * 1024)
        for _ in range(200):
            sys.stdout.buffer.write(block)
        sys.stdout.buffer.flush()
        self.next(self.end)

    @step
    def end(self):
        with open("/proc/%d/status" % parent_of(os.getppid())) as fh:
            self.peak_kb = int([l for l in fh if l.startswith("VmHWM")][0].split()[1])
'''


def _big_run(root, tmp_path, mode):
    flow = write_flow(tmp_path, BIG_OUTPUT)
    proc = subprocess.run([mfc_executable(), "run", flow, "--mode", mode, "--run-id-file", str(tmp_path / "id")],
                          env=clean_env(root), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
    assert proc.returncode == 0, proc.stderr
    run_id = (tmp_path / "id").read_text()
    peak = only(root, "BigOutputFlow", run_id, "end")["peak_kb"]
    log = root / "BigOutputFlow" / run_id / "start" / "start" / "0.stdout"
    return peak, log


@pytest.fixture
def big_log():
    """Removes the 200 MB stored log after the test (pytest keeps recent temporary dirs)."""
    made = []
    yield made.append
    for path in made:
        path.unlink(missing_ok=True)


def test_200_mb_of_output_keeps_the_orchestrator_under_100_mb(root, tmp_path, big_log):
    peak, log = _big_run(root, tmp_path, "lines")
    big_log(log)
    assert peak <= PEAK_LIMIT_KB, f"orchestrator peak RSS {peak} kB"
    assert log.stat().st_size == 200 * 1024 * 1024  # short lines are stored as they were written
    with open(log, "rb") as fh:
        assert fh.read(2048) == (b"x" * 1023 + b"\n") * 2


def test_one_200_mb_line_is_split_and_keeps_the_orchestrator_under_100_mb(root, tmp_path, big_log):
    peak, log = _big_run(root, tmp_path, "one")
    big_log(log)
    assert peak <= PEAK_LIMIT_KB, f"orchestrator peak RSS {peak} kB"
    pieces = 200 * 1024 * 1024 // MAX_LINE
    assert log.stat().st_size == 200 * 1024 * 1024 + (pieces - 1) * (len(SPLIT_MARK) + 1)
    with open(log, "rb") as fh:
        first = fh.readline()
    assert first == b"y" * MAX_LINE + SPLIT_MARK + b"\n"
    assert b"[line split: longer than 64 KiB]" in SPLIT_MARK


DAEMON = '''
import os, subprocess, sys, time
from mfc import FlowSpec, step

class DaemonFlow(FlowSpec):
    @step
    def start(self):
        daemon = subprocess.Popen(
            [sys.executable, "-c",
             "import time\\nfor i in range(400):\\n    print('daemon', i, flush=True)\\n    time.sleep(0.01)"],
            start_new_session=True)
        with open({pidfile!r}, "w") as fh:
            fh.write(str(daemon.pid))
        while True:  # until the daemon has written into the task's log at least once
            if os.path.exists({marker!r}):
                break
            time.sleep(0.01)
        print("step done", flush=True)
        self.next(self.end)

    @step
    def end(self):
        pass
'''


@pytest.mark.parametrize("executor", ["fork", "spawn"])
def test_a_setsid_daemon_cannot_change_a_finished_tasks_stored_log(root, tmp_path, executor):
    pidfile, marker = tmp_path / "daemon.pid", tmp_path / "go"
    flow = write_flow(tmp_path, DAEMON.format(pidfile=str(pidfile), marker=str(marker)))
    env = clean_env(root, {"MFC_LOCAL_EXECUTOR": executor})
    proc = subprocess.Popen([mfc_executable(), "run", flow, "--run-id-file", str(tmp_path / "id")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not pidfile.exists():
            assert proc.poll() is None
            time.sleep(0.01)
        time.sleep(0.2)
        marker.write_text("")
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        run_id = (tmp_path / "id").read_text()
        log = root / "DaemonFlow" / run_id / "start" / "start" / "0.stdout"
        sealed = log.read_bytes()
        assert b"step done" in sealed and b"daemon 0" in sealed
        daemon = int(pidfile.read_text())
        assert process_alive(daemon)  # still writing to the stdout it inherited
        time.sleep(1.0)
        assert log.read_bytes() == sealed
        shown = mfc(root, "logs", f"DaemonFlow/{run_id}/start/start")
        # the seal may cut the daemon's last line short; `mfc logs` ends that line for the terminal
        assert shown.stdout.encode() == (sealed if sealed.endswith(b"\n") else sealed + b"\n")
    finally:
        proc.kill()
        if pidfile.exists() and process_alive(int(pidfile.read_text())):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
    assert not list((root / ".staging").iterdir())  # the raw files went with their tasks


def test_logs_of_a_running_task_are_visible(root, tmp_path):
    pidfile = tmp_path / "pid"
    proc = subprocess.Popen([mfc_executable(), "run", flow_path("sleeper"), "--pidfile", str(pidfile),
                             "--run-id-file", str(tmp_path / "id")], env=clean_env(root),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        shown = ""
        while time.monotonic() < deadline and "napping" not in shown:
            time.sleep(0.1)
            if (tmp_path / "id").exists() and pidfile.exists():
                run_id = (tmp_path / "id").read_text()
                shown = mfc(root, "logs", f"SleeperFlow/{run_id}/nap/nap").stdout
        assert "napping" in shown
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


# -- the splitter and tailer on their own ----------------------------------------------------------
def test_splitter_keeps_short_lines_and_splits_long_ones_across_chunks():
    splitter = LineSplitter(max_line=4)
    assert splitter.feed(b"ab\ncd") == [(b"ab", False)]
    assert splitter.feed(b"efgh") == [(b"cdef", True)]
    assert splitter.feed(b"\n") == [(b"gh", False)]
    assert splitter.feed(b"1234\n") == [(b"1234", False)]  # exactly the limit: not split
    assert splitter.feed(b"123456789") == [(b"1234", True), (b"5678", True)]
    assert splitter.flush() == b"9" and splitter.flush() == b""


def test_splitter_never_cuts_a_utf8_character():
    splitter = LineSplitter(max_line=4)
    pieces = splitter.feed("abcé".encode() + b"\n")  # "é" is 2 bytes, the 4th and 5th
    assert pieces == [(b"abc", True), ("é".encode(), False)]
    assert all(p.decode() for p, _ in pieces)


def test_tailer_reads_in_bounded_chunks_and_seals_at_finish(tmp_path):
    shown = []
    tailer = LogTailer(lambda prefix, stream, line: shown.append(line), chunk=8, budget=16)
    raw = tailer.open(str(tmp_path), "log-")
    stored = tmp_path / "stored"
    stored.touch()
    tailer.add("r/s/1", "stdout", raw, FileLogSink(str(stored)))
    with open(raw, "ab") as fh:
        fh.write(b"0123456789\n" * 4)
    tailer.poll()
    assert stored.read_bytes() == b"0123456789\n"  # 16 bytes a poll: one line and a part
    with open(raw, "ab") as fh:
        fh.write(b"tail")
    tailer.finish(raw)
    assert stored.read_bytes() == b"0123456789\n" * 4 + b"tail"
    assert shown == ["0123456789"] * 4 + ["tail"]
    assert not os.path.exists(raw)


@pytest.mark.parametrize("executor", ["fork", "spawn"])
def test_output_without_a_trailing_newline_is_kept(root, tmp_path, executor):
    flow = write_flow(tmp_path, '''
import sys
from mfc import FlowSpec, step

class NoNewlineFlow(FlowSpec):
    @step
    def start(self):
        sys.stdout.write("first\\nno newline")
        self.next(self.end)

    @step
    def end(self):
        pass
''')
    proc, run_id = run_flow(root, flow, env={"MFC_LOCAL_EXECUTOR": executor})
    assert f"[{run_id}/start/start] no newline" in proc.stdout
    assert (root / "NoNewlineFlow" / run_id / "start" / "start" / "0.stdout").read_bytes() == b"first\nno newline"


def test_tailer_stores_split_lines_with_their_mark_and_other_lines_as_written(tmp_path):
    shown = []
    tailer = LogTailer(lambda prefix, stream, line: shown.append(line))
    raw = tailer.open(str(tmp_path), "log-")
    stored = tmp_path / "stored"
    tailer.add("r/s/1", "stdout", raw, FileLogSink(str(stored)))
    long = b"y" * (MAX_LINE + 10)
    with open(raw, "ab") as fh:
        fh.write(b"short\n" + long + b"\nafter\n")
    tailer.poll()
    expected = b"short\n" + long[:MAX_LINE] + SPLIT_MARK + b"\n" + long[MAX_LINE:] + b"\nafter\n"
    assert stored.read_bytes() == expected
    assert shown == ["short", (long[:MAX_LINE] + SPLIT_MARK).decode(), "y" * 10, "after"]
    tailer.finish(raw)
    assert stored.read_bytes() == expected


def test_copied_raw_output_gives_its_disk_space_back(tmp_path):
    """A chatty task's output does not take its size in disk twice while it runs."""
    from mfc.stores import staging

    probe, probe_path = staging.create(str(tmp_path), "probe-")
    with probe:
        probe.write(b"p" * 8192)
        probe.flush()
        if not staging.free_prefix(probe.fileno(), 4096):
            pytest.skip("this filesystem cannot punch holes")
    tailer = LogTailer(lambda prefix, stream, line: None, budget=64 * 1024 * 1024)
    raw = tailer.open(str(tmp_path), "log-")
    stored = tmp_path / "stored"
    tailer.add("r/s/1", "stdout", raw, FileLogSink(str(stored)))
    with open(raw, "ab") as fh:
        fh.write((b"z" * 1023 + b"\n") * 40 * 1024)
    tailer.poll()
    assert stored.stat().st_size == 40 * 1024 * 1024
    assert os.stat(raw).st_size == 40 * 1024 * 1024  # offsets unchanged for the writer
    assert os.stat(raw).st_blocks * 512 <= 20 * 1024 * 1024
    with open(raw, "ab") as fh:
        fh.write(b"more\n")
    tailer.finish(raw)
    assert stored.read_bytes().endswith(b"z\nmore\n")
