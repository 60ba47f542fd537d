"""Tests of the benchmark suite itself: ``.venv/bin/pytest benchmarks/``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from figures import Figure  # noqa: E402
from flows import FRAMEWORKS, flow_source, write_flow  # noqa: E402
from procs import MB, BenchError, bench_env, run_measured  # noqa: E402

KINDS = ("linear", "foreach", "artifact", "hold")
MFC = str(Path(sys.executable).parent / "mfc")


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("kind", KINDS)
def test_flow_sources_differ_only_in_the_import(kind: str, framework: str) -> None:
    source = flow_source(kind, framework)
    compile(source, f"{kind}.py", "exec")
    other = flow_source(kind, "mfc" if framework == "metaflow" else "metaflow")
    differing = [a for a, b in zip(source.splitlines(), other.splitlines(), strict=True) if a != b]
    assert differing == [f"from {framework} import FlowSpec, Parameter, step"]


@pytest.mark.parametrize("kind", KINDS)
def test_mfc_accepts_the_generated_flows(kind: str, tmp_path: Path) -> None:
    path = write_flow(tmp_path, kind, "mfc")
    done = subprocess.run([MFC, "check", str(path)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    if kind == "linear":
        assert "10 steps" in done.stdout


def test_linear_flow_has_the_requested_steps() -> None:
    assert flow_source("linear", "mfc", steps=4).count("@step") == 4
    with pytest.raises(ValueError):
        flow_source("linear", "mfc", steps=1)


def test_figure_verdicts_and_ratios() -> None:
    fast = Figure("t", 0.5, "s", goal=0.6, metaflow=2.0)
    assert fast.passed is True and fast.ratio == pytest.approx(4.0)
    assert "PASS" in fast.line(True) and "metaflow/mfc 4.0x (time)" in fast.line(True)
    slow = Figure("rate", 400, "MB/s", goal=500, higher_is_better=True, metaflow=100)
    assert slow.passed is False and slow.ratio == pytest.approx(4.0)
    assert "MISS" in slow.line(False) and "metaflow" not in slow.line(False)
    assert "no verdict" in slow.line(False, verdict=False)
    assert Figure("x", 1, "MB", metaflow_note="skipped").line(True).endswith("| metaflow: skipped")


def test_tree_peak_covers_grandchildren(tmp_path: Path) -> None:
    # The child forks a grandchild that touches 150 MB and exits; the child itself stays small.
    script = (
        "import os\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    data = bytearray(150 * 1000 * 1000)\n"
        "    data[::4096] = b'x' * len(data[::4096])\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
    )
    measured = run_measured([sys.executable, "-c", script], tmp_path, bench_env(), sample_every=0.01)
    assert measured.tree_maxrss >= 150 * MB
    assert 0 < measured.own_peak < 100 * MB


def test_failed_command_raises(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="exited 3"):
        run_measured([sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"],
                     tmp_path, bench_env())


def test_quick_run_of_some_benchmarks() -> None:
    done = subprocess.run([sys.executable, str(HERE / "run.py"), "--quick", "--no-metaflow", "--only", "linear,show"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "linear 10 steps: " in done.stdout and "show 10 steps: " in done.stdout
    assert "foreach" not in done.stdout


def test_unknown_benchmark_is_refused() -> None:
    done = subprocess.run([sys.executable, str(HERE / "run.py"), "--only", "nope"], capture_output=True, text=True)
    assert done.returncode != 0 and "no such benchmark" in done.stderr


def test_metaflow_not_importable_is_a_note(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import run

    monkeypatch.setattr(run, "_metaflow_version", lambda: None)
    assert run.main(["--quick", "--only", "show"]) == 0
    out = capsys.readouterr().out
    assert "metaflow: skipped, not importable" in out
    assert "| metaflow: skipped (not importable)" in out


def test_mfc_command_without_console_script(tmp_path: Path) -> None:
    from suite import Context

    ctx = Context(tmp_path, metaflow=False, python=sys.executable)
    ctx.python = str(tmp_path / "bin" / "python")  # no mfc script next to it
    cmd = ctx.mfc_cmd("check", str(write_flow(tmp_path / "f", "linear", "mfc")))
    cmd[0] = sys.executable
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0 and "graph is valid" in done.stdout, done.stderr


def _quick_run(name: str) -> subprocess.CompletedProcess:
    """``run.py --quick --only NAME`` to completion, which must succeed."""
    done = subprocess.run([sys.executable, str(HERE / "run.py"), "--quick", "--no-metaflow", "--only", name],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_quick_run_of_the_s3_benchmark() -> None:
    done = _quick_run("s3")
    assert "S3 200 x 10 KB put+get vs boto3, moto on localhost: " in done.stdout
    assert "S3 100 x 10 KB put+get vs boto3, 10 ms one-way latency: " in done.stdout
    assert "S3 one 20 MB artifact put+get vs boto3: " in done.stdout


def test_quick_run_of_the_runs_listing_benchmark() -> None:
    done = _quick_run("runs-s3")
    assert "Flow.runs() over 50 runs on moto S3: " in done.stdout
    assert "Flow.runs() over 20 runs, S3 10 ms away: " in done.stdout
    assert "one GET at a time as before" in done.stdout


def test_quick_run_of_the_join_benchmark() -> None:
    done = _quick_run("join-s3")
    assert "join of 40 inputs, input reading on moto S3: " in done.stdout
    assert "join of 20 inputs, S3 10 ms away: " in done.stdout
    assert "one GET at a time as before" in done.stdout


def test_quick_run_of_the_image_benchmark_or_its_reason_to_skip() -> None:
    import os

    done = subprocess.run([sys.executable, str(HERE / "run.py"), "--quick", "--no-metaflow", "--only", "image"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    if "image: skipped, " in done.stdout:
        assert os.environ.get("CI") != "true" and os.environ.get("MFC_REQUIRE_DOCKER") != "1", done.stdout
        assert "make docker-up" in done.stdout or "make image" in done.stdout
    else:
        assert "image build, nothing changed: " in done.stdout and "the image is reused" in done.stdout


def test_quick_run_of_the_sfn_compile_benchmark() -> None:
    done = _quick_run("sfn-compile")
    assert "sfn compile 20-step linear flow: " in done.stdout and "sfn compile 100-way foreach flow: " in done.stdout
    assert "21 states" in done.stdout and "(start: inline)" in done.stdout
