"""One way to apply settings: every option of ``mfc run``/``mfc resume`` is either a setting
(resolved by Config: flag > ``MFC_*`` > profile > default, shown by ``mfc config show``) or one of
the few per-invocation arguments; the typed settings objects are built from Config; no function
in the run path takes more than 8 parameters."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from support import describe, flow_path, mfc

from mfc.cli.run import resume, run
from mfc.config import RUN_ARGUMENTS, SETTINGS, Config, config_flags
from mfc.exceptions import MfcError
from mfc.runner.settings import BatchSettings, RunSettings

MFC_PACKAGE = Path(__file__).resolve().parent.parent / "mfc"
# Constructors outside the run path that still take more than 8 parameters (issue 9, Deliver 10):
# a new one anywhere fails the test below.
WIDE_SIGNATURES = {("builder/image.py", "build_flow_image"), ("builder/push.py", "push_flow_image"),
                   ("runner/orchestrator.py", "__init__"), ("stores/s3.py", "__init__"),
                   ("stores/s3_transfer.py", "__init__")}


def _options(command) -> set[str]:
    return {p.name for p in command.params if p.param_type_name == "option" and p.expose_value}


def _show(tmp_path: Path, *args: str, env: dict[str, str] | None = None, profile: str = "") -> dict[str, list[str]]:
    """``mfc config show ARGS`` as {setting: [value, source words...]}."""
    config = tmp_path / "config.toml"
    config.write_text(profile)
    proc = mfc(tmp_path / "ds", "config", "show", *args, env={"MFC_CONFIG": str(config), **(env or {})})
    assert proc.returncode == 0, describe(proc)
    return {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines()[1:] if line.strip()}


def test_every_run_option_is_a_setting_or_a_per_invocation_argument():
    settings = {s.option for s in SETTINGS.values() if s.flag} | {"datastore_root"}
    for command in (run, resume):
        options = _options(command) - {"origin_run_id"}  # resume's own: which run to resume
        assert options - settings - set(RUN_ARGUMENTS) == set(), command.name
        assert set(RUN_ARGUMENTS) <= options
        assert settings <= options  # every setting with a flag is an option of run and resume
    for setting in SETTINGS.values():
        if setting.flag:
            assert setting.flag in {o for p in run.params for o in p.opts}, setting.key


def test_config_show_lists_every_setting_of_mfc_run_with_its_source(tmp_path):
    rows = _show(tmp_path, "--max-workers", "3", "--queue", "q1", "--local-docker", "-q", "--gpu", "2")
    assert set(rows) == set(SETTINGS)
    assert rows["max_workers"] == ["3", "command", "line"]
    assert rows["batch_queue"] == ["q1", "command", "line"] and rows["batch_gpu_queue"] == ["q1", "command", "line"]
    assert rows["local_docker"] == ["*", "command", "line"]  # the flag alone: every step
    assert rows["quiet"] == ["True", "command", "line"] and rows["gpu"] == ["2", "command", "line"]
    assert rows["image"] == ["None", "default"] and rows["batch"] == ["None", "default"]
    assert rows["batch_runnable_timeout"] == ["600.0", "default"]


@pytest.mark.parametrize(("key", "flag", "values"), [
    ("max_workers", "--max-workers", ("7", "5", "3")),
    ("image", "--image", ("prof:1", "env:1", "flag:1")),
    ("memory", "--memory", ("1024", "2048", "4096")),
])
def test_flag_beats_env_beats_profile_beats_default(tmp_path, key, flag, values):
    profile_value, env_value, flag_value = values
    env_var = SETTINGS[key].env
    quoted = profile_value if SETTINGS[key].kind is int else f'"{profile_value}"'
    profile = f"[profiles.default]\n{key} = {quoted}\n"
    default = str(SETTINGS[key].default)
    assert _show(tmp_path)[key] == [default, "default"]
    assert _show(tmp_path, profile=profile)[key][:2] == [profile_value, "profile"]
    assert _show(tmp_path, env={env_var: env_value}, profile=profile)[key] == [env_value, "env", env_var]
    shown = _show(tmp_path, flag, flag_value, env={env_var: env_value}, profile=profile)
    assert shown[key] == [flag_value, "command", "line"]


def test_env_and_profile_values_are_checked_like_flags(tmp_path):
    """MFC_MAX_WORKERS=0 used to be taken (the flag refuses 0); now every source is checked."""
    for env, words in (({"MFC_MAX_WORKERS": "0"}, "max_workers from env MFC_MAX_WORKERS: expected a number of at least 1"),
                       ({"MFC_CPU": "0"}, "cpu from env MFC_CPU: expected a number above 0"),
                       ({"MFC_QUIET": "maybe"}, "quiet from env MFC_QUIET: expected true or false")):
        proc = mfc(tmp_path / "ds", "run", flow_path("linear"), env=env)
        assert proc.returncode != 0 and proc.stderr.startswith(f"error: {words}"), describe(proc)
        assert "Traceback" not in proc.stderr
    config = tmp_path / "config.toml"
    config.write_text("[profiles.default]\nmax_workers = true\n")
    proc = mfc(tmp_path / "ds", "config", "show", env={"MFC_CONFIG": str(config)})
    assert proc.returncode != 0 and "max_workers from profile default" in proc.stderr, describe(proc)


def test_quiet_from_the_environment_applies_to_a_run(root):
    proc = mfc(root, "run", flow_path("linear"), env={"MFC_QUIET": "1"})
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout.splitlines() == [proc.stdout.splitlines()[-1]] and "succeeded" in proc.stdout


def test_batch_and_docker_settings_from_a_profile_wait_for_such_a_step(root, tmp_path):
    """From the environment or a profile, Batch choices are preferences: a local run goes on;
    given on the command line without a Batch step they are a usage mistake (as before)."""
    ok = mfc(root, "run", flow_path("linear"), "-q", env={"MFC_CPU": "2", "MFC_BATCH_QUEUE": "q", "MFC_GPU": "1"})
    assert ok.returncode == 0, describe(ok)
    for flag in (("--cpu", "2"), ("--queue", "q"), ("--gpu", "1")):
        refused = mfc(root, "run", flow_path("linear"), "-q", *flag)
        assert refused.returncode != 0 and f"error: {flag[0]} needs" in refused.stderr, describe(refused)


def test_run_settings_and_batch_settings_come_from_config():
    config = Config(config_flags({"max_workers": 4, "queue": "cli-q", "gpu": 1, "image": "i:1", "quiet": None}),
                    env={"MFC_CONFIG": "/nonexistent/c.toml", "MFC_MAX_NUM_SPLITS": "7", "MFC_MEMORY": "2048",
                         "MFC_BATCH_RUNNABLE_TIMEOUT": "30", "MFC_AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    settings = RunSettings.from_config(config)
    assert (settings.max_workers, settings.max_num_splits, settings.quiet, settings.gpu) == (4, 7, False, 1)
    assert settings.given == {"max_workers", "gpu", "image", "batch_queue"}
    batch = BatchSettings.from_config(config, "i:1", "g:1")
    assert (batch.defaults.cpu_queue, batch.defaults.gpu_queue, batch.defaults.memory) == ("cli-q", "cli-q", 2048)
    assert (batch.defaults.image, batch.defaults.gpu_image, batch.defaults.gpu) == ("i:1", "g:1", 1)
    assert (batch.runnable_timeout, batch.sandbox, batch.poll_max) == (30.0, True, 1.0)
    aws = BatchSettings.from_config(Config(env={"MFC_CONFIG": "/nonexistent/c.toml"}))
    assert (aws.sandbox, aws.poll_max, aws.runnable_timeout) == (False, 8.0, 600.0)
    with pytest.raises(MfcError, match="batch_runnable_timeout from env MFC_BATCH_RUNNABLE_TIMEOUT: expected float"):
        Config(env={"MFC_CONFIG": "/nonexistent/c.toml", "MFC_BATCH_RUNNABLE_TIMEOUT": "soon"})


def test_boolean_settings_read_the_usual_words():
    env = {"MFC_CONFIG": "/nonexistent/c.toml"}
    for text, value in (("1", True), ("true", True), ("Yes", True), ("0", False), ("off", False)):
        assert Config(env={**env, "MFC_KEEP_CONTAINERS": text})["keep_containers"] is value


def test_no_function_takes_more_than_eight_parameters():
    wide = set()
    for path in MFC_PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
                if len([n for n in names if n not in ("self", "cls")]) > 8:
                    wide.add((path.relative_to(MFC_PACKAGE).as_posix(), node.name))
    assert wide <= WIDE_SIGNATURES, sorted(wide - WIDE_SIGNATURES)
