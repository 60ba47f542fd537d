"""``@conda``/``@conda_base`` and Metaflow's ``packages=`` form of ``@pypi`` in the flow's lock:
libraries resolved from PyPI under their names, conda specs translated, one-line errors."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from mfc.exceptions import InvalidFlow, MfcError
from mfc.packager.deps import collect_inputs, lock_flow, pip_spec
from tests.test_lock import cache, make_project  # noqa: F401 - the autouse fixture

CONDA_FLOW = """\
from mfc import FlowSpec, conda, conda_base, pypi, step


@conda_base(libraries={{"six": "1.16.0"}}, python="3.11")
class CondaFlow(FlowSpec):
    @conda(libraries={{"{library}": "{version}"}})
    @step
    def start(self):
        self.next(self.end)

    @pypi(packages={{"idna": ""}})
    @step
    def end(self):
        pass
"""


def test_conda_specs_become_pip_specifiers() -> None:
    assert pip_spec("1.2", conda=True) == "==1.2"
    assert pip_spec("=1.2", conda=True) == "==1.2"
    assert pip_spec("1.2.*", conda=True) == "==1.2.*"
    assert pip_spec(">=1.2,<2", conda=True) == ">=1.2,<2"
    assert pip_spec("", conda=True) == ""
    assert pip_spec("2.0", conda=False) == "==2.0"
    with pytest.raises(ValueError):
        pip_spec("1.2|1.3", conda=True)


def test_conda_libraries_are_in_the_image_lock_inputs(tmp_path: Path) -> None:
    flow = make_project(tmp_path / "p", CONDA_FLOW.format(library="tabulate", version="0.9.0"))
    inputs = collect_inputs(str(flow))
    texts = {d.text: d.source for d in inputs.requirements}
    assert set(texts) == {"six==1.16.0", "tabulate==0.9.0", "idna"}
    assert texts["tabulate==0.9.0"].startswith("@conda on step start at ")
    assert inputs.python == "3.11" and inputs.python_source.startswith("@conda_base at ")


def test_conda_libraries_are_locked_from_pypi(tmp_path: Path) -> None:
    flow = make_project(tmp_path / "p", CONDA_FLOW.format(library="tabulate", version="0.9.0"))
    pins = dict(lock_flow(str(flow)).lock.pins)
    assert pins["tabulate"] == "0.9.0" and pins["six"] == "1.16.0" and "idna" in pins


def test_conda_library_missing_on_pypi_is_one_line_naming_it_and_the_index(tmp_path: Path) -> None:
    name = f"mfc-no-such-lib-{uuid.uuid4().hex[:10]}"
    flow = make_project(tmp_path / "p", CONDA_FLOW.format(library=name, version="1.0"))
    with pytest.raises(MfcError) as info:
        lock_flow(str(flow))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("@conda libraries not found on PyPI (") and f"{name}==1.0" in message
    assert "no conda channel is used" in message


def test_untranslatable_conda_spec_and_python_2_are_invalid_flows(tmp_path: Path) -> None:
    flow = make_project(tmp_path / "p", CONDA_FLOW.format(library="tabulate", version="0.8|0.9"))
    with pytest.raises(InvalidFlow, match="tabulate"):
        collect_inputs(str(flow))
    flow = make_project(tmp_path / "q", CONDA_FLOW.replace('python="3.11"', 'python="2.7"').format(
        library="tabulate", version=""))
    with pytest.raises(InvalidFlow, match=r"python='2\.7' cannot be provided"):
        collect_inputs(str(flow))
