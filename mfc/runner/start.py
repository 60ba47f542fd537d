"""Run creation, callable by any entrypoint that starts a run: the orchestrator of ``mfc run``,
or the first state of a Step Functions execution (which derives the run id from the execution).

A run is its run record (through the metadata provider) and its parameters: their values as
artifacts and the ``_parameters/0`` task record the ``start`` step reads them from. Starting a
run twice with the same id and content is harmless (nothing is rewritten), so a retried entrypoint
can always call :func:`start_run` again; different content under an id in use is refused.
"""

from __future__ import annotations

import json
from typing import Any

from mfc.runner.resume import PARAMETERS_STEP
from mfc.stores.artifacts import ArtifactStore
from mfc.stores.provider import MetadataProvider, RunExists

PARAMETERS_TASK = "0"


def start_run(metadata: MetadataProvider, store: ArtifactStore, info: dict[str, Any],
              parameters: dict[str, Any] | None = None, run_id: str | None = None) -> str:
    """Record a run of ``store``'s flow and return its id.

    ``info`` is what the run record holds (user, tags, code package, driver...); ``parameters``
    maps each parameter's attribute to its value (None: the caller writes ``_parameters`` itself,
    as resume does by cloning the origin's). Without ``run_id`` a new id is claimed; with one the
    run is created under it, or accepted as it is when it exists with the same content (RunExists,
    an MfcError, when the run record or the parameters differ).

    The parameter values are stored before the run is recorded, so a value that cannot be
    stored leaves no run behind."""
    refs = save_parameters(store, parameters) if parameters is not None else None
    run_id = metadata.create_run(store.flow_name, info, run_id)
    if refs is not None:
        record_parameters(metadata, store.flow_name, run_id, refs)
    return run_id


def parameters_record(flow: str, run_id: str, refs: dict[str, Any]) -> dict[str, Any]:
    """The ``_parameters/0`` task record naming the parameter artifacts."""
    return {
        "pathspec": f"{flow}/{run_id}/{PARAMETERS_STEP}/{PARAMETERS_TASK}", "attempt": 0, "status": "ok",
        "artifacts": refs, "foreach_stack": [], "foreach": None,
    }


def save_parameters(store: ArtifactStore, values: dict[str, Any]) -> dict[str, Any]:
    """Store parameter values as artifacts; returns their references by attribute."""
    return {attr: store.save(value, attr, PARAMETERS_STEP).to_json() for attr, value in values.items()}


def record_parameters(metadata: MetadataProvider, flow: str, run_id: str, refs: dict[str, Any]) -> None:
    """Write the run's ``_parameters/0`` record (create-only), unless one naming the same
    parameter artifacts is there already."""
    record = json.loads(json.dumps(parameters_record(flow, run_id, refs), default=str))
    records = metadata.records(flow)
    if records.write(run_id, PARAMETERS_STEP, PARAMETERS_TASK, 0, record):
        return
    existing = records.read(run_id, PARAMETERS_STEP, PARAMETERS_TASK, 0) or {}
    found = existing.get("artifacts")
    known = found if isinstance(found, dict) else {}
    if known != record["artifacts"]:
        differ = sorted(set(known) ^ set(refs) or {a for a in refs if known.get(a) != record["artifacts"][a]})
        raise RunExists(f"run {flow}/{run_id} exists already with different parameters "
                        f"({', '.join(differ) or 'its record differs'})", hint="give another run id, or the same parameters")
