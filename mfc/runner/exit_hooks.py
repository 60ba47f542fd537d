"""``@exit_hook``: after a local run ends, run its success or error hooks, each in its own
process (as Metaflow does). A hook's outcome is printed; a failing hook is one line and never
changes the run's status. ``python -m mfc.runner.exit_hooks FLOW_FILE HOOK RUN_PATHSPEC`` runs one."""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys
from typing import Any


def hook_names(flow_cls: type, succeeded: bool) -> list[str]:
    """The hooks to call for a run of ``flow_cls`` that succeeded (or not), in order."""
    deco = getattr(flow_cls, "_flow_decorators", {}).get("exit_hook")
    if deco is None:
        return []
    return list(deco.attributes["on_success" if succeeded else "on_error"])


def run_exit_hooks(flow_cls: type, flow_file: str, pathspec: str, succeeded: bool, datastore_root: str) -> None:
    """Call each hook in a subprocess and print what it printed; failures are reported, not raised."""
    env = {**os.environ, "MFC_DATASTORE_ROOT": datastore_root}
    for name in hook_names(flow_cls, succeeded):
        try:
            proc = subprocess.run([sys.executable, "-m", "mfc.runner.exit_hooks", flow_file, name, pathspec],
                                  env=env, capture_output=True, text=True, check=False)
        except OSError as exc:
            print(f"[exit_hook] Unexpected error in hook '{name}': {exc}", flush=True)
            continue
        if proc.stdout.strip():
            print(proc.stdout.strip(), flush=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
            print(f"[exit_hook] Hook '{name}' failed: {last}", flush=True)


def _load(flow_file: str, name: str) -> Any:
    if "." in name:  # a dotted import path, e.g. "mypkg.hooks.notify"
        module_path, _, attr = name.rpartition(".")
        try:
            return getattr(importlib.import_module(module_path), attr)
        except (ImportError, AttributeError):
            pass
    from mfc.flowload import import_flow_file

    return getattr(import_flow_file(flow_file), name)


def call_hook(flow_file: str, name: str, pathspec: str) -> None:
    """Call one hook; it gets ``run=`` (a client Run, or None if unreadable) when it asks for it."""
    fn = _load(flow_file, name)
    spec = inspect.getfullargspec(fn)
    if "run" in spec.args or spec.varkw is not None:
        from mfc.client import Run, namespace

        namespace(None)
        try:
            run: Any = Run(pathspec)
        except Exception as exc:  # noqa: BLE001 - the hook still runs, without its run
            print(exc)
            run = None
        fn(run=run)
    else:
        fn()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print("usage: python -m mfc.runner.exit_hooks FLOW_FILE HOOK RUN_PATHSPEC", file=sys.stderr)
        return 2
    try:
        call_hook(*args)
    except Exception as exc:  # noqa: BLE001 - reported in one line by the caller
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
