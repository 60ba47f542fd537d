"""``python -m mfc.runner.envserver``: the fork server of a flow run in its own environment.

Started by the lead with the env's interpreter and one end of a socketpair inherited as ``--fd``,
when the env's daemon (:mod:`mfc.runner.envdaemon`) cannot fork the run's server; it imports the
flow there once and serves :mod:`mfc.runner.forkserver`'s protocol, so tasks start by forking as
they do without an environment. :func:`_task_function` is what the daemon's run servers use too.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from typing import Any

from mfc.runner.forkserver import TaskFunction, serve


def start_env_fork_server(python: str, flow_file: str, flow_name: str) -> tuple[int, socket.socket]:
    """Start the server under ``python``; returns (pid, the lead's socket)."""
    lead, server = socket.socketpair()
    fd = server.fileno()
    proc = subprocess.Popen(
        [python, "-m", "mfc.runner.envserver", "--fd", str(fd), "--lead", str(os.getpid()),
         "--flow-file", flow_file, "--flow-name", flow_name],
        pass_fds=(fd,), stdin=subprocess.DEVNULL,
    )
    server.close()
    proc.returncode = 0  # reaped by the executor with os.waitpid, not by Popen
    return proc.pid, lead


def _task_function(flow_file: str, flow_name: str) -> TaskFunction:
    from mfc.decorators import card_decorators
    from mfc.flowload import flow_class, import_flow_file
    from mfc.graph import load_graph
    from mfc.runner import task as task_module
    from mfc.runner.taskspec import TaskSpec

    flow_cls = flow_class(import_flow_file(flow_file), flow_name, flow_file)
    graph = load_graph(flow_file, flow_name)
    if any(card_decorators(getattr(flow_cls, name)) for name in graph.nodes):
        from mfc.cards.render import preload

        preload()

    def run(spec: dict[str, Any]) -> int:
        return task_module.execute(TaskSpec.from_dict(spec), flow_cls, graph)

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mfc-envserver")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--lead", type=int, required=True)
    parser.add_argument("--flow-file", required=True)
    parser.add_argument("--flow-name", required=True)
    args = parser.parse_args(argv)
    sock = socket.socket(fileno=args.fd)
    run = _task_function(args.flow_file, args.flow_name)
    serve(sock, run, args.lead)
    return 0


if __name__ == "__main__":
    sys.exit(main())
