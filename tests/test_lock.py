"""Dependency locks: declared inputs, normalisation, resolution with the real pip, cache and mfc.lock.

Resolution runs this machine's pip against its configured index; the packages used (six, idna,
exceptiongroup) are small and everywhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from mfc.exceptions import InvalidFlow, MfcError
from mfc.packager import deps as deps_module
from mfc.packager.deps import (
    collect_inputs,
    lock_flow,
    pip_failure,
    read_requirements_file,
    resolve,
)
from mfc.packager.lockfile import EnvLock, LockCache, canonical_name, parse_lock

PLAIN_FLOW = """\
from mfc import FlowSpec, step


class LockFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"""

DECORATED_FLOW = """\
from mfc import FlowSpec, pypi, pypi_base, step


@pypi_base(packages={{"six": "{base_six}"}}, python="3.11")
class DecoFlow(FlowSpec):
    @pypi(packages={{"idna": ""}})
    @step
    def start(self):
        self.next(self.end)

    @pypi(packages={{"six": "{step_six}"}})
    @step
    def end(self):
        pass
"""

CLI = "import sys, mfc.cli as c; from mfc.cli.image import image, lock; " \
      "c.cli.add_command(lock); c.cli.add_command(image); c.main(sys.argv[1:])"


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private mfc cache for each test."""
    path = tmp_path / "cache"
    monkeypatch.setenv("MFC_CACHE_DIR", str(path))
    return path


def make_project(root: Path, flow: str = PLAIN_FLOW, requirements: str | None = None,
                 dependencies: list[str] | None = None) -> Path:
    """A project directory with a pyproject.toml (its root), flow.py and optional requirements.txt."""
    root.mkdir(parents=True, exist_ok=True)
    deps = "" if dependencies is None else f"dependencies = {dependencies!r}\n"
    (root / "pyproject.toml").write_text(f"[project]\nname = 'demo'\nversion = '0.1'\n{deps}")
    (root / "flow.py").write_text(flow)
    if requirements is not None:
        (root / "requirements.txt").write_text(requirements)
    return root / "flow.py"


def forbid_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"subprocess called: {args}")

    monkeypatch.setattr(subprocess, "run", fail)
    monkeypatch.setattr(subprocess, "Popen", fail)


# ------------------------------------------------------------------------------------ the lock text


def test_lock_text_is_normalised_and_its_id_ignores_order() -> None:
    a = EnvLock.create("3.11", {"Six": "1.17.0", "Foo_Bar.baz": "2.0", "idna": "3.10"})
    b = EnvLock.create("3.11", [("idna", "3.10"), ("foo-bar-baz", "2.0"), ("six", "1.17.0")])
    assert a.text == b.text == "# python 3.11\nfoo-bar-baz==2.0\nidna==3.10\nsix==1.17.0\n"
    assert a.id == b.id and len(a.id) == 64
    assert EnvLock.create("3.10", dict(a.pins)).id != a.id  # the Python is part of the lock
    assert canonical_name("Zope.Interface__x") == "zope-interface-x"


def test_lock_file_round_trip_keeps_the_id_and_records_the_inputs() -> None:
    lock = EnvLock.create("3.11", {"six": "1.17.0"}, inputs_hash="ab" * 32)
    text = lock.file_text()
    assert "# inputs: " + "ab" * 32 in text and text.endswith(lock.text)
    again = parse_lock(text)
    assert again == lock and again.id == lock.id
    with pytest.raises(MfcError, match=r"mfc.lock:6: not a `name==version` pin"):
        parse_lock(text + "six>=1\n")


def test_empty_lock_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flow = make_project(tmp_path / "p")
    forbid_subprocess(monkeypatch)
    result = lock_flow(str(flow))
    assert result.source == "empty"
    assert result.lock.pins == () and result.lock.text == "# python 3.11\n"
    assert parse_lock(result.lock.file_text()).id == result.lock.id


# ------------------------------------------------------------------------------------ declared inputs


def test_requirements_file_parsing(tmp_path: Path) -> None:
    (tmp_path / "more.txt").write_text("Requests >= 2.0  # a comment\n")
    (tmp_path / "requirements.txt").write_text(textwrap.dedent("""\
        # comment line
        Six==1.17.0 \\
            --hash=sha256:abc
        -r more.txt

        exceptiongroup; python_version < "3.11"
        """))
    deps = read_requirements_file(tmp_path / "requirements.txt")
    assert [d.text for d in deps] == ["six==1.17.0", "requests>=2.0", 'exceptiongroup; python_version < "3.11"']
    assert deps[0].source.endswith("requirements.txt:2") and deps[1].source.endswith("more.txt:1")
    (tmp_path / "requirements.txt").write_text("--index-url https://example.org/simple\nsix\n")
    with pytest.raises(MfcError, match=r"requirements.txt:1: option --index-url is not supported"):
        read_requirements_file(tmp_path / "requirements.txt")
    (tmp_path / "requirements.txt").write_text("six\nnot a requirement!\n")
    with pytest.raises(MfcError, match=r"requirements.txt:2: invalid requirement"):
        read_requirements_file(tmp_path / "requirements.txt")


def test_inputs_come_from_project_files_and_decorators(tmp_path: Path) -> None:
    flow = make_project(tmp_path / "p", DECORATED_FLOW.format(base_six="1.17.0", step_six="1.17.0"),
                        requirements="idna>=3\n", dependencies=["cloudpickle>=2"])
    inputs = collect_inputs(str(flow))
    assert inputs.flow_name == "DecoFlow" and inputs.python == "3.11"
    by_text = {d.text: d.source for d in inputs.requirements}
    assert set(by_text) == {"idna>=3", "cloudpickle>=2", "six==1.17.0", "idna"}
    assert by_text["six==1.17.0"].startswith("@pypi_base at ") and by_text["six==1.17.0"].endswith("flow.py:4")
    assert by_text["idna"] == f"@pypi on step start at {flow}:6"
    assert by_text["cloudpickle>=2"].endswith("pyproject.toml [project].dependencies")
    assert inputs.python_source == f"@pypi_base at {flow}:4"


def test_mfc_own_pyproject_is_not_a_flow_dependency(tmp_path: Path) -> None:
    root = tmp_path / "p"
    flow = make_project(root)
    (root / "pyproject.toml").write_text("[project]\nname = 'mfc'\ndependencies = ['boto3>=1']\n")
    assert collect_inputs(str(flow)).requirements == []


def test_two_different_pins_name_both_decorators(tmp_path: Path) -> None:
    flow = make_project(tmp_path / "p", DECORATED_FLOW.format(base_six="1.17.0", step_six="1.16.0"))
    with pytest.raises(InvalidFlow) as info:
        collect_inputs(str(flow))
    message = str(info.value)
    assert message.startswith(f"{flow}:11: six is pinned twice")  # the @pypi on step end
    assert "1.16.0 by @pypi on step end at" in message and f"1.17.0 by @pypi_base at {flow}:4" in message


def test_decorator_python_must_match_the_image(tmp_path: Path) -> None:
    flow = make_project(tmp_path / "p", DECORATED_FLOW.format(base_six="1.17.0", step_six="1.17.0"))
    with pytest.raises(MfcError, match=r"asks for Python 3.11 but the image has Python 3.10"):
        collect_inputs(str(flow), python="3.10")


def test_inputs_hash_ignores_order_spelling_and_comments(tmp_path: Path) -> None:
    one = make_project(tmp_path / "a", requirements="six\nidna>=3.0\n")
    two = make_project(tmp_path / "b", requirements="# deps\nIDNA >= 3.0\n\nSix  # why not\n")
    assert collect_inputs(str(one)).hash == collect_inputs(str(two)).hash
    three = make_project(tmp_path / "c", requirements="six\nidna>=3.1\n")
    assert collect_inputs(str(three)).hash != collect_inputs(str(one)).hash


# ------------------------------------------------------------------------------------ resolving


def test_resolution_pins_exact_versions_independent_of_order(tmp_path: Path) -> None:
    one = lock_flow(str(make_project(tmp_path / "a", requirements="six\nidna\n")))
    two = lock_flow(str(make_project(tmp_path / "b", requirements="idna\nsix\n")))
    assert one.source == "pip" and two.source == "cache"  # same inputs: the second never runs pip
    assert one.lock.id == two.lock.id
    names = [name for name, _ in one.lock.pins]
    assert names == ["idna", "six"]
    assert all(version[0].isdigit() for _, version in one.lock.pins)


def test_decorator_dependencies_are_locked(tmp_path: Path) -> None:
    flow = make_project(tmp_path / "p", DECORATED_FLOW.format(base_six="1.16.0", step_six="1.16.0"))
    lock = lock_flow(str(flow)).lock
    pins = dict(lock.pins)
    assert pins["six"] == "1.16.0" and "idna" in pins and lock.python == "3.11"


def test_unresolvable_dependency_is_one_clear_line(tmp_path: Path) -> None:
    name = f"mfc-no-such-package-{uuid.uuid4().hex[:12]}"
    flow = make_project(tmp_path / "p", requirements=f"six\n{name}==1.0\n")
    with pytest.raises(MfcError) as info:
        lock_flow(str(flow))
    message = str(info.value)
    assert "\n" not in message
    assert f"dependency {name}==1.0 (from {tmp_path / 'p' / 'requirements.txt'}:2) does not resolve" in message


def test_conflict_with_mfc_own_requirements_is_explained(tmp_path: Path) -> None:
    flow = make_project(tmp_path / "p", requirements="click<8\n")
    with pytest.raises(MfcError) as info:
        lock_flow(str(flow))
    message = str(info.value)
    assert "conflict" in message and "click<8 comes from" in message and "mfc itself requires click" in message


def test_pip_failure_messages() -> None:
    stderr = ("ERROR: Cannot install a==1 and b==2 because these package versions have conflicting dependencies.\n"
              "\nThe conflict is caused by:\n    a 1 depends on c<1\n    b 2 depends on c>=2\n\nTo fix this...\n"
              "ERROR: ResolutionImpossible: for help visit https://pip.pypa.io\n")
    message = pip_failure(stderr, "3.11", {"a": "requirements.txt:1"})
    assert message == ("dependencies conflict for Python 3.11: Cannot install a==1 and b==2 because these package "
                       "versions have conflicting dependencies: a 1 depends on c<1; b 2 depends on c>=2; "
                       "a==1 comes from requirements.txt:1")
    assert pip_failure("WARNING: x\nERROR: boom\n", "3.10") == "dependency resolution failed for Python 3.10: boom"


def test_resolution_for_another_python_applies_its_markers(tmp_path: Path) -> None:
    flow = make_project(tmp_path / "p", requirements='exceptiongroup; python_version < "3.11"\n')
    target = "3.10" if sys.version_info[:2] != (3, 10) else "3.12"
    pins = dict(lock_flow(str(flow), python=target).lock.pins)
    if target == "3.10":
        # exceptiongroup applies on 3.10 and needs typing-extensions there, whatever the host runs.
        assert "exceptiongroup" in pins and "typing-extensions" in pins
    else:
        assert pins == {}


def test_resolver_gets_requirements_and_mfc_constraints(tmp_path: Path) -> None:
    """The report function is the seam to pip; check what it is asked and that the closure is kept."""
    flow = make_project(tmp_path / "p", requirements="six\n")
    seen: list[tuple[list[str], list[str], str]] = []

    def fake_report(requirements: list[str], constraints: list[str], python: str) -> dict:
        seen.append((requirements, constraints, python))
        item = {"metadata": {"name": "Six", "version": "1.17.0", "requires_dist": []}}
        other = {"metadata": {"name": "unrelated", "version": "1.0", "requires_dist": []}}
        return {"install": [item, other], "environment": deps_module.target_environment(python)}

    lock = resolve(collect_inputs(str(flow)), report=fake_report)
    assert lock.pins == (("six", "1.17.0"),)
    requirements, constraints, python = seen[0]
    assert requirements == ["six"] and python == "3.11"
    assert any(c.startswith("click") for c in constraints) and not any("extra" in c for c in constraints)


# ------------------------------------------------------------------------------------ cache and mfc.lock


def test_second_lock_uses_the_cache_without_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 cache: Path) -> None:
    flow = make_project(tmp_path / "p", requirements="six\n")
    first = lock_flow(str(flow))
    assert first.source == "pip"
    assert LockCache(cache / "locks").get(first.inputs.hash) == first.lock
    forbid_subprocess(monkeypatch)
    second = lock_flow(str(flow))
    assert second.source == "cache" and second.lock == first.lock


def test_written_lock_file_is_used_as_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    flow = make_project(tmp_path / "p", requirements="six\n")
    written = lock_flow(str(flow), write=True)
    lock_file = tmp_path / "p" / "mfc.lock"
    assert written.written and lock_file.read_text() == written.lock.file_text()
    monkeypatch.setenv("MFC_CACHE_DIR", str(tmp_path / "other-cache"))  # nothing cached there
    forbid_subprocess(monkeypatch)
    again = lock_flow(str(flow))
    assert again.source == "mfc.lock" and again.lock.id == written.lock.id and not again.stale_lock_file


def test_stale_lock_file_is_reported_and_rewritten(tmp_path: Path) -> None:
    flow = make_project(tmp_path / "p", requirements="six\n")
    lock_flow(str(flow), write=True)
    (tmp_path / "p" / "requirements.txt").write_text("six\nidna\n")
    stale = lock_flow(str(flow))
    assert stale.source == "pip" and stale.stale_lock_file
    assert any("mfc.lock is out of date" in note for note in stale.notes)
    fixed = lock_flow(str(flow), write=True)
    assert fixed.written and not fixed.stale_lock_file
    assert "idna==" in (tmp_path / "p" / "mfc.lock").read_text()


# ------------------------------------------------------------------------------------ command line


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ}, timeout=120)


def test_cli_lock_prints_json_and_writes(tmp_path: Path) -> None:
    flow = make_project(tmp_path / "p", requirements="six==1.17.0\n")
    result = run_cli("lock", str(flow), "--json", "--write")
    assert result.returncode == 0, result.stderr
    import json

    data = json.loads(result.stdout)
    assert data["flow"] == "LockFlow" and data["pins"] == [{"name": "six", "version": "1.17.0"}]
    assert data["written"] and Path(data["lock_file"]).is_file()
    text = run_cli("lock", str(flow))
    assert text.returncode == 0 and text.stdout == "# python 3.11\nsix==1.17.0\n"
    assert "from mfc.lock" in text.stderr


def test_cli_lock_error_is_one_line_exit_2(tmp_path: Path) -> None:
    flow = make_project(tmp_path / "p", requirements=f"mfc-no-such-package-{uuid.uuid4().hex[:12]}\n")
    result = run_cli("lock", str(flow))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: dependency mfc-no-such-package-")
    assert "Traceback" not in result.stderr
