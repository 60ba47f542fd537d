"""Metaflow's step decorators, ``current`` and parameters on mfc: @environment, @resources, @batch,
@retry with ``current.retry_count``, @timeout, @catch; Parameter types, JSONType, IncludeFile and
read-only parameters."""

from __future__ import annotations

import time

import pytest
from compat_support import flow_file, mfc_cli, mfc_run

from mfc import Run, default_namespace, metadata, namespace


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("compat-deco")
    root = base / "ds"
    (base / "notes.txt").write_text("line one\nline two\n")
    (base / "other.txt").write_text("other file\n")
    found: dict = {"root": str(root), "base": base}
    began = time.monotonic()
    _, found["decorated"] = mfc_run(root, flow_file("decorated"), "-q", "--tag", "compat-tag", COMPAT_MARKER="here")
    found["decorated_seconds"] = time.monotonic() - began
    # python flow.py run ..., IncludeFile given explicitly, JSON on the command line
    _, found["params"] = mfc_run(
        root, flow_file("params"), "-q", "--text", "hey", "--count", "5", "--ratio=0.25", "--verbose",
        "--config", '{"lr": 0.5, "layers": [2, 3]}', "--doc", "other.txt", cwd=base, script=True)
    _, found["defaults"] = mfc_run(root, flow_file("params"), "-q", cwd=base)
    proc, found["assigned"] = mfc_run(root, flow_file("params"), "-q", "--assign", "yes", cwd=base, expect=1)
    found["assigned_stderr"] = proc.stderr
    _, found["project"] = mfc_run(root, flow_file("project_flow"), "-q", MFC_USER="compat-user")
    return found


@pytest.fixture(autouse=True)
def notebook(runs: dict):
    metadata(runs["root"])
    namespace(None)
    yield
    metadata(None)
    default_namespace()


def _run(runs: dict, flow: str, key: str) -> Run:
    return Run(f"{flow}/{runs[key]}")


# -- step decorators ----------------------------------------------------------------------------------

def test_environment_vars_visible_in_their_step_only(runs):
    run = _run(runs, "DecoratedFlow", "decorated")
    assert run["env_step"].task.data.greeting == "hello from @environment"
    assert run["env_step"].task.data.number == "7"
    assert run["sized"].task.data.greeting_elsewhere is None
    assert run.data.greeting == "hello from @environment"


def test_resources_and_batch_are_accepted_and_run_locally(runs):
    run = _run(runs, "DecoratedFlow", "decorated")
    assert run.successful
    assert run["on_batch"].task.data.batch_ran_here == "here"  # the local run's environment
    shown = mfc_cli(runs["root"], "show", flow_file("decorated"))
    assert shown.returncode == 0, shown.stderr
    assert "@resources(cpu=2, memory=1024, gpu=0)" in shown.stdout
    assert "@batch(" in shown.stdout and "queue='compat-queue'" in shown.stdout


def test_retry_and_retry_count(runs):
    run = _run(runs, "DecoratedFlow", "decorated")
    task = run["flaky"].task
    assert task.current_attempt == 2
    assert task.data.succeeded_on_attempt == 2
    assert task.data.flaky_current["retry_count"] == 2
    assert "attempt 2" in task.stdout
    assert run.data.attempt == 2


def test_timeout_stops_the_step_and_catch_stores_it(runs):
    run = _run(runs, "DecoratedFlow", "decorated")
    error = run["slow"].task.data.timeout_error
    assert error is not None and "timed out" in error.exception
    assert run.data.timed_out is True
    assert runs["decorated_seconds"] < 30  # the 60 s sleep was cut short


def test_catch_stores_exception_type_message_and_stacktrace(runs):
    run = _run(runs, "DecoratedFlow", "decorated")
    task = run["fails"].task
    assert task.successful
    failure = task.data.compute_failed
    assert failure.type.split(".")[-1] == "ValueError"
    assert failure.exception == "bad input 42"
    assert "bad input 42" in failure.stacktrace and "Traceback" in failure.stacktrace
    assert run.data.caught == {"type": failure.type, "exception": "bad input 42", "stack_mentions_error": True}


def test_catch_var_is_none_when_the_step_succeeds(runs):
    task = _run(runs, "DecoratedFlow", "decorated")["fine"].task
    assert task.data.fine_value == 1
    assert "compute_failed" in task
    assert task.data.compute_failed is None


def test_catch_keeps_artifacts_set_before_the_failure(runs):
    task = _run(runs, "DecoratedFlow", "decorated")["fails"].task
    assert task.data.partial == "set before the failure"


def test_caught_type_is_module_qualified_like_metaflow(runs):
    failure = _run(runs, "DecoratedFlow", "decorated")["fails"].task.data.compute_failed
    assert failure.type == "builtins.ValueError"


def test_flow_decorators_and_pypi_are_accepted_locally(runs):
    """@project, @schedule, @pypi_base and @pypi are recorded; a local run ignores them (Metaflow
    refuses @pypi without --environment=pypi)."""
    assert _run(runs, "ProjectCompatFlow", "project").successful


def test_project_tags_and_current(runs):
    run = _run(runs, "ProjectCompatFlow", "project")
    assert {"project:compat", "project_branch:user.compat-user"} <= run.tags
    assert run["start"].task.data.project_name == "compat"
    assert run["start"].task.data.branch_name == "user.compat-user"


# -- current ------------------------------------------------------------------------------------------

def test_current_inside_tasks(runs):
    run = _run(runs, "DecoratedFlow", "decorated")
    start = run["start"].task
    seen = start.data.start_current
    assert seen["flow_name"] == "DecoratedFlow" and seen["run_id"] == run.id
    assert seen["step_name"] == "start" and seen["task_id"] == start.id
    assert seen["pathspec"] == start.pathspec
    assert seen["retry_count"] == 0 and seen["is_running_flow"] is True
    assert seen["username"] == run.user and seen["namespace"] == f"user:{run.user}"
    assert seen["origin_run_id"] is None
    end = run.data.end_current
    assert end["step_name"] == "end" and end["task_id"] == run["end"].task.id
    from mfc import current

    assert current.is_running_flow is False and current.step_name is None  # outside a task


def test_current_tags_are_the_user_tags(runs):
    run = _run(runs, "DecoratedFlow", "decorated")
    assert run.data.end_current["tags"] == ["compat-tag"]


# -- parameters ---------------------------------------------------------------------------------------

def test_parameter_types_json_and_include_file(runs):
    data = _run(runs, "ParamsCompatFlow", "params")["start"].task.data
    assert data.seen == {"text": "hey", "count": 5, "ratio": 0.25, "verbose": True,
                         "config": {"lr": 0.5, "layers": [2, 3]}, "doc": "other file\n", "raw": b"line one\nline two\n"}
    assert data.types == {"text": "str", "count": "int", "ratio": "float", "verbose": "bool", "config": "dict",
                          "doc": "str", "raw": "bytes"}


def test_parameter_defaults_and_default_include_file(runs):
    run = _run(runs, "ParamsCompatFlow", "defaults")
    assert run["start"].task.data.seen == {"text": "hi", "count": 3, "ratio": 0.5, "verbose": False,
                                           "config": {"lr": 0.1}, "doc": "line one\nline two\n",
                                           "raw": b"line one\nline two\n"}
    assert run.data.doc_lines == ["line one", "line two"]
    assert run.data.count == 3 and run.data.config == {"lr": 0.1}  # parameters reach the end step


def test_parameters_are_read_only(runs):
    run = _run(runs, "ParamsCompatFlow", "params")
    data = run["start"].task.data
    assert data.assignment_error and "count" in data.assignment_error
    assert data.count_after_assignment == 5
    assert run.data.count_in_end == 5


def test_assigning_a_parameter_fails_the_task(runs):
    run = _run(runs, "ParamsCompatFlow", "assigned")
    assert not run.successful
    task = run["start"].task
    assert not task.successful
    assert "text" in task.exception.message and "read-only" in task.exception.message
    assert "end" not in run
    assert "read-only" in runs["assigned_stderr"]


def test_assigning_a_parameter_raises_attribute_error(runs):
    assert _run(runs, "ParamsCompatFlow", "params")["start"].task.data.is_attribute_error is True


def test_bool_parameter_with_a_separate_value(runs, tmp_path):
    proc, run_id = mfc_run(runs["root"], flow_file("params"), "-q", "--verbose", "True", cwd=runs["base"])
    assert Run(f"ParamsCompatFlow/{run_id}")["start"].task.data.seen["verbose"] is True


def test_bool_parameter_forms_shared_with_metaflow(runs):
    """``--name=True`` / ``--name=False`` work on both Metaflow and mfc."""
    _, run_id = mfc_run(runs["root"], flow_file("params"), "-q", "--verbose=True", cwd=runs["base"])
    assert Run(f"ParamsCompatFlow/{run_id}")["start"].task.data.seen["verbose"] is True
