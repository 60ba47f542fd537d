"""``Runner``: run a flow file from Python, as Metaflow's ``metaflow.Runner`` does.

The run is ``mfc run FILE`` in a subprocess (so a flow's crash or ``sys.exit`` cannot take the
caller with it), with ``--run-id-file`` telling which run it made; the result is read back through
the client API, from the datastore and metadata that the runner's options, ``env`` and ``cwd``
resolve to. The client ``Run`` holds them: later reads, ``.data`` included, never depend on the
caller's environment or directory, and this process's environment is never changed. Blocking
calls (:meth:`Runner.run`, :meth:`Runner.resume`) and coroutines (:meth:`Runner.async_run`,
:meth:`Runner.async_resume`) share one :class:`ExecutingRun`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mfc.exceptions import MfcError
from mfc.graph import load_graph

if TYPE_CHECKING:
    from mfc.client.datastore import Datastore

_CLI = ("-c", "from mfc.cli import main; main()")


def _flags(options: dict[str, Any]) -> list[str]:
    """``{"max_workers": 2, "tag": ["a", "b"], "quiet": True}`` -> ``--max-workers 2 --tag a --tag b --quiet``."""
    args: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag)
        elif isinstance(value, (list, tuple)):
            for item in value:
                args += [flag, str(item)]
        else:
            args += [flag, str(value)]
    return args


class ExecutingRun:
    """A run started by a :class:`Runner`: ``.status``, ``.returncode``, ``.stdout``, ``.stderr``
    and ``.run`` (the client :class:`mfc.Run`, once the run id is known)."""

    def __init__(self, runner: Runner, process: subprocess.Popen | asyncio.subprocess.Process,
                 id_file: Path, out: Path, err: Path) -> None:
        self._runner = runner
        self._process = process
        self._id_file, self._out, self._err = id_file, out, err
        self._shown = False

    def __enter__(self) -> ExecutingRun:
        return self

    def __exit__(self, *exc: object) -> None:
        """Leaving ``with runner.run() as running:`` removes the runner's temporary files, as in
        Metaflow (read ``.stdout`` inside the block)."""
        self._runner.cleanup()

    @property
    def returncode(self) -> int | None:
        """The exit code of the run's process (None while it runs)."""
        return self._process.returncode

    @property
    def status(self) -> str:
        """``running``, ``successful`` or ``failed``, as in Metaflow."""
        code = self.returncode
        return "running" if code is None else "successful" if code == 0 else "failed"

    @property
    def stdout(self) -> str:
        """What the run printed on stdout so far."""
        return self._out.read_text(errors="replace") if self._out.exists() else ""

    @property
    def stderr(self) -> str:
        """What the run printed on stderr so far."""
        return self._err.read_text(errors="replace") if self._err.exists() else ""

    @property
    def run(self) -> Any:
        """The client ``Run`` of this run, or None before (or without) a run id. It reads the
        datastore of the runner's environment, in any namespace (as Metaflow's does)."""
        run_id = self._id_file.read_text().strip() if self._id_file.exists() else ""
        if not run_id:
            return None
        from mfc.client import Run

        return Run(f"{self._runner.flow_name}/{run_id}", _namespace_check=False,
                   _datastore=self._runner.client_datastore())

    async def wait(self, timeout: float | None = None) -> ExecutingRun:
        """Wait for the run's process to end (a coroutine, for runs from ``async_run``)."""
        if isinstance(self._process, asyncio.subprocess.Process):
            await asyncio.wait_for(self._process.wait(), timeout)
        else:
            await asyncio.to_thread(self._process.wait, timeout)
        return self._show_output()

    def _show_output(self) -> ExecutingRun:
        """Echo what the run printed (once, when the runner shows output) after it ended."""
        if self._runner.show_output and not self._shown:
            self._shown = True
            sys.stdout.write(self.stdout)
            sys.stderr.write(self.stderr)
        return self

    def __repr__(self) -> str:
        return f"ExecutingRun({self._runner.flow_file!r}, status={self.status!r})"


class Runner:
    """Run ``flow_file`` from Python: ``Runner("flow.py", max_workers=2).run(alpha=0.5)``.

    Keyword options are ``mfc run``'s (``max_workers``, ``tag``, ``local_docker``, ...); ``env``
    adds environment variables, ``cwd`` sets the working directory. Use it as a context manager
    to remove its temporary files when done."""

    def __init__(self, flow_file: str, show_output: bool = True, profile: str | None = None,
                 env: dict[str, str] | None = None, cwd: str | None = None,
                 file_read_timeout: int = 3600, **kwargs: Any) -> None:
        path = Path(cwd or ".") / flow_file
        if not path.is_file():
            raise MfcError(f"Runner: flow file {flow_file} does not exist", hint="pass the path of a flow's .py file")
        self.flow_file = str(path.resolve())
        self.flow_name = load_graph(self.flow_file).name
        self.show_output = show_output
        self.cwd = cwd
        self.file_read_timeout = file_read_timeout
        self.env = dict(env or {})
        if profile is not None:
            self.env["MFC_PROFILE"] = profile
        self.options = kwargs
        self._tmp = Path(tempfile.mkdtemp(prefix="mfc-runner-"))
        self._count = 0
        self._datastores: dict[str, Datastore] = {}

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        """Remove the temporary files of this runner's runs (their output and run id files)."""
        shutil.rmtree(self._tmp, ignore_errors=True)

    def client_datastore(self) -> Datastore:
        """The stores the client reads this runner's runs through: the datastore root, S3
        endpoint and metadata provider that the runner's options, ``env`` and ``cwd`` resolve to
        (as they do for its ``mfc run``), whatever the caller's own environment says."""
        from mfc.client.datastore import Datastore
        from mfc.config import Config, config_flags

        flags = {"datastore_root": self.options.get("datastore_root"), "datastore": self.options.get("datastore"),
                 **config_flags(self.options)}
        config = Config(flags, env={**os.environ, **self.env}, cwd=self.cwd)
        root = config.datastore_root
        if root not in self._datastores:
            self._datastores[root] = Datastore(root, config)
        return self._datastores[root]

    def _command(self, verb: str | tuple[str, ...], params: dict[str, Any], extra: dict[str, Any],
                 options: dict[str, Any] | None = None) -> tuple[list[str], Path, Path, Path]:
        self._count += 1
        id_file, out, err = (self._tmp / f"{self._count}.{suffix}" for suffix in ("runid", "out", "err"))
        verbs = (verb,) if isinstance(verb, str) else verb
        cmd = [sys.executable, *_CLI, *verbs, self.flow_file, "--run-id-file", str(id_file),
               *_flags({**(self.options if options is None else options), **extra}), *_flags(params)]
        return cmd, id_file, out, err

    def _start(self, verb: str | tuple[str, ...], params: dict[str, Any], extra: dict[str, Any], step: str | None = None,
               options: dict[str, Any] | None = None, kind: type[ExecutingRun] = ExecutingRun) -> ExecutingRun:
        cmd, id_file, out, err = self._command(verb, params, extra, options)
        if step:
            cmd.insert(cmd.index(self.flow_file) + 1, step)
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(cmd, cwd=self.cwd, env={**os.environ, **self.env}, stdout=stdout, stderr=stderr)
        return kind(self, process, id_file, out, err)

    def run(self, **params: Any) -> ExecutingRun:
        """Run the flow with these parameters and wait for it to end."""
        executing = self._start("run", params, {})
        executing._process.wait()
        return executing._show_output()

    def resume(self, step_to_rerun: str | None = None, origin_run_id: str | None = None, **params: Any) -> ExecutingRun:
        """Resume the latest run (or ``origin_run_id``), re-running from ``step_to_rerun``."""
        executing = self._start_resume(step_to_rerun, origin_run_id, params)
        executing._process.wait()
        return executing._show_output()

    def _start_resume(self, step: str | None, origin: str | None, params: dict[str, Any]) -> ExecutingRun:
        return self._start("resume", params, {"origin_run_id": origin}, step)

    async def async_run(self, **params: Any) -> ExecutingRun:
        """Start the run and return at once; ``await executing.wait()`` waits for its end."""
        return await asyncio.to_thread(self._start, "run", params, {})

    async def async_resume(self, step_to_rerun: str | None = None, origin_run_id: str | None = None,
                           **params: Any) -> ExecutingRun:
        """:meth:`resume`, started in the background like :meth:`async_run`."""
        return await asyncio.to_thread(self._start_resume, step_to_rerun, origin_run_id, params)
