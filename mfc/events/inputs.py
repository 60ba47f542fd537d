"""The execution input a schedule or trigger starts a flow's state machine with:
``{"parameters": {name: value}}`` (see :mod:`mfc.sfn.runstart`), each value the parameter's
default as of deployment, as the command line would give it."""

from __future__ import annotations

import json
from typing import Any

from mfc.graph import FlowGraph


def cli_text(value: Any, separator: str | None = None) -> str:
    """A parameter value as ``--name=TEXT`` would give it: ``true``/``false``, numbers as written,
    JSON for dicts and lists (joined by ``separator`` when the parameter has one)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and separator:
        return separator.join(cli_text(v) for v in value)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def default_parameters(flow_cls: type, user: str, graph: FlowGraph | None = None,
                       why: str = "it is scheduled") -> dict[str, str]:
    """Each parameter's deploy-time default (callable defaults called now, for ``user``) as CLI
    text, by parameter name; parameters whose default is None are left out (the run gives them
    None). A required parameter without a default is an MfcError naming its file:line (``graph``:
    the flow's, read from its source when not given; ``why``: what starts the flow unattended)."""
    from mfc.parameters import flow_parameters
    from mfc.sfn.deploy import check_schedulable

    if any(p.required and p.default is None for p in flow_parameters(flow_cls).values()):
        check_schedulable(flow_cls, graph or _graph(flow_cls), why=why)
    return parameter_defaults(flow_cls, user)


def parameter_defaults(flow_cls: type, user: str) -> dict[str, str]:
    """Each parameter's deploy-time default as CLI text, by parameter name (parameters whose
    default is None are left out); no check of required parameters (a trigger may give them)."""
    from mfc.parameters import flow_parameters

    values: dict[str, str] = {}
    for param in flow_parameters(flow_cls).values():
        default = param.resolve_default(flow_cls.__name__, user)
        if default is not None:
            values[param.name] = cli_text(default, param.separator)
    return values


def _graph(flow_cls: type) -> FlowGraph:
    import inspect

    from mfc.graph import load_graph

    return load_graph(inspect.getsourcefile(flow_cls) or "", flow_cls.__name__)


def execution_input(parameters: dict[str, str], trigger: dict[str, str] | None = None) -> str:
    """The execution input (JSON text) that passes ``parameters``; ``trigger`` says what starts
    it (``{"kind": "schedule"|"event"|"upstream", "name": ...}``), recorded with the run."""
    data: dict[str, Any] = {"parameters": parameters}
    if trigger is not None:
        data["trigger"] = trigger
    return json.dumps(data, sort_keys=True)
