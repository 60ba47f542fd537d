"""``mfc dump`` and ``mfc tag`` over runs made by the real ``mfc run``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from flows_client.helpers import flow_env, run_flow

import mfc.cli
from mfc.cli.client import dump, tag


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("cli_client") / "ds"
    return {
        "root": str(root),
        "ok": run_flow(root, "client_flow.py", "--tag", "orig"),
        "other": run_flow(root, "client_flow.py", env=flow_env(root, MFC_USER="someone-else")),
        "failed": run_flow(root, "failing_flow.py", expect_rc=1),
    }


@pytest.fixture(autouse=True)
def datastore_env(runs: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MFC_DATASTORE_ROOT", runs["root"])
    monkeypatch.delenv("MFC_PROFILE", raising=False)


def mfc_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the ``mfc`` command line in-process; (exit code, stdout, stderr)."""
    for command in (dump, tag):
        if command.name not in mfc.cli.cli.commands:  # until mfc.cli registers them itself
            mfc.cli.cli.add_command(command)
    capsys.readouterr()
    try:
        mfc.cli.main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(root: str) -> dict[str, tuple[int, int]]:
    found = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".staging"]
        for name in files:
            path = os.path.join(folder, name)
            stat = os.stat(path)
            found[os.path.relpath(path, root)] = (stat.st_size, stat.st_mtime_ns)
    return found


def test_dump_task_shows_small_values_and_placeholders(runs: dict[str, str], capsys) -> None:
    code, out, err = mfc_cli(capsys, "dump", f"ClientFlow/{runs['ok']}/start/start")
    assert code == 0, err
    lines = out.splitlines()
    assert "items = ['item0', 'item1', 'item2']" in lines
    assert "markup = '<b>bold</b> & \"quoted\"'" in lines
    assert "big = <bytes, 200.0 KB>" in lines
    assert any(line.startswith("long_text = <str, ") and line.endswith(" KB>") for line in lines)
    assert "greeting = 'hello'" in lines and "count = 3" in lines
    assert not any(line.startswith("==") for line in lines)


def test_dump_step_and_run_print_every_task_with_headers(runs: dict[str, str], capsys) -> None:
    code, out, _ = mfc_cli(capsys, "dump", f"ClientFlow/{runs['ok']}/fan")
    headers = [line for line in out.splitlines() if line.startswith("== ")]
    assert len(headers) == 3 and all(f"ClientFlow/{runs['ok']}/fan/" in h for h in headers)
    for i in range(3):
        assert f"  item = 'item{i}'" in out and f"  shout = 'ITEM{i}'" in out
    code, out, _ = mfc_cli(capsys, "dump", f"ClientFlow/{runs['ok']}", "--artifact", "message")
    assert code == 0
    headers = [line.split("/")[2] for line in out.splitlines() if line.startswith("== ")]
    assert headers[0] == "start" and headers[-1] == "end" and headers.count("fan") == 3
    assert "  message = 'hello: ITEM0, ITEM1, ITEM2'" in out
    assert out.count(" = ") == 1  # only the end task has that artifact


def test_dump_one_artifact_prints_the_whole_value(runs: dict[str, str], capsys) -> None:
    code, out, _ = mfc_cli(capsys, "dump", f"ClientFlow/{runs['ok']}/start/start", "--artifact", "long_text")
    assert code == 0 and out == repr("y" * 5000) + "\n"


def test_dump_json(runs: dict[str, str], capsys) -> None:
    code, out, _ = mfc_cli(capsys, "dump", f"ClientFlow/{runs['ok']}/start/start", "--json")
    assert code == 0
    (task,) = json.loads(out)
    assert task["pathspec"] == f"ClientFlow/{runs['ok']}/start/start" and task["status"] == "ok"
    artifacts = task["artifacts"]
    assert artifacts["items"]["value"] == ["item0", "item1", "item2"] and artifacts["items"]["type"] == "list"
    assert "value" not in artifacts["big"] and artifacts["big"]["repr"] == "<bytes, 200.0 KB>"
    assert artifacts["big"]["size"] > 200 * 1024 and artifacts["big"]["sha"].startswith("b3-") and len(artifacts["big"]["sha"]) == 67
    code, out, _ = mfc_cli(capsys, "dump", f"ClientFlow/{runs['ok']}/fan", "--json", "--artifact", "item")
    assert sorted(t["artifacts"]["item"]["value"] for t in json.loads(out)) == ["item0", "item1", "item2"]


def test_dump_failed_task_and_other_users_run(runs: dict[str, str], capsys) -> None:
    code, out, _ = mfc_cli(capsys, "dump", f"FailingFlow/{runs['failed']}")
    assert code == 0
    assert "  before = 41" in out
    assert "  (failed: ValueError: cannot use 41 (failing_flow.py:17))" in out
    code, out, _ = mfc_cli(capsys, "dump", f"ClientFlow/{runs['other']}/end", "--artifact", "message")
    assert code == 0 and out == "'hello: ITEM0, ITEM1, ITEM2'\n"


def test_dump_errors_are_one_line_and_change_nothing(runs: dict[str, str], capsys) -> None:
    root = runs["root"]
    before = snapshot(root)
    cases = {
        ("dump", "ClientFlow/123"): f"error: no run ClientFlow/123 in {root}\n",
        ("dump", f"ClientFlow/{runs['ok']}/end/99999"): None,
        ("dump", f"ClientFlow/{runs['ok']}/nostep"): None,
        ("dump", "ClientFlow"): None,
        ("dump", f"ClientFlow/{runs['ok']}/end", "--artifact", "nope"): None,
        ("dump", f"ClientFlow/{runs['ok']}", "--artifact", "nope"): None,
    }
    for args, expected in cases.items():
        code, out, err = mfc_cli(capsys, *args)
        assert code == 2 and out == "", (args, out, err)
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, (args, err)
        if expected:
            assert err == expected
    _, _, err = mfc_cli(capsys, "dump", f"ClientFlow/{runs['ok']}/end", "--artifact", "nope")
    assert "has no artifact 'nope' (artifacts: " in err and "message" in err
    _, _, err = mfc_cli(capsys, "dump", f"ClientFlow/{runs['ok']}", "--artifact", "nope")
    assert "no task of" in err and "'nope'" in err
    assert snapshot(root) == before


def test_dump_datastore_root_flag(runs: dict[str, str], capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MFC_DATASTORE_ROOT", str(tmp_path / "empty"))
    code, _, err = mfc_cli(capsys, "dump", f"ClientFlow/{runs['ok']}/end")
    assert code == 2 and "no flow 'ClientFlow'" in err
    code, out, _ = mfc_cli(capsys, "dump", f"ClientFlow/{runs['ok']}/end", "--datastore-root", runs["root"])
    assert code == 0 and "message = 'hello: ITEM0, ITEM1, ITEM2'" in out


def test_tag_add_remove_list(runs: dict[str, str], capsys) -> None:
    spec = f"ClientFlow/{runs['ok']}"
    code, out, _ = mfc_cli(capsys, "tag", "add", spec, "new", "other")
    assert code == 0 and out == f"{spec} tags: new, orig, other\n"
    code, out, err = mfc_cli(capsys, "tag", "remove", spec, "other", "absent")
    assert code == 0 and out == f"{spec} tags: new, orig\n" and "was not tagged 'absent'" in err
    code, out, _ = mfc_cli(capsys, "tag", "list", spec, "--json")
    listed = json.loads(out)
    assert listed["user_tags"] == ["new", "orig"] and any(t.startswith("user:") for t in listed["system_tags"])
    code, out, _ = mfc_cli(capsys, "tag", "list", spec)
    assert out.splitlines()[0] == "user tags:   new, orig" and out.splitlines()[1].startswith("system tags: ")
    from mfc.client import Run

    assert Run(spec, _namespace_check=False).user_tags == {"new", "orig"}
    mfc_cli(capsys, "tag", "remove", spec, "new")


def test_tag_errors_change_nothing(runs: dict[str, str], capsys) -> None:
    spec = f"ClientFlow/{runs['ok']}"
    system_tag = f"user:{mfc.cli.load_config()['user']}"
    before = snapshot(runs["root"])
    for args, message in (
        (("tag", "remove", spec, system_tag), "is a system tag"),
        (("tag", "add", f"{spec}/start", "x"), "tags belong to runs"),
        (("tag", "add", "ClientFlow/123", "x"), "no run ClientFlow/123"),
        (("tag", "add", spec, ""), "non-empty"),
    ):
        code, out, err = mfc_cli(capsys, *args)
        assert code == 2 and out == "" and message in err and err.count("\n") == 1, (args, err)
    code, _, err = mfc_cli(capsys, "tag", "add", spec)
    assert code == 2 and "Missing argument" in err
    assert snapshot(runs["root"]) == before
