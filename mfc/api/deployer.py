"""``Deployer``: deploy a flow to Step Functions from Python, as Metaflow's ``metaflow.Deployer``.

``Deployer("flow.py").step_functions(**options).create()`` is ``mfc sfn create`` in a subprocess;
the :class:`DeployedFlow` it returns triggers runs (``mfc sfn trigger --wait`` in the background,
followed as a :class:`TriggeredRun`) and deletes the state machine (``mfc sfn delete``).
:meth:`DeployedFlow.from_deployment` finds a deployed flow again by its state machine's name.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, cast

from mfc.api.runner import _CLI, ExecutingRun, Runner, _flags
from mfc.exceptions import MfcError


class TriggeredRun(ExecutingRun):
    """A run started by :meth:`DeployedFlow.trigger`: ``.status``, ``.run`` (the client Run, once its
    id is known) and :meth:`wait_for_run`."""

    def wait_for_run(self, timeout: float | None = None) -> TriggeredRun:
        """Wait until the execution ends (``mfc sfn trigger --wait`` returns)."""
        self._process.wait(timeout)  # type: ignore[call-arg]
        return self


class DeployedFlow:
    """A flow deployed to Step Functions: :meth:`trigger` a run, :meth:`delete` the state machine."""

    def __init__(self, runner: Runner, name: str | None, create_output: str) -> None:
        self._runner = runner
        self.name = name or runner.flow_name
        self.flow_name = runner.flow_name
        self.create_output = create_output

    @classmethod
    def from_deployment(cls, identifier: str, metadata: str | None = None,
                        impl: str = "step-functions") -> DeployedFlow:
        """The flow deployed as the state machine named ``identifier`` (in the account, region
        and endpoint of this process's mfc configuration), as Metaflow's
        ``DeployedFlow.from_deployment``. The flow's code is the code package the state machine
        runs, fetched from its datastore and unpacked in the code cache, so :meth:`trigger` and
        :meth:`delete` work without the original flow file. ``metadata`` is accepted for
        Metaflow's signature and not needed; ``impl`` can only be ``step-functions``."""
        if impl.replace("_", "-") != "step-functions":
            raise ValueError(f"No deployer '{impl}' exists; valid deployers are: ['step-functions']")
        runner = Runner(deployed_flow_file(identifier), name=identifier)
        return cls(runner, identifier, "")

    def trigger(self, **params: Any) -> TriggeredRun:
        """Start a run of the state machine with these parameters; returns at once."""
        extra: dict[str, Any] = {"wait": True, "quiet": True, "name": self._runner.options.get("name")}
        # The deploy options belong to create; trigger takes only --name.
        started = self._runner._start(("sfn", "trigger"), params, extra, options={}, kind=TriggeredRun)
        return cast(TriggeredRun, started)

    def delete(self) -> None:
        """Delete the state machine, its schedule and its trigger rules (its runs stay)."""
        name = self._runner.options.get("name")
        _cli(self._runner, ["sfn", "delete", self._runner.flow_file, *(["--name", name] if name else [])])


class StepFunctionsDeployer:
    """``Deployer(...).step_functions(**options)``: options are ``mfc sfn create``'s (``name``,
    ``image``, ``queue``, ``max_workers``, ``tag``, ...)."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    def create(self, **kwargs: Any) -> DeployedFlow:
        """Deploy (build and push the image if needed, upload the code, create or update the state machine)."""
        options = {**self._runner.options, **kwargs}
        self._runner.options = options
        output = _cli(self._runner, ["sfn", "create", self._runner.flow_file, *_flags(options)])
        return DeployedFlow(self._runner, options.get("name"), output)


class Deployer:
    """``Deployer("flow.py", env=..., cwd=...).step_functions(**options).create()``."""

    def __init__(self, flow_file: str, show_output: bool = True, profile: str | None = None,
                 env: dict[str, str] | None = None, cwd: str | None = None,
                 file_read_timeout: int = 3600, **kwargs: Any) -> None:
        self._flow_file, self._show_output, self._profile = flow_file, show_output, profile
        self._env, self._cwd, self._file_read_timeout = env, cwd, file_read_timeout
        self._options = kwargs

    def step_functions(self, name: str | None = None, **deploy_options: Any) -> StepFunctionsDeployer:
        """Deploy to AWS Step Functions (the only orchestrator mfc deploys to)."""
        options = {**self._options, **deploy_options, **({"name": name} if name else {})}
        return StepFunctionsDeployer(Runner(self._flow_file, self._show_output, self._profile, self._env, self._cwd,
                                            self._file_read_timeout, **options))


def deployed_flow_file(name: str, config: Any = None) -> str:
    """The flow file that the state machine ``name`` runs, from its code package (unpacked once
    into the code cache); MfcError when there is no such state machine or it is not mfc's."""
    from mfc.config import Config
    from mfc.runner.bootstrap import unpacked_flow_file
    from mfc.sfn.deploy import deployed, deployed_code
    from mfc.stores.artifacts import ArtifactStore
    from mfc.stores.blob import open_blob_store
    from mfc.stores.settings import S3Settings

    config = config or Config()
    code = deployed_code(deployed(config, name, name))
    root = code["datastore_root"]
    blobs = open_blob_store(root, S3Settings.from_config(config) if root.startswith("s3://") else None)
    return unpacked_flow_file(ArtifactStore(blobs, code["flow_name"]), code["code_sha256"], code["flow_file"],
                              f"state machine {name}")


def _cli(runner: Runner, args: list[str]) -> str:
    """Run ``mfc ARGS`` to completion; its output, or an MfcError with its last error line."""
    done = subprocess.run([sys.executable, *_CLI, *args], cwd=runner.cwd, env={**os.environ, **runner.env},
                          capture_output=True, text=True)
    if runner.show_output:
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
    if done.returncode:
        lines = [line for line in done.stderr.splitlines() if line.strip()] or [f"exit {done.returncode}"]
        raise MfcError(f"mfc {' '.join(args[:2])} failed: {lines[-1]}")
    return done.stdout
