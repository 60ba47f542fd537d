"""``NBRunner``: run a flow defined in a notebook cell, as Metaflow's ``metaflow.NBRunner`` does.

The flow's source is the cell being executed (IPython's input history): its lines up to the end of
the flow's class are written to a file in ``base_dir`` and run with :class:`~mfc.api.runner.Runner`.
Create it on the last line of the cell that defines the flow.
"""

from __future__ import annotations

import ast
import os
import uuid
from pathlib import Path
from typing import Any

from mfc.api.runner import ExecutingRun, Runner
from mfc.exceptions import MfcError


def current_cell() -> str:
    """The source of the notebook cell being executed, or an error outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        get_ipython = None  # noqa: N806 - IPython's own name
    shell = get_ipython() if get_ipython else None
    if shell is None:
        raise MfcError("NBRunner needs an interactive IPython session (a Jupyter notebook)",
                       hint="outside a notebook use Runner('flow.py')")
    return str(shell.history_manager.input_hist_raw[-1])


def flow_source(cell: str, flow_name: str) -> str:
    """The lines of ``cell`` up to the end of class ``flow_name`` (what follows runs the notebook, not the flow)."""
    try:
        tree = ast.parse(cell)
    except SyntaxError as exc:
        raise MfcError(f"NBRunner: the cell does not parse: {exc.msg} (line {exc.lineno})") from None
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == flow_name]
    if not classes:
        raise MfcError(f"NBRunner: flow {flow_name} is not defined in this cell",
                       hint="create the NBRunner in the cell that defines the flow")
    end = classes[0].end_lineno or len(cell.splitlines())
    return "\n".join(cell.splitlines()[:end]) + "\n"


class NBRunner:
    """``NBRunner(MyFlow, alpha=...)`` in the cell defining ``MyFlow``: ``.nbrun(**params)`` runs it
    and returns the client ``Run``; ``.run``, ``.resume``, ``.async_run`` as :class:`Runner`."""

    def __init__(self, flow: type, show_output: bool = True, profile: str | None = None,
                 env: dict[str, str] | None = None, base_dir: str | None = None,
                 file_read_timeout: int = 3600, **kwargs: Any) -> None:
        self.flow = flow
        source = flow_source(current_cell(), flow.__name__)
        directory = Path(base_dir if base_dir is not None else os.getcwd())
        self.flow_file = directory / f"{flow.__name__}_{uuid.uuid4().hex[:8]}.py"
        self.flow_file.write_text(source)
        # A run started from a kernel must not look like the kernel itself to tools reading this variable.
        self.runner = Runner(str(self.flow_file), show_output=show_output, profile=profile,
                             env={**(env or {}), "JPY_PARENT_PID": ""}, cwd=str(directory),
                             file_read_timeout=file_read_timeout, **kwargs)

    def nbrun(self, **params: Any) -> Any:
        """Run the flow, wait for it, remove the temporary files and return the client ``Run``."""
        done = self.runner.run(**params)
        try:
            return done.run
        finally:
            self.cleanup()

    def nbresume(self, **kwargs: Any) -> Any:
        """Resume the latest run, wait for it and return the client ``Run``."""
        done = self.runner.resume(**kwargs)
        try:
            return done.run
        finally:
            self.cleanup()

    def run(self, **params: Any) -> ExecutingRun:
        """:meth:`Runner.run` on the cell's flow."""
        return self.runner.run(**params)

    def resume(self, **kwargs: Any) -> ExecutingRun:
        """:meth:`Runner.resume` on the cell's flow."""
        return self.runner.resume(**kwargs)

    async def async_run(self, **params: Any) -> ExecutingRun:
        """:meth:`Runner.async_run` on the cell's flow."""
        return await self.runner.async_run(**params)

    async def async_resume(self, **kwargs: Any) -> ExecutingRun:
        """:meth:`Runner.async_resume` on the cell's flow."""
        return await self.runner.async_resume(**kwargs)

    def cleanup(self) -> None:
        """Remove the flow file written from the cell and the runner's temporary files."""
        self.flow_file.unlink(missing_ok=True)
        self.runner.cleanup()
