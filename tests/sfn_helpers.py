"""Helpers shared by the Step Functions compiler and lint tests: settings resolved from a flow
file and a config made from a fixed environment (no AWS, no config file), generated flows, and
the states of a definition at every depth."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from mfc.config import Config
from mfc.flowload import flow_class, import_flow_file
from mfc.graph import FlowGraph, load_graph, parse_flow
from mfc.sfn.build import DeployOptions, sfn_settings
from mfc.sfn.compiler import compile_with_modes
from mfc.sfn.lint import Placed, walk
from mfc.sfn.settings import SfnSettings

SHARED_FLOWS = Path(__file__).parent / "flows"  # the flows every other test runs too
FLOWS = Path(__file__).parent / "flows_sfn"
REFERENCE = FLOWS / "branch_foreach.py"
CODE = {"sha256": "c0de" * 16, "flow_file": "branch_foreach.py"}
IMAGE = "registry.example/mfc-flow:1"
ENV = {"MFC_DATASTORE_ROOT": "s3://bucket/prefix", "MFC_BATCH_QUEUE": "q", "MFC_BATCH_GPU_QUEUE": "gpu-q",
       "MFC_USER": "tester", "MFC_AWS_REGION": "eu-west-1"}


def config(**extra: str) -> Config:
    """The config of these tests: an S3 datastore and a queue, plus ``extra`` (``MFC_*`` names)."""
    return Config(env={**ENV, **extra})


def settings_for(flow_file: str | Path, options: DeployOptions | None = None, code: dict[str, str] | None = None,
                 validate: bool = True, **env: str) -> tuple[FlowGraph, SfnSettings]:
    """The graph of ``flow_file`` and the settings `mfc sfn compile` would resolve for it."""
    path = str(flow_file)
    graph = load_graph(path) if validate else parse_flow(path)
    flow_cls = flow_class(import_flow_file(path), graph.name, path)
    code = code or {"sha256": CODE["sha256"], "flow_file": Path(path).name}
    return graph, sfn_settings(flow_cls, graph, config(**env), code, IMAGE, None, options or DeployOptions())


def compiled(flow_file: str | Path, options: DeployOptions | None = None, **env: str
             ) -> tuple[FlowGraph, SfnSettings, dict[str, Any], dict[str, str]]:
    """``(graph, settings, definition, Map modes)`` of ``flow_file``."""
    graph, settings = settings_for(flow_file, options, **env)
    definition, modes = compile_with_modes(graph, settings)
    return graph, settings, definition, modes


def write_flow(directory: Path, name: str, body: str) -> Path:
    """``directory/<name>.py`` holding the flow class ``body`` (dedented) and its imports."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    header = "from mfc import FlowSpec, Parameter, batch, catch, resources, retry, step, timeout\n\n\n"
    path.write_text(header + textwrap.dedent(body))
    return path


def linear_flow(directory: Path, steps: int, name: str = "linear") -> Path:
    """A linear flow of ``steps`` steps (``start``, ``s1``... ``end``)."""
    names = ["start", *[f"s{i}" for i in range(1, steps - 1)], "end"]
    parts = [f"class Linear{steps}Flow(FlowSpec):\n"]
    for index, step in enumerate(names):
        last = f"self.next(self.{names[index + 1]})" if step != "end" else "pass"
        parts.append(f"    @step\n    def {step}(self):\n        {last}\n\n")
    return write_flow(directory, name, "".join(parts))


def states(definition: dict[str, Any]) -> dict[str, Placed]:
    """Every state of ``definition`` by name, whatever scope holds it."""
    return {p.name: p for p in walk(definition["States"])}
